package speaker

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestApplyRejectsInvalidInput(t *testing.T) {
	sp := newNode(t, "alone", "127.0.0.1", 65000, false).start(t)
	apply(t, sp, Route{pfxA, 1})
	calls := sp.routeCalls.Load()

	tests := []struct {
		name   string
		routes []Route
		want   string
	}{
		{"zero prefix", []Route{{netip.Prefix{}, 0}}, "invalid prefix"},
		{"host bits", []Route{{netip.MustParsePrefix("10.1.0.1/24"), 0}}, "did you mean 10.1.0.0/24"},
		{"mapped", []Route{{netip.MustParsePrefix("::ffff:10.1.0.0/120"), 0}}, "IPv4-mapped"},
		{"negative prepends", []Route{{pfxB, -1}}, "prepends -1 outside 0..254"},
		{"too many prepends", []Route{{pfxB, MaxPrepends + 1}}, "prepends 255 outside"},
		{"duplicate", []Route{{pfxB, 1}, {pfxA, 2}, {pfxB, 1}}, "10.2.0.0/24 listed twice"},
		// A bad route among good ones changes nothing either.
		{"one bad among good", []Route{{pfxB, 1}, {netip.MustParsePrefix("10.3.0.0/16"), 300}}, "routes[1] 10.3.0.0/16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := sp.Apply(context.Background(), tt.routes)
			if !errors.Is(err, ErrInvalidRoute) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Apply(%v) error = %v, want ErrInvalidRoute mentioning %q", tt.routes, err, tt.want)
			}
			if d != (Diff{}) {
				t.Errorf("diff %+v, want none", d)
			}
			wantRoutes(t, sp, Route{pfxA, 1})
			if got := sp.routeCalls.Load(); got != calls {
				t.Errorf("%d GoBGP route calls, want none", got-calls)
			}
		})
	}

	// MaxPrepends itself is fine.
	if d := apply(t, sp, Route{pfxA, MaxPrepends}); d != (Diff{Replaced: 1}) {
		t.Errorf("MaxPrepends: diff %+v, want 1 replaced", d)
	}
}

// TestApplyRecordsLateCalls: when Apply gives up on a GoBGP call that then
// completes, the effect is recorded and the next Apply builds on it.
func TestApplyRecordsLateCalls(t *testing.T) {
	sp := newNode(t, "alone", "127.0.0.1", 65000, false).start(t)
	// The answer of GoBGP's management loop takes longer than a nanosecond.
	sp.timeout = time.Nanosecond
	_, err := sp.Apply(context.Background(), []Route{{pfxA, 1}})
	sp.timeout = DefaultCallTimeout
	if err == nil {
		t.Skip("GoBGP answered within a nanosecond")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("apply error = %v, want a deadline", err)
	}

	// The next Apply waits for the abandoned call, then only does what is
	// still missing.
	d := apply(t, sp, Route{pfxA, 1}, Route{pfxB, 1})
	if d != (Diff{Announced: 1}) {
		t.Errorf("diff after the late call = %+v, want 1 announced (the other was announced late)", d)
	}
	wantRoutes(t, sp, Route{pfxA, 1}, Route{pfxB, 1})
}

func TestApplyCancelled(t *testing.T) {
	sp := newNode(t, "alone", "127.0.0.1", 65000, false).start(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, err := sp.Apply(ctx, []Route{{pfxA, 1}})
	if !errors.Is(err, context.Canceled) || d != (Diff{}) {
		t.Errorf("apply with a cancelled context = %+v, %v; want no change, context.Canceled", d, err)
	}
	wantRoutes(t, sp)
}

func TestPathAttributes(t *testing.T) {
	s := &Speaker{asn: 65007}
	for _, tt := range []struct {
		r       Route
		asPath  []uint32
		nextHop string
	}{
		{Route{pfxA, 0}, nil, "0.0.0.0"},
		{Route{pfxA, 3}, []uint32{65007, 65007, 65007}, "0.0.0.0"},
		{Route{netip.MustParsePrefix("2001:db8::/32"), 2}, []uint32{65007, 65007}, "::"},
	} {
		p, err := s.path(tt.r)
		if err != nil {
			t.Fatalf("path %v: %v", tt.r, err)
		}
		asPath, err := flatASPath(p)
		if err != nil || len(asPath) != len(tt.asPath) {
			t.Errorf("%v: AS path %v (%v), want %v", tt.r, asPath, err, tt.asPath)
		}
		if len(p.GetPattrs()) != 3 {
			t.Errorf("%v: %d attributes, want origin, AS path and next hop", tt.r, len(p.GetPattrs()))
		}
		if got := pathNextHop(t, p.GetPattrs()); got != tt.nextHop {
			t.Errorf("%v: next hop %q, want %q", tt.r, got, tt.nextHop)
		}
	}
}
