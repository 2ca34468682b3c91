package site

import (
	"context"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Snapshot is the cluster's state read at one revision.
type Snapshot struct {
	Rev        int64
	Alive      map[string]Alive
	Registered map[string]Registration
	Reports    map[string]Report
	Fences     map[string]Fence
	// Drains holds the drain records of the evacuated sites.
	Drains map[string]Drain
	// HostDrains holds the drain records of hosts, by host.
	HostDrains  map[string]HostDrain
	Assignments map[string]Assignment
	// Moves holds the records of planned moves, by service.
	Moves      map[string]Move
	Placements map[string]Placement
	// Hosts holds each site's report of its hypervisors.
	Hosts map[string]HostsReport
	// BGP and Replication hold each site's report of its speaker and of
	// its replication members.
	BGP         map[string]BGPReport
	Replication map[string]ReplicationReport
	// Announced holds what each site announces of each service's prefixes
	// (its ServiceAnnouncements records); see Announcement.
	Announced map[SiteService][]Announcement
	// Ops is the whole journal, oldest first.
	Ops []*Op
	// Coordinator is the site whose controller holds the election, "" when
	// none does.
	Coordinator string
	// Changed, when not 0, is the revision of the last change to any of
	// the records above: two snapshots with the same Changed hold the
	// same records. A View's snapshots say it; Store.Snapshot leaves it 0
	// (unknown).
	Changed int64
}

// Up reports whether a site holds its lease and is not fenced.
func (s *Snapshot) Up(site string) bool {
	_, alive := s.Alive[site]
	_, fenced := s.Fences[site]
	return alive && !fenced
}

// Announcement is what site announces of a service's prefix, as its
// record says; ok is false when it does not announce it.
func (s *Snapshot) Announcement(site, service, prefix string) (a Announcement, ok bool) {
	for _, a := range s.Announced[SiteService{site, service}] {
		if a.Prefix == prefix {
			return a, true
		}
	}
	return Announcement{}, false
}

// UnfinishedOps lists the ops without an outcome, oldest first.
func (s *Snapshot) UnfinishedOps() []*Op {
	var open []*Op
	for _, op := range s.Ops {
		if !op.Finished() {
			open = append(open, op)
		}
	}
	return open
}

// Snapshot reads the cluster's state (all but the event log) at one
// revision.
func (s *Store) Snapshot(ctx context.Context) (*Snapshot, error) {
	resp, err := s.c.Txn(ctx).Then(s.snapshotReads()...).Commit()
	if err != nil {
		return nil, fmt.Errorf("read cluster state: %w", err)
	}
	return s.keys.snapshotOf(resp)
}

// snapshotReads are the reads of a Snapshot, in one transaction: the
// sites, the fences, the services, the ops (oldest first, at readOps), the
// coordinator's election key (at readElection) and the guests.
// The places in snapshotReads of the reads that are not records.
const (
	readOps      = 3
	readElection = 4
)

func (s *Store) snapshotReads() []clientv3.Op {
	k := s.keys
	return []clientv3.Op{
		clientv3.OpGet(k.Sites(), clientv3.WithPrefix()),
		clientv3.OpGet(k.Fences(), clientv3.WithPrefix()),
		clientv3.OpGet(k.Services(), clientv3.WithPrefix()),
		clientv3.OpGet(k.Ops(), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend)),
		clientv3.OpGet(k.Election(), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(1)),
		clientv3.OpGet(k.Guests(), clientv3.WithPrefix()),
	}
}

// inSnapshot reports whether key is one a Snapshot reads (snapshotReads).
func (k Keys) inSnapshot(key string) bool {
	for _, prefix := range []string{k.Sites(), k.Fences(), k.Services(), k.Ops(), k.Election(), k.Guests()} {
		if strings.HasPrefix(key, prefix) {
			return true
		}
	}
	return false
}

// snapshotOf builds the Snapshot of the answer to snapshotReads.
func (k Keys) snapshotOf(resp *clientv3.TxnResponse) (*Snapshot, error) {
	var ops []*Op
	coordinator := ""
	snap, err := k.decodeSnapshot(resp, func(op *Op) { ops = append(ops, op) },
		func(kv *mvccpb.KeyValue) { coordinator = string(kv.Value) })
	if err != nil {
		return nil, err
	}
	snap.Ops, snap.Coordinator = ops, coordinator
	return snap, nil
}

// decodeSnapshot decodes the answer to snapshotReads: the records into a
// new Snapshot, and each op and each candidate's election key, in the
// order read, to op and candidate.
func (k Keys) decodeSnapshot(resp *clientv3.TxnResponse, op func(*Op), candidate func(*mvccpb.KeyValue)) (*Snapshot, error) {
	snap := newSnapshot(resp.Header.Revision)
	for i, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().Kvs {
			switch i {
			case readOps:
				o, err := decodeOp(kv)
				if err != nil {
					return nil, err
				}
				op(o)
			case readElection:
				candidate(kv)
			default:
				if err := k.putRecord(snap, kv); err != nil {
					return nil, err
				}
			}
		}
	}
	return snap, nil
}

// newSnapshot returns an empty snapshot at rev.
func newSnapshot(rev int64) *Snapshot {
	return &Snapshot{
		Rev:         rev,
		Alive:       map[string]Alive{},
		Registered:  map[string]Registration{},
		Reports:     map[string]Report{},
		Fences:      map[string]Fence{},
		Drains:      map[string]Drain{},
		HostDrains:  map[string]HostDrain{},
		Assignments: map[string]Assignment{},
		Moves:       map[string]Move{},
		Placements:  map[string]Placement{},
		Hosts:       map[string]HostsReport{},
		BGP:         map[string]BGPReport{},
		Replication: map[string]ReplicationReport{},
		Announced:   map[SiteService][]Announcement{},
	}
}

// decodeOp decodes an op record.
func decodeOp(kv *mvccpb.KeyValue) (*Op, error) {
	op, err := decode[Op](kv)
	if err != nil {
		return nil, err
	}
	op.Rev, op.CreateRev = kv.ModRevision, kv.CreateRevision
	return &op, nil
}

// putRecord decodes a record of a site, a fence, a service or a guest into
// snap. Other keys (the ops, the election, the beats, the events, ...)
// are not its to read: it ignores them.
func (k Keys) putRecord(snap *Snapshot, kv *mvccpb.KeyValue) error {
	key := string(kv.Key)
	if site, leaf, ok := k.siteKey(key); ok {
		return putSiteRecord(snap, site, leaf, kv)
	}
	if _, ok := strings.CutPrefix(key, k.Fences()); ok {
		f, err := decode[Fence](kv)
		if err != nil {
			return err
		}
		snap.Fences[f.Site] = f
		return nil
	}
	if _, _, ok := k.serviceKey(key); ok {
		return readServices(k, []*mvccpb.KeyValue{kv}, snap.Assignments, snap.Moves)
	}
	if _, ok := strings.CutPrefix(key, k.Guests()); ok {
		p, err := decode[Placement](kv)
		if err != nil {
			return err
		}
		p.Epoch = kv.ModRevision
		snap.Placements[p.Guest] = p
	}
	return nil
}

// putSiteRecord decodes one of a site's records into snap.
func putSiteRecord(snap *Snapshot, site, leaf string, kv *mvccpb.KeyValue) error {
	var err error
	switch leaf {
	case "alive":
		var a Alive
		if a, err = decode[Alive](kv); err == nil {
			a.Lease = clientv3.LeaseID(kv.Lease)
			snap.Alive[site] = a
		}
	case "registered":
		err = putDecoded(snap.Registered, site, kv)
	case "report":
		err = putDecoded(snap.Reports, site, kv)
	case "hosts":
		var h HostsReport
		if h, err = decode[HostsReport](kv); err == nil {
			h.Hosts, h.Site = snap.Hosts[site].Hosts, site
			snap.Hosts[site] = h
		}
	case "bgp":
		err = putDecoded(snap.BGP, site, kv)
	case "replication":
		err = putDecoded(snap.Replication, site, kv)
	case "drain":
		err = putDecoded(snap.Drains, site, kv)
	default:
		if host, ok := strings.CutPrefix(leaf, hostDrainLeaf); ok && host != "" {
			err = putDecoded(snap.HostDrains, host, kv)
		}
		if service, ok := strings.CutPrefix(leaf, announcedLeaf); ok && service != "" {
			var r ServiceAnnouncements
			if r, err = decode[ServiceAnnouncements](kv); err == nil {
				snap.Announced[SiteService{site, service}] = r.Announcements
			}
		}
		if host, ok := strings.CutPrefix(leaf, hostLeaf); ok && host != "" {
			var h HostReport
			if h, err = decode[HostReport](kv); err == nil {
				h.Name = host
				r := snap.Hosts[site]
				r.Site = site
				snap.Hosts[site] = r.withHost(h)
			}
		}
	}
	return err
}

// putDecoded decodes kv into m[key].
func putDecoded[T any](m map[string]T, key string, kv *mvccpb.KeyValue) error {
	v, err := decode[T](kv)
	if err != nil {
		return err
	}
	m[key] = v
	return nil
}

// deleteRecord removes from snap the record that key held: the inverse of
// putRecord, for a deleted key.
func (k Keys) deleteRecord(snap *Snapshot, key string) {
	if site, leaf, ok := k.siteKey(key); ok {
		switch leaf {
		case "alive":
			delete(snap.Alive, site)
		case "registered":
			delete(snap.Registered, site)
		case "report":
			delete(snap.Reports, site)
		case "hosts":
			if r := snap.Hosts[site]; len(r.Hosts) > 0 {
				snap.Hosts[site] = HostsReport{Site: site, Hosts: r.Hosts} // the host records stay
			} else {
				delete(snap.Hosts, site)
			}
		case "bgp":
			delete(snap.BGP, site)
		case "replication":
			delete(snap.Replication, site)
		case "drain":
			delete(snap.Drains, site)
		default:
			if host, ok := strings.CutPrefix(leaf, hostDrainLeaf); ok {
				delete(snap.HostDrains, host)
			}
			if service, ok := strings.CutPrefix(leaf, announcedLeaf); ok {
				delete(snap.Announced, SiteService{site, service})
			}
			if host, ok := strings.CutPrefix(leaf, hostLeaf); ok {
				if r, ok := snap.Hosts[site]; ok {
					snap.Hosts[site] = r.withoutHost(host)
				}
			}
		}
		return
	}
	if site, ok := strings.CutPrefix(key, k.Fences()); ok {
		delete(snap.Fences, site)
		return
	}
	if service, leaf, ok := k.serviceKey(key); ok {
		switch leaf {
		case "assignment":
			delete(snap.Assignments, service)
		case "move":
			delete(snap.Moves, service)
		}
		return
	}
	if rest, ok := strings.CutPrefix(key, k.Guests()); ok {
		guest, _, _ := strings.Cut(rest, "/")
		delete(snap.Placements, guest)
	}
}
