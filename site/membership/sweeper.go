package membership

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/ctxsleep"
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
	// OnLate, when set, is told when another site's beat becomes late (no
	// new one for LateAfter: late true), and when a late site beats again
	// (false). Nothing is swept for it; the coordinator's outside fencer
	// starts probing the late site's resources, so that a failover that
	// follows need not wait on them (package outside).
	OnLate func(site string, late bool)
	// LateAfter is how long a site may send no beat before it is late
	// (default: half of LeaseTTL).
	LateAfter time.Duration
	// OwnBeat, when set, returns the send time of the newest beat of this
	// controller's own site that etcd committed (Member.LastBeat). The
	// sweeper then starts paused, and after every Pause it sweeps nobody
	// until its own site has beaten again (see Pause). Without it the
	// sweeper never pauses.
	OwnBeat func() time.Time
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
//
// The silence it times must be the site's, not etcd's. While etcd has no
// leader, or refuses writes at its quota, no site can beat, and a sweep
// right after etcd recovers would end the membership of sites that were
// fine and are about to beat again. So the sweeper pauses: when it starts,
// when a sweep is refused for want of space, and when asked to (a pledge
// to a site that fails static, package failstatic). A paused sweeper ends
// no membership; it resumes only once its own site's beat, sent after the
// pause, has been committed, and it then times every site afresh from that
// instant. Every other site has had a whole lease TTL since etcd took
// writes again to beat.
type Sweeper struct {
	cfg SweeperConfig

	mu       sync.Mutex
	pausedAt time.Time // zero: not paused

	// late are the sites OnLate was told are late, until they beat again
	// (Run's goroutine only; kept when the watch is made again).
	late map[string]bool
}

// NewSweeper returns a sweeper; Run it. With OwnBeat set it starts
// paused.
func NewSweeper(cfg SweeperConfig) *Sweeper {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.LateAfter <= 0 {
		cfg.LateAfter = cfg.LeaseTTL / 2
	}
	s := &Sweeper{cfg: cfg, late: map[string]bool{}}
	if cfg.OwnBeat != nil {
		s.pausedAt = time.Now()
	}
	return s
}

// Pause stops the sweeps until this controller's own site has beaten
// after now; every site is then timed afresh. No sweep starts after it
// returns. One already under way may still land, but it cannot end the
// membership of a site that asked for the pledge before its own
// self-fence deadline: that sweep was due a whole TTL after the site's
// last beat, which is after the deadline. Without OwnBeat it does nothing
// and reports false.
func (s *Sweeper) Pause() bool {
	if s.cfg.OwnBeat == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pausedAt = time.Now()
	return true
}

// paused reports whether the sweeper is paused, resuming it (true: the
// timers must start afresh) once its own site beat after the pause.
func (s *Sweeper) paused() (paused, resumed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pausedAt.IsZero() {
		return false, false
	}
	if s.cfg.OwnBeat().After(s.pausedAt) {
		s.pausedAt = time.Time{}
		return false, true
	}
	return true, false
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
	backoff := ctxsleep.NewBackoff(100*time.Millisecond, s.cfg.LeaseTTL)
	for ctx.Err() == nil {
		if err := s.follow(ctx, backoff); err != nil && ctx.Err() == nil {
			s.cfg.Log.Debug("sweeper: following the beats failed; again shortly", zap.Error(err))
		}
		if backoff.Wait(ctx) != nil {
			break
		}
	}
	return nil
}

// follow reads the beats, then follows them until the watch breaks. Every
// beat it reads starts its TTL afresh: when it came is unknown, and later
// is the safe side.
func (s *Sweeper) follow(ctx context.Context, backoff *ctxsleep.Backoff) error {
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
		wait := s.nextSweep(seen)
		if s.pausedNow() {
			wait = min(wait, s.sweepRetry())
		}
		timer.Reset(wait)
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
			backoff.Reset()
			at := time.Now()
			for _, ev := range resp.Events {
				name := keys.BeatSite(string(ev.Kv.Key))
				switch {
				case name == s.cfg.Site:
				case ev.Type == clientv3.EventTypeDelete:
					delete(seen, name)
				default:
					if s.late[name] {
						delete(s.late, name)
						s.cfg.OnLate(name, false)
					}
					seen[name] = &seenBeat{rev: ev.Kv.ModRevision, at: at, next: at.Add(s.cfg.LeaseTTL)}
				}
			}
		case <-timer.C:
			s.tellLate(seen)
			paused, resumed := s.paused()
			if resumed {
				now := time.Now()
				for _, b := range seen {
					b.at, b.next = now, now.Add(s.cfg.LeaseTTL)
				}
				s.cfg.Log.Info("sweeper resumed: this site beats again; every site is timed afresh")
			}
			if !paused {
				s.sweep(ctx, seen)
			}
		}
	}
}

// pausedNow reports whether the sweeper is paused, without resuming it.
func (s *Sweeper) pausedNow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.pausedAt.IsZero()
}

// nextSweep is how long until the earliest sweep attempt, or the earliest
// beat to become late, falls due.
func (s *Sweeper) nextSweep(seen map[string]*seenBeat) time.Duration {
	wait := time.Hour
	for name, b := range seen {
		wait = min(wait, time.Until(b.next))
		if s.cfg.OnLate != nil && !s.late[name] {
			wait = min(wait, time.Until(b.at.Add(s.cfg.LateAfter)))
		}
	}
	return max(wait, 0)
}

// tellLate tells OnLate of every site whose beat has just become late. A
// paused sweeper tells too: what it starts changes nothing. A site stays
// late, also once swept, until a beat of it comes.
func (s *Sweeper) tellLate(seen map[string]*seenBeat) {
	if s.cfg.OnLate == nil {
		return
	}
	now := time.Now()
	for name, b := range seen {
		if !s.late[name] && !now.Before(b.at.Add(s.cfg.LateAfter)) {
			s.late[name] = true
			s.cfg.OnLate(name, true)
		}
	}
}

// sweep ends the membership of every site whose beat is a TTL old.
func (s *Sweeper) sweep(ctx context.Context, seen map[string]*seenBeat) {
	for name, b := range seen {
		now := time.Now()
		if now.Before(b.next) {
			continue
		}
		if s.pausedNow() {
			return // paused meanwhile (a pledge)
		}
		b.next = now.Add(s.sweepRetry())
		silent := now.Sub(b.at).Round(time.Millisecond)
		msg := fmt.Sprintf("%s sent no beat for %s (its last at revision %d): its membership ended, as if its lease had expired", name, silent, b.rev)
		sctx, cancel := context.WithTimeout(ctx, s.cfg.LeaseTTL)
		ended, err := s.cfg.Store.EndMembership(sctx, name, b.rev,
			site.Event{At: time.Now(), Site: s.cfg.Site, Kind: "site-silent", Subject: name, Message: msg})
		cancel()
		switch {
		case errors.Is(err, rpctypes.ErrNoSpace):
			// etcd refuses writes: no site can beat, so the silence
			// is etcd's. Time everyone afresh once it takes writes.
			if s.Pause() {
				s.cfg.Log.Warn("sweeper paused: etcd refuses writes (database space exceeded)", zap.String("site", name))
			}
			return
		case err != nil:
			s.cfg.Log.Debug("sweeper: could not end a silent site's membership; trying again", zap.String("site", name), zap.Error(err))
		case ended:
			delete(seen, name)
			s.cfg.Log.Warn("no beat from a site for a lease TTL: ended its membership; it has fenced itself",
				zap.String("site", name), zap.Int64("last_beat_rev", b.rev), zap.Duration("silent_for", silent))
			if s.cfg.OnSwept != nil {
				s.cfg.OnSwept(name)
			}
		}
	}
}
