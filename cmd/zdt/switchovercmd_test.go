package main

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/zdt-project/zdt/site"
)

// webAtA is an ops test cluster whose three sites are up, reporting
// themselves up, with web at a, asked for by operator ann; put writes a
// record as JSON.
func webAtA(t *testing.T) (*site.Store, string, func(key string, v any)) {
	store, path, _ := opsTestCluster(t)
	t.Setenv("USER", "ann")
	put := func(key string, v any) {
		t.Helper()
		b, _ := json.Marshal(v)
		if _, err := store.Client().Put(t.Context(), key, string(b)); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"a", "b", "c"} {
		put(store.Keys().Alive(s), site.Alive{Site: s})
		put(store.Keys().Report(s), site.Report{Site: s, State: site.ControllerUp})
	}
	put(store.Keys().Assignment("web"), site.Assignment{Service: "web", Site: "a", Op: "op-0"})
	return store, path, put
}

// TestSwitchoverCommand: the command's dry run changes nothing in etcd (its
// revision stays), a request is journaled for the coordinator, and a second
// command on the same service is refused naming the first op and who asked;
// bad arguments are usage errors.
func TestSwitchoverCommand(t *testing.T) {
	store, path, _ := webAtA(t)
	host, _ := os.Hostname()
	ctx := t.Context()
	rev := func() int64 {
		t.Helper()
		resp, err := store.Client().Get(ctx, "zdt-revision-probe")
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}

	for _, args := range [][]string{
		{"switchover", "--to", "b", "--config", path},
		{"switchover", "--service", "web", "--site", "a", "--to", "b", "--config", path},
		{"switchover", "--site", "a", "--to", "a", "--config", path},
		{"switchover", "--service", "web", "--to", "x", "--config", path},
		{"switchover", "--service", "dns", "--to", "b", "--config", path},
		{"switchover", "--service", "web", "--to", "b", "--promote-within", "-1s", "--config", path},
	} {
		before := rev()
		out, err := runZDT(t, args...)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("zdt %s: %v, want a usage error (exit status 2)\n%s", strings.Join(args, " "), err, out)
		}
		if after := rev(); after != before {
			t.Errorf("zdt %s changed etcd: revision %d, then %d", strings.Join(args, " "), before, after)
		}
	}

	before := rev()
	out, err := runZDT(t, "switchover", "--service", "web", "--to", "b", "--config", path, "--dry-run")
	if err != nil || !strings.Contains(out, "switchover of service web may run") || !strings.Contains(out, "assign           web (a to b)") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if after := rev(); after != before {
		t.Errorf("--dry-run changed etcd: revision %d, then %d", before, after)
	}

	out, err = runZDT(t, "switchover", "--service", "web", "--to", "b", "--config", path, "-o", "json")
	if err != nil {
		t.Fatalf("request: %v\n%s", err, out)
	}
	var res opRequest
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Op == nil || res.Op.Kind != "switchover" || res.Service != "web" {
		t.Fatalf("request's JSON: %v\n%s", err, out)
	}
	if op, err := store.Op(ctx, res.Op.ID); err != nil || op.Who != "operator:ann@"+host {
		t.Fatalf("journaled op: %+v, %v", op, err)
	}

	out, err = runZDT(t, "switchover", "--service", "web", "--to", "c", "--config", path)
	want := "op " + res.Op.ID + " (switchover, by operator:ann@" + host + ") is still running for service web: one op at a time"
	if !errors.Is(err, errNotNow) || !strings.Contains(out, want) {
		t.Errorf("a second switchover of web: %v, want it refused with %q\n%s", err, want, out)
	}
	out, err = runZDT(t, "evacuate", "--site", "a", "--config", path, "--dry-run")
	if !errors.Is(err, errNotNow) || !strings.Contains(out, "is still running for site a") {
		t.Errorf("an evacuation of a while web's switchover runs: %v\n%s", err, out)
	}
	out, err = runZDT(t, "undrain", "--site", "c", "--config", path)
	if !errors.Is(err, errNotNow) || !strings.Contains(out, "site c is not drained: there is nothing to undrain") {
		t.Errorf("undrain of a site that is not drained: %v\n%s", err, out)
	}
}

// TestConflictingCommandsAtOnce: two switchovers of one service asked at
// the same moment: one is journaled, the other is refused naming it.
func TestConflictingCommandsAtOnce(t *testing.T) {
	store, path, put := webAtA(t)
	ctx := t.Context()

	type result struct {
		out string
		err error
	}
	const rounds = 5
	for round := range rounds {
		// Each round moves web on from where the last one left it.
		snap, err := store.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		from := snap.Assignments["web"].Site
		for _, op := range snap.UnfinishedOps() { // finish the last round's op
			op.Outcome = site.OpSucceeded
			put(store.Keys().Op(op.ID), op)
		}
		results := make(chan result, 2)
		start := make(chan struct{})
		for _, to := range []string{"b", "c"} {
			if to == from {
				to = "a"
			}
			go func() {
				<-start
				out, err := runZDT(t, "switchover", "--service", "web", "--to", to, "--config", path, "-o", "json")
				results <- result{out, err}
			}()
		}
		close(start)
		var won []opRequest
		var refused []result
		for range 2 {
			r := <-results
			if r.err == nil {
				var res opRequest
				if err := json.Unmarshal([]byte(r.out), &res); err != nil {
					t.Fatalf("round %d: %v\n%s", round, err, r.out)
				}
				won = append(won, res)
			} else {
				refused = append(refused, r)
			}
		}
		if len(won) != 1 || len(refused) != 1 {
			t.Fatalf("round %d: %d commands journaled an op, %d were refused; want one each: %+v %+v", round, len(won), len(refused), won, refused)
		}
		want := "op " + won[0].Op.ID + " (switchover, by operator:ann@"
		if !errors.Is(refused[0].err, errNotNow) || !strings.Contains(refused[0].out, want) {
			t.Errorf("round %d: the other command: %v, want it refused naming %s\n%s", round, refused[0].err, won[0].Op.ID, refused[0].out)
		}
		snap, err = store.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if open := snap.UnfinishedOps(); len(open) != 1 || open[0].ID != won[0].Op.ID {
			t.Fatalf("round %d: unfinished ops %d; want only %s", round, len(open), won[0].Op.ID)
		}
		// The coordinator would move web; here the test does.
		put(store.Keys().Assignment("web"), site.Assignment{Service: "web", Site: won[0].Op.Params["to"], Op: won[0].Op.ID})
	}
}
