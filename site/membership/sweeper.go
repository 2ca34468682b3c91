package membership

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site"
)

// SweeperConfig configures a Sweeper.
type SweeperConfig struct {
	Site     string // this controller's site, which it never sweeps
	Store    *site.Store
	Log      *zap.Logger
	LeaseTTL time.Duration
	// OnSwept, when set, is called after the sweeper ended a site's
	// membership.
	OnSwept func(site string)
}

// Sweeper ends the membership of every other site whose beat has not
// changed for a whole lease TTL, timed on this controller's own clock from
// when it saw the last beat. It is what makes a dark site's detection take
// about one lease TTL whoever led etcd: a lease expires only where the
// leader says so, and a new leader extends every lease by an election
// timeout on top of the election itself, while a beat is an etcd write
// that every site sees.
//
// Why it is safe: a site counts a renewal only with a beat sent no earlier
// (Member.renew), and fences itself at the send time of the last renewal
// that counted + TTL - margin. That send time came before the beat's
// commit, which came before this controller saw it; so a TTL after seeing
// it, the site has fenced itself, margin ago. The sweep compares the
// beat's revision in the same transaction that deletes the keys, so a beat
// that lands first stops the sweep, and one that lands after fails (the
// alive key is gone) and never counts.
type Sweeper struct {
	cfg SweeperConfig
}

// NewSweeper returns a sweeper; Run it.
func NewSweeper(cfg SweeperConfig) *Sweeper {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &Sweeper{cfg: cfg}
}

// seenBeat is the newest beat of a site this sweeper saw, and when.
type seenBeat struct {
	rev  int64
	at   time.Time // when this sweeper saw it (monotonic)
	next time.Time // the next sweep attempt, at + TTL or a retry
}

// sweepRetry is how soon a sweep that did not end the membership (a newer
// beat is on its way, or no quorum) is tried again.
func (s *Sweeper) sweepRetry() time.Duration { return s.cfg.LeaseTTL / 8 }

// Run sweeps until ctx ends, following the beats with a watch and reading
// them again whenever the watch breaks.
func (s *Sweeper) Run(ctx context.Context) error {
	ctx = clientv3.WithRequireLeader(ctx)
	backoff := newBackoff(100*time.Millisecond, s.cfg.LeaseTTL)
	for ctx.Err() == nil {
		if err := s.follow(ctx, backoff); err != nil && ctx.Err() == nil {
			s.cfg.Log.Debug("sweeper: following the beats failed; again shortly", zap.Error(err))
		}
		if backoff.wait(ctx) != nil {
			break
		}
	}
	return nil
}

// follow reads the beats, then follows them until the watch breaks. Every
// beat it reads starts its TTL afresh: when it came is unknown, and later
// is the safe side.
func (s *Sweeper) follow(ctx context.Context, backoff *backoff) error {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.LeaseTTL)
	beats, rev, err := s.cfg.Store.Beats(rctx)
	cancel()
	if err != nil {
		return err
	}
	now := time.Now()
	seen := make(map[string]*seenBeat, len(beats))
	for name, r := range beats {
		if name != s.cfg.Site {
			seen[name] = &seenBeat{rev: r, at: now, next: now.Add(s.cfg.LeaseTTL)}
		}
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	keys := s.cfg.Store.Keys()
	watch := s.cfg.Store.Client().Watch(wctx, keys.Beats(), clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Reset(s.nextSweep(seen))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case resp, ok := <-watch:
			if !ok {
				return errors.New("the watch of the beats ended")
			}
			if err := resp.Err(); err != nil {
				return fmt.Errorf("watch the beats: %w", err)
			}
			backoff.reset()
			at := time.Now()
			for _, ev := range resp.Events {
				name := keys.BeatSite(string(ev.Kv.Key))
				switch {
				case name == s.cfg.Site:
				case ev.Type == clientv3.EventTypeDelete:
					delete(seen, name)
				default:
					seen[name] = &seenBeat{rev: ev.Kv.ModRevision, at: at, next: at.Add(s.cfg.LeaseTTL)}
				}
			}
		case <-timer.C:
			s.sweep(ctx, seen)
		}
	}
}

// nextSweep is how long until the earliest sweep attempt falls due.
func (s *Sweeper) nextSweep(seen map[string]*seenBeat) time.Duration {
	wait := time.Hour
	for _, b := range seen {
		wait = min(wait, time.Until(b.next))
	}
	return max(wait, 0)
}

// sweep ends the membership of every site whose beat is a TTL old.
func (s *Sweeper) sweep(ctx context.Context, seen map[string]*seenBeat) {
	for name, b := range seen {
		now := time.Now()
		if now.Before(b.next) {
			continue
		}
		b.next = now.Add(s.sweepRetry())
		sctx, cancel := context.WithTimeout(ctx, s.cfg.LeaseTTL)
		ended, err := s.cfg.Store.EndMembership(sctx, name, b.rev)
		cancel()
		switch {
		case err != nil:
			s.cfg.Log.Debug("sweeper: could not end a silent site's membership; trying again", zap.String("site", name), zap.Error(err))
		case ended:
			delete(seen, name)
			silent := now.Sub(b.at).Round(time.Millisecond)
			s.cfg.Log.Warn("no beat from a site for a lease TTL: ended its membership; it has fenced itself",
				zap.String("site", name), zap.Int64("last_beat_rev", b.rev), zap.Duration("silent_for", silent))
			msg := fmt.Sprintf("%s sent no beat for %s (its last at revision %d): its membership ended, as if its lease had expired", name, silent, b.rev)
			ectx, cancel := context.WithTimeout(ctx, s.cfg.LeaseTTL)
			if err := s.cfg.Store.AppendEvent(ectx, site.Event{At: time.Now(), Site: s.cfg.Site, Kind: "site-silent", Subject: name, Message: msg}); err != nil {
				s.cfg.Log.Debug("sweeper: event not written", zap.Error(err))
			}
			cancel()
			if s.cfg.OnSwept != nil {
				s.cfg.OnSwept(name)
			}
		}
	}
}
