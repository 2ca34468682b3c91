package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/deploy/hypervisor"
	"github.com/zdt-project/zdt/e2e/lab"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// postgresConns is the connection string of each site's PostgreSQL server.
func postgresConns(t *testing.T, l *lab.Lab) map[string]string {
	t.Helper()
	conns := map[string]string{}
	for _, s := range l.SiteNames() {
		var err error
		if conns[s], err = l.PostgresConnString(s); err != nil {
			t.Fatal(err)
		}
	}
	return conns
}

// startLab builds zdt and starts a detached lab on its own loopback
// network (another lab on this machine, a person's or a soak's, does not
// get in the way), stopped when the test ends, with the extra flags of zdt
// lab (e.g. --synchronous); it returns what zdt lab printed too. It skips
// under -short unless CI=true.
func startLab(t *testing.T, network string, flags ...string) (zdt string, l *lab.Lab) {
	zdt, l, _ = startLabSaying(t, network, flags...)
	return zdt, l
}

// startLabSaying is startLab that also returns what zdt lab printed.
func startLabSaying(t *testing.T, network string, flags ...string) (zdt string, l *lab.Lab, out string) {
	t.Helper()
	return startLabWithArgs(t, append([]string{"--net", network}, flags...))
}

// startLabWithArgs starts a detached lab with these arguments of zdt lab
// (beside --detach, --dir and --timeout).
func startLabWithArgs(t *testing.T, args []string) (zdt string, l *lab.Lab, out string) {
	t.Helper()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("-short: skips building zdt and running a three-site lab")
	}
	zdt = buildZDT(t)
	dir := t.TempDir()
	// As root the PostgreSQL servers run as user postgres, which must reach
	// the lab's directory; the lab makes its own reachable, not its parent.
	if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopLab(t, zdt, dir) }) // runs before dir is removed
	out = run(t, zdt, append([]string{"lab", "--detach", "--dir", dir, "--timeout", "60s"}, args...)...)
	l, err := lab.Open(dir, lab.Options{Binary: zdt})
	if err != nil {
		t.Fatal(err)
	}
	return zdt, l, out
}

// settledLab is a lab with guests and replication group pg, settled: db is
// assigned, every guest runs where placed, b's member is the primary and
// the others its standbys.
type settledLab struct {
	zdt    string
	l      *lab.Lab
	guests *labGuests
	pg     *labPostgres
	keys   site.Keys
	cli    *clientv3.Client // to the etcd members of etcdSites
}

// startSettledLab starts a lab on its own network (startLab) and waits
// until it is settled, within the returned context, which ends after
// within or with the test. It skips, except when CI=true, without
// libvirtd or PostgreSQL.
func startSettledLab(t *testing.T, network string, within time.Duration, etcdSites ...string) (*settledLab, context.Context) {
	t.Helper()
	return startSettledLabWith(t, network, within, nil, etcdSites...)
}

// startSettledLabWith is startSettledLab with the extra flags of zdt lab.
func startSettledLabWith(t *testing.T, network string, within time.Duration, flags []string, etcdSites ...string) (*settledLab, context.Context) {
	t.Helper()
	zdt, l := startLab(t, network, flags...)
	return settle(t, zdt, l, within, etcdSites...)
}

// settle waits until a lab is settled (see settledLab).
func settle(t *testing.T, zdt string, l *lab.Lab, within time.Duration, etcdSites ...string) (*settledLab, context.Context) {
	t.Helper()
	s := &settledLab{zdt: zdt, l: l, guests: followGuests(t, zdt, l), pg: followPostgres(t, zdt, l), keys: site.NewKeys(l.Cluster())}
	if s.guests.cfg == nil || s.pg.group == "" {
		t.Skip("needs libvirtd and PostgreSQL (installed by make test)")
	}
	s.cli = etcdClient(t, l, etcdSites...)
	ctx, cancel := context.WithTimeout(t.Context(), within)
	t.Cleanup(cancel)
	waitKey(ctx, t, s.cli, s.keys.Assignment("db"), func(int64) bool { return true })
	s.guests.waitAllRunning(ctx, t, s.cli)
	s.pg.waitRoles(ctx, t, s.cli, map[string]string{"b": "primary", "a": "standby", "c": "standby"})
	return s, ctx
}

// TestLabSiteFailover runs `zdt lab`, takes site a dark and checks that the
// cluster fences it and moves its service to b, that a stays fenced when it
// comes back, then takes b dark, which moves everything to c, and that
// `zdt lab stop` leaves no process behind. All along, the route observer
// (the sites' upstream) must lead every prefix to its service's active
// site.
//
// With libvirtd (always when CI=true) it also follows the guests: all run
// where they are placed; when a goes dark, with its libvirtd, every gold
// guest runs again at b or c, once, with the zone rule kept; when a comes
// back, fenced, it runs none of them.
//
// With PostgreSQL (always when CI=true) it also follows replication group
// pg of service db: one writable primary at db's active site, the others
// streaming standbys; a's server, killed with a, rejoins as a standby when
// a comes back; when b goes dark with db's primary, c's standby is promoted
// and takes writes, a follows it, and b's server rejoins as a standby when b
// comes back.
func TestLabSiteFailover(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("-short: skips building zdt and running a three-site lab")
	}
	zdt := buildZDT(t)
	dir := t.TempDir()
	// As root the PostgreSQL servers run as user postgres, which must reach
	// the lab's directory; the lab makes its own reachable, not its parent.
	if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopLab(t, zdt, dir) }) // runs before dir is removed

	out := run(t, zdt, "lab", "--detach", "--dir", dir, "--timeout", "60s")
	if !strings.Contains(out, "zdt lab stop --dir "+dir) {
		t.Errorf("zdt lab --detach does not say how to stop the lab:\n%s", out)
	}
	l, err := lab.Open(dir, lab.Options{Binary: zdt})
	if err != nil {
		t.Fatal(err)
	}
	keys := site.NewKeys(l.Cluster())
	cli := etcdClient(t, l, "b", "c") // the sites that stay up
	ctx, cancel := context.WithTimeout(t.Context(), 240*time.Second)
	defer cancel()
	guests := followGuests(t, zdt, l)
	pg := followPostgres(t, zdt, l)
	if !l.HasObserver() {
		t.Fatalf("the lab has no route observer:\n%s", readFile(l.ConfigPath()))
	}
	observer, ok := l.ObserverRunning()
	if !ok {
		t.Fatal("the route observer does not run")
	}

	// Both services get their first assignment.
	web := waitKey(ctx, t, cli, keys.Assignment("web"), func(int64) bool { return true })
	waitKey(ctx, t, cli, keys.Assignment("db"), func(int64) bool { return true })
	st := status(t, zdt, l)
	if st.Cluster != "lab" || !slices.Contains(l.SiteNames(), st.Coordinator) {
		t.Errorf("status: cluster %q, coordinator %q; want lab and one of the sites", st.Cluster, st.Coordinator)
	}
	for _, name := range l.SiteNames() {
		st.wantSite(t, name, "up")
	}
	webEpoch := st.wantService(t, "web", "a")
	st.wantService(t, "db", "b")
	guests.waitAllRunning(ctx, t, cli)
	waitStatus(ctx, t, cli, zdt, l, "every prefix leads to its service's active site", upstreamAtActive)
	pg.waitRoles(ctx, t, cli, map[string]string{"b": "primary", "a": "standby", "c": "standby"})
	pg.write(ctx, t, "b", "before")
	pg.waitRow(ctx, t, "c", "before")

	// a goes dark: it is fenced and web moves to b, with a larger epoch.
	run(t, zdt, "lab", "site", "a", "down", "--dir", dir)
	waitKey(ctx, t, cli, keys.Fence("a"), func(int64) bool { return true })
	waitKey(ctx, t, cli, keys.Assignment("web"), func(rev int64) bool { return rev > web })
	st = status(t, zdt, l)
	st.wantSite(t, "a", "fenced")
	if epoch := st.wantService(t, "web", "b"); epoch <= webEpoch {
		t.Errorf("web's epoch after the failover is %d; want more than %d", epoch, webEpoch)
	}
	st.wantService(t, "db", "b")
	guests.waitGoldElsewhere(ctx, t, cli, "a")
	waitStatus(ctx, t, cli, zdt, l, "web's prefixes lead to b", func(st labStatus) []string {
		return append(upstreamAtActive(st), st.activeAt("web", "b")...)
	})
	if pid, ok := l.ObserverRunning(); !ok || pid != observer {
		t.Errorf("after site a went down, the route observer is pid %d (running %t); want pid %d still running", pid, ok, observer)
	}
	pg.waitRoles(ctx, t, cli, map[string]string{"b": "primary", "c": "standby"})

	// a comes back with its data: it stays fenced until a failback.
	upRev, err := revision(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	run(t, zdt, "lab", "site", "a", "up", "--dir", dir)
	st = status(t, zdt, l)
	st.wantSite(t, "a", "fenced")
	st.wantService(t, "web", "b")
	guests.waitNoneAt(ctx, t, cli, "a", upRev)
	// a's server, killed with a, is rewound and rejoins as a standby.
	pg.waitRoles(ctx, t, cli, map[string]string{"b": "primary", "a": "standby", "c": "standby"})
	pg.waitRow(ctx, t, "a", "before")

	// b goes dark with db's primary: everything moves to c (a is fenced),
	// c's server is promoted and takes writes, and a follows it.
	cli = etcdClient(t, l, "a", "c")
	dbRev := waitKey(ctx, t, cli, keys.Assignment("db"), func(int64) bool { return true })
	run(t, zdt, "lab", "site", "b", "down", "--dir", dir)
	waitKey(ctx, t, cli, keys.Fence("b"), func(int64) bool { return true })
	waitKey(ctx, t, cli, keys.Assignment("db"), func(rev int64) bool { return rev > dbRev })
	waitStatus(ctx, t, cli, zdt, l, "web and db run at c, and their prefixes lead there", func(st labStatus) []string {
		return append(upstreamAtActive(st), append(st.activeAt("web", "c"), st.activeAt("db", "c")...)...)
	})
	pg.waitRoles(ctx, t, cli, map[string]string{"c": "primary", "a": "standby"})
	pg.waitRow(ctx, t, "c", "before")
	pg.write(ctx, t, "c", "after")
	pg.waitRow(ctx, t, "a", "after")

	// b comes back, fenced: its former primary is rewound and follows c.
	run(t, zdt, "lab", "site", "b", "up", "--dir", dir)
	pg.waitRoles(ctx, t, cli, map[string]string{"c": "primary", "a": "standby", "b": "standby"})
	pg.waitRow(ctx, t, "b", "after")
	st = status(t, zdt, l)
	st.wantSite(t, "b", "fenced")
	st.wantService(t, "db", "c")

	// a and b fail back, once they are back clean: their fences are
	// lifted, they serve again as standbys, and nothing moves.
	for _, name := range []string{"a", "b"} {
		waitUntil(ctx, t, cli, keys, "site "+name+" fails back", func() ([]string, error) {
			out, err := exec.CommandContext(ctx, zdt, "failback", "--site", name, "--config", l.ConfigPath(), "--wait", "--timeout", "30s").CombinedOutput()
			if err != nil {
				return []string{fmt.Sprintf("zdt failback --site %s: %v\n%s", name, err, out)}, nil
			}
			return nil, nil
		})
	}
	st = status(t, zdt, l)
	for _, name := range l.SiteNames() {
		st.wantSite(t, name, "up")
	}
	st.wantService(t, "web", "c")
	st.wantService(t, "db", "c")
	pg.waitRoles(ctx, t, cli, map[string]string{"c": "primary", "a": "standby", "b": "standby"})

	// Back to the first layout: web by a failback's --switch-back (a
	// failback that finds nothing to do does nothing), db by a switchover
	// under a write load: nothing acknowledged is lost, never two writable
	// members, and the prefixes lead to the new sites.
	out = run(t, zdt, "failback", "--site", "a", "--switch-back", "--config", l.ConfigPath(), "--timeout", "60s")
	if !strings.Contains(out, "switchover of service web") && !strings.Contains(out, "succeeded") {
		t.Errorf("zdt failback --site a --switch-back:\n%s", out)
	}
	pg.switchBack(ctx, t, cli, "db", "b")
	waitStatus(ctx, t, cli, zdt, l, "web at a and db at b again, their prefixes leading there", func(st labStatus) []string {
		return append(upstreamAtActive(st), append(st.activeAt("web", "a"), st.activeAt("db", "b")...)...)
	})
	pg.waitRoles(ctx, t, cli, map[string]string{"b": "primary", "a": "standby", "c": "standby"})

	// stop leaves no process behind: no libvirtd, PostgreSQL server or
	// route observer either.
	pids := []int{observer}
	for _, name := range l.SiteNames() {
		if l.HasPostgres() {
			if pid, ok := l.PostgresRunning(name); ok {
				pids = append(pids, pid)
			} else {
				t.Errorf("site %s's PostgreSQL does not run before zdt lab stop", name)
			}
		}
		if pid, ok := l.Running(name); ok {
			pids = append(pids, pid)
		} else {
			t.Errorf("site %s does not run before zdt lab stop", name)
		}
		if !l.HasHypervisors() {
			continue
		}
		if pid, ok := l.LibvirtdRunning(name); ok {
			pids = append(pids, pid)
		} else {
			t.Errorf("site %s's libvirtd does not run before zdt lab stop", name)
		}
	}
	run(t, zdt, "lab", "stop", "--dir", dir)
	for _, pid := range pids {
		if left := processGroup(pid); len(left) > 0 {
			t.Errorf("after zdt lab stop, process group %d still has processes %v", pid, left)
		}
	}
}

// buildZDT builds the zdt binary from this module.
func buildZDT(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..") // the test runs in e2e/
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("the module root %s has no go.mod: %v", root, err)
	}
	bin := filepath.Join(t.TempDir(), "zdt")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./cmd/zdt")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/zdt: %v\n%s", err, out)
	}
	return bin
}

// run runs zdt and returns its output; it fails the test if zdt fails.
func run(t *testing.T, zdt string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, zdt, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("zdt %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// stopLab stops whatever is left of the lab, and on failure shows the
// cluster's status as it was (each group member's role and what its
// controller last did) and the end of every controller's log.
func stopLab(t *testing.T, zdt, dir string) {
	l, err := lab.Open(dir, lab.Options{Binary: zdt})
	if err != nil {
		return // the lab was never created
	}
	dumps := map[string]int64{}
	if t.Failed() {
		logStatus(t, zdt, l)
		logReplicationReports(t, l)
		for _, name := range l.SiteNames() {
			if from, err := l.DumpController(name); err == nil {
				dumps[name] = from
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.Stop(ctx); err != nil {
		t.Errorf("stop the lab: %v", err)
	}
	if !t.Failed() {
		return
	}
	for _, name := range l.SiteNames() {
		logKeyLines(t, l.LogPath(name))
		logTail(t, l.LogPath(name), 8<<10)
		logTail(t, l.LibvirtdLogPath(name), 2<<10)
		logTail(t, l.PostgresLogPath(name), 2<<10)
		if l.InNetns() {
			logTail(t, l.ResponderLogPath(name), 2<<10)
		}
		if from, ok := dumps[name]; ok {
			logStuckGoroutines(t, l.LogPath(name), from)
		}
	}
	logTail(t, l.ObserverLogPath(), 4<<10)
}

// logReplicationReports shows every site's replication report as etcd
// holds it, with when it was written: a report that stopped changing is a
// reconciler that stopped.
func logReplicationReports(t *testing.T, l *lab.Lab) {
	cli := etcdClient(t, l, l.SiteNames()...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys := site.NewKeys(l.Cluster())
	var out []string
	for _, name := range l.SiteNames() {
		resp, err := cli.Get(ctx, keys.SiteReplication(name))
		switch {
		case err != nil:
			out = append(out, fmt.Sprintf("%s: %v", name, err))
		case len(resp.Kvs) == 0:
			out = append(out, name+": none")
		default:
			out = append(out, fmt.Sprintf("%s (mod revision %d): %s", name, resp.Kvs[0].ModRevision, resp.Kvs[0].Value))
		}
	}
	t.Logf("replication reports at the failure (%s):\n%s", time.Now().UTC().Format(time.RFC3339Nano), strings.Join(out, "\n"))
}

// logStuckGoroutines shows, from the stacks a controller wrote to its log
// at SIGQUIT (from offset from on), the goroutines in zdt's code that had
// waited for a minute or more, and every reconciler pass under way: where
// a controller that stopped acting was stuck.
func logStuckGoroutines(t *testing.T, path string, from int64) {
	data, err := os.ReadFile(path)
	if err != nil || int64(len(data)) < from {
		return
	}
	var shown []string
	size := 0
	for _, g := range strings.Split(string(data[from:]), "\n\n") {
		head, _, _ := strings.Cut(g, "\n")
		if !strings.HasPrefix(head, "goroutine ") || !strings.Contains(g, "zdt-project/zdt/") {
			continue
		}
		if !strings.Contains(head, "minutes]") && !strings.Contains(g, "Reconciler).pass(") {
			continue
		}
		if size += len(g); size > 24<<10 {
			shown = append(shown, "(more left out)")
			break
		}
		shown = append(shown, g)
	}
	t.Logf("goroutines of %s's controller waiting for minutes, and its reconciler passes, at SIGQUIT:\n%s", path, strings.Join(shown, "\n\n"))
}

// keyLine matches the lines of a controller's log that say what its site
// did: membership changes, self-fences, fail static, sweeps, op ends.
var keyLine = regexp.MustCompile(`"msg":"(membership state|self-fenced|fail static[^"]*|FAIL STATIC[^"]*|etcd has failed[^"]*|etcd works again[^"]*|no beat from a site[^"]*|op ended|elected coordinator|lease renewed late|replication action[^"]*|promotion refused|publish replication report)"`)

// logKeyLines shows the key lines of a controller's log, at most the last
// 80.
func logKeyLines(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var lines []string
	for _, ln := range strings.Split(string(data), "\n") {
		if keyLine.MatchString(ln) {
			lines = append(lines, ln)
		}
	}
	if len(lines) > 80 {
		lines = lines[len(lines)-80:]
	}
	t.Logf("key lines of %s:\n%s", path, strings.Join(lines, "\n"))
}

// logTail shows the end of a log, if there is one.
func logTail(t *testing.T, path string, size int) {
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	if len(data) > size {
		data = data[len(data)-size:]
	}
	t.Logf("the end of %s:\n%s", path, data)
}

// etcdClient connects to the lab's etcd through the named sites' members.
func etcdClient(t *testing.T, l *lab.Lab, sites ...string) *clientv3.Client {
	t.Helper()
	tlsConfig, err := l.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	var endpoints []string
	for _, name := range sites {
		s, err := l.Site(name)
		if err != nil {
			t.Fatal(err)
		}
		endpoints = append(endpoints, s.EtcdClientURL)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		TLS:         tlsConfig,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("connect to the lab's etcd at %v: %v", endpoints, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// waitKey waits, with an etcd watch, until key is written with a mod
// revision that done accepts, and returns that revision. A watch cut off
// by a leader election is started again.
func waitKey(ctx context.Context, t *testing.T, cli *clientv3.Client, key string, done func(modRev int64) bool) int64 {
	t.Helper()
	for ctx.Err() == nil {
		resp, err := cli.Get(ctx, key)
		if err != nil {
			t.Logf("get %s: %v", key, err)
			continue
		}
		if len(resp.Kvs) > 0 && done(resp.Kvs[0].ModRevision) {
			return resp.Kvs[0].ModRevision
		}
		watch := cli.Watch(clientv3.WithRequireLeader(ctx), key, clientv3.WithRev(resp.Header.Revision+1))
		for wr := range watch {
			if err := wr.Err(); err != nil {
				t.Logf("watch %s: %v", key, err)
				break
			}
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypePut && done(ev.Kv.ModRevision) {
					return ev.Kv.ModRevision
				}
			}
		}
	}
	t.Fatalf("waiting for %s: %v", key, ctx.Err())
	return 0
}

// labStatus is the output of `zdt status -o json`.
type labStatus struct {
	Cluster     string `json:"cluster"`
	Coordinator string `json:"coordinator"`
	Sites       []struct {
		Name  string      `json:"name"`
		State string      `json:"state"`
		Drain *site.Drain `json:"drain"`
	} `json:"sites"`
	Services []struct {
		Name   string `json:"name"`
		Active string `json:"active"`
		Epoch  int64  `json:"epoch"`
	} `json:"services"`
	Guests   []guestStatus `json:"guests"`
	Upstream []struct {
		Prefix   string `json:"prefix"`
		Service  string `json:"service"`
		Active   string `json:"active"`
		BestSite string `json:"best_site"`
	} `json:"upstream"`
	Replication []groupStatus `json:"replication"`
	raw         string
}

type groupStatus struct {
	Group   string `json:"group"`
	Members []struct {
		Site     string `json:"site"`
		Role     string `json:"role"`
		Healthy  bool   `json:"healthy"`
		Writable bool   `json:"writable"`
		Detail   string `json:"detail"`
	} `json:"members"`
}

// upstreamAtActive says what is wrong with where the upstream's best paths
// lead: every service prefix, IPv4 and IPv6, must lead to its service's
// active site. The lab's sessions are IPv4 (loopback has no IPv6 address
// per site) and carry the IPv6 prefixes too (families: [ipv4, ipv6]).
func upstreamAtActive(st labStatus) []string {
	if len(st.Upstream) == 0 {
		return []string{"zdt status shows no upstream"}
	}
	var wrong []string
	for _, u := range st.Upstream {
		if u.Active == "" || u.BestSite != u.Active {
			wrong = append(wrong, fmt.Sprintf("prefix %s of %s: the upstream's best path leads to %q; %s is active at %q",
				u.Prefix, u.Service, u.BestSite, u.Service, u.Active))
		}
	}
	return wrong
}

// activeAt says what is wrong with where the service is active.
func (st labStatus) activeAt(service, site string) []string {
	for _, s := range st.Services {
		if s.Name == service {
			if s.Active != site {
				return []string{fmt.Sprintf("service %s is active at %q; want %s", service, s.Active, site)}
			}
			return nil
		}
	}
	return []string{"zdt status does not list service " + service}
}

type guestStatus struct {
	Name      string   `json:"name"`
	Site      string   `json:"site"`
	Host      string   `json:"host"`
	State     string   `json:"state"`
	RunningOn []string `json:"running_on"`
}

// guest returns the named guest's line of the status.
func (st labStatus) guest(name string) (guestStatus, bool) {
	for _, g := range st.Guests {
		if g.Name == name {
			return g, true
		}
	}
	return guestStatus{}, false
}

func status(t *testing.T, zdt string, l *lab.Lab) labStatus {
	t.Helper()
	out, err := statusJSON(t, zdt, l)
	if err != nil {
		t.Fatalf("zdt status: %v\n%s", err, out)
	}
	var st labStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("zdt status -o json: %v\n%s", err, out)
	}
	st.raw = out
	return st
}

// site is the status of the named site (zero if it is not listed).
func (st labStatus) site(name string) (s struct {
	Name  string      `json:"name"`
	State string      `json:"state"`
	Drain *site.Drain `json:"drain"`
}) {
	for _, x := range st.Sites {
		if x.Name == name {
			return x
		}
	}
	return s
}

func (st labStatus) wantSite(t *testing.T, name, state string) {
	t.Helper()
	for _, s := range st.Sites {
		if s.Name == name {
			if s.State != state {
				t.Errorf("site %s is %s; want %s. zdt status says:\n%s", name, s.State, state, st.raw)
			}
			return
		}
	}
	t.Errorf("zdt status does not list site %s:\n%s", name, st.raw)
}

// wantService checks where the service is active and returns its epoch.
func (st labStatus) wantService(t *testing.T, name, active string) int64 {
	t.Helper()
	for _, s := range st.Services {
		if s.Name == name {
			if s.Active != active || s.Epoch <= 0 {
				t.Errorf("service %s is active at %q, epoch %d; want %s, epoch > 0. zdt status says:\n%s",
					name, s.Active, s.Epoch, active, st.raw)
			}
			return s.Epoch
		}
	}
	t.Errorf("zdt status does not list service %s:\n%s", name, st.raw)
	return 0
}

// processGroup lists the live processes (zombies excepted: they have ended,
// and the lab is not their parent to reap them) in process group pgid.
func processGroup(pgid int) []string {
	var live []string
	err := eachProcess(func(pid int, comm string, fields []string) {
		if len(fields) < 3 || fields[0] == "Z" || fields[0] == "X" {
			return
		}
		if g, err := strconv.Atoi(fields[2]); err == nil && g == pgid {
			live = append(live, fmt.Sprintf("%d %s", pid, comm))
		}
	})
	if err != nil {
		return []string{err.Error()}
	}
	return live
}

// eachProcess calls f for every process in /proc with its "pid (comm)" and
// the fields of its stat after that: state, ppid, pgrp, ...
func eachProcess(f func(pid int, comm string, fields []string)) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return fmt.Errorf("read /proc: %w", err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(stat), ')')
		f(pid, string(stat[:i+1]), strings.Fields(string(stat[i+1:])))
	}
	return nil
}

// labGuests follows the lab's guests: what the config says of them, what
// etcd and `zdt status` say of where they run. Without hypervisors it
// follows nothing.
type labGuests struct {
	zdt  string
	l    *lab.Lab
	keys site.Keys
	cfg  *config.Cluster // nil: the lab has no guests
}

// followGuests returns the lab's guests to follow. A lab without hypervisors
// is an error when libvirtd is installed or CI=true; otherwise the guest
// checks are left out.
func followGuests(t *testing.T, zdt string, l *lab.Lab) *labGuests {
	t.Helper()
	g := &labGuests{zdt: zdt, l: l, keys: site.NewKeys(l.Cluster())}
	_, missing := lab.FindLibvirtd()
	switch {
	case missing != nil && os.Getenv("CI") == "true":
		t.Errorf("CI=true: %v; the guests of the lab are not tested", missing)
		return g
	case missing != nil:
		t.Logf("%v; the guests of the lab are not tested", missing)
		return g
	case !l.HasHypervisors():
		t.Errorf("libvirtd is installed, but the lab has no hypervisors:\n%s", readFile(l.ConfigPath()))
		return g
	}
	cfg, err := config.Load(l.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Guests()) == 0 {
		t.Fatalf("the lab has hypervisors but no guests:\n%s", readFile(l.ConfigPath()))
	}
	g.cfg = cfg
	return g
}

// waitAllRunning waits until every guest has a placement with state
// running and `zdt status` shows it running on that host, and only there.
func (g *labGuests) waitAllRunning(ctx context.Context, t *testing.T, cli *clientv3.Client) {
	t.Helper()
	if g.cfg == nil {
		return
	}
	g.waitUntil(ctx, t, cli, "every guest runs where it is placed", func() ([]string, error) {
		placements, err := g.placements(ctx, cli)
		if err != nil {
			return nil, err
		}
		st := g.status(t)
		var wrong []string
		for _, guest := range g.cfg.Guests() {
			wrong = append(wrong, runsOnlyAt(guest.Name, placements, st)...)
		}
		return wrong, nil
	})
}

// waitGoldElsewhere waits until every gold guest runs again, placed at a
// site other than dark and running on its placement's host only; then it
// checks the zone rule and that bronze guests made room.
func (g *labGuests) waitGoldElsewhere(ctx context.Context, t *testing.T, cli *clientv3.Client, dark string) {
	t.Helper()
	if g.cfg == nil {
		return
	}
	var placements map[string]site.Placement
	g.waitUntil(ctx, t, cli, "every gold guest runs at a site other than "+dark, func() ([]string, error) {
		var err error
		if placements, err = g.placements(ctx, cli); err != nil {
			return nil, err
		}
		st := g.status(t)
		var wrong []string
		for _, guest := range g.cfg.Guests() {
			if guest.Tier != config.TierGold {
				continue
			}
			if p := placements[guest.Name]; p.Site == dark {
				wrong = append(wrong, fmt.Sprintf("%s is placed at dark site %s", guest.Name, dark))
				continue
			}
			wrong = append(wrong, runsOnlyAt(guest.Name, placements, st)...)
		}
		if len(wrong) > 0 {
			// For the failure message: what the sites say (ALARMS, SITE,
			// GUEST), should this wait run out.
			wrong = append(wrong, "zdt status says:\n"+st.raw)
		}
		return wrong, nil
	})
	// Gold-Zone-A and Gold-Zone-B guests never share a site: of the whole
	// cluster, or, with zone_scope: service (the scale lab), of a service.
	zones := map[string]map[string][]string{} // site (and service) -> zone -> gold guests
	for _, guest := range g.cfg.Guests() {
		if guest.Tier != config.TierGold || guest.Zone == "" {
			continue
		}
		s := placements[guest.Name].Site
		if g.cfg.Placement.ZoneScope == config.ZoneScopeService {
			s += " for service " + guest.Service
		}
		if zones[s] == nil {
			zones[s] = map[string][]string{}
		}
		zones[s][guest.Zone] = append(zones[s][guest.Zone], guest.Name)
	}
	for s, z := range zones {
		if len(z["A"]) > 0 && len(z["B"]) > 0 {
			t.Errorf("site %s runs gold guests of zone A %v and of zone B %v", s, z["A"], z["B"])
		}
	}
	if a, b := placements["web-gold-a"].Site, placements["web-gold-b"].Site; a == b {
		t.Errorf("web-gold-a and web-gold-b both run at site %s", a)
	}
	// There is no room for every guest without the dark site: a bronze
	// guest stopped for the gold ones.
	stopped := 0
	for _, guest := range g.cfg.Guests() {
		if guest.Tier == config.TierBronze && placements[guest.Name].State != site.GuestRunning {
			stopped++
		}
	}
	if stopped == 0 {
		t.Errorf("every bronze guest still runs without site %s: %v", dark, placements)
	}
}

// waitNoneAt waits until the site, back after revision since, has reported
// its hosts, and checks that it runs none of the guests: by its report,
// by `zdt status` and by asking its libvirtd. The gold guests still run
// once, elsewhere.
// waitNoneRunningAt waits until the site has reported its hosts since
// revision since, running no guest.
func (g *labGuests) waitNoneRunningAt(ctx context.Context, t *testing.T, cli *clientv3.Client, name string, since int64) {
	t.Helper()
	if g.cfg == nil {
		return
	}
	g.waitUntil(ctx, t, cli, "site "+name+" runs no guest", func() ([]string, error) {
		return g.reportedRunning(ctx, cli, name, since)
	})
}

// reportedRunning says what the site's hosts report, if written since
// revision since, lists running; or that there is no such report.
func (g *labGuests) reportedRunning(ctx context.Context, cli *clientv3.Client, name string, since int64) ([]string, error) {
	resp, err := cli.Txn(ctx).Then(clientv3.OpGet(g.keys.Hosts(name)),
		clientv3.OpGet(g.keys.SiteHostPrefix(name), clientv3.WithPrefix())).Commit()
	if err != nil {
		return nil, err
	}
	// The header is written after the host records.
	header := resp.Responses[0].GetResponseRange().Kvs
	if len(header) == 0 || header[0].ModRevision <= since {
		return []string{fmt.Sprintf("no hosts report of site %s since revision %d", name, since)}, nil
	}
	var wrong []string
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		var h site.HostReport
		if err := json.Unmarshal(kv.Value, &h); err != nil {
			return nil, fmt.Errorf("host record %s: %w", kv.Key, err)
		}
		for _, running := range h.Running {
			wrong = append(wrong, fmt.Sprintf("site %s reports guest %s running on %s", name, running.Name, h.Name))
		}
	}
	return wrong, nil
}

func (g *labGuests) waitNoneAt(ctx context.Context, t *testing.T, cli *clientv3.Client, name string, since int64) {
	t.Helper()
	if g.cfg == nil {
		return
	}
	s, _ := g.cfg.Site(name)
	hosts := map[string]bool{}
	for _, h := range s.Hosts {
		hosts[h.Name] = true
	}
	var st labStatus
	g.waitUntil(ctx, t, cli, "site "+name+" reports its hosts again", func() ([]string, error) {
		wrong, err := g.reportedRunning(ctx, cli, name, since)
		if err != nil {
			return nil, err
		}
		st = g.status(t)
		for _, gs := range st.Guests {
			for _, h := range gs.RunningOn {
				if hosts[h] {
					wrong = append(wrong, fmt.Sprintf("zdt status shows guest %s running on %s", gs.Name, h))
				}
			}
		}
		return wrong, nil
	})
	st.wantSite(t, name, "fenced")
	placements, err := g.placements(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	for _, guest := range g.cfg.Guests() {
		if guest.Tier != config.TierGold {
			continue
		}
		for _, why := range runsOnlyAt(guest.Name, placements, st) {
			t.Errorf("after site %s came back: %s", name, why)
		}
	}
	for _, h := range s.Hosts {
		hv, err := hypervisor.Dial(ctx, h.URI, hypervisor.Options{Name: h.Name})
		if err != nil {
			t.Fatal(err)
		}
		domains, err := hv.List(ctx)
		hv.Close()
		if err != nil {
			t.Fatalf("list the domains of host %s: %v", h.Name, err)
		}
		for _, d := range domains {
			if _, ours := g.guest(d.Name); ours && d.State == hypervisor.StateRunning {
				t.Errorf("host %s of fenced site %s runs guest %s", h.Name, name, d.Name)
			}
		}
	}
}

func (g *labGuests) guest(name string) (config.Guest, bool) {
	for _, guest := range g.cfg.Guests() {
		if guest.Name == name {
			return guest, true
		}
	}
	return config.Guest{}, false
}

// runsOnlyAt says what is wrong with the guest: nothing when its placement
// is running on a host and the status shows it running there and nowhere
// else.
func runsOnlyAt(name string, placements map[string]site.Placement, st labStatus) []string {
	p, ok := placements[name]
	if !ok || p.State != site.GuestRunning || p.Host == "" {
		return []string{fmt.Sprintf("%s's placement is %+v; want running on a host", name, p)}
	}
	gs, ok := st.guest(name)
	if !ok {
		return []string{fmt.Sprintf("zdt status does not list guest %s", name)}
	}
	if !slices.Equal(gs.RunningOn, []string{p.Host}) {
		return []string{fmt.Sprintf("%s is placed on %s, and zdt status shows it running on %v", name, p.Host, gs.RunningOn)}
	}
	return nil
}

// placements reads every guest's placement from etcd.
func (g *labGuests) placements(ctx context.Context, cli *clientv3.Client) (map[string]site.Placement, error) {
	resp, err := cli.Get(ctx, g.keys.Guests(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read the placements: %w", err)
	}
	out := map[string]site.Placement{}
	for _, kv := range resp.Kvs {
		var p site.Placement
		if err := json.Unmarshal(kv.Value, &p); err != nil {
			return nil, fmt.Errorf("placement %s: %w", kv.Key, err)
		}
		out[p.Guest] = p
	}
	return out, nil
}

func (g *labGuests) status(t *testing.T) labStatus {
	t.Helper()
	return tryStatus(t, g.zdt, g.l)
}

// tryStatus runs `zdt status -o json`, once more if it fails (an etcd
// leader election may cut it short).
func tryStatus(t *testing.T, zdt string, l *lab.Lab) labStatus {
	t.Helper()
	for range 2 {
		out, err := statusJSON(t, zdt, l)
		var st labStatus
		if err == nil && json.Unmarshal([]byte(out), &st) == nil {
			st.raw = string(out)
			return st
		}
	}
	return status(t, zdt, l)
}

func (g *labGuests) waitUntil(ctx context.Context, t *testing.T, cli *clientv3.Client, what string, check func() (wrong []string, err error)) {
	t.Helper()
	waitUntil(ctx, t, cli, g.keys, what, check)
}

// waitStatus waits until check finds nothing wrong with `zdt status`, and
// returns that status.
func waitStatus(ctx context.Context, t *testing.T, cli *clientv3.Client, zdt string, l *lab.Lab, what string, check func(labStatus) []string) labStatus {
	t.Helper()
	var st labStatus
	waitUntil(ctx, t, cli, site.NewKeys(l.Cluster()), what, func() ([]string, error) {
		st = tryStatus(t, zdt, l)
		return check(st), nil
	})
	return st
}

// recheckEvery bounds how long waitUntil waits for a change in etcd: some
// of what it checks (a PostgreSQL server) is not there.
const recheckEvery = time.Second

// waitUntil waits until check finds nothing wrong: it checks, and checks
// again whenever anything of the cluster changes in etcd (an etcd watch on
// the cluster's keys) or recheckEvery has passed, until ctx ends. A check
// that could not read etcd (during a leader election) is tried again at
// once.
func waitUntil(ctx context.Context, t *testing.T, cli *clientv3.Client, keys site.Keys, what string, check func() (wrong []string, err error)) {
	t.Helper()
	wrong := []string{"not checked"}
	for ctx.Err() == nil {
		rev, err := revision(ctx, cli) // before the check: no change is missed
		if err != nil {
			t.Log(err)
			continue
		}
		w, err := check()
		if err != nil {
			t.Log(err)
			continue
		}
		if wrong = w; len(wrong) == 0 {
			return
		}
		wctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), recheckEvery)
		for wr := range cli.Watch(wctx, keys.Root(), clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
			if err := wr.Err(); err != nil {
				if wctx.Err() == nil {
					t.Logf("watch %s: %v", keys.Root(), err)
				}
				break
			}
			if len(wr.Events) > 0 {
				break
			}
		}
		cancel()
	}
	t.Fatalf("waiting until %s: %v; still:\n  %s", what, ctx.Err(), strings.Join(wrong, "\n  "))
}

// revision is etcd's current revision.
func revision(ctx context.Context, cli *clientv3.Client) (int64, error) {
	resp, err := cli.Get(ctx, "/", clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("read etcd's revision: %w", err)
	}
	return resp.Header.Revision, nil
}

func readFile(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(data)
}

// labPostgres follows the lab's replication group: what `zdt status` says
// of its members, and what its servers say. Without PostgreSQL it follows
// nothing.
type labPostgres struct {
	zdt   string
	l     *lab.Lab
	group string // "": the lab has no group
}

// followPostgres returns the lab's replication group to follow. A lab
// without one is an error when PostgreSQL is installed or CI=true;
// otherwise the replication checks are left out.
func followPostgres(t *testing.T, zdt string, l *lab.Lab) *labPostgres {
	t.Helper()
	p := &labPostgres{zdt: zdt, l: l}
	_, missing := lab.FindPostgres()
	switch {
	case missing != nil && os.Getenv("CI") == "true":
		t.Errorf("CI=true: %v; the lab's replication group is not tested", missing)
	case missing != nil:
		t.Logf("%v; the lab's replication group is not tested", missing)
	case !l.HasPostgres():
		t.Errorf("PostgreSQL is installed, but the lab has no replication group:\n%s", readFile(l.ConfigPath()))
	default:
		p.group = l.PostgresGroup()
	}
	return p
}

// waitRoles waits until `zdt status` shows the group's members at the
// given sites in the given roles, the primary writable and the standbys
// healthy, and no other member a primary (the others' sites are dark).
func (p *labPostgres) waitRoles(ctx context.Context, t *testing.T, cli *clientv3.Client, want map[string]string) {
	t.Helper()
	if p.group == "" {
		return
	}
	waitStatus(ctx, t, cli, p.zdt, p.l, fmt.Sprintf("group %s's members are %v", p.group, want), func(st labStatus) []string {
		i := slices.IndexFunc(st.Replication, func(g groupStatus) bool { return g.Group == p.group })
		if i < 0 {
			return []string{"zdt status does not list group " + p.group}
		}
		var wrong []string
		primaries := 0
		for _, m := range st.Replication[i].Members {
			if m.Role == "primary" {
				primaries++
			}
			role, ok := want[m.Site]
			switch {
			case !ok && m.Role == "primary":
				wrong = append(wrong, fmt.Sprintf("site %s's member is a primary too (%s)", m.Site, m.Detail))
			case !ok:
			case m.Role != role || !m.Healthy || (role == "primary") != m.Writable:
				wrong = append(wrong, fmt.Sprintf("site %s's member is %s (healthy %t, writable %t: %s); want a healthy %s",
					m.Site, m.Role, m.Healthy, m.Writable, m.Detail, role))
			}
		}
		if primaries > 1 {
			wrong = append(wrong, fmt.Sprintf("%d primaries", primaries))
		}
		return wrong
	})
}

// write writes a row on the site's server: it must be a writable primary.
func (p *labPostgres) write(ctx context.Context, t *testing.T, site, value string) {
	t.Helper()
	if p.group == "" {
		return
	}
	c := p.connect(ctx, t, site)
	defer c.Close(context.WithoutCancel(ctx))
	for _, q := range []string{
		"CREATE TABLE IF NOT EXISTS lab_probe (value text PRIMARY KEY)",
		"INSERT INTO lab_probe VALUES ('" + value + "')",
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("site %s's PostgreSQL: %s: %v", site, q, err)
		}
	}
}

// switchBack runs zdt switchover of service svc (which uses the lab's
// group) to site to while a prober writes to every member every 10 ms, and
// checks that the op succeeded, that no two members took writes at once,
// and that the new primary holds every write that was acknowledged; it
// logs the write outage the prober saw.
func (p *labPostgres) switchBack(ctx context.Context, t *testing.T, cli *clientv3.Client, svc, to string) {
	t.Helper()
	if p.group == "" {
		run(t, p.zdt, "switchover", "--service", svc, "--to", to, "--config", p.l.ConfigPath(), "--wait", "--timeout", "60s")
		return
	}
	conns := postgresConns(t, p.l)
	h := newHistory()
	pctx, stop := context.WithCancel(ctx)
	began := time.Now()
	writers := probeWrites(pctx, h, conns, 10*time.Millisecond)
	waitUntil(ctx, t, cli, site.NewKeys(p.l.Cluster()), "the prober's writes to land", func() ([]string, error) {
		if len(h.keys("writes", began)) < 20 {
			return []string{"fewer than 20 acknowledged writes"}, nil
		}
		return nil, nil
	})
	asked := time.Now()
	out, err := exec.CommandContext(ctx, p.zdt, "switchover", "--service", svc, "--to", to, "--config", p.l.ConfigPath(), "--wait", "--timeout", "60s").CombinedOutput()
	took := time.Since(asked)
	if err != nil || !strings.Contains(string(out), "succeeded") {
		stop()
		writers.Wait()
		t.Fatalf("zdt switchover --service %s --to %s: %v\n%s", svc, to, err, out)
	}
	// Writes go on at the new primary for a moment.
	n := len(h.keys("writes", began))
	waitUntil(ctx, t, cli, site.NewKeys(p.l.Cluster()), "writes at the new primary", func() ([]string, error) {
		if len(h.keys("writes", began)) < n+20 {
			return []string{"fewer than 20 more acknowledged writes"}, nil
		}
		return nil, nil
	})
	stop()
	writers.Wait()
	if problems, longest := h.overlaps("writes"); len(problems) > 0 {
		t.Errorf("two members took writes at once (longest %s): %q", longest, problems)
	}
	if got := h.sites("writes"); len(got) == 0 || got[len(got)-1] != to {
		t.Errorf("the writes were taken at %v; want at %s last", got, to)
	}
	acked := h.keys("writes", began)
	c := p.connect(ctx, t, to)
	defer c.Close(context.WithoutCancel(ctx))
	var missing int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM unnest($1::text[]) AS a(v) WHERE NOT EXISTS (SELECT 1 FROM lab_probe p WHERE p.value = a.v)`, acked).Scan(&missing); err != nil {
		t.Fatal(err)
	}
	if missing != 0 {
		t.Errorf("%d of %d acknowledged writes are missing at the new primary %s", missing, len(acked), to)
	}
	writable := h.firstAt("writes", to, asked)
	if writable.IsZero() {
		t.Fatalf("no write was acknowledged at %s after the switchover", to)
	}
	t.Logf("figures: switchover of %s to %s: writable at the new primary after %s, command (op ended) %s, write outage %s, %d acknowledged writes, none lost",
		svc, to, writable.Sub(asked).Round(time.Millisecond), took.Round(time.Millisecond), h.gap("writes").Round(time.Millisecond), len(acked))
}

// waitRow waits until the site's server has the row (a standby has
// replayed it).
func (p *labPostgres) waitRow(ctx context.Context, t *testing.T, site, value string) {
	t.Helper()
	if p.group == "" {
		return
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		n, err := p.count(ctx, site, value)
		if err == nil && n == 1 {
			return
		}
		last = fmt.Sprintf("%d rows (%v)", n, err)
		select {
		case <-ctx.Done():
			t.Fatalf("site %s's PostgreSQL does not have row %q: %s", site, value, last)
		case <-tick.C:
		}
	}
}

func (p *labPostgres) count(ctx context.Context, site, value string) (int, error) {
	conn, err := p.l.PostgresConnString(site)
	if err != nil {
		return 0, err
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(qctx, conn)
	if err != nil {
		return 0, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	var n int
	err = c.QueryRow(qctx, "SELECT count(*) FROM lab_probe WHERE value = $1", value).Scan(&n)
	return n, err
}

func (p *labPostgres) connect(ctx context.Context, t *testing.T, site string) *pgx.Conn {
	t.Helper()
	conn, err := p.l.PostgresConnString(site)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, conn)
	if err != nil {
		t.Fatalf("connect to site %s's PostgreSQL: %v", site, err)
	}
	return c
}

// statusJSON runs zdt status -o json. Its exit status says the cluster's
// health (3 degraded, 4 down): those are answers, not errors.
// logStatus logs zdt status (the table, GROUP notes included) of a lab
// that may be in trouble: whatever it says within 20s.
func logStatus(t *testing.T, zdt string, l *lab.Lab) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, zdt, "status", "--config", l.ConfigPath()).CombinedOutput()
	t.Logf("zdt status at the failure (%v):\n%s", err, out)
}

func statusJSON(t *testing.T, zdt string, l *lab.Lab) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, zdt, "status", "--config", l.ConfigPath(), "-o", "json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && (exit.ExitCode() == 3 || exit.ExitCode() == 4) {
		err = nil
	}
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}
