package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
)

// runbookRolledBack is a runbook op that was approved, failed in a shell
// step of the databases group and ran that step's rollback.
func runbookRolledBack() *site.Op {
	approvedAt := opsMS(1500)
	return &site.Op{
		ID: "20261202T031300.000Z-runbook-9b1d07", Kind: "runbook", Params: map[string]string{"site": "c"},
		Who: "alice", Created: opsT0, Coordinators: []string{"a"}, Outcome: site.OpFailed, Ended: opsMS(9000),
		Error: "step migrate-db failed: exit status 1", Runbook: "drain-c", RollingBack: "migrate-db",
		Steps: []site.Step{
			{ID: "confirm-window", Name: "confirm", Status: site.StepDone, By: "a", Started: opsMS(100), Ended: approvedAt,
				Timeout: 30 * time.Minute, Approved: &site.Request{By: "bob", At: approvedAt, Reason: "CHG-1234 window\nopen"}},
			{ID: "fence-c", Name: "fence-resources", Params: map[string]string{"site": "c"}, Status: site.StepDone, By: "a",
				Started: opsMS(1500), Ended: opsMS(2000),
				When: &site.Condition{All: []site.Condition{{SiteDown: "c"}, {Not: &site.Condition{SiteFenced: "c"}}}},
				Resources: []site.ResourceOutcome{
					{Resource: "member pg at c", Outcome: site.FenceDone, Detail: "read-only | 3 sessions cut"},
					{Resource: "host c1", Outcome: site.FenceUnreachable, Detail: "dial tcp:\n i/o timeout"},
				}},
			{ID: "move-db", Name: "assign", Params: map[string]string{"service": "db", "from": "c"}, Group: "databases",
				Status: site.StepDone, By: "a", Started: opsMS(2000), Ended: opsMS(3000), Detail: "service db moved from site c to site a (epoch 7)"},
			{ID: "migrate-db", Name: "shell", Group: "databases", Status: site.StepFailed, By: "a", Started: opsMS(3000), Ended: opsMS(8000),
				Timeout: 5 * time.Minute, OnFailure: []string{"undo-db"},
				Detail: "exit status 1:\nERROR | relation \"jobs\" already exists\r\n*** 2 rows | 0 done\n"},
			{ID: "undo-db", Name: "assign", Params: map[string]string{"service": "db", "from": "a"}, Group: "databases", Rollback: true,
				Status: site.StepDone, By: "a", Started: opsMS(8000), Ended: opsMS(9000), Detail: "service db moved from site a to site c (epoch 8)"},
			{ID: "undo-web", Name: "shell", Rollback: true, Status: site.StepPending},
		},
	}
}

// pipes counts the pipes of a line that end table cells: those not escaped
// by a backslash.
func pipes(line string) int {
	n := 0
	escaped := false
	for _, r := range line {
		switch {
		case escaped:
			escaped = false
		case r == '\\':
			escaped = true
		case r == '|':
			n++
		}
	}
	return n
}

// markdownTables checks that every row of each table in md has as many
// cells as its header, and returns the tables' rows, header first.
func markdownTables(t *testing.T, md string) [][]string {
	t.Helper()
	var tables [][]string
	inTable := false
	for i, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			inTable = false
			continue
		}
		if !inTable {
			tables = append(tables, nil)
			inTable = true
		}
		table := &tables[len(tables)-1]
		if !strings.HasSuffix(line, " |") || strings.HasSuffix(line, `\|`) {
			t.Errorf("line %d does not end a row: %q", i+1, line)
		}
		if len(*table) > 0 && pipes(line) != pipes((*table)[0]) {
			t.Errorf("line %d has %d cell pipes, its header %d:\n%s\n%s", i+1, pipes(line), pipes((*table)[0]), (*table)[0], line)
		}
		*table = append(*table, line)
	}
	return tables
}

func TestOpMarkdownRunbook(t *testing.T) {
	var b strings.Builder
	if err := writeOpMarkdown(&b, runbookRolledBack(), opsMS(20000)); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	if first, _, _ := strings.Cut(md, "\n"); first != "# Op 20261202T031300.000Z-runbook-9b1d07: runbook, runbook drain-c" {
		t.Errorf("heading %q", first)
	}
	tables := markdownTables(t, md)
	if len(tables) != 3 {
		t.Fatalf("%d tables, want 3 (summary, steps, timeline of db)", len(tables))
	}
	steps := tables[1]
	if want := "| # | Step | Group | Status | By | Started | Ended | Took | Detail |"; steps[0] != want {
		t.Errorf("steps header %q, want %q", steps[0], want)
	}
	if len(steps) != 2+6 {
		t.Errorf("%d rows in the steps table, want a header, a delimiter and 6 steps", len(steps))
	}
	for _, want := range []string{
		"| runbook | drain-c |",
		"| outcome | failed: step migrate-db failed: exit status 1 |",
		"| ended | 2026-12-02T03:13:09.000Z (took 9s) |",
		"| rollback | rolled back after step 4 migrate-db (shell) failed |",
		"| 1 | confirm-window (confirm) | - | done | a | 2026-12-02T03:13:00.100Z | 2026-12-02T03:13:01.500Z | 1.4s | " +
			"approved by bob at 2026-12-02T03:13:01.500Z: CHG-1234 window open<br>timeout 30m0s |",
		"| 2 | fence-c (fence-resources site=c) | - | done | a | 2026-12-02T03:13:01.500Z | 2026-12-02T03:13:02.000Z | 500ms | " +
			"when all(site\\_down(c), not(site\\_fenced(c))) |",
		"| 3 | move-db (assign from=c service=db) | databases | done |",
		"| 4 | migrate-db (shell) | databases | failed | a | 2026-12-02T03:13:03.000Z | 2026-12-02T03:13:08.000Z | 5s | " +
			`exit status 1:<br>ERROR \| relation "jobs" already exists<br>\*\*\* 2 rows \| 0 done<br>timeout 5m0s; on failure undo-db |`,
		"| 5 | undo-db (assign from=a service=db) (rollback) | databases | done |",
		"| 6 | undo-web (shell) (rollback) | - | pending | - | - | - | - | - |",
		"### Resources\n\n- step 2, fence-c (fence-resources site=c):\n" +
			"  - member pg at c: fenced (read-only \\| 3 sessions cut)\n" +
			"  - host c1: unreachable, presumed dark (dial tcp: i/o timeout)\n",
		// A runbook's own steps (confirm, shell) mark no milestone.
		"## Timeline of service db: RTO 9s\n\n| Milestone | At | After | Status |\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("no %q in\n%s", want, md)
		}
	}
	for _, unwanted := range []string{"| confirm | 2026", "| shell |"} {
		if strings.Contains(md, unwanted) {
			t.Errorf("%q in the timeline of\n%s", unwanted, md)
		}
	}
}

// An op without runbook fields renders as the table does: running, with
// resources and a timeline per service.
func TestOpMarkdownBuiltin(t *testing.T) {
	op := failoverInProgress()
	op.AbortRequested = &site.Request{By: "carol", At: opsMS(4500), Reason: "drill | over"}
	var b strings.Builder
	if err := writeOpMarkdown(&b, op, opsMS(5000)); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	if first, _, _ := strings.Cut(md, "\n"); first != "# Op 20261202T031300.000Z-failover-3fa2c1: failover" {
		t.Errorf("heading %q", first)
	}
	tables := markdownTables(t, md)
	if len(tables) != 1+1+2 {
		t.Fatalf("%d tables, want 4 (summary, steps, timelines of web and db)\n%s", len(tables), md)
	}
	for _, want := range []string{
		"| running for | 5s |",
		"| coordinators | a, b |",
		`| abort requested | by carol at 2026-12-02T03:13:04.500Z: drill \| over |`,
		"| 1 | fence site=c | - | done | a | 2026-12-02T03:13:00.100Z | 2026-12-02T03:13:00.340Z | 240ms | site c fenced |",
		"| 4 | assign from=c service=db | - | running | b | 2026-12-02T03:13:04.200Z | - | 800ms so far | - |",
		"  - host c1: unreachable, presumed dark (dial tcp 10.0.3.1:16509: i/o timeout)\n",
		"## Timeline of service web: RTO so far 4.2s\n",
		"| assigned | 2026-12-02T03:13:04.200Z | +4.2s | reached |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("no %q in\n%s", want, md)
		}
	}
	for _, unwanted := range []string{"runbook", "rollback", "approved"} {
		if strings.Contains(md, unwanted) {
			t.Errorf("%q in an op without runbook fields:\n%s", unwanted, md)
		}
	}

	// Without steps.
	b.Reset()
	if err := writeOpMarkdown(&b, &site.Op{ID: "x", Kind: "placement", Created: opsT0, Outcome: site.OpSucceeded, Ended: opsMS(10)}, opsMS(20)); err != nil {
		t.Fatal(err)
	}
	markdownTables(t, b.String())
	if !strings.Contains(b.String(), "## Steps\n\nNo steps.\n") {
		t.Errorf("an op without steps:\n%s", b.String())
	}
}

func TestMdCell(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "-"},
		{" \n", "-"},
		{"a | b", `a \| b`},
		{"one\r\ntwo\n\nthree\n", "one<br>two<br><br>three"},
		{`a\|b`, `a\\\|b`},
		{"<script> *x* _y_ `z` [l](u) ~~s~~", "\\<script> \\*x\\* \\_y\\_ \\`z\\` \\[l\\](u) \\~\\~s\\~\\~"},
	}
	for _, tt := range tests {
		got := mdCell(tt.in)
		if got != tt.want {
			t.Errorf("mdCell(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(got, "\n") || pipes("|"+got+"|") != 2 {
			t.Errorf("mdCell(%q) = %q breaks a row", tt.in, got)
		}
	}
}

// Only zdt ops show takes -o markdown. The checks run before etcd is
// reached: a missing config file is what show runs into.
func TestOpsMarkdownFlag(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"ops", "show", "x", "--config", missing, "-o", "markdown"}, "cannot read the cluster config"},
		{[]string{"ops", "show", "x", "--config", missing, "-o", "yaml"}, `-o "yaml": want table, json or markdown`},
		{[]string{"ops", "list", "--config", missing, "-o", "markdown"}, `-o "markdown": want table or json`},
		{[]string{"ops", "watch", "x", "--config", missing, "-o", "markdown"}, `-o "markdown": want table or json`},
		{[]string{"ops", "abort", "x", "--config", missing, "-o", "markdown"}, `-o "markdown": want table or json`},
		{[]string{"events", "--config", missing, "-o", "markdown"}, `-o "markdown": want table or json`},
	}
	for _, tt := range tests {
		_, err := runZDT(t, tt.args...)
		if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("zdt %s: %v (exit status %d); want exit status 2 and\n  %s", strings.Join(tt.args, " "), err, exitCode(err), tt.want)
		}
	}
	out, err := runZDT(t, "ops", "show", "--help")
	if err != nil || !strings.Contains(out, "output format: table, json or markdown") {
		t.Errorf("zdt ops show --help: %v\n%s", err, out)
	}
	out, err = runZDT(t, "ops", "list", "--help")
	if err != nil || !strings.Contains(out, "output format: table or json") {
		t.Errorf("zdt ops list --help: %v\n%s", err, out)
	}
}
