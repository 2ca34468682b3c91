package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zdt-project/zdt/monitoring"
	"github.com/zdt-project/zdt/site"
)

// TestLabAlerts runs a real Prometheus that scrapes the three controllers
// of a lab every second with monitoring/alerts.yaml loaded, and checks,
// through its HTTP API, that no alert's expression fires while the lab is
// healthy and that each fires in the situation it is for, caused for real:
//
//   - ZdtOpStuck: a runbook op waits at a confirm step (its threshold cut
//     to 2s, the rest of the expression as in the file);
//   - ZdtReplicationLagOverRPO: c's standby stops replaying while b's
//     primary writes more WAL than db's RPO allows;
//   - ZdtSiteDark, then ZdtSelfFenced: b's controller frozen (SIGSTOP)
//     until it is failed over, then thawed: it finds its deadline passed;
//   - ZdtBGPPeerDown, ZdtObserverStale: the route observer killed (with
//     SIGKILL: its beat's lease runs out);
//   - ZdtGoldGuestNotRunning: a is failed over by hand too, and c alone has
//     no room for every Gold guest;
//   - ZdtNoCoordinator, ZdtServiceNotServed, ZdtNoWritablePrimary and
//     ZdtSiteDark of c: c taken down whole (SIGKILL) while a and b are
//     fenced: a and b keep the etcd quorum but may not coordinate;
//   - ZdtClusterStateUnread: b taken down too, a alone without a quorum.
//
// Last, /api/v1/alerts shows the rules as Prometheus evaluates them, with
// their for: ZdtSiteDark of b firing once b has been down for 30s.
func TestLabAlerts(t *testing.T) {
	promBin := prometheusBinary(t) // before the lab: without it, fail fast
	// a's etcd member is the one that answers all along (b's freezes, c's
	// dies): the test's client talks to it alone.
	s, ctx := startSettledLab(t, "127.0.20.0", 420*time.Second, "a")
	zdt, l, pg, keys, cli := s.zdt, s.l, s.pg, s.keys, s.cli
	prom, x := startLabPrometheus(ctx, t, l, promBin, "127.0.20.9:9090")
	opStuck := x.expr("ZdtOpStuck", "> 1800", "> 2")
	observerStale := x.expr("ZdtObserverStale", "", "")

	// Healthy: every controller scraped, every BGP session up, the
	// observer's beat there; then no expression gives anything.
	prom.waitQuery(ctx, t, "every controller scraped", `sum(up{job="zdt"})`, valueIs(3))
	prom.waitQuery(ctx, t, "every site's BGP session established", `count(zdt_bgp_peer_up == 1)`, valueIs(3))
	prom.waitQuery(ctx, t, "the observer's beat seen by every reporter", `min(zdt_upstream_observer_up)`, valueIs(1))
	prom.waitQuery(ctx, t, "three reporters see a coordinator", `count(sum by (reporter) (zdt_site_coordinator) == 1)`, valueIs(3))
	for _, e := range append(x.all(), opStuck, observerStale) {
		if got, err := prom.query(ctx, e); err != nil || len(got) > 0 {
			t.Errorf("in a healthy lab, %s gives %v (error %v); want nothing", e, got, err)
		}
	}

	// An op waits at a confirm step: stuck, with a short threshold.
	file := filepath.Join(t.TempDir(), "wait-for-a-person.yaml")
	if err := os.WriteFile(file, []byte(waitForAPerson), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, zdt, "runbook", "run", file, "--detach", "-o", "json", "--config", l.ConfigPath())
	var req struct{ Op *site.Op }
	if err := json.Unmarshal([]byte(out), &req); err != nil || req.Op == nil {
		t.Fatalf("zdt runbook run -o json: %v\n%s", err, out)
	}
	prom.waitQuery(ctx, t, "ZdtOpStuck of the waiting op", opStuck, has(map[string]string{"op": req.Op.ID, "kind": "runbook", "step": "confirm"}))
	run(t, zdt, "ops", "abort", req.Op.ID, "--reason", "alerts test", "--config", l.ConfigPath())
	if op := waitOpOutcome(ctx, t, cli, keys, req.Op.ID); op.Outcome != site.OpAborted {
		t.Fatalf("op %s %s; want aborted", op.ID, op.Outcome)
	}
	prom.waitQuery(ctx, t, "ZdtOpStuck ended with the op", opStuck, isEmpty)

	// c's standby stops replaying while b writes more WAL than db's RPO
	// allows it to be behind.
	resume := stopLabReplay(t, l, "c")
	conn := pg.connect(ctx, t, "b")
	if _, err := conn.Exec(ctx, `CREATE TABLE alerts_lag AS SELECT repeat(md5(i::text), 40) AS pad FROM generate_series(1, 20000) AS i`); err != nil {
		t.Fatalf("write at b: %v", err)
	}
	conn.Close(ctx)
	lag := x.expr("ZdtReplicationLagOverRPO", "", "")
	prom.waitQuery(ctx, t, "ZdtReplicationLagOverRPO at c", lag, has(map[string]string{"site": "c", "group": pg.group}))
	resume()
	prom.waitQuery(ctx, t, "c caught up", lag, isEmpty)

	// b's controller freezes: b goes dark and is failed over; thawed, it
	// finds its lease's deadline passed and fences itself.
	// The etcd leader goes to a first: b's member freezes with b, and an
	// election on top of it could cost a its lease too.
	moveEtcdLeader(ctx, t, l, "a")
	run(t, zdt, "lab", "site", "b", "freeze", "--dir", l.Dir())
	prom.waitQuery(ctx, t, "ZdtSiteDark of b", x.expr("ZdtSiteDark", "", ""), has(map[string]string{"site": "b"}))
	waitFailoverOp(ctx, t, cli, keys, "b")
	run(t, zdt, "lab", "site", "b", "thaw", "--dir", l.Dir())
	prom.waitQuery(ctx, t, "ZdtSelfFenced of b", x.expr("ZdtSelfFenced", "", ""), has(map[string]string{"site": "b"}))

	// The route observer dies: the sessions of a and c to it go down, and
	// its beat goes when its lease runs out. (b's session, cut by the observer's hold timer while
	// b was frozen, may not be back: ZdtBGPPeerDown fires for it then.)
	peerDown := x.expr("ZdtBGPPeerDown", "", "")
	prom.waitQuery(ctx, t, "a's and c's BGP sessions established", `count(zdt_bgp_peer_up{site=~"a|c"} == 1)`, valueIs(2))
	if got, err := prom.query(ctx, `min by (site, peer) (zdt_bgp_peer_up{site="b"})`); err == nil {
		t.Logf("b's BGP session before the observer dies: %v", got)
	}
	killObserver(t, l.ObserverRunning)
	for _, name := range []string{"a", "c"} {
		prom.waitQuery(ctx, t, "ZdtBGPPeerDown of "+name, peerDown, has(map[string]string{"site": name, "peer": "127.0.20.10"}))
	}
	prom.waitQuery(ctx, t, "ZdtObserverStale", observerStale, nonEmpty)

	// a is failed over by hand: everything goes to c, which has no room
	// for every Gold guest (nor may web's zone A and B guests share it).
	// Without the observer, the op's await-prefixes step fails in time;
	// its place step comes before.
	// (Should a have lost its lease meanwhile, it is fenced already.)
	_, stderr, code := runZDT(ctx, t, zdt, "failover", "--site", "a", "--reason", "alerts test", "--config", l.ConfigPath())
	if code != 0 && !strings.Contains(stderr, "site a is fenced already") {
		t.Fatalf("zdt failover --site a: exit %d\n%s", code, stderr)
	}
	waitKey(ctx, t, cli, keys.Fence("a"), func(int64) bool { return true })
	prom.waitQuery(ctx, t, "ZdtGoldGuestNotRunning", x.expr("ZdtGoldGuestNotRunning", "", ""), nonEmpty)

	// c goes down whole. a and b hold the etcd quorum, but fenced, they
	// may not coordinate: no coordinator, nothing served, no primary.
	run(t, zdt, "lab", "site", "c", "down", "--dir", l.Dir())
	prom.waitQuery(ctx, t, "ZdtSiteDark of c", x.expr("ZdtSiteDark", "", ""), has(map[string]string{"site": "c"}))
	prom.waitQuery(ctx, t, "ZdtNoCoordinator", x.expr("ZdtNoCoordinator", "", ""), nonEmpty)
	for _, svc := range []string{"web", "db"} {
		prom.waitQuery(ctx, t, "ZdtServiceNotServed of "+svc, x.expr("ZdtServiceNotServed", "", ""), has(map[string]string{"service": svc}))
	}
	prom.waitQuery(ctx, t, "ZdtNoWritablePrimary", x.expr("ZdtNoWritablePrimary", "", ""), has(map[string]string{"group": pg.group}))

	// Prometheus's own evaluation of the rules, for and all: b has been
	// dark, then fenced, for over 30s; the others are at least pending.
	prom.waitAlert(ctx, t, "ZdtSiteDark", map[string]string{"site": "b"}, "firing")
	prom.waitAlert(ctx, t, "ZdtSelfFenced", map[string]string{"site": "b"}, "firing")
	prom.waitAlert(ctx, t, "ZdtBGPPeerDown", map[string]string{"site": "a"}, "pending", "firing")
	prom.waitAlert(ctx, t, "ZdtNoCoordinator", nil, "pending", "firing")

	// b goes down too: a alone has no etcd quorum, and no controller can
	// read the cluster's state: every cluster-wide metric is gone.
	run(t, zdt, "lab", "site", "b", "down", "--dir", l.Dir())
	prom.waitQuery(ctx, t, "ZdtClusterStateUnread", x.expr("ZdtClusterStateUnread", "", ""), nonEmpty)
}

// waitForAPerson stops for a person, and then does nothing.
const waitForAPerson = `
name: wait-for-a-person
steps:
  - id: go-ahead
    action: confirm
    with: {message: "nothing to do; abort me"}
`

// alertExprs gives the alerts' expressions of the rule file.
type alertExprs struct {
	t     *testing.T
	rules []monitoring.Rule
}

// expr is the named alert's expression, with from replaced by to (a
// threshold cut short for the test); from must be in it.
func (x alertExprs) expr(name, from, to string) string {
	x.t.Helper()
	for _, r := range x.rules {
		if r.Alert != name {
			continue
		}
		if from == "" {
			return r.Expr
		}
		if !strings.Contains(r.Expr, from) {
			x.t.Fatalf("alert %s's expression has no %q to replace: %s", name, from, r.Expr)
		}
		return strings.Replace(r.Expr, from, to, 1)
	}
	x.t.Fatalf("monitoring/alerts.yaml has no alert %s", name)
	return ""
}

// all lists every alert's expression as in the file.
func (x alertExprs) all() []string {
	var out []string
	for _, r := range x.rules {
		out = append(out, r.Expr)
	}
	return out
}

// killObserver kills the lab's route observer with SIGKILL.
func killObserver(t *testing.T, running func() (int, bool)) {
	t.Helper()
	pid, ok := running()
	if !ok {
		t.Fatal("the route observer does not run")
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil { // its own process group
		t.Fatalf("kill the route observer (pid %d): %v", pid, err)
	}
}

func nonEmpty(s []sample) bool { return len(s) > 0 }
func isEmpty(s []sample) bool  { return len(s) == 0 }

// valueIs accepts one series of value v.
func valueIs(v int) func([]sample) bool {
	return func(s []sample) bool { return len(s) == 1 && s[0].Value[1] == fmt.Sprint(v) }
}

// has accepts an answer with a series that carries every label of want.
func has(want map[string]string) func([]sample) bool {
	return func(s []sample) bool {
		return slices.ContainsFunc(s, func(x sample) bool { return hasLabels(x.Metric, want) })
	}
}

func hasLabels(labels, want map[string]string) bool {
	for k, v := range want {
		if labels[k] != v {
			return false
		}
	}
	return true
}
