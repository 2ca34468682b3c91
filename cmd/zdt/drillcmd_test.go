package main

import (
	"path/filepath"
	"strings"
	"testing"
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
		{[]string{"drill", "failover"}, `unknown command "failover" for "zdt drill": want switchover`},
	}
	for _, tt := range tests {
		_, err := runZDT(t, tt.args...)
		if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("zdt %s: %v (exit status %d); want exit status 2 and\n  %s", strings.Join(tt.args, " "), err, exitCode(err), tt.want)
		}
	}
}
