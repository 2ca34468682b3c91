package membership

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// The lab's timings: lease TTL 2s, renew every 500ms, fence 500ms before the
// lease can expire. The window a renewal has is TTL - margin - interval: 1s.
const (
	labTTL      = 2 * time.Second
	labInterval = 500 * time.Millisecond
	labMargin   = 500 * time.Millisecond
)

// at is an instant of a test's clock: t0 plus d.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

var errInjected = errors.New("injected")

// TestRenewPlan drives the plan through answers in every order and checks
// each decision.
func TestRenewPlan(t *testing.T) {
	// An event: a renewal goes out at send (sent is zero), or the one sent
	// at sent answers (err nil: with the lab's TTL).
	type event struct {
		send, sent time.Duration
		isAnswer   bool
		err        error
		// What the plan must say.
		sends       bool
		timeout     time.Duration
		moved       bool
		retryIn     time.Duration
		deadline    time.Duration // after the event
		inFlightNow int
	}
	send := func(now, timeout time.Duration, inFlight int) event {
		return event{send: now, sends: true, timeout: timeout, inFlightNow: inFlight}
	}
	answer := func(sent time.Duration, err error, moved bool, retryIn, deadline time.Duration, inFlight int) event {
		return event{sent: sent, isAnswer: true, err: err, moved: moved, retryIn: retryIn, deadline: deadline, inFlightNow: inFlight}
	}
	for _, tc := range []struct {
		name   string
		events []event
	}{
		{"answers in order move the deadline", []event{
			// Sent with the grant: nothing newer.
			send(0, ms(2000), 1),
			answer(0, nil, false, 0, ms(1500), 0),
			send(ms(500), ms(1500), 1),
			answer(ms(500), nil, true, 0, ms(2000), 0),
		}},
		{"a slow renewal does not hold back the next", []event{
			send(0, ms(2000), 1),
			send(ms(500), ms(1500), 2),
			send(ms(1000), ms(1000), 3),
			// The newest answers first; the older ones, late, change
			// nothing.
			answer(ms(1000), nil, true, 0, ms(2500), 2),
			answer(0, nil, false, 0, ms(2500), 1),
			answer(ms(500), nil, false, 0, ms(2500), 0),
		}},
		{"a renewal may take until the lease could expire, and at least an interval", []event{
			send(ms(1900), ms(500), 1), // the lease expires at 2s
			send(ms(2600), ms(500), 2), // past it: it may still be alive
		}},
		{"failures retry at once, backing off up to the interval", []event{
			send(0, ms(2000), 1), answer(0, errInjected, false, ms(25), ms(1500), 0),
			send(ms(25), ms(1975), 1), answer(ms(25), errInjected, false, ms(50), ms(1500), 0),
			send(ms(75), ms(1925), 1), answer(ms(75), errInjected, false, ms(100), ms(1500), 0),
			send(ms(175), ms(1825), 1), answer(ms(175), errInjected, false, ms(200), ms(1500), 0),
			send(ms(375), ms(1625), 1), answer(ms(375), errInjected, false, ms(400), ms(1500), 0),
			send(ms(775), ms(1225), 1), answer(ms(775), errInjected, false, ms(500), ms(1500), 0),
			send(ms(1275), ms(725), 1), answer(ms(1275), errInjected, false, ms(500), ms(1500), 0),
			// A success starts the backoff afresh.
			send(ms(1300), ms(700), 1), answer(ms(1300), nil, true, 0, ms(2800), 0),
			send(ms(1400), ms(1900), 1), answer(ms(1400), errInjected, false, ms(25), ms(2800), 0),
		}},
		{"a renewal that timed out is not retried: the ticks sent others", []event{
			send(0, ms(2000), 1),
			answer(0, context.DeadlineExceeded, false, 0, ms(1500), 0),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newRenewPlan(labInterval, labMargin, t0, labTTL)
			for i, e := range tc.events {
				if e.isAnswer {
					ttl := labTTL
					if e.err != nil {
						ttl = 0
					}
					moved, retryIn := p.done(at(e.sent), ttl, e.err)
					if moved != e.moved || retryIn != e.retryIn {
						t.Errorf("event %d: answer to the renewal sent at %s (%v): moved %v, retry in %s; want %v, %s",
							i, e.sent, e.err, moved, retryIn, e.moved, e.retryIn)
					}
					if got := p.deadline().Sub(t0); got != e.deadline {
						t.Errorf("event %d: deadline %s, want %s", i, got, e.deadline)
					}
				} else {
					timeout, ok := p.send(at(e.send))
					if ok != e.sends || timeout != e.timeout {
						t.Errorf("event %d: send at %s: %v with timeout %s; want %v, %s", i, e.send, ok, timeout, e.sends, e.timeout)
					}
				}
				if p.inFlight != e.inFlightNow {
					t.Errorf("event %d: %d in flight, want %d", i, p.inFlight, e.inFlightNow)
				}
			}
		})
	}
}

// TestRenewPlanBoundsRenewalsInFlight: renewals that never answer do not
// pile up without end.
func TestRenewPlanBoundsRenewalsInFlight(t *testing.T) {
	p := newRenewPlan(labInterval, labMargin, t0, labTTL)
	sent := 0
	for i := range 3 * maxInFlight {
		if _, ok := p.send(at(time.Duration(i) * labInterval)); ok {
			sent++
		}
	}
	if sent != maxInFlight {
		t.Errorf("%d renewals went out with none answered; want at most %d", sent, maxInFlight)
	}
	p.done(t0, 0, context.DeadlineExceeded)
	if _, ok := p.send(at(time.Hour)); !ok {
		t.Error("no renewal goes out after one of the full set answered")
	}
}

// TestRenewPlanSimulated runs the member's loop on a simulated clock: a
// renewal every interval and after failures, each answered after a round
// trip the case chooses. It checks whether the deadline ever passes before
// a renewal moves it, that is, whether the site would fence itself.
func TestRenewPlanSimulated(t *testing.T) {
	const horizon = 10 * time.Minute
	for _, tc := range []struct {
		name string
		// rtt is the round trip of the n-th renewal, sent at sent; err
		// makes it fail after that round trip.
		rtt       func(n int, sent time.Duration) (time.Duration, error)
		wantFence bool
	}{
		{"round trips of 0.2s (a leader 100ms away)", constRTT(ms(200)), false},
		{"round trips of 0.6s, longer than the interval", constRTT(ms(600)), false},
		{"round trips of 0.95s, just inside the window", constRTT(ms(950)), false},
		{"round trips of 1.05s, beyond the window", constRTT(ms(1050)), true},
		{"every other round trip 1.4s", func(n int, _ time.Duration) (time.Duration, error) {
			return []time.Duration{ms(1400), ms(100)}[n%2], nil
		}, false},
		{"four in five renewals fail fast", func(n int, _ time.Duration) (time.Duration, error) {
			if n%5 != 4 {
				return ms(5), errInjected
			}
			return ms(200), nil
		}, false},
		// A stall and a round trip after it: 0.9s fits in the window,
		// 1.2s does not.
		{"a stall of 0.7s: everything sent in it answers at its end", stall(ms(60_000), ms(700), ms(200)), false},
		{"a stall of 1s", stall(ms(60_000), ms(1000), ms(200)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fenced, at := simulate(horizon, tc.rtt)
			if fenced != tc.wantFence {
				t.Errorf("fenced: %v (at %s); want %v", fenced, at, tc.wantFence)
			}
		})
	}
}

func constRTT(rtt time.Duration) func(int, time.Duration) (time.Duration, error) {
	return func(int, time.Duration) (time.Duration, error) { return rtt, nil }
}

// stall answers every renewal after rtt, except those sent during [from,
// from+length), which all answer at its end plus rtt, as during an etcd
// leader election.
func stall(from, length, rtt time.Duration) func(int, time.Duration) (time.Duration, error) {
	return func(_ int, sent time.Duration) (time.Duration, error) {
		if sent >= from && sent < from+length {
			return from + length - sent + rtt, nil
		}
		return rtt, nil
	}
}

// simulate runs the loop of Member.hold on a simulated clock for horizon
// and returns whether the self-fence deadline passed unrenewed, and when.
func simulate(horizon time.Duration, rtt func(n int, sent time.Duration) (time.Duration, error)) (bool, time.Duration) {
	type ev struct {
		at     time.Duration
		answer bool
		sent   time.Duration
		err    error
	}
	var queue []ev
	push := func(e ev) {
		i, _ := slices.BinarySearchFunc(queue, e, func(a, b ev) int { return cmp.Compare(a.at, b.at) })
		queue = slices.Insert(queue, i, e)
	}
	p := newRenewPlan(labInterval, labMargin, t0, labTTL)
	n := 0
	send := func(now time.Duration) {
		timeout, ok := p.send(at(now))
		if !ok {
			return
		}
		d, err := rtt(n, now)
		n++
		if d > timeout {
			d, err = timeout, context.DeadlineExceeded
		}
		push(ev{at: now + d, answer: true, sent: now, err: err})
	}
	send(0)
	for tick := labInterval; tick < horizon; tick += labInterval {
		push(ev{at: tick})
	}
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		if dl := p.deadline().Sub(t0); e.at > dl {
			return true, dl
		}
		if !e.answer {
			send(e.at)
			continue
		}
		ttl := labTTL
		if e.err != nil {
			ttl = 0
		}
		if _, retryIn := p.done(at(e.sent), ttl, e.err); retryIn > 0 {
			push(ev{at: e.at + retryIn})
		}
	}
	return false, 0
}
