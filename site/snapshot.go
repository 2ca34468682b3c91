package site

import (
	"context"
	"fmt"
	"strings"

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
	// Ops is the whole journal, oldest first.
	Ops []*Op
	// Coordinator is the site whose controller holds the election, "" when
	// none does.
	Coordinator string
}

// Up reports whether a site holds its lease and is not fenced.
func (s *Snapshot) Up(site string) bool {
	_, alive := s.Alive[site]
	_, fenced := s.Fences[site]
	return alive && !fenced
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
	k := s.keys
	resp, err := s.c.Txn(ctx).Then(
		clientv3.OpGet(k.Sites(), clientv3.WithPrefix()),
		clientv3.OpGet(k.Fences(), clientv3.WithPrefix()),
		clientv3.OpGet(k.Services(), clientv3.WithPrefix()),
		clientv3.OpGet(k.Ops(), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend)),
		clientv3.OpGet(k.Election(), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(1)),
		clientv3.OpGet(k.Guests(), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return nil, fmt.Errorf("read cluster state: %w", err)
	}
	snap := &Snapshot{
		Rev:         resp.Header.Revision,
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
	}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		site, leaf, ok := k.siteKey(string(kv.Key))
		if !ok {
			continue
		}
		switch leaf {
		case "alive":
			a, err := decode[Alive](kv)
			if err != nil {
				return nil, err
			}
			a.Lease = clientv3.LeaseID(kv.Lease)
			snap.Alive[site] = a
		case "registered":
			r, err := decode[Registration](kv)
			if err != nil {
				return nil, err
			}
			snap.Registered[site] = r
		case "report":
			r, err := decode[Report](kv)
			if err != nil {
				return nil, err
			}
			snap.Reports[site] = r
		case "hosts":
			r, err := decode[HostsReport](kv)
			if err != nil {
				return nil, err
			}
			snap.Hosts[site] = r
		case "bgp":
			r, err := decode[BGPReport](kv)
			if err != nil {
				return nil, err
			}
			snap.BGP[site] = r
		case "replication":
			r, err := decode[ReplicationReport](kv)
			if err != nil {
				return nil, err
			}
			snap.Replication[site] = r
		case "drain":
			d, err := decode[Drain](kv)
			if err != nil {
				return nil, err
			}
			snap.Drains[site] = d
		default:
			if host, ok := strings.CutPrefix(leaf, hostDrainLeaf); ok && host != "" {
				d, err := decode[HostDrain](kv)
				if err != nil {
					return nil, err
				}
				snap.HostDrains[host] = d
			}
		}
	}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		f, err := decode[Fence](kv)
		if err != nil {
			return nil, err
		}
		snap.Fences[f.Site] = f
	}
	if err := readServices(k, resp.Responses[2].GetResponseRange().Kvs, snap.Assignments, snap.Moves); err != nil {
		return nil, err
	}
	for _, kv := range resp.Responses[3].GetResponseRange().Kvs {
		op, err := decode[Op](kv)
		if err != nil {
			return nil, err
		}
		op.Rev, op.CreateRev = kv.ModRevision, kv.CreateRevision
		snap.Ops = append(snap.Ops, &op)
	}
	if kvs := resp.Responses[4].GetResponseRange().Kvs; len(kvs) > 0 {
		snap.Coordinator = string(kvs[0].Value)
	}
	for _, kv := range resp.Responses[5].GetResponseRange().Kvs {
		p, err := decode[Placement](kv)
		if err != nil {
			return nil, err
		}
		p.Epoch = kv.ModRevision
		snap.Placements[p.Guest] = p
	}
	return snap, nil
}
