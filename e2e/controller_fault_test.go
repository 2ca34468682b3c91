package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// TestLabControllerCrash kills site b's controller alone with SIGKILL (no
// graceful path: nothing is fenced or stopped on the way out) while its
// PostgreSQL server, db's primary, and its libvirtd live on. The failover
// must fence them from outside before it promotes c and starts b's guests
// elsewhere: a prober writing to every member and a sampler listing every
// hypervisor's domains never see two writable primaries or a guest at two
// sites. When the controller comes back, b's server streams from c and b
// runs nothing placed elsewhere.
func TestLabControllerCrash(t *testing.T) { testControllerFault(t, "crash", "up") }

// TestLabControllerFreeze is the same with b's controller stopped (SIGSTOP)
// for longer than its lease, then continued: it must not act on what it
// read before it froze.
func TestLabControllerFreeze(t *testing.T) { testControllerFault(t, "freeze", "thaw") }

// TestLabSiteHang stops the whole of site b (controller, libvirtd and
// PostgreSQL server) with SIGSTOP: connections to it are accepted and
// nothing answers. The failover must not stall on it: the outside fence
// records "unreachable, presumed dark" for each resource within
// fencing.timeout, and c takes over. The history is checked until b is
// thawed; then b must converge to its fence.
func TestLabSiteHang(t *testing.T) { testControllerFault(t, "hang", "thaw") }

// testControllerFault runs one fault of site b while db's primary is there,
// and logs a line of figures that scripts/soak-controller-fault sums up.
func testControllerFault(t *testing.T, fault, recover string) {
	s, ctx := startSettledLab(t, "127.0.2.0", 150*time.Second, "a", "c") // the sites that stay up
	zdt, l, guests, pg, keys, cli := s.zdt, s.l, s.guests, s.pg, s.keys, s.cli
	pg.write(ctx, t, "b", "before")
	pg.waitRow(ctx, t, "c", "before")
	atB := guestsPlacedAt(ctx, t, guests, cli, "b")
	if len(atB) == 0 {
		t.Fatal("no guest runs at b: the test would not see guests move")
	}

	// Record the history from outside the controllers.
	h := newHistory()
	hctx, stopRecording := context.WithCancel(ctx)
	conns := postgresConns(t, l)
	writers := probeWrites(hctx, h, conns, 10*time.Millisecond)
	sampler := sampleGuests(hctx, t, h, guests.cfg, 20*time.Millisecond)
	defer func() {
		stopRecording()
		writers.Wait()
		sampler.Wait()
	}()
	h.waitRounds(ctx, t, 5)

	faultAt := time.Now()
	run(t, zdt, "lab", "site", "b", fault, "--dir", l.Dir())
	if pid, ok := l.PostgresRunning("b"); !ok {
		t.Fatalf("b's PostgreSQL server died with its controller (pid %d)", pid)
	}

	// The failover fences b, fences its resources from outside, and moves
	// db to c, whose server is promoted and takes the probe's writes.
	waitKey(ctx, t, cli, keys.Fence("b"), func(int64) bool { return true })
	op := waitFailoverOp(ctx, t, cli, keys, "b")
	fenceStep := stepNamed(op, "fence-resources")
	if fenceStep == nil || fenceStep.Status != site.StepDone {
		t.Errorf("the failover of b has no done fence-resources step: %+v", op.Steps)
		fenceStep = &site.Step{}
	}
	outcomes := map[string]site.ResourceOutcome{}
	for _, r := range fenceStep.Resources {
		outcomes[r.Resource] = r
	}
	hang := fault == "hang"
	wantMember, wantHost := []string{site.FenceDone}, []string{site.FenceDone, site.FenceNothing}
	if hang {
		wantMember, wantHost = []string{site.FenceUnreachable}, []string{site.FenceUnreachable}
	}
	if r := outcomes["member pg at b"]; !slices.Contains(wantMember, r.Outcome) {
		t.Errorf("outside fence of b's member: %+v; want %v", r, wantMember)
	}
	for _, hc := range mustSite(t, guests.cfg, "b").Hosts {
		if r := outcomes["host "+hc.Name]; !slices.Contains(wantHost, r.Outcome) {
			t.Errorf("outside fence of host %s: %+v; want %v", hc.Name, r, wantHost)
		}
	}
	fenceTook := fenceStep.Ended.Sub(fenceStep.Started)
	if limit := guests.cfg.Fencing.Timeout; hang && fenceTook > 3*limit {
		t.Errorf("the outside fence of a hung site took %s; its limit is %s per resource, all in parallel", fenceTook, limit)
	}
	t.Logf("b %s at %s; fenced from outside by %s in %s, failover %s ended %s after the fault",
		fault, faultAt.Format("15:04:05.000"), fenceStep.By, fenceTook.Round(time.Millisecond),
		op.ID, op.Ended.Sub(faultAt).Round(time.Millisecond))
	waitWritesAt(ctx, t, h, "c")
	guests.waitGoldElsewhere(ctx, t, cli, "b")
	if hang {
		// A hung site that comes back was only presumed dark: its server
		// is a writable primary until its controller, thawed, fences it.
		// The history holds up to here; after, only convergence.
		stopRecording()
		writers.Wait()
		sampler.Wait()
		checkHistory(t, h, guests.cfg, fault, fenceTook, op.Ended.Sub(faultAt))
		h = newHistory()
		hctx, stopRecording = context.WithCancel(ctx)
		writers = probeWrites(hctx, h, map[string]string{"c": conns["c"]}, 10*time.Millisecond)
		sampler = sampleGuests(hctx, t, h, guests.cfg, 20*time.Millisecond)
	}

	// b's controller comes back: it rejoins fenced, its old primary follows
	// c, and it runs nothing that is placed elsewhere.
	run(t, zdt, "lab", "site", "b", recover, "--dir", l.Dir())
	pg.write(ctx, t, "c", "after")
	pg.waitRow(ctx, t, "b", "after")
	waitStreaming(ctx, t, conns["b"])
	waitNothingRunsAt(ctx, t, h, "b", atB)
	h.waitRounds(ctx, t, 25) // and it stays so for a while
	if pid, ok := l.PostgresRunning("b"); !ok {
		t.Errorf("b's PostgreSQL server does not run after its controller came back (pid %d)", pid)
	}

	stopRecording()
	writers.Wait()
	sampler.Wait()
	if hang {
		if got := h.sites("writes"); !slices.Equal(got, []string{"c"}) {
			t.Errorf("after b was thawed, writes were acknowledged at %v; want at c only", got)
		}
		return
	}
	checkHistory(t, h, guests.cfg, fault, fenceTook, op.Ended.Sub(faultAt))
}

// checkHistory checks invariants 1 and 3 over the recorded history, in
// which db's primary moved from b to c, and logs the figures of the run.
func checkHistory(t *testing.T, h *history, cfg *config.Cluster, fault string, fenceTook, failoverTook time.Duration) {
	t.Helper()
	if got := h.sites("writes"); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("writes were acknowledged at %v; want at b, then at c", got)
	}
	problems, writeOverlap := h.overlaps("writes")
	for _, p := range problems {
		t.Errorf("two writable primaries: a write %s", p)
	}
	var guestOverlap time.Duration
	for _, g := range cfg.Guests() {
		problems, longest := h.overlaps("guest " + g.Name)
		for _, p := range problems {
			t.Errorf("a guest at two sites: %s", p)
		}
		guestOverlap = max(guestOverlap, longest)
		if sites := h.sites("guest " + g.Name); len(sites) > 1 {
			t.Logf("guest %s ran at %v in turn", g.Name, sites)
		}
	}
	outage := h.gap("writes")
	h.mu.Lock()
	t.Logf("history: %d sampler rounds, %d acknowledged writes; failures %v", h.rounds, len(h.seen["writes"]), h.errs)
	h.mu.Unlock()
	// One line for scripts/soak-controller-fault.
	t.Logf("figures: fault=%s fence_ms=%d failover_ms=%d write_outage_ms=%d overlap_writes_ms=%d overlap_guests_ms=%d",
		fault, fenceTook.Milliseconds(), failoverTook.Milliseconds(), outage.Milliseconds(), writeOverlap.Milliseconds(), guestOverlap.Milliseconds())
}

// guestsPlacedAt lists the guests placed to run at the site.
func guestsPlacedAt(ctx context.Context, t *testing.T, g *labGuests, cli *clientv3.Client, siteName string) []string {
	t.Helper()
	placements, err := g.placements(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for name, p := range placements {
		if p.Site == siteName && p.State == site.GuestRunning {
			out = append(out, name)
		}
	}
	return out
}

// waitFailoverOp waits until the failover of the site has ended, and
// returns it; it must have succeeded.
func waitFailoverOp(ctx context.Context, t *testing.T, cli *clientv3.Client, keys site.Keys, dark string) *site.Op {
	t.Helper()
	var found *site.Op
	waitUntil(ctx, t, cli, keys, "the failover of "+dark+" ends", func() ([]string, error) {
		resp, err := cli.Get(ctx, keys.Ops(), clientv3.WithPrefix())
		if err != nil {
			return nil, err
		}
		for _, kv := range resp.Kvs {
			var op site.Op
			if err := json.Unmarshal(kv.Value, &op); err != nil {
				return nil, err
			}
			if op.Kind == "failover" && op.Params["site"] == dark {
				if !op.Finished() {
					return []string{"op " + op.ID + " runs"}, nil
				}
				found = &op
				return nil, nil
			}
		}
		return []string{"no failover op of " + dark}, nil
	})
	if found.Outcome != site.OpSucceeded {
		t.Fatalf("the failover of %s %s: %s; steps %+v", dark, found.Outcome, found.Error, found.Steps)
	}
	return found
}

func stepNamed(op *site.Op, name string) *site.Step {
	for i := range op.Steps {
		if op.Steps[i].Name == name {
			return &op.Steps[i]
		}
	}
	return nil
}

func mustSite(t *testing.T, cfg *config.Cluster, name string) config.Site {
	t.Helper()
	s, ok := cfg.Site(name)
	if !ok {
		t.Fatalf("no site %s in the config", name)
	}
	return s
}

// waitWritesAt waits until the prober has had a write acknowledged at the
// site, through the sampler's rounds (the prober writes every 10 ms).
func waitWritesAt(ctx context.Context, t *testing.T, h *history, siteName string) {
	t.Helper()
	for {
		for _, s := range h.sites("writes") {
			if s == siteName {
				return
			}
		}
		h.waitRounds(ctx, t, 1)
	}
}

// waitNothingRunsAt waits until a sampler round saw none of the guests
// running at the site.
func waitNothingRunsAt(ctx context.Context, t *testing.T, h *history, siteName string, names []string) {
	t.Helper()
	for {
		h.mu.Lock()
		since := time.Now()
		h.mu.Unlock()
		h.waitRounds(ctx, t, 2)
		var still []string
		h.mu.Lock()
		for _, g := range names {
			for _, s := range h.seen["guest "+g] {
				if s.site == siteName && s.start.After(since) {
					still = append(still, g)
					break
				}
			}
		}
		h.mu.Unlock()
		if len(still) == 0 {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("guests %v still run at %s", still, siteName)
		}
	}
}

// waitStreaming waits until the server is a standby whose WAL receiver
// streams.
func waitStreaming(ctx context.Context, t *testing.T, conn string) {
	t.Helper()
	last := ""
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := pgx.Connect(qctx, conn)
		if err == nil {
			var recovery bool
			var status *string
			err = c.QueryRow(qctx, "SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_wal_receiver)").Scan(&recovery, &status)
			c.Close(context.Background())
			if err == nil && recovery && status != nil && *status == "streaming" {
				cancel()
				return
			}
			if err == nil {
				s := "none"
				if status != nil {
					s = *status
				}
				err = fmt.Errorf("in recovery %t, WAL receiver %s", recovery, s)
			}
		}
		cancel()
		last = err.Error()
		select {
		case <-ctx.Done():
			t.Fatalf("b's server does not stream: %s", strings.TrimSpace(last))
		case <-tick.C:
		}
	}
}
