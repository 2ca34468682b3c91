package site

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zdt-project/zdt/site/config"
)

// SiteState is a site's state as the cluster sees it.
type SiteState string

// The states of a site.
const (
	// SiteUp: the site's controller holds its lease and the site is not
	// fenced.
	SiteUp SiteState = "up"
	// SiteDark: no live lease. The coordinator fences a dark site that has
	// joined before.
	SiteDark SiteState = "dark"
	// SiteFenced: a fence record names the site; it serves nothing until a
	// failback.
	SiteFenced SiteState = "fenced"
)

// StateOf derives a site's state from the snapshot.
func (s *Snapshot) StateOf(site string) SiteState {
	if _, ok := s.Fences[site]; ok {
		return SiteFenced
	}
	if _, ok := s.Alive[site]; ok {
		return SiteUp
	}
	return SiteDark
}

// Status is the cluster's state as shown to people and scripts (`zdt
// status`, the controllers' JSON API).
type Status struct {
	Cluster     string          `json:"cluster"`
	Revision    int64           `json:"revision"`
	Coordinator string          `json:"coordinator"`
	Sites       []SiteStatus    `json:"sites"`
	Services    []ServiceStatus `json:"services"`
	// Ops lists the unfinished ops.
	Ops []OpStatus `json:"ops"`
	// OpCounts counts the journal's ops by kind and outcome.
	OpCounts []OpCount `json:"op_counts"`
	// Guests lists every guest of the config with its placement.
	Guests []GuestStatus `json:"guests"`
	// Announcements lists what each site with a live lease announces.
	Announcements []AnnouncementStatus `json:"announcements"`
	// Peers lists the BGP sessions of each site with a live lease.
	Peers []PeerStatus `json:"peers"`
	// Upstream is the route observer's view, one line per service prefix;
	// empty without an observer (see AddUpstream).
	Upstream []UpstreamStatus `json:"upstream"`
	// Observer says whether the route observer runs; nil when the cluster
	// has none.
	Observer *ObserverStatus `json:"observer,omitempty"`
	// Replication lists each replication group's members as their sites
	// report them.
	Replication []GroupStatus `json:"replication"`
	// Alarms lists what the sites report that contradicts what the cluster
	// wants (see Alarms), the critical ones first.
	Alarms []Alarm `json:"alarms"`
	// EtcdAlarms lists etcd's own alarms (NOSPACE: its database at the
	// quota, every write refused), and FailStatic the sites whose
	// controllers say they fail static; both are read by the CLI, not
	// from the cluster's state.
	EtcdAlarms []string `json:"etcd_alarms,omitempty"`
	FailStatic []string `json:"fail_static,omitempty"`
	// EtcdMembers lists each etcd member's database as the member reports
	// it (see EtcdMembers).
	EtcdMembers []EtcdMember `json:"etcd_members,omitempty"`
	// Insecure lists what runs without TLS because the config sets
	// insecure_plaintext (config.Cluster.Plaintext).
	Insecure []string `json:"insecure,omitempty"`
	// Health is the status judged (Judge), set by the CLI once EtcdAlarms
	// and FailStatic are known.
	Health Health `json:"health"`
}

// AnnouncementStatus is one prefix one site announces.
type AnnouncementStatus struct {
	Site     string `json:"site"`
	Service  string `json:"service"`
	Prefix   string `json:"prefix"`
	Prepends int    `json:"prepends"`
}

// PeerStatus is one BGP session of one site.
type PeerStatus struct {
	Site    string `json:"site"`
	Address string `json:"address"`
	ASN     uint32 `json:"asn"`
	State   string `json:"state"`
}

// PeerSiteDark is the state of the BGP sessions of a site that holds no
// lease: its speaker is gone or fenced, and the sessions are taken as down.
const PeerSiteDark = "down (site holds no lease)"

// UpstreamStatus is where the upstream's best path for a prefix leads.
type UpstreamStatus struct {
	Prefix string `json:"prefix"`
	// Service owns the prefix; Active is its assigned site, for comparison
	// with BestSite.
	Service  string   `json:"service"`
	Active   string   `json:"active"`
	BestSite string   `json:"best_site"`
	ASPath   []uint32 `json:"as_path"`
	Paths    int      `json:"paths"`
	// Observed is when the observer last wrote the prefix's record: when
	// its paths last changed; zero without one.
	Observed time.Time `json:"observed,omitzero"`
}

// ObserverStatus says whether the route observer is alive (its beat is
// there): without it, Upstream is its last view, stale.
type ObserverStatus struct {
	Running bool      `json:"running"`
	Since   time.Time `json:"since,omitzero"`
	Host    string    `json:"host,omitempty"`
}

// SetObserver records the observer's beat (ok: there is one).
func (st *Status) SetObserver(beat ObserverBeat, ok bool) {
	st.Observer = &ObserverStatus{Running: ok}
	if ok {
		st.Observer.Since, st.Observer.Host = beat.Since, beat.Host
	}
}

// GroupStatus is one replication group.
type GroupStatus struct {
	Group   string         `json:"group"`
	Members []MemberStatus `json:"members"`
}

// MemberStatus is one replication member, as its site last reported it.
type MemberStatus struct {
	Site       string  `json:"site"`
	Role       string  `json:"role"`
	Healthy    bool    `json:"healthy"`
	Writable   bool    `json:"writable"`
	LagBytes   int64   `json:"lag_bytes"`
	LagSeconds float64 `json:"lag_seconds"`
	Sync       bool    `json:"sync"`
	Detail     string  `json:"detail,omitempty"`
}

// GuestStatus is one guest's line of the status.
type GuestStatus struct {
	Name    string `json:"name"`
	Service string `json:"service"`
	Tier    string `json:"tier"`
	Zone    string `json:"zone,omitempty"`
	// Site and Host are where its placement wants it, "" when nowhere.
	Site string `json:"site"`
	Host string `json:"host"`
	// State is the placement's state (running, preempted, unplaced), or
	// "pending" before the coordinator placed the guest.
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// RunningOn lists the hosts its sites report it running on: the
	// placement's host once it started, more than one never.
	RunningOn []string `json:"running_on"`
}

// SiteStatus is one site's line of the status.
type SiteStatus struct {
	Name  string    `json:"name"`
	State SiteState `json:"state"`
	// Controller is what the site's controller last reported of itself,
	// "" while the site holds no lease (the report would be stale).
	Controller ControllerState `json:"controller,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	// LeaseRemainingMS is the time left on the site's lease; -1 when it
	// holds none or it could not be read.
	LeaseRemainingMS int64  `json:"lease_remaining_ms"`
	Coordinator      bool   `json:"coordinator"`
	Joined           bool   `json:"joined"`
	Fence            *Fence `json:"fence,omitempty"`
	// Drain is set while the site is drained (zdt evacuate).
	Drain *Drain `json:"drain,omitempty"`
	// LastDrill is the site's last drill (zdt drill), nil if none was
	// recorded.
	LastDrill *DrillRecord `json:"last_drill,omitempty"`
}

// ServiceStatus is one service's line of the status.
type ServiceStatus struct {
	Name string `json:"name"`
	// Active is the assigned site, "" before the first assignment.
	Active   string   `json:"active"`
	Epoch    int64    `json:"epoch"`
	Op       string   `json:"op,omitempty"`
	Sites    []string `json:"sites"`
	Prefixes []string `json:"prefixes"`
	// RPO is how much data a promotion may lose, as the config says; nil
	// for a service without a replication group (nothing is promoted).
	RPO *RPOStatus `json:"rpo,omitempty"`
}

// RPOStatus is a service's recovery point objective (config.RPO): a
// standby may be promoted when it is at most MaxLagBytes and
// MaxLagSeconds behind (a negative limit is not checked), and with
// RequireSync only a synchronous standby may be.
type RPOStatus struct {
	MaxLagBytes   int64   `json:"max_lag_bytes"`
	MaxLagSeconds float64 `json:"max_lag_seconds"`
	RequireSync   bool    `json:"require_sync"`
}

// OpStatus summarises one op.
type OpStatus struct {
	ID           string    `json:"id"`
	Kind         string    `json:"kind"`
	Params       string    `json:"params,omitempty"`
	Outcome      OpOutcome `json:"outcome"`
	Step         string    `json:"step,omitempty"` // the first step not yet done
	Created      time.Time `json:"created"`
	Coordinators []string  `json:"coordinators"`
	// StepSince is when the op reached Step: when it started, or else when
	// the step before it ended (or the op was created).
	StepSince time.Time `json:"step_since,omitzero"`
}

// OpCount is the number of ops of one kind that ended one way.
type OpCount struct {
	Kind    string    `json:"kind"`
	Outcome OpOutcome `json:"outcome"`
	Count   int       `json:"count"`
}

// LeaseRemaining reads the time left on every alive site's lease. A lease
// that could not be read is left out.
func (s *Store) LeaseRemaining(ctx context.Context, snap *Snapshot) map[string]time.Duration {
	left := map[string]time.Duration{}
	for site, a := range snap.Alive {
		resp, err := s.c.TimeToLive(ctx, a.Lease)
		if err != nil || resp.TTL < 0 {
			continue
		}
		left[site] = time.Duration(resp.TTL) * time.Second
	}
	return left
}

// Status reads the cluster's state and builds its status, with the route
// observer's records when the config has an observer and etcd's own alarms
// (EtcdAlarms), judged (Health).
func (s *Store) Status(ctx context.Context, cfg *config.Cluster) (Status, error) {
	return s.StatusFrom(ctx, cfg, nil)
}

// StatusFrom is Status with the cluster's state and the observer's records
// from v (nil: read from etcd) instead of read and decoded anew: a
// controller's API and metrics, asked every few seconds, build it from the
// view the controller keeps.
func (s *Store) StatusFrom(ctx context.Context, cfg *config.Cluster, v *View) (Status, error) {
	// The reads are independent: all at once, so that a person waits for
	// the slowest, not for their sum.
	var (
		snap *Snapshot
		// routesAt: the revision of the last change to routes, 0 for
		// unknown.
		routesAt int64
		leases   map[string]time.Duration
		routes   map[string]UpstreamRoute
		beat     ObserverBeat
		beatOK   bool
		drills   map[string]DrillRecord
		alarms   *clientv3.AlarmResponse
		members  []EtcdMember
	)
	g, gctx := errgroup.WithContext(ctx)
	down := &downSites{known: make(chan struct{})}
	g.Go(func() error {
		var err error
		if v != nil {
			snap, routes, routesAt, err = v.read(gctx, true)
		} else {
			snap, err = s.Snapshot(gctx)
		}
		if snap != nil {
			down.down = map[string]bool{}
			for _, site := range cfg.Sites {
				down.down[site.Name] = !snap.Up(site.Name)
			}
		}
		close(down.known)
		if err == nil {
			leases = s.LeaseRemaining(gctx, snap)
		}
		return err
	})
	if cfg.BGP.Observer != nil {
		if v == nil {
			g.Go(func() error {
				var err error
				routes, err = s.Upstream(gctx)
				return err
			})
		}
		g.Go(func() error {
			var err error
			beat, beatOK, err = s.ObserverBeatNow(gctx)
			return err
		})
	}
	g.Go(func() error {
		var err error
		drills, err = s.LastDrills(gctx)
		return err
	})
	// etcd answers reads at its quota but refuses every write. Neither
	// the alarms nor the members are a reason to fail: each says what
	// it could not read.
	g.Go(func() error {
		alarms, _ = s.c.AlarmList(gctx)
		return nil
	})
	g.Go(func() error {
		members = readEtcdMembers(gctx, s.c, s.listEtcdMembers(gctx), down)
		return nil
	})
	if err := g.Wait(); err != nil {
		return Status{}, err
	}
	var st Status
	if v != nil {
		st = v.statuses.status(cfg, snap, routes, routesAt)
	} else {
		st = recordsStatus(cfg, snap, routes)
		st.Alarms = Alarms(cfg, snap, time.Now())
	}
	st.setLeases(leases)
	if cfg.InsecurePlaintext {
		st.Insecure = cfg.Plaintext()
	}
	if cfg.BGP.Observer != nil {
		st.SetObserver(beat, beatOK)
	}
	for i := range st.Sites {
		if d, ok := drills[st.Sites[i].Name]; ok {
			st.Sites[i].LastDrill = &d
		}
	}
	if alarms != nil {
		for _, a := range alarms.Alarms {
			st.EtcdAlarms = append(st.EtcdAlarms, fmt.Sprintf("%s (member %x)", a.Alarm, a.MemberID))
		}
	}
	st.EtcdMembers = members
	st.Health = st.Judge()
	return st, nil
}

// EtcdMember is one etcd member's database as the member reports it.
type EtcdMember struct {
	Name     string `json:"name"`
	Endpoint string `json:"endpoint"`
	// DBSize is the database file, what the quota is measured on; InUse
	// the part of it in use (a defragmentation shrinks the file to about
	// that); Quota the member's quota, <= 0 for none.
	DBSize int64 `json:"db_size_bytes"`
	InUse  int64 `json:"db_size_in_use_bytes"`
	Quota  int64 `json:"quota_bytes"`
	Leader bool  `json:"leader"`
	// NoLeader: the member answered but follows no leader, so nothing can
	// be read or written through it: it is cut off from the others, or an
	// election is under way.
	NoLeader bool `json:"no_leader,omitempty"`
	// Error says why the member's status could not be read; the sizes are
	// 0 then.
	Error string `json:"error,omitempty"`
}

// The shares of its quota at which a member's database is shown with a
// warning (zdt status), and makes the cluster degraded (Judge): at the
// quota, etcd refuses every write.
const (
	EtcdQuotaWarn     = 0.8
	EtcdQuotaDegraded = 0.9
)

// etcdMemberTimeout bounds the read of each member's status: a member
// that does not answer is shown with its error, and does not hold up the
// status. The member of a site that is not up (dark, fenced) is given
// etcdDownMemberTimeout: it is not expected to answer, and a person asking
// for the status in a disaster should not wait for it. A member that does
// run there answers within it over its open connection: a stretched etcd
// cluster's sites are a few milliseconds apart.
const (
	etcdMemberTimeout     = time.Second
	etcdDownMemberTimeout = 100 * time.Millisecond
)

// QuotaShare is the database's size as a share of the quota, 0 without
// one.
func (m EtcdMember) QuotaShare() float64 {
	if m.Quota <= 0 {
		return 0
	}
	return float64(m.DBSize) / float64(m.Quota)
}

// Sizes says the database's size, the part in use and the quota, for
// people: "db 1.9 GiB (120.0 MiB in use), 93% of the 2.0 GiB quota".
func (m EtcdMember) Sizes() string {
	s := fmt.Sprintf("db %s (%s in use)", formatBytes(m.DBSize), formatBytes(m.InUse))
	if m.Quota <= 0 {
		return s + ", no quota"
	}
	return fmt.Sprintf("%s, %.0f%% of the %s quota", s, 100*m.QuotaShare(), formatBytes(m.Quota))
}

// formatBytes writes n in B, KiB, MiB or GiB.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, suffix := float64(n)/unit, "KiB"
	for _, next := range []string{"MiB", "GiB"} {
		if f < unit {
			break
		}
		f, suffix = f/unit, next
	}
	return fmt.Sprintf("%.1f %s", f, suffix)
}

// listEtcdMembers lists the members etcd knows, or the client's endpoints
// if it cannot say, without their statuses.
func (s *Store) listEtcdMembers(ctx context.Context) []EtcdMember {
	lctx, cancel := context.WithTimeout(ctx, etcdMemberTimeout)
	defer cancel()
	var members []EtcdMember
	if list, err := s.c.MemberList(lctx); err == nil {
		for _, m := range list.Members {
			em := EtcdMember{Name: m.Name}
			if len(m.ClientURLs) > 0 {
				em.Endpoint = m.ClientURLs[0]
			}
			members = append(members, em)
		}
	} else {
		for _, ep := range s.c.Endpoints() {
			members = append(members, EtcdMember{Endpoint: ep})
		}
	}
	return members
}

// downSites says, once known is closed, which sites are not up (by
// name: their members bear their names); none when the state could not
// be read.
type downSites struct {
	known chan struct{}
	down  map[string]bool
}

// readEtcdMembers fills in the members' sizes (or errors) from their
// statuses, read in parallel through c, all at once. Once down (nil: none)
// says which sites are not up, their members are waited for
// etcdDownMemberTimeout from the start, not etcdMemberTimeout: the reads
// do not wait for what says which sites are down.
func readEtcdMembers(ctx context.Context, c *clientv3.Client, members []EtcdMember, down *downSites) []EtcdMember {
	start := time.Now()
	var wg sync.WaitGroup
	for i := range members {
		m := &members[i]
		if m.Endpoint == "" {
			m.Error = "not started: it has no client URL yet"
			continue
		}
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, etcdMemberTimeout)
			defer cancel()
			var isDown atomic.Bool
			if down != nil {
				go func() {
					select {
					case <-sctx.Done():
						return
					case <-down.known:
					}
					if down.down[m.Name] {
						isDown.Store(true)
						t := time.AfterFunc(time.Until(start.Add(etcdDownMemberTimeout)), cancel)
						<-sctx.Done()
						t.Stop()
					}
				}()
			}
			st, err := memberStatus(sctx, c, m.Endpoint)
			switch {
			case err != nil && sctx.Err() != nil && ctx.Err() == nil:
				wait, why := etcdMemberTimeout, ""
				if isDown.Load() {
					wait, why = etcdDownMemberTimeout, fmt.Sprintf(" (site %s is not up)", m.Name)
				}
				m.Error = fmt.Sprintf("no answer in %s%s: %v", wait, why, err)
				return
			case err != nil:
				m.Error = err.Error()
				return
			}
			m.DBSize, m.InUse, m.Quota = st.DbSize, st.DbSizeInUse, st.DbSizeQuota
			m.Leader = st.Leader != 0 && st.Leader == st.Header.GetMemberId()
			m.NoLeader = st.Leader == 0
		})
	}
	wg.Wait()
	return members
}

// memberStatus reads the status of the member at endpoint. Unlike
// Client.Status, which waits for a connection until ctx ends, it fails at
// once when the connection cannot be made (refused, unreachable): the
// member of a site whose hosts died does not hold up the status for its
// whole timeout. A member that accepts the connection and does not answer
// still takes until ctx ends.
func memberStatus(ctx context.Context, c *clientv3.Client, endpoint string) (*pb.StatusResponse, error) {
	conn, err := c.Dial(endpoint)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	st, err := pb.NewMaintenanceClient(conn).Status(ctx, &pb.StatusRequest{}, grpc.WaitForReady(false))
	if s, ok := status.FromError(err); ok && s.Code() == codes.Unavailable {
		// gRPC's words around the dial's error say nothing more.
		msg := s.Message()
		if _, dial, found := strings.Cut(msg, "Error while dialing: "); found {
			msg = strings.TrimSuffix(dial, `"`)
		}
		return nil, fmt.Errorf("cannot connect: %s", msg)
	}
	return st, err
}

// etcdMemberReasons are the reasons the cluster is degraded for its etcd
// members' databases: one near its quota.
func (st Status) etcdMemberReasons() []string {
	var out []string
	for _, m := range st.EtcdMembers {
		if m.QuotaShare() > EtcdQuotaDegraded {
			out = append(out, fmt.Sprintf("etcd member %s's %s: at the quota etcd refuses every write", orEndpoint(m), m.Sizes()))
		}
		if m.NoLeader {
			out = append(out, fmt.Sprintf("etcd member %s has no leader: it is cut off from the other members (or an election is under way)", orEndpoint(m)))
		}
	}
	return out
}

// orEndpoint names a member by its name, or its endpoint if it has none.
func orEndpoint(m EtcdMember) string {
	if m.Name != "" {
		return m.Name
	}
	return m.Endpoint
}

// BuildStatus derives the status from a snapshot; leases holds the time left
// on each site's lease (see LeaseRemaining). Without a clock, its alarms say
// when a stale report was written but not how long ago (Status says both).
func BuildStatus(cfg *config.Cluster, snap *Snapshot, leases map[string]time.Duration) Status {
	return buildStatus(cfg, snap, leases, time.Time{})
}

// buildStatus is BuildStatus with the time the snapshot was read, for the
// age of stale reports; zero leaves the age out.
func buildStatus(cfg *config.Cluster, snap *Snapshot, leases map[string]time.Duration, now time.Time) Status {
	st := buildRecords(cfg, snap)
	st.setLeases(leases)
	st.Alarms = Alarms(cfg, snap, now)
	return st
}

// recordsStatus is the part of a status that the snapshot's records and
// the observer's decide: buildRecords and, when the config has an
// observer, AddUpstream.
func recordsStatus(cfg *config.Cluster, snap *Snapshot, routes map[string]UpstreamRoute) Status {
	st := buildRecords(cfg, snap)
	if cfg.BGP.Observer != nil {
		st.AddUpstream(cfg, routes)
	}
	return st
}

// setLeases sets the time left on each site's lease, in a copy of the
// sites: the status's other lists may be shared (statusCache).
func (st *Status) setLeases(leases map[string]time.Duration) {
	st.Sites = slices.Clone(st.Sites)
	for i := range st.Sites {
		st.Sites[i].LeaseRemainingMS = -1
		if left, ok := leases[st.Sites[i].Name]; ok {
			st.Sites[i].LeaseRemainingMS = left.Milliseconds()
		}
	}
}

// buildRecords is the status the snapshot's records decide, whatever the
// time: without the time left on the leases (-1), the alarms, the
// observer's view and what etcd itself says.
func buildRecords(cfg *config.Cluster, snap *Snapshot) Status {
	st := Status{
		Cluster:     cfg.Name,
		Revision:    snap.Rev,
		Coordinator: snap.Coordinator,
		Sites:       []SiteStatus{},
		Services:    []ServiceStatus{},
		Ops:         []OpStatus{},
		OpCounts:    []OpCount{},
	}
	for _, site := range cfg.Sites {
		ss := SiteStatus{
			Name:             site.Name,
			State:            snap.StateOf(site.Name),
			LeaseRemainingMS: -1,
			Coordinator:      site.Name == snap.Coordinator,
		}
		_, ss.Joined = snap.Registered[site.Name]
		// A report without a live lease is stale: its writer is gone.
		_, alive := snap.Alive[site.Name]
		if r, ok := snap.Reports[site.Name]; ok && alive {
			ss.Controller, ss.Reason = r.State, r.Reason
		}
		if f, ok := snap.Fences[site.Name]; ok {
			ss.Fence = &f
		}
		if d, ok := snap.Drains[site.Name]; ok {
			ss.Drain = &d
		}
		st.Sites = append(st.Sites, ss)
	}
	for _, svc := range cfg.Services {
		ss := ServiceStatus{Name: svc.Name, Sites: svc.Sites, Prefixes: []string{}}
		if svc.ReplicationGroup != "" {
			ss.RPO = &RPOStatus{MaxLagBytes: svc.RPO.MaxLagBytes, MaxLagSeconds: svc.RPO.MaxLagSeconds, RequireSync: svc.RPO.RequireSync}
		}
		for _, p := range svc.Prefixes {
			ss.Prefixes = append(ss.Prefixes, p.String())
		}
		if a, ok := snap.Assignments[svc.Name]; ok {
			ss.Active, ss.Epoch, ss.Op = a.Site, a.Epoch, a.Op
		}
		st.Services = append(st.Services, ss)
	}
	counts := map[OpCount]int{}
	var order []OpCount
	for _, op := range snap.Ops {
		k := OpCount{Kind: op.Kind, Outcome: op.Outcome}
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
		if !op.Finished() {
			st.Ops = append(st.Ops, opStatus(op))
		}
	}
	for _, k := range order {
		k.Count = counts[k]
		st.OpCounts = append(st.OpCounts, k)
	}
	st.Guests = guestStatuses(cfg, snap)
	st.Announcements, st.Peers = routingStatuses(cfg, snap)
	st.Upstream = []UpstreamStatus{}
	st.Replication = replicationStatuses(cfg, snap)
	return st
}

// routingStatuses lists what the sites with a live lease announce and their
// sessions; a site without one announces nothing that zdt still controls,
// and its configured sessions are shown down (PeerSiteDark).
func routingStatuses(cfg *config.Cluster, snap *Snapshot) ([]AnnouncementStatus, []PeerStatus) {
	anns, peers := []AnnouncementStatus{}, []PeerStatus{}
	for _, s := range cfg.Sites {
		r, ok := snap.BGP[s.Name]
		if _, alive := snap.Alive[s.Name]; !alive && s.BGP != nil {
			for _, p := range s.BGP.Peers {
				peers = append(peers, PeerStatus{Site: s.Name, Address: p.Address.String(), ASN: p.ASN, State: PeerSiteDark})
			}
			continue
		}
		for _, svc := range cfg.Services {
			for _, a := range snap.Announced[SiteService{s.Name, svc.Name}] {
				anns = append(anns, AnnouncementStatus{Site: s.Name, Service: svc.Name, Prefix: a.Prefix, Prepends: a.Prepends})
			}
		}
		if !ok {
			continue
		}
		for _, p := range r.Peers {
			peers = append(peers, PeerStatus{Site: s.Name, Address: p.Address, ASN: p.ASN, State: p.State})
		}
	}
	return anns, peers
}

// AddUpstream fills Upstream from the route observer's records: one line
// per service prefix, in the config's order.
func (st *Status) AddUpstream(cfg *config.Cluster, routes map[string]UpstreamRoute) {
	active := map[string]string{}
	for _, s := range st.Services {
		active[s.Name] = s.Active
	}
	st.Upstream = []UpstreamStatus{}
	for _, svc := range cfg.Services {
		for _, p := range svc.Prefixes {
			u := UpstreamStatus{Prefix: p.String(), Service: svc.Name, Active: active[svc.Name], ASPath: []uint32{}}
			if r, ok := routes[p.String()]; ok {
				u.BestSite, u.Paths = r.BestSite, len(r.Paths)
				if r.ASPath != nil {
					u.ASPath = r.ASPath
				}
				u.Observed = r.Observed
			}
			st.Upstream = append(st.Upstream, u)
		}
	}
}

// replicationStatuses lists every group's members in the config's order,
// with what their sites last reported ("unknown" without a live report).
func replicationStatuses(cfg *config.Cluster, snap *Snapshot) []GroupStatus {
	out := []GroupStatus{}
	for _, g := range cfg.Replication {
		gs := GroupStatus{Group: g.Name, Members: []MemberStatus{}}
		for _, m := range g.Members {
			ms := MemberStatus{Site: m.Site, Role: "unknown", Detail: "no report from the site"}
			_, alive := snap.Alive[m.Site]
			if !alive {
				ms.Detail = "the site holds no lease"
			}
			for _, r := range snap.Replication[m.Site].Members {
				if r.Group == g.Name && alive {
					ms = MemberStatus{Site: m.Site, Role: r.Role, Healthy: r.Healthy, Writable: r.Writable,
						LagBytes: r.LagBytes, LagSeconds: r.LagSeconds, Sync: r.Sync, Detail: r.Detail}
				}
			}
			gs.Members = append(gs.Members, ms)
		}
		out = append(out, gs)
	}
	return out
}

func guestStatuses(cfg *config.Cluster, snap *Snapshot) []GuestStatus {
	runningOn := map[string][]string{}
	for _, site := range cfg.Sites {
		if _, alive := snap.Alive[site.Name]; !alive {
			continue // the hosts report of a site without a lease is stale
		}
		for _, h := range snap.Hosts[site.Name].Hosts {
			for _, g := range h.Running {
				runningOn[g.Name] = append(runningOn[g.Name], h.Name)
			}
		}
	}
	out := []GuestStatus{}
	for _, g := range cfg.Guests() {
		gs := GuestStatus{Name: g.Name, Service: g.Service, Tier: g.Tier, Zone: g.Zone, State: "pending", RunningOn: runningOn[g.Name]}
		if gs.RunningOn == nil {
			gs.RunningOn = []string{}
		}
		if p, ok := snap.Placements[g.Name]; ok {
			gs.Site, gs.Host, gs.State, gs.Reason = p.Site, p.Host, string(p.State), p.Reason
			gs.State, gs.Reason = honestGuestState(gs, snap)
		}
		out = append(out, gs)
	}
	return out
}

// The states a guest placed to run shows until it is seen running there.
const (
	// GuestStarting: placed at a site that holds its lease, whose hosts
	// report do not have it running yet.
	GuestStarting = "starting"
	// GuestUnknown: placed at a site that holds no lease; whether it runs
	// there is not known (a failover will place it again).
	GuestUnknown = "unknown"
)

// honestGuestState is what a guest's status says: the placement's state,
// but "running" only where the placed host's site reports it running.
func honestGuestState(gs GuestStatus, snap *Snapshot) (state, reason string) {
	if gs.State != string(GuestRunning) || slices.Contains(gs.RunningOn, gs.Host) {
		return gs.State, gs.Reason
	}
	if _, alive := snap.Alive[gs.Site]; !alive {
		return GuestUnknown, fmt.Sprintf("placed on host %s at site %s, which holds no lease: whether it runs is not known", gs.Host, gs.Site)
	}
	return GuestStarting, fmt.Sprintf("placed on host %s; site %s does not report it running there yet", gs.Host, gs.Site)
}

func opStatus(op *Op) OpStatus {
	os := OpStatus{ID: op.ID, Kind: op.Kind, Outcome: op.Outcome, Created: op.Created, Coordinators: op.Coordinators}
	for _, k := range slices.Sorted(maps.Keys(op.Params)) {
		if os.Params != "" {
			os.Params += " "
		}
		os.Params += fmt.Sprintf("%s=%s", k, op.Params[k])
	}
	since := op.Created
	for _, s := range op.Steps {
		if s.Status == StepPending || s.Status == StepRunning {
			os.Step = s.Name
			if p := s.Params["service"]; p != "" {
				os.Step += " " + p
			}
			os.StepSince = since
			if !s.Started.IsZero() {
				os.StepSince = s.Started
			}
			break
		}
		if s.Ended.After(since) {
			since = s.Ended
		}
	}
	return os
}
