package etcdmaint

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// errNoLock: the lock was not taken within LockWait.
var errNoLock = errors.New("the defragmentation lock was not taken in time")

// defragLocked defragments the member under the lock, unless that would
// stop it too long or the lock is not taken in time.
func (m *Maintainer) defragLocked(ctx context.Context, self uint64, before Sizes) Outcome {
	o := Outcome{Before: before}
	if limit := m.cfg.MaxBlock; limit > 0 && blockFor(before) > limit {
		o.Defrag = DefragTooLong
		m.metrics.defrags.WithLabelValues(DefragTooLong).Inc()
		if !m.tooLong {
			m.log.Warn("etcd member needs a defragmentation, but it would stop the member too long: defragment it by hand (docs/operations.md)",
				append(sizeFields("", before), zap.Duration("expected", blockFor(before)), zap.Duration("max_block", limit))...)
		}
		m.tooLong = true
		return o
	}
	m.tooLong = false
	session, unlock, err := m.lock(ctx)
	if errors.Is(err, rpctypes.ErrNoSpace) {
		// A member at its quota refused the lock's writes and raised
		// NOSPACE (as it does for any write, a site's beat too): recover
		// from that at once.
		m.log.Warn("etcd refused the defragmentation lock for want of space", zap.Error(err))
		return m.recoverRaisedNoSpace(ctx, self, before)
	}
	if errors.Is(err, errNoLock) {
		o.Defrag = DefragNoLock
		m.metrics.defrags.WithLabelValues(DefragNoLock).Inc()
		m.log.Info("etcd member not defragmented: the lock was not taken in time (another member holds it, or etcd is slow); trying again next pass",
			zap.String("lock", m.cfg.LockKey), zap.Duration("waited", m.cfg.LockWait))
		return o
	}
	if err != nil {
		o.Err = err
		return o
	}
	defer unlock()
	o.After, o.Defrag, o.Err = m.defrag(ctx, before, "free space")
	select {
	case <-session.Done():
		m.log.Warn("the defragmentation lock's lease ended while the member was defragmented: another member may have started one",
			zap.Duration("lock_ttl", m.cfg.LockTTL))
	default:
	}
	return o
}

// lock takes the lock through the cluster client, waiting at most
// LockWait (errNoLock then). unlock releases it and ends its session.
func (m *Maintainer) lock(ctx context.Context) (*concurrency.Session, func(), error) {
	ttl := int64(m.cfg.LockTTL / time.Second)
	gctx, cancel := context.WithTimeout(ctx, m.cfg.LockWait)
	defer cancel()
	lease, err := m.cfg.Cluster.Grant(gctx, ttl)
	if err != nil {
		if gctx.Err() != nil && ctx.Err() == nil {
			return nil, nil, errNoLock
		}
		return nil, nil, fmt.Errorf("grant the defragmentation lock's lease: %w", err)
	}
	session, err := concurrency.NewSession(m.cfg.Cluster, concurrency.WithLease(lease.ID), concurrency.WithTTL(int(ttl)), concurrency.WithContext(ctx))
	if err != nil {
		m.revoke(lease.ID)
		return nil, nil, fmt.Errorf("the defragmentation lock's session: %w", err)
	}
	mu := concurrency.NewMutex(session, m.cfg.LockKey)
	if err := mu.Lock(gctx); err != nil {
		_ = session.Close()
		if gctx.Err() != nil && ctx.Err() == nil {
			return nil, nil, errNoLock
		}
		return nil, nil, fmt.Errorf("take the defragmentation lock %s: %w", m.cfg.LockKey, err)
	}
	unlock := func() {
		// Closing the session revokes its lease, which deletes the lock's
		// key: no Unlock first.
		if err := session.Close(); err != nil {
			m.log.Info("release the defragmentation lock (its lease ends by itself)", zap.Error(err))
		}
	}
	return session, unlock, nil
}

// revoke ends a lease that no session uses.
func (m *Maintainer) revoke(id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.LockWait)
	defer cancel()
	_, _ = m.cfg.Cluster.Revoke(ctx, id)
}

// defrag defragments the member and reads its status again. It returns
// the sizes after it and its result (DefragOK or DefragFailed).
func (m *Maintainer) defrag(ctx context.Context, before Sizes, why string) (Sizes, string, error) {
	m.log.Info("defragmenting etcd member: it stops serving until done",
		append(sizeFields("", before), zap.String("why", why), zap.Duration("expected", blockFor(before)))...)
	start := time.Now()
	_, err := m.cfg.Member.Defragment(ctx, m.endpoint)
	took := time.Since(start)
	if err != nil {
		m.metrics.defrags.WithLabelValues(DefragFailed).Inc()
		return Sizes{}, DefragFailed, fmt.Errorf("defragment etcd member %s (after %s): %w", m.endpoint, took.Round(time.Millisecond), err)
	}
	m.metrics.defrags.WithLabelValues(DefragOK).Inc()
	st, err := m.status(ctx)
	if err != nil {
		m.log.Info("defragmented etcd member", append(sizeFields("before_", before), zap.Duration("took", took))...)
		return Sizes{}, DefragOK, err
	}
	after := sizes(st)
	m.metrics.observeSizes(after)
	m.log.Info("defragmented etcd member",
		append(append(sizeFields("before_", before), sizeFields("after_", after)...), zap.Duration("took", took))...)
	return after, DefragOK, nil
}

// recoverNoSpace runs while some member holds the NOSPACE alarm, which
// caps the whole cluster. If this member's database is above NoSpaceTarget
// of its quota, it defragments it, unless the data in use alone is above
// that: a member left near its quota would raise the alarm again at the
// next write. etcd refuses the lock's writes while the alarm is raised, so
// the defragmentation goes without it. Then, if the member holds the
// alarm itself (own), it clears it; another member's alarm is that
// member's controller's to clear.
func (m *Maintainer) recoverNoSpace(ctx context.Context, self uint64, before Sizes, own bool) Outcome {
	o := Outcome{Before: before, After: before}
	if before.Quota <= 0 {
		if own {
			m.log.Error("etcd NOSPACE alarm raised for this member, which has no quota: leaving it", sizeFields("", before)...)
		}
		return o
	}
	target := int64(m.cfg.NoSpaceTarget * float64(before.Quota))
	if before.DB >= target && !m.shrinkForNoSpace(ctx, &o, target, own) {
		return o
	}
	if !own {
		return o
	}
	if o.Err = m.disarm(ctx, self); o.Err != nil {
		return o
	}
	o.Disarmed = true
	if alarms, err := m.alarms(ctx); err == nil {
		m.metrics.observeAlarms(alarms)
	}
	m.log.Error("etcd NOSPACE alarm of this member cleared: etcd takes writes again unless another member holds it too", sizeFields("", o.After)...)
	return o
}

// shrinkForNoSpace defragments the member at NOSPACE, if that can bring
// its database under target, and reports whether it did.
func (m *Maintainer) shrinkForNoSpace(ctx context.Context, o *Outcome, target int64, own bool) bool {
	fields := append(sizeFields("", o.Before), zap.Int64("target_bytes", target), zap.Bool("own_alarm", own))
	if o.Before.InUse >= target {
		m.log.Error("etcd NOSPACE: every write is refused, and this member's data in use alone is above the target: leaving the alarm. Compact etcd's history or delete data; then this loop defragments and clears it (docs/operations.md)", fields...)
		return false
	}
	m.log.Error("etcd NOSPACE: every write is refused; defragmenting this member without the lock (etcd refuses the lock's writes at NOSPACE)", fields...)
	o.After, o.Defrag, o.Err = m.defrag(ctx, o.Before, "NOSPACE")
	if o.Err != nil {
		return false
	}
	if o.After.DB >= target {
		m.log.Error("etcd NOSPACE: this member's database is still above the target after a defragmentation: leaving the alarm (docs/operations.md)",
			append(sizeFields("", o.After), zap.Int64("target_bytes", target))...)
		return false
	}
	return true
}

// recoverRaisedNoSpace reads the alarms again and recovers from NOSPACE.
func (m *Maintainer) recoverRaisedNoSpace(ctx context.Context, self uint64, before Sizes) Outcome {
	alarms, err := m.alarms(ctx)
	if err != nil {
		return Outcome{Before: before, Err: err}
	}
	m.metrics.observeAlarms(alarms)
	return m.recoverNoSpace(ctx, self, before, holds(alarms, self, etcdserverpb.AlarmType_NOSPACE))
}

// disarm clears the member's NOSPACE alarm.
func (m *Maintainer) disarm(ctx context.Context, member uint64) error {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	_, err := m.cfg.Member.AlarmDisarm(ctx, &clientv3.AlarmMember{MemberID: member, Alarm: etcdserverpb.AlarmType_NOSPACE})
	if err != nil {
		return fmt.Errorf("disarm the NOSPACE alarm of etcd member %x: %w", member, err)
	}
	return nil
}

// sizeFields logs the sizes, their names prefixed.
func sizeFields(prefix string, s Sizes) []zap.Field {
	return []zap.Field{
		zap.Int64(prefix+"db_size_bytes", s.DB),
		zap.Int64(prefix+"db_size_in_use_bytes", s.InUse),
		zap.Int64(prefix+"quota_bytes", s.Quota),
	}
}
