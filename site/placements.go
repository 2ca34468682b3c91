package site

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// GuestState is what a placement wants of a guest.
type GuestState string

// The desired states of a guest.
const (
	// GuestRunning: the guest runs on the placement's host.
	GuestRunning GuestState = "running"
	// GuestPreempted: stopped to make room for a guest of a higher tier; it
	// comes back when capacity returns.
	GuestPreempted GuestState = "preempted"
	// GuestUnplaced: no host can take it now; the reason says why.
	GuestUnplaced GuestState = "unplaced"
)

// Placement is a guest's desired place. A site runs a guest only where its
// placement says so, and destroys any other copy.
type Placement struct {
	Guest  string     `json:"guest"`
	Site   string     `json:"site,omitempty"`
	Host   string     `json:"host,omitempty"`
	State  GuestState `json:"state"`
	Reason string     `json:"reason"`
	Op     string     `json:"op"`
	At     time.Time  `json:"at"`

	// Epoch is the revision the placement was written at (not stored).
	Epoch int64 `json:"-"`
}

// HostsReport is what a site observes of its hypervisors. In etcd it is
// one small record per host (sites/<s>/host/<host>, a HostReport) and a
// header (sites/<s>/hosts: the site and when it last published a change),
// so that a guest that stops rewrites its host's record alone; a Snapshot
// puts them together, the hosts in name order.
type HostsReport struct {
	Site string `json:"site"`
	// Hosts are the host records, in name order (not in the header).
	Hosts   []HostReport `json:"-"`
	Updated time.Time    `json:"updated"`
}

// withHost returns r with h in place of the host of its name (or added),
// in a new slice: the old one may be shared with another snapshot.
func (r HostsReport) withHost(h HostReport) HostsReport {
	i, found := slices.BinarySearchFunc(r.Hosts, h.Name, func(x HostReport, name string) int { return strings.Compare(x.Name, name) })
	hosts := make([]HostReport, 0, len(r.Hosts)+1)
	hosts = append(hosts, r.Hosts[:i]...)
	hosts = append(hosts, h)
	if found {
		i++
	}
	r.Hosts = append(hosts, r.Hosts[i:]...)
	return r
}

// withoutHost returns r without the named host, in a new slice.
func (r HostsReport) withoutHost(name string) HostsReport {
	r.Hosts = slices.DeleteFunc(slices.Clone(r.Hosts), func(h HostReport) bool { return h.Name == name })
	return r
}

// HostReport is one hypervisor as its site sees it.
type HostReport struct {
	Name      string `json:"name"`
	VCPUs     int    `json:"vcpus"`
	MemoryMiB int64  `json:"memory_mib"`
	// Failed: the host has not answered for longer than allowed.
	Failed  bool           `json:"failed"`
	Error   string         `json:"error,omitempty"`
	Running []RunningGuest `json:"running"`
}

// RunningGuest is a guest that runs on a host.
type RunningGuest struct {
	Name      string `json:"name"`
	VCPUs     int    `json:"vcpus"`
	MemoryMiB int64  `json:"memory_mib"`
}

// PutPlacements writes placements, guarded by g, each only if the guest's
// placement is still at the epoch in read (0: the guest had none). Large
// sets are written in several transactions, each followed by a call of
// landed (when not nil); a conflict stops at the transaction it hits and
// reports ErrConflict: read again and solve again (writing the same
// placements twice is harmless).
func (s *Store) PutPlacements(ctx context.Context, g Guard, ps []Placement, read map[string]int64, landed func()) error {
	_, err := inBatches(len(ps), func(start, end int) error {
		var conds []clientv3.Cmp
		var ops []clientv3.Op
		for _, p := range ps[start:end] {
			key := s.keys.Placement(p.Guest)
			put, err := putJSON(key, p)
			if err != nil {
				return err
			}
			conds = append(conds, clientv3.Compare(clientv3.ModRevision(key), "=", read[p.Guest]))
			ops = append(ops, put)
		}
		if _, err := s.commit(ctx, &g, conds, ops); err != nil {
			return fmt.Errorf("write %d placements: %w", end-start, err)
		}
		if landed != nil {
			landed()
		}
		return nil
	})
	return err
}

// PutHostsReport writes what the site observes of its hypervisors: the
// records of the hosts in changed, in transactions of at most maxTxnOps,
// then the deletion of the records of the hosts in gone, then the header
// (r's site and time; r.Hosts is not read). On an error, what etcd holds
// is unknown: the caller writes every record again (see HostNames).
func (s *Store) PutHostsReport(ctx context.Context, r HostsReport, changed []HostReport, gone []string) error {
	what := "hosts report of site " + r.Site
	if _, err := putRecords(ctx, s, changed, func(h HostReport) string { return s.keys.SiteHost(r.Site, h.Name) },
		keysOf(gone, func(host string) string { return s.keys.SiteHost(r.Site, host) }), what); err != nil {
		return err
	}
	return s.putReport(ctx, s.keys.Hosts(r.Site), r, what)
}

// HostsReport reads the site's hosts report; ok is false when the site
// wrote none.
func (s *Store) HostsReport(ctx context.Context, site string) (r HostsReport, ok bool, err error) {
	resp, err := s.c.Txn(ctx).Then(clientv3.OpGet(s.keys.Hosts(site)),
		clientv3.OpGet(s.keys.SiteHostPrefix(site), clientv3.WithPrefix())).Commit()
	if err != nil {
		return HostsReport{}, false, fmt.Errorf("read the hosts report of site %s: %w", site, err)
	}
	snap := newSnapshot(resp.Header.Revision)
	for _, rr := range resp.Responses {
		for _, kv := range rr.GetResponseRange().Kvs {
			if err := s.keys.putRecord(snap, kv); err != nil {
				return HostsReport{}, false, err
			}
		}
	}
	r, ok = snap.Hosts[site]
	return r, ok, nil
}

// HostNames lists the hosts the site has records of, in name order.
func (s *Store) HostNames(ctx context.Context, site string) ([]string, error) {
	prefix := s.keys.SiteHostPrefix(site)
	resp, err := s.c.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("read the host records of site %s: %w", site, err)
	}
	names := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		names = append(names, strings.TrimPrefix(string(kv.Key), prefix))
	}
	return names, nil
}
