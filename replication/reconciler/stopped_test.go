package reconciler

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
)

// TestStoppedMembersAwayFromTheActiveSite: the active site a's server dies
// and cannot be started (its lease is not known alive); b's and c's stop
// too, b's a standby's, c's a former primary's. b comes back at once, a
// standby of a that streams from nothing; c stays down, its data kept.
// Once a is started again (a writable primary), c is rewound to follow it.
// No two members are ever writable.
func TestStoppedMembersAwayFromTheActiveSite(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()
	probe := f.startProber()
	f.exec("a", "INSERT INTO t (id) VALUES (1)")
	hasRow(f.srv["b"], 1, 10*time.Second)
	hasRow(f.srv["c"], 1, 10*time.Second)

	f.leased["a"].Store(false) // a cannot start its server
	f.srv["a"].Kill(syscall.SIGKILL)
	for _, s := range []string{"a", "b", "c"} {
		f.waitMember(s, 30*time.Second, func(m site.MemberReport) bool { return !(m.Role == "primary" && m.Writable) })
	}
	f.waitMember("a", 30*time.Second, func(m site.MemberReport) bool { return m.Role == "unknown" })

	// c: a former primary's data, stopped (its reconciler down meanwhile,
	// so that it does not start the standby it still is).
	f.crash("c")
	f.srv["c"].Stop()
	if err := os.Remove(filepath.Join(f.srv["c"].DataDir, "standby.signal")); err != nil {
		t.Fatal(err)
	}
	f.startReconciler("c")

	// b: a standby, killed: started again as a standby of a.
	f.srv["b"].Kill(syscall.SIGKILL)
	m := f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool {
		return m.Role == "standby" && f.actions("b", "start-standby", "ok") >= 1
	})
	t.Logf("b: %s", m.Detail)
	if rec, err := inRecovery(ctx, f.srv["b"]); err != nil || !rec {
		t.Errorf("b started again: in recovery = %v, %v; want a standby", rec, err)
	}
	m = f.waitMember("c", 30*time.Second, func(m site.MemberReport) bool { return strings.Contains(m.Detail, "primary's") })
	t.Logf("c: %s", m.Detail)
	f.passes("c", 5)
	if pid := f.srv["c"].Pid(); pid != 0 {
		t.Errorf("c, a stopped former primary, runs (pid %d) while a is not a writable primary", pid)
	}
	for _, s := range []string{"b", "c"} {
		if n := f.actions(s, "start", "ok") + f.actions(s, "start", "error"); n != 0 {
			t.Errorf("%s's server was started as it was %v times, away from the active site", s, n)
		}
	}

	// a is started again, a writable primary: b streams from it, c is
	// rewound to follow it.
	f.leased["a"].Store(true)
	f.waitMember("a", 60*time.Second, func(m site.MemberReport) bool { return m.Role == "primary" && m.Writable })
	f.exec("a", "INSERT INTO t (id) VALUES (2)")
	f.waitMember("c", 60*time.Second, func(m site.MemberReport) bool { return m.Role == "standby" && m.Healthy })
	hasRow(f.srv["b"], 2, 30*time.Second)
	hasRow(f.srv["c"], 2, 30*time.Second)
	if rec, err := inRecovery(ctx, f.srv["c"]); err != nil || !rec {
		t.Errorf("c after a came back: in recovery = %v, %v; want a standby", rec, err)
	}
	probe.halt()
	if n := probe.overlaps.Load(); n != 0 {
		t.Errorf("%d of %d probe rounds found two writable members: %v", n, probe.rounds.Load(), probe.detail)
	}
}
