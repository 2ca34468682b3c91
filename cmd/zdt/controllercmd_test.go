package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A controller does not start on a config that would run etcd and the API
// in plaintext, unless the config says insecure_plaintext; it starts
// nothing before it says so.
func TestControllerRefusesPlaintext(t *testing.T) {
	dir := t.TempDir()
	path := writePlainConfig(t, dir)
	_, err := runZDT(t, "controller", "--config", path, "--site", "a", "--embed-etcd", filepath.Join(dir, "etcd"))
	want := "no TLS on etcd (http://127.0.0.1:2001, http://127.0.0.1:2002, http://127.0.0.1:2003), the API of site a (http://127.0.0.1:7001)"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "insecure_plaintext: true") {
		t.Fatalf("zdt controller on a plaintext config: %v; want a refusal naming\n  %s\nand insecure_plaintext", err, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "etcd")); !os.IsNotExist(err) {
		t.Errorf("the refused controller made its etcd directory: %v", err)
	}
}

// writePlainConfig writes DIR/zdt.yaml: three sites on loopback, nothing
// listening, no TLS anywhere. It returns its path.
func writePlainConfig(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "zdt.yaml")
	if err := os.WriteFile(path, []byte(`cluster: t
sites:
  - {name: a, api: "127.0.0.1:7001", etcd: {client_url: "http://127.0.0.1:2001", peer_url: "http://127.0.0.1:3001"}}
  - {name: b, api: "127.0.0.1:7002", etcd: {client_url: "http://127.0.0.1:2002", peer_url: "http://127.0.0.1:3002"}}
  - {name: c, api: "127.0.0.1:7003", etcd: {client_url: "http://127.0.0.1:2003", peer_url: "http://127.0.0.1:3003"}}
services:
  - {name: web, sites: [a, b], prefixes: [203.0.113.0/24]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
