package site

import (
	"context"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// DrillRecord is a site's last drill, as `zdt status` shows it: what ran,
// when, whether it passed, and its figures. The whole report stays with
// whoever ran the drill (zdt drill writes it to files).
type DrillRecord struct {
	Site    string    `json:"site"`
	Kind    string    `json:"kind"`
	Who     string    `json:"who"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	Passed  bool      `json:"passed"`
	// RTOSeconds is the longest RTO of the drill's ops.
	RTOSeconds float64 `json:"rto_seconds"`
	// Probed: a client probed the service; OutageSeconds is the longest
	// outage it saw, LostWrites the acknowledged writes it did not find
	// afterwards (-1: its probe did not write).
	Probed        bool    `json:"probed"`
	OutageSeconds float64 `json:"outage_seconds"`
	LostWrites    int     `json:"lost_writes"`
	// Failed says what did not hold, "" when it passed.
	Failed string `json:"failed,omitempty"`
}

// String is the record in one line, for people.
func (d DrillRecord) String() string {
	verdict := "PASSED"
	if !d.Passed {
		verdict = "FAILED"
	}
	line := fmt.Sprintf("%s %s at %s by %s: RTO %s", d.Kind, verdict, d.Started.UTC().Format(time.RFC3339), d.Who,
		time.Duration(d.RTOSeconds*float64(time.Second)).Round(10*time.Millisecond))
	if d.Probed {
		line += fmt.Sprintf(", longest client outage %s", time.Duration(d.OutageSeconds*float64(time.Second)).Round(time.Millisecond))
		if d.LostWrites >= 0 {
			line += fmt.Sprintf(", %d acknowledged writes lost", d.LostWrites)
		}
	}
	if d.Failed != "" {
		line += "; " + d.Failed
	}
	return line
}

// RecordDrill keeps d as its site's last drill, with a "drill" event, in
// one transaction.
func (s *Store) RecordDrill(ctx context.Context, d DrillRecord) error {
	if d.Site == "" || d.Kind == "" {
		return fmt.Errorf("record a drill: say its site and kind")
	}
	put, err := putJSON(s.keys.Drill(d.Site), d)
	if err != nil {
		return err
	}
	event, err := s.eventPut(Event{At: time.Now().UTC(), Site: d.Site, Kind: "drill", Subject: d.Site,
		Message: fmt.Sprintf("drill of site %s: %s", d.Site, d)})
	if err != nil {
		return err
	}
	if _, err := s.c.Txn(ctx).Then(put, event).Commit(); err != nil {
		return fmt.Errorf("record the drill of site %s: %w", d.Site, err)
	}
	return nil
}

// LastDrills returns each site's last drill, by site.
func (s *Store) LastDrills(ctx context.Context) (map[string]DrillRecord, error) {
	resp, err := s.c.Get(ctx, s.keys.Drills(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read the drills: %w", err)
	}
	drills := make(map[string]DrillRecord, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		d, err := decode[DrillRecord](kv)
		if err != nil {
			return nil, err
		}
		drills[strings.TrimPrefix(string(kv.Key), s.keys.Drills())] = d
	}
	return drills, nil
}
