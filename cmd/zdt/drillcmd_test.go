package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/zdt-project/zdt/e2e/lab"
)

func TestDrillUsageErrors(t *testing.T) {
	dir := t.TempDir()
	path := writePlainConfig(t, dir)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"drill", "switchover", "--config", path}, `required flag(s) "site" not set`},
		{[]string{"drill", "switchover", "--site", "a"}, "no cluster config file given"},
		{[]string{"drill", "switchover", "--config", path, "--site", "x"}, `--site "x": unknown site (sites are a, b, c)`},
		{[]string{"drill", "switchover", "--config", path, "--site", "a", "--to", "d"}, `--to "d": unknown site (sites are a, b, c)`},
		{[]string{"drill", "switchover", "--config", path, "--site", "a", "--to", "a"}, "--to a: the drill moves the services away from --site a; give another site"},
		{[]string{"drill", "switchover", "--config", path, "--site", "a", "--out", filepath.Join(dir, "nope")}, `--out "` + filepath.Join(dir, "nope") + `": not a directory`},
		{[]string{"drill", "switchover", "--config", path, "--site", "a", "--probe-interval", "0s"}, "--probe-interval 0s: want a positive duration"},
		{[]string{"drill", "switchover", "--config", path, "--site", "a", "--timeout", "-1s"}, "--timeout -1s: want a positive duration"},
		{[]string{"drill", "switchover", "--config", path, "--site", "a", "extra"}, `zdt drill switchover takes no arguments, got ["extra"]`},
		{[]string{"drill", "failover"}, `unknown command "failover" for "zdt drill": want switchover or site-loss`},
		{[]string{"drill", "site-loss", "--site", "a"}, `required flag(s) "lab" not set`},
		{[]string{"drill", "site-loss", "--lab", dir}, `required flag(s) "site" not set`},
		{[]string{"drill", "site-loss", "--lab", dir, "--site", "a", "--fault", "flood"}, `--fault "flood": want down, freeze or isolate`},
		{[]string{"drill", "site-loss", "--lab", dir, "--site", "a", "--repeat", "0"}, "--repeat 0: want 1 or more"},
		{[]string{"drill", "site-loss", "--lab", filepath.Join(dir, "nope"), "--site", "a"}, "is not a zdt lab"},
	}
	for _, tt := range tests {
		_, err := runZDT(t, tt.args...)
		if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("zdt %s: %v (exit status %d); want exit status 2 and\n  %s", strings.Join(tt.args, " "), err, exitCode(err), tt.want)
		}
	}
}

// A site-loss drill needs a lab in network namespaces: a loopback lab is a
// usage error that says how to start the right one.
func TestSiteLossDrillRefusesLoopbackLab(t *testing.T) {
	dir := t.TempDir()
	if _, err := lab.Create(dir, lab.Options{}); err != nil {
		t.Fatal(err)
	}
	_, err := runZDT(t, "drill", "site-loss", "--lab", dir, "--site", "a")
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "zdt lab --netns") {
		t.Errorf("zdt drill site-loss on a loopback lab: %v (exit status %d); want exit status 2, saying to start one with zdt lab --netns", err, exitCode(err))
	}
}
