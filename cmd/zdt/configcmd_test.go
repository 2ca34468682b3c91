package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zdt-project/zdt/replication/postgres/pgtest"
)

func runZDT(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	sites := `sites:
  - {name: a, api: "127.0.0.1:7001", etcd: {client_url: "http://127.0.0.1:2001", peer_url: "http://127.0.0.1:3001"}}
  - {name: b, api: "127.0.0.1:7002", etcd: {client_url: "http://127.0.0.1:2002", peer_url: "http://127.0.0.1:3002"}}
  - {name: c, api: "127.0.0.1:7003", etcd: {client_url: "http://127.0.0.1:2003", peer_url: "http://127.0.0.1:3003"}}
`
	if err := os.WriteFile(good, []byte("cluster: t\n"+sites+"services:\n  - {name: web, sites: [a, b], prefixes: [203.0.113.0/24]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("cluster: t\n"+sites+"services:\n  - {name: web, sites: [a, d], prefixes: [203.0.113.1/24]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	out, err := runZDT(t, "config", "check", good)
	if err != nil || !strings.Contains(out, "ok: cluster t, 3 sites, 1 services") {
		t.Errorf("check of a good config: %v\n%s", err, out)
	}

	_, err = runZDT(t, "config", "check", bad)
	if err == nil {
		t.Fatal("check of a bad config passed")
	}
	if code := exitCode(err); code != 2 {
		t.Errorf("exit status %d, want 2", code)
	}
	for _, want := range []string{
		bad + `:7: services[0].sites[1]: unknown site "d" (sites are a, b, c)`,
		bad + `:7: services[0].prefixes[0]: "203.0.113.1/24" has host bits set; did you mean 203.0.113.0/24?`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems do not say\n  %s\ngot:\n%s", want, err)
		}
	}
}

// TestUnreadableConfig: every command that reads the cluster config says
// which file it cannot read and why, with exit status 2 as for problems in
// the file.
func TestUnreadableConfig(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")
	notFound := missing + ": cannot read the cluster config: no such file or directory; check the path"
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
		code int
	}{
		{"config check", []string{"config", "check", missing}, notFound, 2},
		{"config check of a relative path", []string{"config", "check", "no-such-dir/zdt.yaml"},
			"no-such-dir/zdt.yaml: cannot read the cluster config: no such file or directory; check the path, which is relative to the working directory " + wd, 2},
		{"config check of a directory", []string{"config", "check", dir}, dir + ": cannot read the cluster config: is a directory", 2},
		{"config check of an empty path", []string{"config", "check", ""},
			"no cluster config file given: give --config FILE, set ZDT_CONFIG, or install it as /etc/zdt/zdt.yaml", 2},
		{"status", []string{"status", "--config", missing}, notFound, 2},
		{"controller", []string{"controller", "--config", missing, "--site", "a"}, notFound, 2},
		{"controller without --site", []string{"controller", "--config", missing}, `required flag(s) "site" not set`, 2},
		{"observer", []string{"observer", "--config", missing}, notFound, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runZDT(t, tc.args...)
			if err == nil || err.Error() != tc.want || exitCode(err) != tc.code {
				t.Errorf("zdt %s: %v (exit status %d)\nwant: %s (exit status %d)", strings.Join(tc.args, " "), err, exitCode(err), tc.want, tc.code)
			}
		})
	}
}

func TestStatusFlags(t *testing.T) {
	if _, err := runZDT(t, "status", "--config", "x.yaml", "-o", "yaml"); err == nil || !strings.Contains(err.Error(), `-o "yaml": want table or json`) || exitCode(err) != 2 {
		t.Errorf("status -o yaml: %v; want exit status 2, a usage error", err)
	}
	if _, err := runZDT(t, "controller", "--config", "x.yaml"); err == nil || !strings.Contains(err.Error(), `"site" not set`) {
		t.Errorf("controller without --site: %v", err)
	}
}

// TestConfigCheckProbesMembers: a valid config's PostgreSQL members are
// probed; one that cannot be rewound is warned about, one that cannot be
// reached is noted, and neither changes the exit status.
func TestConfigCheckProbesMembers(t *testing.T) {
	g := pgtest.Start(t, 1, pgtest.Options{Conf: []string{"wal_log_hints = off"}})
	s := g.Members[0]
	dir := t.TempDir()
	path := filepath.Join(dir, "zdt.yaml")
	data := `cluster: t
sites:
  - {name: a, api: "127.0.0.1:7001", etcd: {client_url: "http://127.0.0.1:2001", peer_url: "http://127.0.0.1:3001"}}
  - {name: b, api: "127.0.0.1:7002", etcd: {client_url: "http://127.0.0.1:2002", peer_url: "http://127.0.0.1:3002"}}
  - {name: c, api: "127.0.0.1:7003", etcd: {client_url: "http://127.0.0.1:2003", peer_url: "http://127.0.0.1:3003"}}
services:
  - {name: db, sites: [a, b], prefixes: [203.0.113.0/24], replication_group: pg}
replication:
  groups:
    - name: pg
      driver: postgres
      members:
        - {site: a, conn: "` + s.ConnString + `", replication_conn: "host=127.0.0.1 port=1 user=r"}
        - {site: b, conn: "host=127.0.0.1 port=1 user=zdt dbname=postgres connect_timeout=2", replication_conn: "host=127.0.0.1 port=1 user=r"}
`
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runZDT(t, "config", "check", path)
	if err != nil {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	for _, want := range []string{
		"warning: " + path + ": replication group pg, member at site a: neither wal_log_hints nor data checksums are on",
		"note: " + path + ": replication group pg, member at site b: not checked, cannot reach it",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config check does not say\n  %s\ngot:\n%s", want, out)
		}
	}
	out, err = runZDT(t, "config", "check", "--offline", path)
	if err != nil || strings.Contains(out, "warning") || strings.Contains(out, "note") {
		t.Errorf("config check --offline: %v\n%s", err, out)
	}
}
