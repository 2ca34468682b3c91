package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/zdt-project/zdt/cmd/zdt/internal/api"
	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/sitetest"
)

var opsT0 = time.Date(2026, 12, 2, 3, 13, 0, 0, time.UTC)

func opsMS(n int) time.Time { return opsT0.Add(time.Duration(n) * time.Millisecond) }

// failoverInProgress is a failover of site c, resumed by coordinator b,
// that has moved web and is moving db.
func failoverInProgress() *site.Op {
	return &site.Op{
		ID: "20261202T031300.000Z-failover-3fa2c1", Kind: "failover", Params: map[string]string{"site": "c"},
		Who: "coordinator@a", Created: opsT0, Coordinators: []string{"a", "b"}, Outcome: site.OpRunning,
		Steps: []site.Step{
			{Name: "fence", Params: map[string]string{"site": "c"}, Status: site.StepDone, By: "a", Started: opsMS(100), Ended: opsMS(340), Detail: "site c fenced"},
			{Name: "fence-resources", Params: map[string]string{"site": "c"}, Status: site.StepDone, By: "b", Started: opsMS(2000), Ended: opsMS(2760),
				Detail: "site c: fenced from outside: member pg at c; unreachable, presumed dark: host c1",
				Resources: []site.ResourceOutcome{
					{Resource: "member pg at c", Outcome: site.FenceDone, Detail: "read-only, 3 sessions cut"},
					{Resource: "host c1", Outcome: site.FenceUnreachable, Detail: "dial tcp 10.0.3.1:16509:\n i/o timeout"},
				}},
			{Name: "assign", Params: map[string]string{"service": "web", "from": "c"}, Status: site.StepDone, By: "b", Started: opsMS(2760), Ended: opsMS(4200),
				Detail: "service web moved from site c to site a (epoch 42)"},
			{Name: "assign", Params: map[string]string{"service": "db", "from": "c"}, Status: site.StepRunning, By: "b", Started: opsMS(4200)},
			{Name: "place", Status: site.StepPending},
		},
	}
}

func TestWriteOp(t *testing.T) {
	var b strings.Builder
	if err := writeOp(&b, failoverInProgress(), opsMS(5000)); err != nil {
		t.Fatal(err)
	}
	want := `op            20261202T031300.000Z-failover-3fa2c1
kind          failover
params        site=c
who           coordinator@a
outcome       running
created       2026-12-02T03:13:00.000Z
running for   5s
coordinators  a, b

#  STEP                       STATUS   BY  STARTED       ENDED         TOOK
1  fence site=c               done     a   03:13:00.100  03:13:00.340  240ms
   site c fenced
2  fence-resources site=c     done     b   03:13:02.000  03:13:02.760  760ms
   site c: fenced from outside: member pg at c; unreachable, presumed dark: host c1
     RESOURCE        OUTCOME                     DETAIL
     member pg at c  fenced                      read-only, 3 sessions cut
     host c1         unreachable, presumed dark  dial tcp 10.0.3.1:16509: i/o timeout
3  assign from=c service=web  done     b   03:13:02.760  03:13:04.200  1.4s
   service web moved from site c to site a (epoch 42)
4  assign from=c service=db   running  b   03:13:04.200  -             800ms so far
5  place                      pending  -   -             -             -

TIMELINE of service web: RTO so far 4.2s
  MILESTONE            AT            AFTER   STATUS
  detected             03:13:00.000  +0s     reached
  fenced               03:13:00.340  +340ms  reached
  fenced from outside  03:13:02.760  +2.8s   reached
  assigned             03:13:04.200  +4.2s   reached
  guests placed        -             -       pending

TIMELINE of service db: RTO so far 2.8s
  MILESTONE            AT            AFTER   STATUS
  detected             03:13:00.000  +0s     reached
  fenced               03:13:00.340  +340ms  reached
  fenced from outside  03:13:02.760  +2.8s   reached
  assigned             -             -       running
  guests placed        -             -       pending
`
	if got := b.String(); got != want {
		t.Errorf("ops show:\n%s\nwant:\n%s", got, want)
	}

	// Ended, aborted on request, the next day.
	op := failoverInProgress()
	op.Steps[3].Status, op.Steps[3].Ended, op.Steps[3].Detail = site.StepFailed, opsT0.Add(24*time.Hour), "interrupted: aborted by operator:ann@noc1: drill"
	op.Steps[4].Status, op.Steps[4].Detail = site.StepSkipped, "not run: aborted by operator:ann@noc1: drill"
	op.Outcome, op.Ended, op.Error = site.OpAborted, opsT0.Add(24*time.Hour), "aborted by operator:ann@noc1: drill"
	op.AbortRequested = &site.Request{By: "operator:ann@noc1", At: opsT0.Add(time.Hour), Reason: "drill"}
	b.Reset()
	if err := writeOp(&b, op, opsT0.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"outcome       aborted: aborted by operator:ann@noc1: drill\n",
		"ended         2026-12-03T03:13:00.000Z (took 24h0m0s)\n",
		"abort         requested by operator:ann@noc1 at 2026-12-02T04:13:00.000Z: drill\n",
		"4  assign from=c service=db   failed   b   03:13:04.200  2026-12-03 03:13:00.000  23h59m56s\n",
		"   interrupted: aborted by operator:ann@noc1: drill\n",
		"5  place                      skipped  -   -             -                        -\n",
		"   not run: aborted by operator:ann@noc1: drill\n",
		"TIMELINE of service web: RTO so far 4.2s; the op aborted before the last milestone\n",
		"  assigned             2026-12-03 03:13:00.000  +24h0m0s  failed\n",
		"  guests placed        -                        -         skipped\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("aborted op does not say\n%s\ngot:\n%s", want, b.String())
		}
	}
}

func TestOpTimeline(t *testing.T) {
	type m struct {
		name    string
		reached bool
		after   float64
	}
	done := func(name string, ms int, p map[string]string) site.Step {
		return site.Step{Name: name, Params: p, Status: site.StepDone, Started: opsMS(ms - 10), Ended: opsMS(ms)}
	}
	svc := func(s string) map[string]string { return map[string]string{"service": s, "from": "c"} }
	tests := []struct {
		name     string
		op       *site.Op
		services []string
		want     [][]m // per service
		rto      []float64
		complete []bool
	}{
		{
			name: "failover done",
			op: &site.Op{Kind: "failover", Created: opsT0, Outcome: site.OpSucceeded, Steps: []site.Step{
				done("fence", 300, nil), done("fence-resources", 1200, nil), done("assign", 2500, svc("web")), done("place", 4000, nil),
			}},
			services: []string{"web"},
			want:     [][]m{{{"detected", true, 0}, {"fenced", true, 0.3}, {"fenced from outside", true, 1.2}, {"assigned", true, 2.5}, {"guests placed", true, 4}}},
			rto:      []float64{4},
			complete: []bool{true},
		},
		{
			name: "skipped steps are passed, unless not run",
			op: &site.Op{Kind: "failover", Created: opsT0, Outcome: site.OpAborted, Steps: []site.Step{
				done("fence", 300, nil),
				{Name: "fence-resources", Status: site.StepSkipped, Started: opsMS(300), Ended: opsMS(310), Detail: "no outside fencer configured"},
				{Name: "assign", Params: svc("web"), Status: site.StepFailed, Started: opsMS(310), Ended: opsMS(900), Detail: "interrupted"},
				{Name: "place", Status: site.StepSkipped, Detail: "not run"},
			}},
			services: []string{"web"},
			want:     [][]m{{{"detected", true, 0}, {"fenced", true, 0.3}, {"fenced from outside", true, 0.31}, {"assigned", false, 0.9}, {"guests placed", false, 0}}},
			rto:      []float64{0.31},
			complete: []bool{false},
		},
		{
			name: "two services: each its own assign step",
			op: &site.Op{Kind: "failover", Created: opsT0, Outcome: site.OpRunning, Steps: []site.Step{
				done("fence", 300, nil), done("assign", 1000, svc("db")), {Name: "assign", Params: svc("web"), Status: site.StepRunning, Started: opsMS(1000)},
				{Name: "place", Status: site.StepPending},
			}},
			services: []string{"db", "web"},
			want: [][]m{
				{{"detected", true, 0}, {"fenced", true, 0.3}, {"assigned", true, 1}, {"guests placed", false, 0}},
				{{"detected", true, 0}, {"fenced", true, 0.3}, {"assigned", false, 0}, {"guests placed", false, 0}},
			},
			rto:      []float64{1, 0.3},
			complete: []bool{false, false},
		},
		{
			name: "a declared failover",
			op: &site.Op{Kind: "failover", Params: map[string]string{"site": "c", "declared": "true"}, Created: opsT0, Outcome: site.OpRunning, Steps: []site.Step{
				done("declare", 100, nil), done("await-self-fence", 2100, nil), {Name: "fence-resources", Status: site.StepRunning, Started: opsMS(2100)},
				{Name: "assign", Params: svc("web"), Status: site.StepPending},
			}},
			services: []string{"web"},
			want:     [][]m{{{"declared", true, 0}, {"fenced", true, 0.1}, {"fenced itself", true, 2.1}, {"fenced from outside", false, 0}, {"assigned", false, 0}}},
			rto:      []float64{2.1},
			complete: []bool{false},
		},
		{
			name:     "another kind, and a step without a milestone name",
			op:       &site.Op{Kind: "bootstrap", Created: opsT0, Outcome: site.OpSucceeded, Steps: []site.Step{done("check", 100, nil), done("assign", 200, svc("web"))}},
			services: []string{"web"},
			want:     [][]m{{{"started", true, 0}, {"check", true, 0.1}, {"assigned", true, 0.2}}},
			rto:      []float64{0.2},
			complete: []bool{true},
		},
		{
			name: "no service: no timeline",
			op:   &site.Op{Kind: "placement", Created: opsT0, Outcome: site.OpSucceeded, Steps: []site.Step{done("place", 100, nil)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := failover.Timeline(tt.op)
			if len(got) != len(tt.services) {
				t.Fatalf("%d timelines, want %d: %+v", len(got), len(tt.services), got)
			}
			for i, tl := range got {
				if tl.Service != tt.services[i] || tl.Complete != tt.complete[i] || !near(tl.RTOSeconds, tt.rto[i]) {
					t.Errorf("timeline %d: service %s, complete %t, RTO %.3fs; want %s, %t, %.3fs", i, tl.Service, tl.Complete, tl.RTOSeconds, tt.services[i], tt.complete[i], tt.rto[i])
				}
				if len(tl.Milestones) != len(tt.want[i]) {
					t.Fatalf("service %s: milestones %+v; want %+v", tl.Service, tl.Milestones, tt.want[i])
				}
				for j, ms := range tl.Milestones {
					w := tt.want[i][j]
					if ms.Name != w.name || ms.Reached != w.reached || !near(ms.AfterSeconds, w.after) {
						t.Errorf("service %s, milestone %d: %s reached %t after %.3fs; want %s %t %.3fs", tl.Service, j, ms.Name, ms.Reached, ms.AfterSeconds, w.name, w.reached, w.after)
					}
				}
			}
		})
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestListOps(t *testing.T) {
	op := func(id, kind string, outcome site.OpOutcome) *site.Op {
		return &site.Op{ID: id, Kind: kind, Outcome: outcome}
	}
	journal := []*site.Op{ // oldest first
		op("1", "bootstrap", site.OpSucceeded),
		op("2", "failover", site.OpRunning), // an old op still running
		op("3", "placement", site.OpSucceeded),
		op("4", "failover", site.OpFailed),
		op("5", "placement", site.OpSucceeded),
		op("6", "failover", site.OpAborted),
		op("7", "placement", site.OpRunning),
	}
	tests := []struct {
		kind  string
		limit int
		want  string
		left  int
	}{
		{limit: 0, want: "7 6 5 4 3 2 1"},
		{limit: 2, want: "7 6 5 2", left: 3},
		{limit: 1, kind: "failover", want: "6 2", left: 1},
		{limit: 5, kind: "failover", want: "6 4 2"},
		{limit: 1, kind: "drill", want: ""},
	}
	for _, tt := range tests {
		shown, left := site.ListOps(journal, tt.kind, tt.limit)
		var ids []string
		for _, op := range shown {
			ids = append(ids, op.ID)
		}
		if got := strings.Join(ids, " "); got != tt.want || left != tt.left {
			t.Errorf("site.ListOps(kind %q, limit %d) = %q, %d left; want %q, %d left", tt.kind, tt.limit, got, left, tt.want, tt.left)
		}
	}
}

func TestWriteOpList(t *testing.T) {
	running := failoverInProgress()
	running.AbortRequested = &site.Request{By: "operator:ann@noc1", At: opsMS(4500)}
	waiting := &site.Op{ID: "20261202T031500.000Z-failover-77aa01", Kind: "failover", Who: "coordinator@b", Created: opsT0.Add(2 * time.Minute),
		Params: map[string]string{"site": "b"}, Outcome: site.OpRunning, Steps: []site.Step{
			{Name: "fence", Status: site.StepDone},
			{Name: "fence-resources", Params: map[string]string{"site": "b"}, Status: site.StepRunning, Detail: "site b: unreachable, presumed dark: host b1; waiting for an operator"},
		}}
	failed := &site.Op{ID: "20261202T030000.000Z-bootstrap-00aa11", Kind: "bootstrap", Who: "coordinator@a", Created: opsT0.Add(-13 * time.Minute),
		Ended: opsT0.Add(-13*time.Minute + 1500*time.Millisecond), Outcome: site.OpFailed, Error: "no site can serve service db: a is dark, b is dark"}
	done := &site.Op{ID: "20261202T025000.000Z-placement-00bb22", Kind: "placement", Who: "coordinator@a", Created: opsT0.Add(-23 * time.Minute),
		Ended: opsT0.Add(-23*time.Minute + 80*time.Millisecond), Outcome: site.OpSucceeded}
	var b strings.Builder
	list := api.OpList{Left: 7}
	for _, op := range []*site.Op{waiting, running, failed, done} {
		list.Ops = append(list.Ops, site.Summarize(op, opsT0.Add(3*time.Minute)))
	}
	if err := writeOpList(&b, list, ""); err != nil {
		t.Fatal(err)
	}
	want := `ID                                     KIND       WHO            STARTED               DURATION  OUTCOME    SUMMARY
20261202T031500.000Z-failover-77aa01   failover   coordinator@b  2026-12-02T03:15:00Z  1m0s      running    step 2/2 fence-resources site=b: site b: unreachable, presumed dark: host b1; waiting for an operator
20261202T031300.000Z-failover-3fa2c1   failover   coordinator@a  2026-12-02T03:13:00Z  3m0s      running    step 4/5 assign from=c service=db; abort requested by operator:ann@noc1
20261202T030000.000Z-bootstrap-00aa11  bootstrap  coordinator@a  2026-12-02T03:00:00Z  1.5s      failed     no site can serve service db: a is dark, b is dark
20261202T025000.000Z-placement-00bb22  placement  coordinator@a  2026-12-02T02:50:00Z  80ms      succeeded  -
7 older finished ops not listed (--limit N or --all lists more)
`
	if got := b.String(); got != want {
		t.Errorf("ops list:\n%s\nwant:\n%s", got, want)
	}
	b.Reset()
	if err := writeOpList(&b, api.OpList{}, "drill"); err != nil || b.String() != "no op of kind drill in the journal\n" {
		t.Errorf("an empty list: %q, %v", b.String(), err)
	}
}

func TestResolveOpID(t *testing.T) {
	ids := []string{ // oldest first
		"20261202T031300.000Z-failover-3fa2c1",
		"20261202T031305.000Z-placement-1b2c3d",
		"20261202T041300.000Z-failover-99ee00",
	}
	tests := []struct {
		arg, want string
		err       string
	}{
		{arg: ids[0], want: ids[0]},
		{arg: "20261202T0313", err: `op ID "20261202T0313" is ambiguous: 2 ops begin with it, the newest 20261202T031305.000Z-placement-1b2c3d, 20261202T031300.000Z-failover-3fa2c1; give more of the ID`},
		{arg: "20261202T04", want: ids[2]},
		{arg: "20261202T031300.000Z-failover-3fa2c", want: ids[0]},
		{arg: "20261202T031300.000Z-failover-3fa2c2", err: `no op "20261202T031300.000Z-failover-3fa2c2" in the journal; the closest: 20261202T031300.000Z-failover-3fa2c1, 20261202T031305.000Z-placement-1b2c3d, 20261202T041300.000Z-failover-99ee00 (zdt ops list --all lists them all)`},
		{arg: "3fa2c1", err: `no op "3fa2c1" in the journal; the closest: 20261202T041300.000Z-failover-99ee00, 20261202T031305.000Z-placement-1b2c3d, 20261202T031300.000Z-failover-3fa2c1`},
		{arg: "", err: "an empty op ID"},
	}
	for _, tt := range tests {
		got, err := resolveOpID(ids, tt.arg)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || exitCode(err) != 2):
			t.Errorf("resolveOpID(%q) = %q, %v; want exit status 2 and\n  %s", tt.arg, got, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("resolveOpID(%q) = %q, %v; want %q", tt.arg, got, err, tt.want)
		}
	}
	if _, err := resolveOpID(nil, "x"); err == nil || err.Error() != `no op "x": the journal has no ops` {
		t.Errorf("resolve in an empty journal: %v", err)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                           "0s",
		0:                                      "0s",
		340*time.Millisecond + 400:             "340ms",
		4249 * time.Millisecond:                "4.2s",
		3*time.Minute + 12400*time.Millisecond: "3m12s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%s) = %s, want %s", d, got, want)
		}
	}
}

// opsTestCluster starts etcd for sites a, b and c, writes a config file for
// it, and elects a coordinator at a; it returns the store, the config's path
// and the coordinator's guard.
func opsTestCluster(t *testing.T) (*site.Store, string, site.Guard) {
	t.Helper()
	cl := sitetest.New(t, sitetest.Options{})
	var b strings.Builder
	fmt.Fprintf(&b, "cluster: %s\nsites:\n", cl.Config.Name)
	for _, s := range cl.Config.Sites {
		fmt.Fprintf(&b, "  - {name: %s, api: %q, etcd: {client_url: %q, peer_url: %q}}\n", s.Name, s.API, s.Etcd.ClientURL, s.Etcd.PeerURL)
	}
	b.WriteString("services:\n  - {name: web, sites: [a, b, c], prefixes: [203.0.113.0/26]}\n  - {name: db, sites: [b, c, a], prefixes: [203.0.113.64/26]}\n")
	path := filepath.Join(t.TempDir(), "zdt.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	store := site.NewStore(cl.Client(), cl.Config.Name)
	sess, err := concurrency.NewSession(store.Client(), concurrency.WithTTL(10))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	el := concurrency.NewElection(sess, strings.TrimSuffix(store.Keys().Election(), "/"))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := el.Campaign(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	return store, path, site.Guard{Key: el.Key(), Rev: el.Rev()}
}

// journalOp writes op as the coordinator does and returns it with its
// revisions.
func journalOp(t *testing.T, store *site.Store, g site.Guard, op *site.Op) *site.Op {
	t.Helper()
	if err := store.CreateOp(t.Context(), g, op); err != nil {
		t.Fatal(err)
	}
	return op
}

func TestOpsCommands(t *testing.T) {
	store, path, g := opsTestCluster(t)
	t.Setenv("USER", "ann")
	host, _ := os.Hostname()
	who := "operator:ann@" + host

	old := journalOp(t, store, g, &site.Op{ID: "20261202T025000.000Z-placement-00bb22", Kind: "placement", Who: "coordinator@a",
		Created: opsT0.Add(-23 * time.Minute), Ended: opsT0.Add(-23*time.Minute + 80*time.Millisecond), Outcome: site.OpSucceeded,
		Steps: []site.Step{{Name: "place", Status: site.StepDone, Detail: "every guest is where it should be"}}})
	running := journalOp(t, store, g, failoverInProgress())

	// list
	out, err := runZDT(t, "ops", "list", "--config", path)
	if err != nil {
		t.Fatalf("ops list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], running.ID) || !strings.HasPrefix(lines[2], old.ID) ||
		!strings.Contains(lines[1], "step 4/5 assign from=c service=db") {
		t.Errorf("ops list:\n%s", out)
	}
	out, err = runZDT(t, "ops", "list", "--config", path, "--kind", "placement", "-o", "json")
	var list []site.OpSummary
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].ID != old.ID || list[0].DurationSeconds != 0.08 {
		t.Errorf("ops list --kind placement -o json: %v\n%s", err, out)
	}

	// show, by a prefix
	out, err = runZDT(t, "ops", "show", "--config", path, "20261202T0313")
	if err != nil || !strings.HasPrefix(out, "op            "+running.ID+"\n") || !strings.Contains(out, "TIMELINE of service web: RTO so far 4.2s") {
		t.Errorf("ops show: %v\n%s", err, out)
	}
	out, err = runZDT(t, "ops", "show", "--config", path, running.ID, "-o", "json")
	var view struct {
		Op       site.Op                    `json:"op"`
		Revision int64                      `json:"revision"`
		Timeline []failover.ServiceTimeline `json:"timeline"`
	}
	if err != nil || json.Unmarshal([]byte(out), &view) != nil || view.Op.ID != running.ID || view.Revision != running.Rev ||
		len(view.Timeline) != 2 || view.Timeline[0].Service != "web" || !near(view.Timeline[0].RTOSeconds, 4.2) ||
		len(view.Op.Steps[1].Resources) != 2 {
		t.Errorf("ops show -o json: %v\n%s", err, out)
	}
	_, err = runZDT(t, "ops", "show", "--config", path, "20261202T031300.000Z-failover-3fa2c9")
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), `no op "20261202T031300.000Z-failover-3fa2c9" in the journal; the closest: `+running.ID+", "+old.ID) {
		t.Errorf("ops show of an unknown op: %v (exit status %d)", err, exitCode(err))
	}

	// watch an op that ended
	out, err = runZDT(t, "ops", "watch", "--config", path, old.ID)
	if err != nil || !strings.Contains(out, "outcome       succeeded\n") {
		t.Errorf("ops watch of an op that succeeded: %v\n%s", err, out)
	}

	// abort: a dry run, the request, again, then once it ended
	out, err = runZDT(t, "ops", "abort", "--config", path, running.ID[:24], "--dry-run")
	if err != nil || !strings.Contains(out, "dry run: would ask the coordinator to abort op "+running.ID+" (failover site=c), as "+who+"; nothing changed") ||
		!strings.Contains(out, "step 4/5 assign from=c service=db is running: what it does stays done, and it is recorded as interrupted") ||
		!strings.Contains(out, "the steps that would not run: place") {
		t.Errorf("ops abort --dry-run: %v\n%s", err, out)
	}
	if op, _ := store.Op(t.Context(), running.ID); op.AbortRequested != nil || op.Rev != running.Rev {
		t.Fatalf("the dry run wrote %+v", op.AbortRequested)
	}
	out, err = runZDT(t, "ops", "abort", "--config", path, running.ID, "--reason", "drill over")
	if err != nil || !strings.Contains(out, "asked the coordinator to abort op "+running.ID+" (failover site=c), as "+who+": drill over") ||
		!strings.Contains(out, "follow it with: zdt ops watch "+running.ID) {
		t.Errorf("ops abort: %v\n%s", err, out)
	}
	out, err = runZDT(t, "ops", "abort", "--config", path, running.ID, "-o", "json")
	var res site.AbortResult
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || res.Action != site.AbortAlreadyRequested || res.Coordinator != "a" ||
		res.Op.AbortRequested == nil || res.Op.AbortRequested.Reason != "drill over" {
		t.Errorf("ops abort again: %v\n%s", err, out)
	}

	// watch it: the coordinator ends it, aborted (exit status 1)
	pr, pw := io.Pipe()
	watched := make(chan error, 1)
	go func() {
		cmd := newRootCommand()
		cmd.SetOut(pw)
		cmd.SetErr(pw)
		cmd.SetArgs([]string{"ops", "watch", "--config", path, running.ID, "-o", "json"})
		watched <- cmd.ExecuteContext(t.Context())
		pw.Close()
	}()
	lines = readLines(t, pr, 1)
	var v opView
	if err := json.Unmarshal([]byte(lines[0]), &v); err != nil || v.Op.AbortRequested == nil || v.Op.Finished() {
		t.Fatalf("first version watched: %v\n%s", err, lines[0])
	}
	op, err := store.Op(t.Context(), running.ID)
	if err != nil {
		t.Fatal(err)
	}
	op.Outcome, op.Ended, op.Error = site.OpAborted, opsMS(6000), "aborted by "+who+": drill over"
	if err := store.UpdateOp(t.Context(), g, op); err != nil {
		t.Fatal(err)
	}
	lines = readLines(t, pr, 1)
	if err := json.Unmarshal([]byte(lines[0]), &v); err != nil || v.Op.Outcome != site.OpAborted || v.Revision != op.Rev {
		t.Fatalf("last version watched: %v\n%s", err, lines[0])
	}
	err = <-watched
	if exitCode(err) != 1 || err.Error() != "op "+running.ID+" aborted: aborted by "+who+": drill over" {
		t.Errorf("ops watch of an op that was aborted: %v (exit status %d), want exit status 1", err, exitCode(err))
	}

	_, err = runZDT(t, "ops", "abort", "--config", path, running.ID)
	if exitCode(err) != 1 || !strings.Contains(fmt.Sprint(err), "op "+running.ID+" has ended already: aborted at 2026-12-02T03:13:06.000Z: aborted by "+who+": drill over; there is nothing to abort") {
		t.Errorf("ops abort of an op that ended: %v", err)
	}
}

// readLines reads n lines from r, or fails the test after 10s.
func readLines(t *testing.T, r io.Reader, n int) []string {
	t.Helper()
	got := make(chan []string, 1)
	go func() {
		var lines []string
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<20)
		for len(lines) < n && sc.Scan() {
			lines = append(lines, sc.Text())
		}
		got <- lines
	}()
	select {
	case lines := <-got:
		if len(lines) < n {
			t.Fatalf("read %d lines, want %d: %q", len(lines), n, lines)
		}
		return lines
	case <-time.After(10 * time.Second):
		t.Fatalf("no %d lines in 10s", n)
		return nil
	}
}

func TestOpsUsageErrors(t *testing.T) {
	dir := t.TempDir()
	path := writePlainConfig(t, dir)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"ops", "list", "--config", path, "-o", "yaml"}, `-o "yaml": want table or json`},
		{[]string{"ops", "list"}, "no cluster config file given: give --config FILE, set ZDT_CONFIG"},
		{[]string{"ops", "list", "--config", path, "--limit", "0"}, "--limit 0: want 1 or more (--all lists the whole journal)"},
		{[]string{"ops", "list", "--config", path, "--limit", "x"}, `invalid argument "x" for "--limit"`},
		{[]string{"ops", "list", "--config", path, "--all", "--limit", "5"}, "--all and --limit: give one of them"},
		{[]string{"ops", "list", "--config", path, "--bogus"}, "unknown flag: --bogus (zdt ops list --help says more)"},
		{[]string{"ops", "list", "--config", path, "extra"}, `zdt ops list takes no arguments, got ["extra"]`},
		{[]string{"ops", "show", "--config", path}, "zdt ops show takes one op ID (zdt ops list shows them), got 0 arguments"},
		{[]string{"ops", "watch", "--config", path, "a", "b"}, "zdt ops watch takes one op ID (zdt ops list shows them), got 2 arguments"},
		{[]string{"ops", "abort", "--config", path, "x", "--timeout", "0s"}, "--timeout 0s: want a positive duration"},
		{[]string{"ops", "cancel"}, `unknown command "cancel" for "zdt ops": want list, show, watch or abort`},
		{[]string{"ops", "show", "--config", filepath.Join(dir, "missing.yaml"), "x"}, "cannot read the cluster config"},
		{[]string{"events", "--config", path, "-o", "csv"}, `-o "csv": want table or json`},
		{[]string{"events", "--config", path, "--since", "2d"}, `--since "2d": want a duration before now (10m, 1h30m) or a time in RFC 3339 (2026-12-02T03:13:00Z); a day is not a unit: say 48h`},
		{[]string{"events", "--config", path, "--limit", "-1"}, "--limit -1: want 0 (all) or more"},
		{[]string{"events", "--config", path, "--site", "d"}, `--site "d": unknown site (sites are a, b, c)`},
		{[]string{"events", "--config", path, "--service", "db"}, `--service "db": unknown service (services are web)`},
		{[]string{"events", "--config", path, "--kind", "op-*-x"}, `--kind "op-*-x": want a kind (op-failed), or the beginning of kinds followed by * (op-*)`},
		{[]string{"events", "--config", path, "--follow=maybe"}, `invalid argument "maybe" for "-f, --follow"`},
	}
	for _, tt := range tests {
		_, err := runZDT(t, tt.args...)
		if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("zdt %s: %v (exit status %d); want exit status 2 and\n  %s", strings.Join(tt.args, " "), err, exitCode(err), tt.want)
		}
	}
	// Without a subcommand: the help.
	if out, err := runZDT(t, "ops"); err != nil || !strings.Contains(out, "Available Commands:") {
		t.Errorf("zdt ops: %v\n%s", err, out)
	}
}
