package site

import (
	"context"
	"fmt"
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

// HostsReport is what a site observes of its hypervisors.
type HostsReport struct {
	Site    string       `json:"site"`
	Hosts   []HostReport `json:"hosts"`
	Updated time.Time    `json:"updated"`
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

// PutHostsReport writes what the site observes of its hypervisors.
func (s *Store) PutHostsReport(ctx context.Context, r HostsReport) error {
	op, err := putJSON(s.keys.Hosts(r.Site), r)
	if err != nil {
		return err
	}
	if _, err := s.c.Do(ctx, op); err != nil {
		return fmt.Errorf("write hosts report of site %s: %w", r.Site, err)
	}
	return nil
}
