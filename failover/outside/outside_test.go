package outside_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap/zaptest"

	"github.com/zdt-project/zdt/deploy/hypervisor"
	"github.com/zdt-project/zdt/deploy/hypervisor/libvirtdtest"
	"github.com/zdt-project/zdt/failover/outside"
	"github.com/zdt-project/zdt/replication/postgres/pgtest"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/sitetest"
)

func guestXML(name string) string {
	return fmt.Sprintf(`<domain type='test'>
  <name>%s</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
</domain>`, name)
}

// cluster is a cluster whose site b has the given member conninfo and host
// URIs, and whose guests are web-1 and web-2.
func cluster(timeout time.Duration, memberConn string, hostURIs ...string) *config.Cluster {
	cl := &config.Cluster{
		Name:    "test",
		Fencing: config.Fencing{Timeout: timeout},
		Sites:   []config.Site{{Name: "a"}, {Name: "b"}, {Name: "c"}},
		Services: []config.Service{{Name: "web", Sites: []string{"b", "c"}, Guests: []config.Guest{
			{Name: "web-1", Service: "web", Tier: "gold"}, {Name: "web-2", Service: "web", Tier: "silver"},
		}}},
	}
	for i, uri := range hostURIs {
		cl.Sites[1].Hosts = append(cl.Sites[1].Hosts, config.Host{Name: fmt.Sprintf("b%d", i+1), Site: "b", URI: uri})
	}
	if memberConn != "" {
		cl.Replication = []config.ReplicationGroup{{Name: "pg", Driver: config.DriverPostgres, Members: []config.ReplicationMember{
			{Site: "b", Conn: memberConn}, {Site: "c", Conn: memberConn},
		}}}
	}
	return cl
}

func startGuests(t *testing.T, ctx context.Context, uri string, names ...string) *hypervisor.Host {
	t.Helper()
	h, err := hypervisor.Dial(ctx, uri, hypervisor.Options{Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	for _, n := range names {
		if _, err := h.Define(ctx, guestXML(n)); err != nil {
			t.Fatal(err)
		}
		if err := h.Start(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func running(t *testing.T, ctx context.Context, h *hypervisor.Host) map[string]bool {
	t.Helper()
	doms, err := h.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, d := range doms {
		out[d.Name] = d.State == hypervisor.StateRunning
	}
	return out
}

func byResource(outs []site.ResourceOutcome) map[string]site.ResourceOutcome {
	m := map[string]site.ResourceOutcome{}
	for _, o := range outs {
		m[o.Resource] = o
	}
	return m
}

// TestFenceReachableSite fences a site whose controller is gone but whose
// PostgreSQL primary and libvirtd live: the primary stops taking writes
// (also on a session that was open before, mid-transaction) and our guests
// there are destroyed, while a domain that is not ours runs on.
func TestFenceReachableSite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	grp := pgtest.Start(t, 2, pgtest.Options{Names: []string{"b", "c"}})
	primary := grp.Members[0]
	primary.Exec(ctx, "CREATE TABLE t (v int)")
	d := libvirtdtest.Start(t, libvirtdtest.Options{})
	h := startGuests(t, ctx, d.URI(), "web-1", "web-2", "other")

	// A client mid-transaction when the fence comes.
	client := primary.Connect(ctx)
	tx, err := client.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}

	f := outside.New(cluster(2*time.Second, primary.ConnString, d.URI()), zaptest.NewLogger(t))
	got := byResource(f.Fence(ctx, "b"))
	if o := got["member pg at b"]; o.Outcome != site.FenceDone {
		t.Errorf("member pg at b: %+v, want %q", o, site.FenceDone)
	}
	if o := got["host b1"]; o.Outcome != site.FenceDone || o.Detail != "destroyed web-1, web-2" {
		t.Errorf("host b1: %+v, want %q with detail %q", o, site.FenceDone, "destroyed web-1, web-2")
	}

	if err := tx.Commit(ctx); err == nil {
		t.Error("a transaction opened before the fence committed after it")
	}
	c2 := primary.Connect(ctx)
	_, err = c2.Exec(ctx, "INSERT INTO t VALUES (2)")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "25006" { // read_only_sql_transaction
		t.Errorf("a write after the fence: %v, want a read-only error (25006)", err)
	}
	run := running(t, ctx, h)
	if run["web-1"] || run["web-2"] || !run["other"] {
		t.Errorf("running after the fence: %v; want web-1 and web-2 stopped and other (not ours) running", run)
	}

	// Fencing again changes nothing and says so.
	again := byResource(f.Fence(ctx, "b"))
	if o := again["host b1"]; o.Outcome != site.FenceNothing {
		t.Errorf("host b1 fenced again: %+v, want %q", o, site.FenceNothing)
	}
	if o := again["member pg at b"]; o.Outcome != site.FenceDone || o.Detail != "primary (already read-only) made read-only, its client sessions cut" {
		t.Errorf("member fenced again: %+v", o)
	}
	// A standby has nothing to fence.
	fc := outside.New(cluster(2*time.Second, grp.Members[1].ConnString), zaptest.NewLogger(t))
	if o := byResource(fc.Fence(ctx, "c"))["member pg at c"]; o.Outcome != site.FenceNothing {
		t.Errorf("standby c: %+v, want %q", o, site.FenceNothing)
	}
}

// darkCluster is a cluster whose site b's resources accept connections
// but never answer: its PostgreSQL member and one host are a blackholed
// address, its other host a frozen libvirtd (thawed when the test ends).
func darkCluster(t *testing.T, limit time.Duration) *config.Cluster {
	t.Helper()
	hole := sitetest.Blackhole(t)
	host, port, _ := net.SplitHostPort(hole)
	frozen := libvirtdtest.Start(t, libvirtdtest.Options{})
	frozen.Pause()
	t.Cleanup(frozen.Resume)
	return cluster(limit, fmt.Sprintf("host=%s port=%s user=zdt dbname=postgres sslmode=disable", host, port),
		frozen.URI(), "test+tcp://"+hole+"/default")
}

// TestFenceDarkSite: resources that accept connections but never answer
// (a frozen PostgreSQL, a frozen libvirtd, a blackholed address) are
// recorded as unreachable within the limit, not waited for.
func TestFenceDarkSite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const limit = 500 * time.Millisecond
	cl := darkCluster(t, limit)
	start := time.Now()
	outs := outside.New(cl, zaptest.NewLogger(t)).Fence(ctx, "b")
	took := time.Since(start)
	if len(outs) != 3 {
		t.Fatalf("outcomes: %+v, want 3", outs)
	}
	for _, o := range outs {
		if o.Outcome != site.FenceUnreachable {
			t.Errorf("%s: %+v, want %q", o.Resource, o, site.FenceUnreachable)
		}
	}
	// The attempts run in parallel, each bounded by the limit: the whole
	// fence is bounded too (generously, for a loaded machine).
	if bound := 4 * limit; took > bound {
		t.Errorf("fencing a dark site took %s, more than %s (limit %s per resource)", took, bound, limit)
	}
}

// TestFenceSuspectedDarkSite: a site whose beats stopped is probed from
// then on (Suspect); when its failover's fence comes a fencing.timeout
// later, every resource that answered no probe is unreachable at once,
// without a new attempt that would wait the limit again.
func TestFenceSuspectedDarkSite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const limit = 500 * time.Millisecond
	cl := darkCluster(t, limit)
	f := outside.New(cl, zaptest.NewLogger(t))
	defer f.Close()
	f.Suspect("b")
	// The lease expires and the failover begins after the beats stopped.
	<-time.After(2 * limit)
	start := time.Now()
	outs := f.Fence(ctx, "b")
	took := time.Since(start)
	if len(outs) != 3 {
		t.Fatalf("outcomes: %+v, want 3", outs)
	}
	for _, o := range outs {
		if o.Outcome != site.FenceUnreachable || !strings.HasPrefix(o.Detail, "no answer to any attempt since ") {
			t.Errorf("%s: %+v, want %q from the probe", o.Resource, o, site.FenceUnreachable)
		}
	}
	if took >= limit {
		t.Errorf("fencing a site silent since it was suspected took %s, as long as a new attempt (limit %s)", took, limit)
	}
	// Once cleared (the site beats again), a fence makes its own attempts.
	f.Clear("b")
	for _, o := range f.Fence(ctx, "b") {
		if o.Outcome != site.FenceUnreachable || !strings.HasPrefix(o.Detail, "no answer within ") {
			t.Errorf("%s after Clear: %+v, want %q from a new attempt", o.Resource, o, site.FenceUnreachable)
		}
	}
}

// TestFenceSuspectedLiveSite: a site suspected for its late beats but whose
// resources answer is fenced for real: a probe's answer never stands in
// for a fence.
func TestFenceSuspectedLiveSite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	grp := pgtest.Start(t, 1, pgtest.Options{Names: []string{"b"}})
	primary := grp.Members[0]
	d := libvirtdtest.Start(t, libvirtdtest.Options{})
	h := startGuests(t, ctx, d.URI(), "web-1")

	const limit = 2 * time.Second
	f := outside.New(cluster(limit, primary.ConnString, d.URI()), zaptest.NewLogger(t))
	defer f.Close()
	f.Suspect("b")
	got := byResource(f.Fence(ctx, "b"))
	if o := got["member pg at b"]; o.Outcome != site.FenceDone {
		t.Errorf("member pg at b: %+v, want %q", o, site.FenceDone)
	}
	if o := got["host b1"]; o.Outcome != site.FenceDone || o.Detail != "destroyed web-1" {
		t.Errorf("host b1: %+v, want %q with detail %q", o, site.FenceDone, "destroyed web-1")
	}
	if run := running(t, ctx, h); run["web-1"] {
		t.Error("web-1 runs after the fence")
	}
}
