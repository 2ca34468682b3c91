package speaker

import (
	"context"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"go.uber.org/zap/zapcore"
)

// BenchmarkApply10k announces 10,000 prefixes of 10.0.0.0/8 (only data in
// in-process RIBs over loopback) to one peer and waits until the peer has
// them all as best paths. Between rounds, with the timer stopped, everything
// is withdrawn again.
func BenchmarkApply10k(b *testing.B) {
	const n = 10_000
	up := newNode(b, "upstream", "127.0.0.1", 65000, true)
	site := newNode(b, "site", "127.0.0.2", 65001, false)
	// Debug logs of 10,000 paths would dominate the measurement.
	up.logLevel, site.logLevel = zapcore.InfoLevel, zapcore.InfoLevel
	upSp := up.start(b, up.peerOf(site, true))
	siteSp := site.start(b, site.peerOf(up, false))
	waitEstablished(b, siteSp, up.addr)
	best := countBest(b, upSp)

	routes := make([]Route, n)
	for i := range routes {
		routes[i] = Route{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24), Prepends: i % 4}
	}

	var atPeer int
	for b.Loop() {
		if d := apply(b, siteSp, routes...); d.Announced != n {
			b.Fatalf("diff %+v, want %d announced", d, n)
		}
		atPeer = best.waitFor(b, n)

		b.StopTimer()
		apply(b, siteSp)
		best.waitFor(b, 0)
		b.StartTimer()
	}
	b.ReportMetric(float64(atPeer), "peer-prefixes")

	// Memory: the heap with the 10,000 routes announced (and received by the
	// upstream, in this same process) against the heap with none.
	b.StopTimer()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	apply(b, siteSp, routes...)
	best.waitFor(b, n)
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/(1<<20), "MiB-heap-both-speakers")
}

// bestCounter follows a speaker's best paths from its watch events, without
// walking the RIB.
type bestCounter struct {
	changed chan struct{}
	mu      sync.Mutex
	best    map[netip.Prefix]bool
}

func countBest(tb testing.TB, sp *Speaker) *bestCounter {
	tb.Helper()
	c := &bestCounter{changed: make(chan struct{}, 1), best: make(map[netip.Prefix]bool)}
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	req := &api.WatchEventRequest{Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
		{Type: api.WatchEventRequest_Table_Filter_BEST},
	}}}
	if err := sp.bgp.WatchEvent(ctx, req, c.on); err != nil {
		tb.Fatalf("watch: %v", err)
	}
	return c
}

func (c *bestCounter) on(r *api.WatchEventResponse) {
	c.mu.Lock()
	for _, p := range r.GetTable().GetPaths() {
		if prefix, ok := pathPrefix(p); ok {
			if p.GetIsWithdraw() {
				delete(c.best, prefix)
			} else {
				c.best[prefix] = true
			}
		}
	}
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// waitFor waits until exactly n prefixes have a best path and returns n.
func (c *bestCounter) waitFor(tb testing.TB, n int) int {
	tb.Helper()
	deadline := time.After(waitTimeout)
	for {
		c.mu.Lock()
		got := len(c.best)
		c.mu.Unlock()
		if got == n {
			return got
		}
		select {
		case <-c.changed:
		case <-deadline:
			tb.Fatalf("timed out waiting for %d best paths; have %s", n, strconv.Itoa(got))
		}
	}
}
