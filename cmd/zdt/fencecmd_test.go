package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/sitetest"
)

// fenceTestCluster starts etcd for sites a, b and c, writes a config file
// for it and fences site c as a coordinator at a would.
func fenceTestCluster(t *testing.T, requireConfirmation bool) (*site.Store, string) {
	t.Helper()
	cl := sitetest.New(t, sitetest.Options{})
	var b strings.Builder
	fmt.Fprintf(&b, "cluster: %s\nsites:\n", cl.Config.Name)
	for _, s := range cl.Config.Sites {
		fmt.Fprintf(&b, "  - {name: %s, api: %q, etcd: {client_url: %q, peer_url: %q}}\n", s.Name, s.API, s.Etcd.ClientURL, s.Etcd.PeerURL)
	}
	b.WriteString("services:\n  - {name: web, sites: [a, b, c], prefixes: [203.0.113.0/26]}\n")
	fmt.Fprintf(&b, "fencing: {require_confirmation: %t}\n", requireConfirmation)
	path := filepath.Join(t.TempDir(), "zdt.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	store := site.NewStore(cl.Client(), cl.Config.Name)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	sess, err := concurrency.NewSession(store.Client(), concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	prefix := strings.TrimSuffix(store.Keys().Election(), "/")
	el := concurrency.NewElection(sess, prefix)
	if err := el.Campaign(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	g := site.Guard{Key: el.Key(), Rev: el.Rev()}
	fence := site.Fence{Site: "c", Op: "op-1", By: "a", At: time.Date(2026, 12, 2, 3, 13, 0, 0, time.UTC), Reason: "lease expired"}
	if _, err := store.FenceSite(ctx, g, fence); err != nil {
		t.Fatal(err)
	}
	return store, path
}

func TestFenceConfirm(t *testing.T) {
	t.Setenv("USER", "ann")
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	who := "operator:ann@" + host
	store, path := fenceTestCluster(t, true)
	fenceOf := func(s string) site.Fence {
		t.Helper()
		f, err := store.Fence(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}

	_, err = runZDT(t, "fence", "confirm", "--config", path, "--site", "d")
	if err == nil || !strings.Contains(err.Error(), `--site "d": unknown site (sites are a, b, c)`) {
		t.Errorf("confirm an unknown site: %v", err)
	}
	_, err = runZDT(t, "fence", "confirm", "--config", path, "--site", "b")
	if !errors.Is(err, site.ErrNotFenced) || !strings.Contains(err.Error(), "confirm applies only to a site a failover has fenced") {
		t.Errorf("confirm a site that is not fenced: %v, want ErrNotFenced saying when confirm applies", err)
	}
	if _, err := runZDT(t, "fence", "confirm", "--config", path, "--site", "c", "-o", "yaml"); err == nil || !strings.Contains(err.Error(), `-o "yaml": want table or json`) || exitCode(err) != 2 {
		t.Errorf("confirm -o yaml: %v; want exit status 2, a usage error", err)
	}
	if _, err := runZDT(t, "fence", "confirm", "--config", path, "--site", "x"); err == nil || !strings.Contains(err.Error(), `--site "x": unknown site`) || exitCode(err) != 2 {
		t.Errorf("confirm --site x: %v; want exit status 2, a usage error", err)
	}

	out, err := runZDT(t, "fence", "confirm", "--config", path, "--site", "c", "--dry-run")
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	for _, want := range []string{
		"dry run: would confirm that site c is dark, as " + who + "; nothing changed",
		"fence: by op op-1 of coordinator a at 2026-12-02T03:13:00Z: lease expired",
		"a failover waiting for this confirmation (fencing.require_confirmation) could then take over the resources of site c it could not fence",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run does not say\n  %s\ngot:\n%s", want, out)
		}
	}
	if f := fenceOf("c"); f.Confirmed != nil {
		t.Fatalf("the dry run confirmed the fence: %+v", f.Confirmed)
	}

	before := time.Now()
	out, err = runZDT(t, "fence", "confirm", "--config", path, "--site", "c")
	if err != nil {
		t.Fatalf("confirm: %v\n%s", err, out)
	}
	f := fenceOf("c")
	if f.Confirmed == nil || f.Confirmed.By != who || f.Confirmed.At.Before(before.Add(-time.Second)) {
		t.Fatalf("fence after confirm: %+v; want confirmed by %s", f.Confirmed, who)
	}
	for _, want := range []string{
		"confirmed that site c is dark, as " + who + " at " + f.Confirmed.At.UTC().Format(time.RFC3339),
		"a failover waiting for this confirmation (fencing.require_confirmation) may now take over the resources of site c it could not fence",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("confirm does not say\n  %s\ngot:\n%s", want, out)
		}
	}

	// Again, for a script: nothing changes, the first confirmation stands.
	t.Setenv("USER", "bob")
	out, err = runZDT(t, "fence", "confirm", "--config", path, "--site", "c", "-o", "json")
	if err != nil {
		t.Fatalf("confirm again: %v\n%s", err, out)
	}
	var res struct {
		Site   string     `json:"site"`
		Action string     `json:"action"`
		DryRun bool       `json:"dry_run"`
		Who    string     `json:"who"`
		Fence  site.Fence `json:"fence"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	if res.Site != "c" || res.Action != "already-confirmed" || res.DryRun || res.Who != "operator:bob@"+host ||
		res.Fence.Confirmed == nil || res.Fence.Confirmed.By != who {
		t.Errorf("confirm again: %+v; want already confirmed by %s", res, who)
	}
	if got := fenceOf("c"); got.Confirmed == nil || !got.Confirmed.At.Equal(f.Confirmed.At) || got.Confirmed.By != who {
		t.Errorf("fence after a second confirm: %+v", got.Confirmed)
	}
}

// TestFenceConfirmWithoutRequireConfirmation: the confirmation is recorded,
// and the output says no failover waits for it; a site that holds a lease
// again is confirmed with a warning.
func TestFenceConfirmWithoutRequireConfirmation(t *testing.T) {
	store, path := fenceTestCluster(t, false)
	lease, err := store.Client().Grant(t.Context(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Join(t.Context(), lease.ID, site.Alive{Site: "c"}, site.Registration{Site: "c"}); err != nil {
		t.Fatal(err)
	}
	out, err := runZDT(t, "fence", "confirm", "--config", path, "--site", "c")
	if err != nil {
		t.Fatalf("confirm: %v\n%s", err, out)
	}
	for _, want := range []string{
		"warning: site c holds a lease again: its controller is back and converges to its fence by itself",
		"fencing.require_confirmation is off: no failover waits for this; it is recorded in the fence",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("confirm does not say\n  %s\ngot:\n%s", want, out)
		}
	}
	if f, err := store.Fence(t.Context(), "c"); err != nil || f.Confirmed == nil || f.Confirmed.By != operatorName() {
		t.Errorf("fence after confirm: %+v, %v", f, err)
	}
}

func TestOperatorName(t *testing.T) {
	host, _ := os.Hostname()
	t.Setenv("USER", "ann")
	if got := operatorName(); got != "operator:ann@"+host {
		t.Errorf("operatorName with USER=ann: %q", got)
	}
	t.Setenv("USER", "")
	if got, want := operatorName(), "operator:"+strconv.Itoa(os.Getuid())+"@"+host; got != want {
		t.Errorf("operatorName without USER: %q, want %q", got, want)
	}
}
