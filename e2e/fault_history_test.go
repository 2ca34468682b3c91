package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/deploy/hypervisor"
	"github.com/zdt-project/zdt/site/config"
)

// A history of what a controller fault let happen, recorded from outside the
// controllers: a prober that writes to every replication member and a
// sampler that lists every hypervisor's domains through libvirt itself. The
// checks are invariants 1 and 3 of DESIGN.md: never two writable primaries,
// never a guest at two places at once.

// sighting is one observation over [start, end]: the thing happened at some
// instant in between (a write committed, a domain was running).
type sighting struct {
	site       string
	start, end time.Time
	// key is what was seen, where it has a name: the value of a write.
	key string
}

// history collects sightings per subject (a group's writes, a guest).
type history struct {
	mu   sync.Mutex
	seen map[string][]sighting
	// refused are the writes a member refused as read-only: not
	// sightings (nothing was served), kept apart.
	refused  []sighting
	rounds   int // sampler rounds completed
	errs     map[string]int
	roundsCh chan struct{} // closed and replaced after each round
}

func newHistory() *history {
	return &history{seen: map[string][]sighting{}, errs: map[string]int{}, roundsCh: make(chan struct{})}
}

func (h *history) add(subject string, s sighting) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen[subject] = append(h.seen[subject], s)
}

func (h *history) refuse(s sighting) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refused = append(h.refused, s)
}

// firstRefusal is the start of the first write refused as read-only at the
// site that began at or after since; zero if none.
func (h *history) firstRefusal(siteName string, since time.Time) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return firstStart(h.refused, since, func(s string) bool { return s == siteName })
}

func (h *history) failed(what string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.errs[what]++
}

func (h *history) roundDone() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rounds++
	close(h.roundsCh)
	h.roundsCh = make(chan struct{})
}

// waitRounds waits until n more sampler rounds have completed.
func (h *history) waitRounds(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	h.mu.Lock()
	want := h.rounds + n
	h.mu.Unlock()
	for {
		h.mu.Lock()
		got, ch := h.rounds, h.roundsCh
		h.mu.Unlock()
		if got >= want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the sampler did only %d of %d rounds: %v", got, want, ctx.Err())
		case <-ch:
		}
	}
}

// sites returns, for one subject, the sites it was seen at, in the order of
// their first sighting.
func (h *history) sites(subject string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ss := slices.Clone(h.seen[subject])
	sort.Slice(ss, func(i, j int) bool { return ss[i].end.Before(ss[j].end) })
	var out []string
	for _, s := range ss {
		if !slices.Contains(out, s.site) {
			out = append(out, s.site)
		}
	}
	return out
}

// overlaps lists, for one subject, every time it was seen at a site after it
// had been seen at the next site in its order of first sightings: the
// sighting at the earlier site started after one at the later site had
// ended, so for a while it was at both. It also returns the longest such
// overlap.
func (h *history) overlaps(subject string) (problems []string, longest time.Duration) {
	order := h.sites(subject)
	h.mu.Lock()
	defer h.mu.Unlock()
	by := map[string][]sighting{}
	for _, s := range h.seen[subject] {
		by[s.site] = append(by[s.site], s)
	}
	for i := 0; i+1 < len(order); i++ {
		older, newer := order[i], order[i+1]
		firstNew := by[newer][0]
		for _, s := range by[newer] {
			if s.end.Before(firstNew.end) {
				firstNew = s
			}
		}
		for _, s := range by[older] {
			if s.start.After(firstNew.end) {
				if d := s.start.Sub(firstNew.end); d > longest {
					longest = d
				}
				problems = append(problems, fmt.Sprintf("%s at %s during [%s, %s], after it was at %s by %s",
					subject, older, s.start.Format("15:04:05.000"), s.end.Format("15:04:05.000"), newer, firstNew.end.Format("15:04:05.000")))
			}
		}
	}
	return problems, longest
}

// gap is the longest time between two consecutive sightings of the subject,
// anywhere: for the writes, the outage a client that finds the writable
// member saw.
func (h *history) gap(subject string) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	ss := slices.Clone(h.seen[subject])
	sort.Slice(ss, func(i, j int) bool { return ss[i].end.Before(ss[j].end) })
	var longest time.Duration
	for i := 1; i < len(ss); i++ {
		longest = max(longest, ss[i].end.Sub(ss[i-1].end))
	}
	return longest
}

// firstAt is when the subject was first seen at the site since a time (the
// start of that sighting), zero if never.
func (h *history) firstAt(subject, siteName string, since time.Time) time.Time {
	return h.first(subject, since, func(s string) bool { return s == siteName })
}

// firstAway is when the subject was first seen at a site other than the
// one given, since a time; zero if never.
func (h *history) firstAway(subject, siteName string, since time.Time) time.Time {
	return h.first(subject, since, func(s string) bool { return s != siteName })
}

func (h *history) first(subject string, since time.Time, at func(string) bool) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return firstStart(h.seen[subject], since, at)
}

// firstStart is the earliest start, at or after since, of the sightings at
// a site that at accepts; zero if none.
func firstStart(ss []sighting, since time.Time, at func(string) bool) time.Time {
	var first time.Time
	for _, s := range ss {
		if at(s.site) && !s.start.Before(since) && (first.IsZero() || s.start.Before(first)) {
			first = s.start
		}
	}
	return first
}

// keys lists the keys of the subject's sightings since a time.
func (h *history) keys(subject string, since time.Time) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, s := range h.seen[subject] {
		if s.key != "" && !s.start.Before(since) {
			out = append(out, s.key)
		}
	}
	return out
}

// probeWrites writes to every member of the lab's group every interval, each
// attempt bounded, on a kept session per member, until ctx ends. Each
// acknowledged write is a sighting of subject "writes" at that member's
// site.
func probeWrites(ctx context.Context, h *history, connStrings map[string]string, interval time.Duration) *sync.WaitGroup {
	var wg sync.WaitGroup
	for siteName, conn := range connStrings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *pgx.Conn
			defer func() {
				if c != nil {
					c.Close(context.Background())
				}
			}()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				actx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				if c == nil || c.IsClosed() {
					var err error
					if c, err = pgx.Connect(actx, conn); err != nil {
						c = nil
						cancel()
						h.failed("connect to " + siteName)
						continue
					}
				}
				start := time.Now()
				key := fmt.Sprintf("probe-%s-%d-%d", siteName, start.UnixNano(), n)
				_, err := c.Exec(actx, "INSERT INTO lab_probe VALUES ($1)", key)
				end := time.Now()
				cancel()
				if err != nil {
					h.failed("write at " + siteName)
					var pgErr *pgconn.PgError
					if errors.As(err, &pgErr) && pgErr.Code == "25006" { // read_only_sql_transaction
						h.refuse(sighting{site: siteName, start: start, end: end, key: key})
					}
					if actx.Err() != nil || c.IsClosed() {
						c.Close(context.Background())
						c = nil
					}
					continue
				}
				h.add("writes", sighting{site: siteName, start: start, end: end, key: key})
			}
		}()
	}
	return &wg
}

// sampleGuests lists every host's domains every interval through libvirt,
// until ctx ends. Each running (or paused) guest of the config is a
// sighting of that guest at the host's site.
func sampleGuests(ctx context.Context, t *testing.T, h *history, cfg *config.Cluster, interval time.Duration) *sync.WaitGroup {
	t.Helper()
	ours := map[string]bool{}
	for _, g := range cfg.Guests() {
		ours[g.Name] = true
	}
	type host struct {
		cfg config.Host
		hv  *hypervisor.Host
	}
	var hosts []host
	for _, hc := range cfg.Hosts() {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		hv, err := hypervisor.Dial(dctx, hc.URI, hypervisor.Options{Name: hc.Name, Log: zap.NewNop()})
		cancel()
		if err != nil {
			t.Fatalf("sampler: dial host %s: %v", hc.Name, err)
		}
		t.Cleanup(func() { hv.Close() })
		hosts = append(hosts, host{hc, hv})
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			for _, hs := range hosts {
				lctx, cancel := context.WithTimeout(ctx, time.Second)
				start := time.Now()
				doms, err := hs.hv.List(lctx)
				end := time.Now()
				cancel()
				if err != nil {
					h.failed("list " + hs.cfg.Name)
					continue
				}
				for _, d := range doms {
					if ours[d.Name] && (d.State == hypervisor.StateRunning || d.State == hypervisor.StatePaused) {
						h.add("guest "+d.Name, sighting{site: hs.cfg.Site, start: start, end: end})
					}
				}
			}
			h.roundDone()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return &wg
}
