package site

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// BGPReport is what a site's speaker does: its sessions, its service
// addresses and what it could not do. What it announces is in records of
// their own, one per service (ServiceAnnouncements): a move of many
// services rewrites theirs, not one record of every prefix. The site's
// controller writes them on change, the report after the announcements.
type BGPReport struct {
	Site    string    `json:"site"`
	Updated time.Time `json:"updated"`
	Peers   []BGPPeer `json:"peers"`
	// Addresses are the service addresses the site carries on its
	// service interface.
	Addresses []string `json:"addresses,omitempty"`
	// Error says what the speaker could not do (an Apply that failed, the
	// service addresses being off); "" when all is well.
	Error string `json:"error,omitempty"`
}

// BGPPeer is one session of a site's speaker.
type BGPPeer struct {
	Address string    `json:"address"`
	ASN     uint32    `json:"asn"`
	State   string    `json:"state"`
	Since   time.Time `json:"since,omitzero"`
}

// ServiceAnnouncements is what a site announces of one service's prefixes,
// in the config's order; a service none of whose prefixes the site
// announces has no record.
type ServiceAnnouncements struct {
	Site          string         `json:"site"`
	Service       string         `json:"service"`
	Announcements []Announcement `json:"announcements"`
}

// SiteService names one service at one site.
type SiteService struct{ Site, Service string }

// Announcement is one prefix a site announces, with the copies of the local
// AS it prepends (the upstream sees one more).
type Announcement struct {
	Service  string `json:"service"`
	Prefix   string `json:"prefix"`
	Prepends int    `json:"prepends"`
	Cause    string `json:"cause,omitempty"`
}

// UpstreamRoute is the route observer's view of one prefix: which site the
// best path leads to, and every path it holds.
type UpstreamRoute struct {
	Prefix string `json:"prefix"`
	// BestSite is the site the best path leads to, "" when there is no path
	// or it leads to no known site.
	BestSite string         `json:"best_site"`
	ASPath   []uint32       `json:"as_path"`
	Paths    []UpstreamPath `json:"paths"`
	Observed time.Time      `json:"observed"`
}

// UpstreamPath is one path the observer holds for a prefix.
type UpstreamPath struct {
	Site   string   `json:"site"`
	Peer   string   `json:"peer"`
	ASPath []uint32 `json:"as_path"`
	Best   bool     `json:"best"`
}

// ReplicationReport is the status of a site's replication members.
type ReplicationReport struct {
	Site    string         `json:"site"`
	Updated time.Time      `json:"updated"`
	Members []MemberReport `json:"members"`
}

// MemberReport is one replication member as its site observed it.
type MemberReport struct {
	Group      string  `json:"group"`
	Role       string  `json:"role"`
	Healthy    bool    `json:"healthy"`
	Writable   bool    `json:"writable"`
	Sync       bool    `json:"sync"`
	LagBytes   int64   `json:"lag_bytes"`
	LagSeconds float64 `json:"lag_seconds"`
	Position   string  `json:"position,omitempty"`
	Detail     string  `json:"detail,omitempty"`
	// SyncStandbys, on a primary, names the standbys it waits for before it
	// acknowledges a commit (alone or as one of a quorum).
	SyncStandbys []string `json:"sync_standbys,omitempty"`
	// Streaming, on a primary whose driver knows its standbys
	// (PostgreSQL), names the standbys streaming from it now: the members
	// that follow it for sure.
	Streaming []string `json:"streaming,omitempty"`
	// Epoch is the assignment epoch the site last acted on for the group.
	Epoch    int64     `json:"epoch,omitempty"`
	Observed time.Time `json:"observed"`
}

// PutBGPReport writes the site's BGP report.
func (s *Store) PutBGPReport(ctx context.Context, r BGPReport) error {
	return s.putReport(ctx, s.keys.SiteBGP(r.Site), r, "BGP report of site "+r.Site)
}

// PutAnnouncements writes the records of what the site announces that
// changed and deletes those of the services it no longer announces any
// prefix of (gone), in transactions of at most maxTxnOps, the changed
// records first. It returns how many of the writes and deletes, in that
// order, etcd committed: all of them, or on an error those of the
// transactions before the one that failed (that one may have been
// committed too, unknown to the caller).
func (s *Store) PutAnnouncements(ctx context.Context, site string, changed []ServiceAnnouncements, gone []string) (committed int, err error) {
	return putRecords(ctx, s, changed, func(a ServiceAnnouncements) string { return s.keys.SiteAnnounced(site, a.Service) },
		keysOf(gone, func(svc string) string { return s.keys.SiteAnnounced(site, svc) }), "announcement records of site "+site)
}

// Announcements reads the site's announcement records, by service.
func (s *Store) Announcements(ctx context.Context, site string) (map[string][]Announcement, error) {
	resp, err := s.c.Get(ctx, s.keys.SiteAnnouncedPrefix(site), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read the announcement records of site %s: %w", site, err)
	}
	out := make(map[string][]Announcement, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		r, err := decode[ServiceAnnouncements](kv)
		if err != nil {
			return nil, err
		}
		out[r.Service] = r.Announcements
	}
	return out, nil
}

// PutReplicationReport writes the site's replication report.
func (s *Store) PutReplicationReport(ctx context.Context, r ReplicationReport) error {
	return s.putReport(ctx, s.keys.SiteReplication(r.Site), r, "replication report of site "+r.Site)
}

func (s *Store) putReport(ctx context.Context, key string, v any, what string) error {
	op, err := putJSON(key, v)
	if err != nil {
		return err
	}
	if _, err := s.c.Do(ctx, op); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	return nil
}

// PutUpstream writes the observer's records that changed and deletes those
// of prefixes the upstream no longer has, in transactions of at most
// maxTxnOps, the changed records first. It returns how many of the writes
// and deletes, in that order, etcd committed: all of them, or on an error
// those of the transactions before the one that failed (that one may have
// been committed too, unknown to the caller), so that the next publish
// goes on from there instead of writing everything again.
func (s *Store) PutUpstream(ctx context.Context, changed []UpstreamRoute, gone []string) (committed int, err error) {
	return putRecords(ctx, s, changed, func(r UpstreamRoute) string { return s.keys.UpstreamRoute(r.Prefix) },
		keysOf(gone, s.keys.UpstreamRoute), "upstream records")
}

// putRecords writes each of changed under its key and deletes the keys in
// gone, in transactions of at most maxTxnOps, the writes first. It returns
// how many of the writes and deletes, in that order, etcd committed (see
// inBatches).
func putRecords[T any](ctx context.Context, s *Store, changed []T, key func(T) string, gone []string, what string) (committed int, err error) {
	ops := make([]clientv3.Op, 0, len(changed)+len(gone))
	for _, r := range changed {
		op, err := putJSON(key(r), r)
		if err != nil {
			return 0, err
		}
		ops = append(ops, op)
	}
	for _, k := range gone {
		ops = append(ops, clientv3.OpDelete(k))
	}
	return inBatches(len(ops), func(start, end int) error {
		if _, err := s.c.Txn(ctx).Then(ops[start:end]...).Commit(); err != nil {
			return fmt.Errorf("write %d %s (%d of %d written): %w", end-start, what, start, len(ops), err)
		}
		return nil
	})
}

// keysOf maps names to their keys.
func keysOf(names []string, key func(string) string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = key(n)
	}
	return out
}

// Upstream reads the observer's records, by prefix.
func (s *Store) Upstream(ctx context.Context) (map[string]UpstreamRoute, error) {
	resp, err := s.c.Get(ctx, s.keys.Upstream(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read upstream records: %w", err)
	}
	return decodeUpstream(resp.Kvs)
}

// decodeUpstream decodes the observer's records, by prefix.
func decodeUpstream(kvs []*mvccpb.KeyValue) (map[string]UpstreamRoute, error) {
	routes := make(map[string]UpstreamRoute, len(kvs))
	for _, kv := range kvs {
		r, err := decode[UpstreamRoute](kv)
		if err != nil {
			return nil, err
		}
		routes[r.Prefix] = r
	}
	return routes, nil
}

// Routing is what a site's speaker needs to decide its announcements, read
// at one revision.
type Routing struct {
	Rev         int64
	Alive       map[string]bool
	Fences      map[string]Fence
	Assignments map[string]Assignment
	// Moves holds the records of planned moves, by service.
	Moves map[string]Move
}

// Routing reads the fences, the assignments and which of the sites hold a
// lease, at one revision.
func (s *Store) Routing(ctx context.Context, sites []string) (*Routing, error) {
	k := s.keys
	ops := []clientv3.Op{
		clientv3.OpGet(k.Fences(), clientv3.WithPrefix()),
		clientv3.OpGet(k.Services(), clientv3.WithPrefix()),
	}
	for _, site := range sites {
		ops = append(ops, clientv3.OpGet(k.Alive(site), clientv3.WithKeysOnly()))
	}
	resp, err := s.c.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, fmt.Errorf("read assignments and fences: %w", err)
	}
	r := &Routing{Rev: resp.Header.Revision, Alive: map[string]bool{}, Fences: map[string]Fence{}, Assignments: map[string]Assignment{}, Moves: map[string]Move{}}
	for i, site := range sites {
		if len(resp.Responses[2+i].GetResponseRange().Kvs) > 0 {
			r.Alive[site] = true
		}
	}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		f, err := decode[Fence](kv)
		if err != nil {
			return nil, err
		}
		r.Fences[f.Site] = f
	}
	if err := readServices(k, resp.Responses[1].GetResponseRange().Kvs, r.Assignments, r.Moves); err != nil {
		return nil, err
	}
	return r, nil
}
