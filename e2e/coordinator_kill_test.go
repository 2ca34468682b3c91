package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/site"
)

// TestLabCoordinatorKilledMidSwitchover kills the coordinator's controller
// (SIGKILL; its PostgreSQL and libvirtd run on) as a switchover of db
// reaches each of its steps, one switchover per step. The next coordinator
// first fails the dead controller's site over, then finishes the
// switchover from the journal. Each time: the op succeeds, the service's
// assignment is written once by it, the new primary's WAL timeline is one
// past the old primary's (one promotion, not two), no two members take
// writes at once, no guest runs at two sites at once, and no acknowledged
// write is lost. The killed site comes back fenced and is failed back
// before the next round.
func TestLabCoordinatorKilledMidSwitchover(t *testing.T) {
	s, ctx := startSettledLab(t, "127.0.12.0", 420*time.Second, "a", "b", "c")
	zdt, l, guests, pg, keys, cli := s.zdt, s.l, s.guests, s.pg, s.keys, s.cli
	store := site.NewStore(cli, l.Cluster())
	pg.write(ctx, t, "b", "before") // and the prober's table

	h := newHistory()
	hctx, stopRecording := context.WithCancel(ctx)
	writers := probeWrites(hctx, h, postgresConns(t, l), 10*time.Millisecond)
	sampler := sampleGuests(hctx, t, h, guests.cfg, 20*time.Millisecond)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopRecording()
			writers.Wait()
			sampler.Wait()
		}
	}
	defer stop()
	h.waitRounds(ctx, t, 5)
	began := time.Now()

	steps := []string{failover.StepCheckSwitchover, failover.StepAssign, failover.StepAwaitPrimary, failover.StepMovePrefixes, failover.StepAwaitFollowers}
	// Each round moves db on, and may move it back where an earlier round
	// took it from: the history is checked round by round, in which it
	// moves one way only.
	type window struct {
		at         string
		start, end time.Time
	}
	var rounds []window
	for _, at := range steps {
		roundStart := time.Now()
		snap, err := store.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		from, coord := snap.Assignments["db"].Site, snap.Coordinator
		if coord == from {
			// Killing the coordinator would kill db's primary's
			// controller: a failover, not this test. Move db away first.
			to := otherSite(l.SiteNames(), from, "")
			run(t, zdt, "switchover", "--service", "db", "--to", to, "--config", l.ConfigPath(), "--wait", "--timeout", "60s")
			pg.waitRoles(ctx, t, cli, roles(l.SiteNames(), to))
			from = to
		}
		to := otherSite(l.SiteNames(), from, coord)
		timeline := walTimeline(ctx, t, pg, from)

		out := run(t, zdt, "switchover", "--service", "db", "--to", to, "--config", l.ConfigPath(), "-o", "json")
		var req struct{ Op *site.Op }
		if err := json.Unmarshal([]byte(out), &req); err != nil || req.Op == nil {
			t.Fatalf("zdt switchover -o json: %v\n%s", err, out)
		}
		id := req.Op.ID
		reached := waitStepReached(ctx, t, cli, keys, id, at)
		run(t, zdt, "lab", "site", coord, "crash", "--dir", l.Dir())
		killed := time.Now()
		t.Logf("round %s: switchover of db %s to %s; coordinator %s killed when step %s was %s", at, from, to, coord, at, reached)

		op := waitOpOutcome(ctx, t, cli, keys, id)
		if op.Outcome != site.OpSucceeded {
			t.Fatalf("round %s: the switchover %s: %s; steps %+v", at, op.Outcome, op.Error, op.Steps)
		}
		switch {
		case len(op.Coordinators) >= 2 && op.Coordinators[0] == coord:
		case at == steps[len(steps)-1] && slices.Equal(op.Coordinators, []string{coord}) && op.Ended.Before(killed):
			// The last step ends at once when the other members
			// already follow: the op can end before the kill lands,
			// and then nothing is left for another coordinator.
			t.Logf("round %s: the op ended %s before the kill landed", at, killed.Sub(op.Ended).Round(time.Millisecond))
		default:
			t.Errorf("round %s: the op was run by %v; want %s, then another", at, op.Coordinators, coord)
		}
		a, err := store.Assignment(ctx, "db")
		if err != nil {
			t.Fatal(err)
		}
		if a.Site != to || a.Op != id {
			t.Errorf("round %s: db is at %s by op %s; want %s by %s", at, a.Site, a.Op, to, id)
		}
		if n := assignmentsBy(ctx, t, cli, keys.Assignment("db"), op.CreateRev, id); n != 1 {
			t.Errorf("round %s: the op wrote db's assignment %d times; want once", at, n)
		}
		pg.waitRoles(ctx, t, cli, map[string]string{to: "primary"})
		if got := walTimeline(ctx, t, pg, to); got != timeline+1 {
			t.Errorf("round %s: the new primary %s is on WAL timeline %d; the old one was on %d: want one promotion", at, to, got, timeline)
		}

		// The killed site: fenced by its failover, back fenced, failed back.
		waitKey(ctx, t, cli, keys.Fence(coord), func(int64) bool { return true })
		run(t, zdt, "lab", "site", coord, "up", "--dir", l.Dir())
		waitUntil(ctx, t, cli, keys, "site "+coord+" fails back", func() ([]string, error) {
			out, err := exec.CommandContext(ctx, zdt, "failback", "--site", coord, "--config", l.ConfigPath(), "--wait", "--timeout", "30s").CombinedOutput()
			if err != nil {
				return []string{fmt.Sprintf("zdt failback --site %s: %v\n%s", coord, err, out)}, nil
			}
			return nil, nil
		})
		pg.waitRoles(ctx, t, cli, roles(l.SiteNames(), to))
		rounds = append(rounds, window{at: at, start: roundStart, end: time.Now()})
	}
	guests.waitAllRunning(ctx, t, cli)
	final, err := store.Assignment(ctx, "db")
	if err != nil {
		t.Fatal(err)
	}
	stop()

	var longest, guestOverlap time.Duration
	for _, w := range rounds {
		hw := historyBetween(h, w.start, w.end)
		problems, l := hw.overlaps("writes")
		for _, p := range problems {
			t.Errorf("round %s: two writable primaries: a write %s", w.at, p)
		}
		longest = max(longest, l)
		for _, g := range guests.cfg.Guests() {
			problems, l := hw.overlaps("guest " + g.Name)
			for _, p := range problems {
				t.Errorf("round %s: a guest at two sites: %s", w.at, p)
			}
			guestOverlap = max(guestOverlap, l)
		}
	}
	acked := h.keys("writes", began)
	c := pg.connect(ctx, t, final.Site)
	defer c.Close(context.WithoutCancel(ctx))
	var missing int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM unnest($1::text[]) AS a(v) WHERE NOT EXISTS (SELECT 1 FROM lab_probe p WHERE p.value = a.v)`, acked).Scan(&missing); err != nil {
		t.Fatal(err)
	}
	if missing != 0 {
		t.Errorf("%d of %d acknowledged writes are missing at the last primary %s", missing, len(acked), final.Site)
	}
	t.Logf("figures: %d switchovers with the coordinator killed, %d acknowledged writes, %d lost, overlap_writes_ms=%d overlap_guests_ms=%d",
		len(steps), len(acked), missing, longest.Milliseconds(), guestOverlap.Milliseconds())
}

// otherSite is the first site that is neither not nor also.
func otherSite(sites []string, not, also string) string {
	for _, s := range sites {
		if s != not && s != also {
			return s
		}
	}
	return ""
}

// roles is the group's roles with its primary at primary.
func roles(sites []string, primary string) map[string]string {
	want := map[string]string{}
	for _, s := range sites {
		want[s] = "standby"
	}
	want[primary] = "primary"
	return want
}

// walTimeline is the WAL timeline the site's server writes on: one more
// with each promotion.
func walTimeline(ctx context.Context, t *testing.T, pg *labPostgres, siteName string) int64 {
	t.Helper()
	c := pg.connect(ctx, t, siteName)
	defer c.Close(context.WithoutCancel(ctx))
	var tli int64
	if err := c.QueryRow(ctx, `SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint`).Scan(&tli); err != nil {
		t.Fatalf("the WAL timeline of %s: %v", siteName, err)
	}
	return tli
}

// waitStepReached waits until the op's step named step has started (or
// ended: a fast step may be over when the journal is read) and says which.
func waitStepReached(ctx context.Context, t *testing.T, cli *clientv3.Client, keys site.Keys, id, step string) string {
	t.Helper()
	var state string
	waitUntil(ctx, t, cli, keys, "op "+id+" reaches step "+step, func() ([]string, error) {
		op, err := readOp(ctx, cli, keys, id)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(op.Steps, func(st site.Step) bool { return st.Name == step })
		switch {
		case i < 0:
			return nil, fmt.Errorf("op %s has no step %s: %+v", id, step, op.Steps)
		case op.Steps[i].Status == site.StepPending:
			return []string{"step " + step + " is pending"}, nil
		}
		state = string(op.Steps[i].Status)
		return nil, nil
	})
	return state
}

// waitOpOutcome waits until the op has an outcome, whichever, and returns
// it.
func waitOpOutcome(ctx context.Context, t *testing.T, cli *clientv3.Client, keys site.Keys, id string) *site.Op {
	t.Helper()
	var op *site.Op
	waitUntil(ctx, t, cli, keys, "op "+id+" ends", func() ([]string, error) {
		var err error
		if op, err = readOp(ctx, cli, keys, id); err != nil {
			return nil, err
		}
		if !op.Finished() {
			var running []string
			for _, st := range op.Steps {
				if st.Status == site.StepRunning {
					running = append(running, st.Name+": "+st.Detail)
				}
			}
			return []string{"op runs: " + strings.Join(running, "; ")}, nil
		}
		return nil, nil
	})
	return op
}

func readOp(ctx context.Context, cli *clientv3.Client, keys site.Keys, id string) (*site.Op, error) {
	resp, err := cli.Get(ctx, keys.Op(id))
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("op %s is not in the journal", id)
	}
	var op site.Op
	if err := json.Unmarshal(resp.Kvs[0].Value, &op); err != nil {
		return nil, err
	}
	op.Rev, op.CreateRev = resp.Kvs[0].ModRevision, resp.Kvs[0].CreateRevision
	return &op, nil
}

// assignmentsBy counts the versions of the assignment key written since
// revision since by op, walking etcd's history back from the newest.
func assignmentsBy(ctx context.Context, t *testing.T, cli *clientv3.Client, key string, since int64, op string) int {
	t.Helper()
	n := 0
	var opts []clientv3.OpOption
	for range 100 { // bounded: a test's few writes
		resp, err := cli.Get(ctx, key, opts...)
		if err != nil {
			t.Fatalf("the history of %s: %v", key, err)
		}
		if len(resp.Kvs) == 0 || resp.Kvs[0].ModRevision < since {
			return n
		}
		var a site.Assignment
		if json.Unmarshal(resp.Kvs[0].Value, &a) == nil && a.Op == op {
			n++
		}
		opts = []clientv3.OpOption{clientv3.WithRev(resp.Kvs[0].ModRevision - 1)}
	}
	t.Fatalf("the history of %s since revision %d has more than 100 versions", key, since)
	return n
}

// etcdValue reads the JSON value of key, which must exist; what names it
// in a failure.
func etcdValue[T any](ctx context.Context, t *testing.T, cli *clientv3.Client, key, what string) T {
	t.Helper()
	var v T
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatalf("read %s: %v", what, err)
	}
	if len(resp.Kvs) == 0 {
		t.Fatalf("%s is not in etcd (%s)", what, key)
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &v); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}
