package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/e2e/lab"
	"github.com/zdt-project/zdt/site"
)

// TestLabSiteFailover runs `zdt lab`, takes site a dark and checks that the
// cluster fences it and moves its service to b, that a stays fenced when it
// comes back, and that `zdt lab stop` leaves no process behind.
func TestLabSiteFailover(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("-short: skips building zdt and running a three-site lab")
	}
	zdt := buildZDT(t)
	dir := t.TempDir()
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
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

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

	// a comes back with its data: it stays fenced until a failback.
	run(t, zdt, "lab", "site", "a", "up", "--dir", dir)
	st = status(t, zdt, l)
	st.wantSite(t, "a", "fenced")
	st.wantService(t, "web", "b")

	// stop leaves no process behind.
	var pids []int
	for _, name := range l.SiteNames() {
		if pid, ok := l.Running(name); ok {
			pids = append(pids, pid)
		} else {
			t.Errorf("site %s does not run before zdt lab stop", name)
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
func buildZDT(t *testing.T) string {
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

// stopLab stops whatever is left of the lab, and on failure shows the end
// of every controller's log.
func stopLab(t *testing.T, zdt, dir string) {
	l, err := lab.Open(dir, lab.Options{Binary: zdt})
	if err != nil {
		return // the lab was never created
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
		data, err := os.ReadFile(l.LogPath(name))
		if err != nil {
			continue
		}
		if len(data) > 8<<10 {
			data = data[len(data)-8<<10:]
		}
		t.Logf("the end of %s:\n%s", l.LogPath(name), data)
	}
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
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"sites"`
	Services []struct {
		Name   string `json:"name"`
		Active string `json:"active"`
		Epoch  int64  `json:"epoch"`
	} `json:"services"`
	raw string
}

func status(t *testing.T, zdt string, l *lab.Lab) labStatus {
	t.Helper()
	out := run(t, zdt, "status", "--config", l.ConfigPath(), "-o", "json")
	var st labStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("zdt status -o json: %v\n%s", err, out)
	}
	st.raw = out
	return st
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
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return []string{fmt.Sprintf("read /proc: %v", err)}
	}
	var live []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(stat), ')')
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 3 || fields[0] == "Z" || fields[0] == "X" {
			continue
		}
		if g, err := strconv.Atoi(fields[2]); err == nil && g == pgid {
			live = append(live, fmt.Sprintf("%d %s", pid, stat[:i+1]))
		}
	}
	return live
}
