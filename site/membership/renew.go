package membership

import (
	"context"
	"errors"
	"time"
)

// renewPlan decides when the member renews its lease and what a renewal's
// answer means for the self-fence deadline. It is pure: the member's loop
// feeds it the instants things happen at.
//
// A renewal goes out on every tick of the renew interval, whether or not
// earlier ones are still under way: one slow round trip (a raft round to a
// leader at another site, a starved CPU) must not cost the next chances
// too. Each may take until the lease could expire, since an answer that
// comes late still proves the lease was renewed at the leader. A renewal
// that fails goes out again at once (backing off while failures repeat),
// not at the next tick. The deadline follows the newest send time that any
// successful renewal had, whatever order the answers come back in.
type renewPlan struct {
	interval time.Duration // the renew interval
	margin   time.Duration // the self-fence margin

	// lastSent is the send time of the newest renewal (or grant) that
	// succeeded; expiry is the earliest the lease can expire at the
	// leader: lastSent + the TTL it granted.
	lastSent, expiry time.Time

	inFlight int
	failures int // in a row, since the last success
}

// maxInFlight bounds the renewals under way at once: with a renewal per
// tick, each lasting until the lease could expire, a handful at most.
const maxInFlight = 8

// retryMin is the first wait before a renewal that failed goes out again;
// it doubles with every failure in a row up to the renew interval.
const retryMin = 25 * time.Millisecond

func newRenewPlan(interval, margin time.Duration, sent time.Time, ttl time.Duration) *renewPlan {
	return &renewPlan{interval: interval, margin: margin, lastSent: sent, expiry: sent.Add(ttl)}
}

// deadline is when the member fences itself unless a renewal succeeds
// first.
func (p *renewPlan) deadline() time.Time { return p.expiry.Add(-p.margin) }

// send is called when a renewal is due at now (a tick, a retry). It says
// whether to send one, and how long that one may take: until the lease
// could expire, and at least one renew interval (a lease past its expiry
// may still be alive: the member then learns which).
func (p *renewPlan) send(now time.Time) (timeout time.Duration, ok bool) {
	if p.inFlight >= maxInFlight {
		return 0, false
	}
	p.inFlight++
	return max(p.expiry.Sub(now), p.interval), true
}

// done is called when the renewal sent at sent has answered (err nil: the
// leader granted ttl). It says whether the deadline moved, and after how
// long to send another renewal at once (0: none, wait for the tick).
func (p *renewPlan) done(sent time.Time, ttl time.Duration, err error) (moved bool, retryIn time.Duration) {
	p.inFlight--
	if err != nil {
		p.failures++
		if errors.Is(err, context.DeadlineExceeded) {
			// It waited until the lease could expire: the ticks have
			// sent others meanwhile.
			return false, 0
		}
		return false, min(retryMin<<min(p.failures-1, 16), p.interval)
	}
	p.failures = 0
	if exp := sent.Add(ttl); exp.After(p.expiry) {
		p.lastSent, p.expiry = sent, exp
		return true, 0
	}
	return false, 0
}
