package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/zdt-project/zdt/site"
)

// TestStatusWatch: zdt status -w -o json writes the status as one JSON
// object per line at each interval, shows a change in etcd without being
// run again, and ends cleanly when stopped.
func TestStatusWatch(t *testing.T) {
	store, path := fenceTestCluster(t, true)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, done := startZDT(ctx, "status", "-w", "--interval", "50ms", "-o", "json", "--config", path)

	fence := func(line string) *site.Fence {
		var st site.Status
		if err := json.Unmarshal([]byte(line), &st); err != nil || len(st.Sites) != 3 {
			t.Fatalf("a line of zdt status -w -o json: %v\n%s", err, line)
		}
		return st.Sites[2].Fence
	}
	for _, line := range readLines(t, pr, 2) {
		if f := fence(line); f == nil || f.Confirmed != nil {
			t.Fatalf("site c's fence %+v; want it unconfirmed", f)
		}
	}
	if _, err := store.ConfirmFence(t.Context(), "c", "operator:ann@noc1"); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ { // lines read before the confirmation may be queued
		if f := fence(readLines(t, pr, 1)[0]); f != nil && f.Confirmed != nil {
			break
		}
		if i == 20 {
			t.Fatal("zdt status -w never showed the fence confirmed")
		}
	}
	cancel()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if err := <-done; err != nil {
		t.Errorf("zdt status -w stopped: %v; want no error", err)
	}
	if _, err := runZDT(t, "status", "-w", "--interval", "0s", "--config", path); exitCode(err) != 2 {
		t.Errorf("zdt status -w --interval 0s: %v; want a usage error", err)
	}
}

// TestStatusFilterFlags: zdt status refuses an unknown name before it
// writes anything; the filters change what it shows, not its exit status;
// -o json and -w honour them.
func TestStatusFilterFlags(t *testing.T) {
	_, path := fenceTestCluster(t, true)
	for _, args := range [][]string{{"--service", "db"}, {"--site", "a,x"}, {"--site", "a", "--site", "x", "-o", "json"}} {
		out, err := runZDT(t, append([]string{"status", "--config", path}, args...)...)
		if exitCode(err) != 2 || out != "" || !strings.Contains(err.Error(), "unknown") {
			t.Errorf("zdt status %s: %v (exit %d), output %q; want a usage error and nothing written", strings.Join(args, " "), err, exitCode(err), out)
		}
	}
	_, err := runZDT(t, "status", "--config", path)
	want := exitCode(err)
	if want != exitDown && want != exitDegraded {
		t.Fatalf("zdt status of a cluster with a fenced site: %v (exit %d); want it degraded or down", err, want)
	}
	for _, args := range [][]string{{"--site", "a"}, {"--service", "web", "--problems"}, {"--problems", "-o", "json"}, {"--all"}, {"--full"}} {
		if _, err := runZDT(t, append([]string{"status", "--config", path}, args...)...); exitCode(err) != want {
			t.Errorf("zdt status %s: exit %d (%v), want %d as without filters", strings.Join(args, " "), exitCode(err), err, want)
		}
	}
	out, _ := runZDT(t, "status", "--config", path, "-o", "json", "--site", "c")
	var st site.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Sites) != 1 || st.Sites[0].Name != "c" {
		t.Errorf("zdt status -o json --site c: %v\n%s\nwant site c alone", err, out)
	}
	out, _ = runZDT(t, "status", "--config", path, "--service", "web")
	if !strings.Contains(out, "\nSERVICE ") || !strings.Contains(out, "\nweb ") {
		t.Errorf("zdt status --service web:\n%s\nwant the service listed", out)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, done := startZDT(ctx, "status", "-w", "--interval", "50ms", "-o", "json", "--site", "c", "--config", path)
	for _, line := range readLines(t, pr, 2) {
		if err := json.Unmarshal([]byte(line), &st); err != nil || len(st.Sites) != 1 || st.Sites[0].Name != "c" {
			t.Errorf("a line of zdt status -w -o json --site c: %v\n%s\nwant site c alone", err, line)
		}
	}
	cancel()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if err := <-done; err != nil {
		t.Errorf("zdt status -w --site c stopped: %v; want no error", err)
	}
}

// startZDT runs zdt with args until ctx ends; it returns what zdt writes
// (both streams), closed when zdt returns, and where its error comes.
func startZDT(ctx context.Context, args ...string) (*io.PipeReader, <-chan error) {
	pr, pw := io.Pipe()
	cmd := newRootCommand()
	cmd.SetOut(pw)
	cmd.SetErr(pw)
	cmd.SetArgs(args)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx); pw.Close() }()
	return pr, done
}
