package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/e2e/lab"
	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/site"
)

// TestLabSiteLoss takes site b, which holds db's primary and some Gold
// guests, down whole (`zdt lab site b down`: SIGKILL of its controller,
// libvirtd and PostgreSQL server) while the etcd leader is at a, checks
// invariants 1 and 3 over the history a prober and a sampler record from
// outside, and logs the timeline from the fault that
// scripts/soak-controller-fault sums up:
//
//   - detected: the failover op was created;
//   - fenced: its fence step ended;
//   - promoted: the prober's first write acknowledged at c;
//   - guests: the last of b's Gold guests seen running at another site;
//   - prefix: the route observer's best path for every IPv4 prefix of db
//     leads to c (its record's observation time);
//
// and whether b's etcd member led the cluster when it died.
func TestLabSiteLoss(t *testing.T) {
	testSiteLoss(t, "127.0.6.0", "a")
}

// TestLabSiteLossWithEtcdLeader is TestLabSiteLoss with the etcd leader
// moved to b first: b's lease then lasts longer than its TTL (the new
// leader extends every lease by an election timeout, after the election),
// and the other sites' sweepers must end b's membership from its beats,
// a TTL after its last one, as if etcd had not changed leaders.
func TestLabSiteLossWithEtcdLeader(t *testing.T) {
	testSiteLoss(t, "127.0.14.0", "b")
}

func testSiteLoss(t *testing.T, network, leader string) {
	s, ctx := startSettledLab(t, network, 150*time.Second, "a", "c") // the sites that stay up
	zdt, l, guests, pg, keys, cli := s.zdt, s.l, s.guests, s.pg, s.keys, s.cli
	waitStatus(ctx, t, cli, zdt, l, "every prefix leads to its service's active site", upstreamAtActive)
	moveEtcdLeader(ctx, t, l, leader)
	pg.write(ctx, t, "b", "before") // and the prober's table
	pg.waitRow(ctx, t, "c", "before")
	var gold []string
	for _, name := range guestsPlacedAt(ctx, t, guests, cli, "b") {
		if g, ok := guests.guest(name); ok && g.Tier == "gold" {
			gold = append(gold, name)
		}
	}
	if len(gold) == 0 {
		t.Fatal("no Gold guest runs at b: the test would not see guests move")
	}
	db, ok := guests.cfg.Service("db")
	if !ok {
		t.Fatal("the lab has no service db")
	}

	h := newHistory()
	hctx, stopRecording := context.WithCancel(ctx)
	writers := probeWrites(hctx, h, postgresConns(t, l), 10*time.Millisecond)
	sampler := sampleGuests(hctx, t, h, guests.cfg, 20*time.Millisecond)
	defer func() {
		stopRecording()
		writers.Wait()
		sampler.Wait()
	}()
	h.waitRounds(ctx, t, 5)
	leaderAtB := leaderSite(ctx, t, cli) == "b"
	if leaderAtB != (leader == "b") {
		t.Fatalf("the etcd leader moved on its own: at b %t, want %t", leaderAtB, leader == "b")
	}
	before, err := revision(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}

	faultAt := time.Now()
	run(t, zdt, "lab", "site", "b", "down", "--dir", l.Dir())
	op := waitFailoverOp(ctx, t, cli, keys, "b")
	waitWritesAt(ctx, t, h, "c")
	guests.waitGoldElsewhere(ctx, t, cli, "b")
	prefixAt := waitPrefixesAt(ctx, t, cli, keys, db.Prefixes, "c", before)
	h.waitRounds(ctx, t, 5)
	stopRecording()
	writers.Wait()
	sampler.Wait()

	fence := stepNamed(op, "fence")
	if fence == nil || fence.Status != site.StepDone {
		t.Fatalf("the failover of b has no done fence step: %+v", op.Steps)
	}
	fenceOut := stepNamed(op, "fence-resources")
	if fenceOut == nil {
		fenceOut = &site.Step{}
	}
	checkHistory(t, h, guests.cfg, "down", fenceOut.Ended.Sub(fenceOut.Started), op.Ended.Sub(faultAt))
	// Losing b, and with it the etcd leader, must not cost a and c
	// their own membership: the election fits in what is left of a lease.
	for _, name := range []string{"a", "c"} {
		data, err := os.ReadFile(l.LogPath(name))
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(data, []byte(`"to":"self-fenced"`)); n > 0 {
			t.Errorf("site %s fenced itself %d times", name, n)
		}
	}
	promoted := h.firstAt("writes", "c", faultAt)
	var guestsAt time.Time
	for _, g := range gold {
		at := h.firstAway("guest "+g, "b", faultAt)
		if at.IsZero() {
			t.Errorf("guest %s was not seen running away from b", g)
		}
		guestsAt = later(guestsAt, at)
	}
	ms := func(at time.Time) int64 { return at.Sub(faultAt).Milliseconds() }
	t.Logf("timeline: detected_ms=%d fenced_ms=%d promoted_ms=%d guests_ms=%d prefix_ms=%d leader_at_b=%t",
		ms(op.Created), ms(fence.Ended), ms(promoted), ms(guestsAt), ms(prefixAt), leaderAtB)

	// The op's own timeline (zdt ops show) reaches every milestone, each
	// once the sites reported it: no write at c that began after the op
	// says c was promoted was refused as read-only. (The client's first
	// acknowledged write may come later: its attempts time out under load.)
	reached := map[string]time.Time{}
	for _, tl := range failover.Timeline(op) {
		if tl.Service != "db" {
			continue
		}
		for _, m := range tl.Milestones {
			if m.Reached {
				reached[m.Name] = m.At
			}
		}
	}
	for name, seen := range map[string]time.Time{"promoted": promoted, "guests running": guestsAt, "prefix moved": prefixAt} {
		at, ok := reached[name]
		switch {
		case !ok:
			t.Errorf("the op's timeline of db does not reach %q: %+v", name, failover.Timeline(op))
		case name == "promoted":
			if refused := h.firstRefusal("c", at); !refused.IsZero() {
				t.Errorf("the op says db was promoted at %s, but a write that began at c at %s was refused as read-only (first acknowledged write at c: %s)", at, refused, seen)
			}
		}
	}
	t.Logf("op milestones: promoted_ms=%d guests_ms=%d prefix_ms=%d",
		ms(reached["promoted"]), ms(reached["guests running"]), ms(reached["prefix moved"]))
}

// moveEtcdLeader makes the named site's etcd member the leader, asking the
// leader to hand over.
func moveEtcdLeader(ctx context.Context, t *testing.T, l *lab.Lab, to string) {
	t.Helper()
	cli := etcdClient(t, l, l.SiteNames()...)
	members, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var target uint64
	for _, m := range members.Members {
		if m.Name == to {
			target = m.ID
		}
	}
	from := leaderSite(ctx, t, cli)
	if from == to {
		return
	}
	leaderCli := etcdClient(t, l, from)
	if _, err := leaderCli.MoveLeader(ctx, target); err != nil {
		t.Fatalf("move the etcd leader from %s to %s: %v", from, to, err)
	}
	if now := leaderSite(ctx, t, etcdClient(t, l, to)); now != to {
		t.Fatalf("the etcd leader is at %s after moving it to %s", now, to)
	}
}

// leaderSite is the site whose etcd member leads, as the client's first
// endpoint sees it.
func leaderSite(ctx context.Context, t *testing.T, cli *clientv3.Client) string {
	t.Helper()
	st, err := cli.Status(ctx, cli.Endpoints()[0])
	if err != nil {
		t.Fatal(err)
	}
	members, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members.Members {
		if m.ID == st.Leader {
			return m.Name
		}
	}
	return ""
}

// waitPrefixesAt waits until the route observer's best path for every IPv4
// prefix leads to the site, watching its records from revision since, and
// returns when the last of them was observed so.
func waitPrefixesAt(ctx context.Context, t *testing.T, cli *clientv3.Client, keys site.Keys, prefixes []netip.Prefix, siteName string, since int64) time.Time {
	t.Helper()
	wanted := map[string]bool{}
	for _, p := range prefixes {
		if p.Addr().Is4() {
			wanted[keys.UpstreamRoute(p.String())] = true
		}
	}
	var last time.Time
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for resp := range cli.Watch(wctx, keys.Upstream(), clientv3.WithPrefix(), clientv3.WithRev(since+1)) {
		for _, ev := range resp.Events {
			key := string(ev.Kv.Key)
			if !wanted[key] || ev.Type != clientv3.EventTypePut {
				continue
			}
			var r site.UpstreamRoute
			if err := json.Unmarshal(ev.Kv.Value, &r); err != nil {
				t.Fatal(err)
			}
			if r.BestSite == siteName {
				delete(wanted, key)
				last = later(last, r.Observed)
			}
		}
		if len(wanted) == 0 {
			return last
		}
	}
	t.Fatalf("the observer's best paths of %v did not all lead to %s: %v", slices.Collect(func(yield func(string) bool) {
		for k := range wanted {
			if !yield(k) {
				return
			}
		}
	}), siteName, ctx.Err())
	return last
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
