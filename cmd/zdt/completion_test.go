package main

import (
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
)

// TestCompletion: the shell completion offers the cluster's sites,
// services, the shipped runbooks and the newest ops' ids.
func TestCompletion(t *testing.T) {
	store, path := fenceTestCluster(t, false)
	op := &site.Op{ID: site.NewOpID(time.Now(), "switchover"), Kind: "switchover", Who: "operator:test", Created: time.Now()}
	if err := store.RequestOp(t.Context(), op, 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"switchover", "--config", path, "--to", ""}, "a\nb\nc\n:4\n"},
		{[]string{"switchover", "--config", path, "--service", "w"}, "web\n:4\n"},
		{[]string{"failback", "--config", path, "--site", "c"}, "c\n:4\n"},
		{[]string{"runbook", "run", "site-"}, "site-evacuation\nsite-loss-drill\nsite-switchover\n:0\n"},
		{[]string{"ops", "show", "--config", path, ""}, op.ID + "\n:36\n"},
		{[]string{"ops", "show", "--config", path, "x"}, ":36\n"},
	} {
		out, err := runZDT(t, append([]string{"__complete"}, tc.args...)...)
		if got, _, _ := strings.Cut(out, "Completion ended"); err != nil || got != tc.want {
			t.Errorf("zdt __complete %s: %v\n%q\nwant %q", strings.Join(tc.args, " "), err, got, tc.want)
		}
	}
}
