package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

	if _, err := runZDT(t, "config", "check", filepath.Join(dir, "missing.yaml")); err == nil || exitCode(err) != 1 {
		t.Errorf("check of a missing file: %v", err)
	}
}

func TestStatusFlags(t *testing.T) {
	if _, err := runZDT(t, "status", "--config", "x.yaml", "-o", "yaml"); err == nil || !strings.Contains(err.Error(), `-o "yaml": want table or json`) {
		t.Errorf("status -o yaml: %v", err)
	}
	if _, err := runZDT(t, "controller", "--config", "x.yaml"); err == nil || !strings.Contains(err.Error(), `"site" not set`) {
		t.Errorf("controller without --site: %v", err)
	}
}
