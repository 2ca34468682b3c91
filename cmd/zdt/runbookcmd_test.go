package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunbookList(t *testing.T) {
	out, err := runZDT(t, "runbook", "list")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"site-switchover", "site-evacuation", "failback-after-disaster", "site-loss-drill", "host-maintenance", "switchover"} {
		if !strings.Contains(out, name) {
			t.Errorf("zdt runbook list lacks %s:\n%s", name, out)
		}
	}
	out, err = runZDT(t, "runbook", "list", "--actions")
	if err != nil || !strings.Contains(out, "confirm: stop until a person approves") || !strings.Contains(out, "drain-host: ") {
		t.Errorf("zdt runbook list --actions: %v\n%s", err, out)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("name: bad\nsteps:\n  - action: nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runZDT(t, "runbook", "list", "--dir", dir); err == nil || !strings.Contains(err.Error(), "bad.yaml:3: step at line 3 (nope): unknown action") {
		t.Errorf("zdt runbook list with a bad runbook: %v", err)
	}
	if _, err := runZDT(t, "runbook", "show", filepath.Join(dir, "bad.yaml")); err == nil || exitCode(err) != 2 {
		t.Errorf("zdt runbook show of a bad runbook: %v (exit %d), want exit 2", err, exitCode(err))
	}
	out, err = runZDT(t, "runbook", "show", "host-maintenance")
	if err != nil || !strings.HasPrefix(out, "# Runbook host-maintenance") {
		t.Errorf("zdt runbook show host-maintenance: %v\n%s", err, out)
	}
}
