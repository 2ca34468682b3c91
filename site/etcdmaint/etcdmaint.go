// Package etcdmaint keeps a controller's own embedded etcd member in
// shape. Every interval it reads the member's status and exports its
// database size, the part in use, its quota and etcd's alarms as
// metrics; it defragments the member when most of its database file is
// free, one member of the cluster at a time (under an etcd lock); and when
// the member holds the NOSPACE alarm, it defragments it and clears the
// alarm, once that brings the database well under its quota.
//
// etcd's periodic compaction (package embedetcd) frees the space of old
// revisions inside the database file, but the file does not shrink, and
// the quota is measured on the file: only a defragmentation gives the
// space back. A defragmentation stops the member serving (reads, writes
// and the lease renewals of its leader) while it copies the data in use,
// so the loop does not start one that would take longer than the
// controller can wait (Config.MaxBlock).
package etcdmaint

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The defaults of Config.
const (
	DefaultInterval      = time.Minute
	DefaultFreeFraction  = 0.5
	DefaultFreeFloor     = 64 << 20
	DefaultNoSpaceTarget = 0.8
	DefaultLockWait      = 5 * time.Second
	DefaultLockTTL       = 10 * time.Second
)

// copyRate is the rate at which a defragmentation is taken to copy the
// data in use, in bytes a second, to tell how long it stops the member
// (Config.MaxBlock). Measured on a 2-core test machine: 81 MiB in 0.4 s,
// 344 MiB in 6.4 s (54 MB/s); this errs on the slow side.
const copyRate = 32 << 20

// readTimeout bounds each read of the member's status and of the alarms.
const readTimeout = 5 * time.Second

// Config configures a Maintainer.
type Config struct {
	// Member is a client of this controller's own etcd member alone (one
	// endpoint): the loop reads its status, defragments it and disarms its
	// alarm through it.
	Member *clientv3.Client
	// Cluster is a client of every member. The lock is taken through it,
	// so that its session's keep-alives go on through the other members
	// while this one defragments.
	Cluster *clientv3.Client
	// LockKey is the prefix of the lock that lets one member of the
	// cluster defragment at a time (site.Keys.DefragLock).
	LockKey string
	// Registry receives the metrics; ConstLabels are put on each (the
	// controller's: its site).
	Registry    prometheus.Registerer
	ConstLabels prometheus.Labels
	Log         *zap.Logger

	// Interval is the time between passes (DefaultInterval).
	Interval time.Duration
	// The member is defragmented when its free space (its database size
	// less the part in use) is above both FreeFraction of the size
	// (DefaultFreeFraction) and FreeFloor bytes (DefaultFreeFloor).
	FreeFraction float64
	FreeFloor    int64
	// NoSpaceTarget is the share of the quota (DefaultNoSpaceTarget) the
	// database must be brought under before the NOSPACE alarm is cleared:
	// just under the quota, the next writes would raise it again.
	NoSpaceTarget float64
	// LockWait is how long a pass waits for the lock before it gives up
	// until the next (DefaultLockWait); LockTTL is the TTL of the lock's
	// lease, whole seconds (DefaultLockTTL): a controller that dies
	// holding the lock holds it that long.
	LockWait time.Duration
	LockTTL  time.Duration
	// MaxBlock, when not 0, is the longest a routine defragmentation may
	// stop the member: one expected to take longer (the data in use at
	// copyRate) is not started, and is left to an operator. The NOSPACE
	// recovery ignores it: the member refuses writes anyway.
	MaxBlock time.Duration

	// Passed, when set, is told of every pass of Run (a test seam).
	Passed func(Outcome)
}

// withDefaults is the config with every unset field at its default.
func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.FreeFraction <= 0 {
		c.FreeFraction = DefaultFreeFraction
	}
	if c.FreeFloor <= 0 {
		c.FreeFloor = DefaultFreeFloor
	}
	if c.NoSpaceTarget <= 0 {
		c.NoSpaceTarget = DefaultNoSpaceTarget
	}
	if c.LockWait <= 0 {
		c.LockWait = DefaultLockWait
	}
	if c.LockTTL < time.Second {
		c.LockTTL = DefaultLockTTL
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	return c
}

// Maintainer runs the maintenance of one etcd member.
type Maintainer struct {
	cfg      Config
	endpoint string
	log      *zap.Logger
	metrics  *metrics
	// tooLong is set while the member needs a defragmentation that would
	// stop it too long: the warning is logged when it is set, not on every
	// pass.
	tooLong bool
}

// New checks the config and registers the metrics.
func New(cfg Config) (*Maintainer, error) {
	cfg = cfg.withDefaults()
	switch {
	case cfg.Member == nil || len(cfg.Member.Endpoints()) != 1:
		return nil, errors.New("etcdmaint: Member must be a client of one etcd member (one endpoint)")
	case cfg.Cluster == nil:
		return nil, errors.New("etcdmaint: no Cluster client")
	case cfg.LockKey == "":
		return nil, errors.New("etcdmaint: no LockKey")
	case cfg.Registry == nil:
		return nil, errors.New("etcdmaint: no Registry")
	}
	m := &Maintainer{cfg: cfg, endpoint: cfg.Member.Endpoints()[0], metrics: newMetrics(cfg.ConstLabels)}
	m.log = cfg.Log.With(zap.String("etcd_member", m.endpoint))
	if err := m.metrics.register(cfg.Registry); err != nil {
		return nil, fmt.Errorf("etcdmaint: register metrics: %w", err)
	}
	return m, nil
}

// Run makes a pass at once and then every interval, until ctx ends. It
// returns nil then: a pass that fails is logged and counted, and the next
// one tries again.
func (m *Maintainer) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		o := m.Pass(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if m.cfg.Passed != nil {
			m.cfg.Passed(o)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// The results of a defragmentation (Outcome.Defrag and the label result
// of zdt_etcd_defrags_total); "" when none was needed.
const (
	DefragOK      = "ok"       // the member was defragmented
	DefragFailed  = "failed"   // etcd refused or failed it
	DefragNoLock  = "no_lock"  // the lock was not taken within LockWait
	DefragTooLong = "too_long" // not started: it would stop the member longer than MaxBlock
)

// Sizes is what a member's status says of its database, in bytes.
type Sizes struct {
	DB    int64 // the file: what the quota is measured on
	InUse int64 // the part in use; the rest is free pages
	Quota int64 // the member's quota; <= 0: none
}

// Outcome is what one pass saw and did.
type Outcome struct {
	// Before is the member's status at the start of the pass, After after
	// a defragmentation.
	Before, After Sizes
	// Defrag is the defragmentation's result, "" when none was needed.
	Defrag string
	// Disarmed tells that the pass cleared this member's NOSPACE alarm.
	Disarmed bool
	// Err is what went wrong, nil if nothing did.
	Err error
}

// Pass reads the member's status, exports it, and defragments the member
// or clears its NOSPACE alarm if it should.
func (m *Maintainer) Pass(ctx context.Context) Outcome {
	o := m.pass(ctx)
	if o.Err != nil && ctx.Err() == nil {
		m.metrics.errors.Inc()
		m.log.Warn("etcd maintenance pass failed", zap.Error(o.Err))
	}
	return o
}

func (m *Maintainer) pass(ctx context.Context) Outcome {
	st, err := m.status(ctx)
	if err != nil {
		return Outcome{Err: err}
	}
	m.metrics.observeSizes(sizes(st))
	alarms, err := m.alarms(ctx)
	if err != nil {
		return Outcome{Before: sizes(st), Err: err}
	}
	m.metrics.observeAlarms(alarms)
	self := st.Header.GetMemberId()
	switch {
	case holds(alarms, 0, etcdserverpb.AlarmType_NOSPACE):
		return m.recoverNoSpace(ctx, self, sizes(st), holds(alarms, self, etcdserverpb.AlarmType_NOSPACE))
	case m.fragmented(sizes(st)):
		return m.defragLocked(ctx, self, sizes(st))
	}
	m.tooLong = false
	return Outcome{Before: sizes(st)}
}

// status reads the member's status.
func (m *Maintainer) status(ctx context.Context) (*clientv3.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	st, err := m.cfg.Member.Status(ctx, m.endpoint)
	if err != nil {
		return nil, fmt.Errorf("read the status of etcd member %s: %w", m.endpoint, err)
	}
	return st, nil
}

// alarms reads etcd's alarms (every member's).
func (m *Maintainer) alarms(ctx context.Context) ([]*etcdserverpb.AlarmMember, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	resp, err := m.cfg.Member.AlarmList(ctx)
	if err != nil {
		return nil, fmt.Errorf("read etcd's alarms through %s: %w", m.endpoint, err)
	}
	return resp.Alarms, nil
}

// holds reports whether the alarm is raised for the member (0: for any).
func holds(alarms []*etcdserverpb.AlarmMember, member uint64, alarm etcdserverpb.AlarmType) bool {
	for _, a := range alarms {
		if a.Alarm == alarm && (member == 0 || a.MemberID == member) {
			return true
		}
	}
	return false
}

func sizes(st *clientv3.StatusResponse) Sizes {
	return Sizes{DB: st.DbSize, InUse: st.DbSizeInUse, Quota: st.DbSizeQuota}
}

// fragmented reports whether the free space is worth a defragmentation.
func (m *Maintainer) fragmented(s Sizes) bool {
	free := s.DB - s.InUse
	return free > m.cfg.FreeFloor && float64(free) > m.cfg.FreeFraction*float64(s.DB)
}

// blockFor is how long a defragmentation is expected to stop the member.
func blockFor(s Sizes) time.Duration {
	return time.Duration(float64(s.InUse) / copyRate * float64(time.Second))
}
