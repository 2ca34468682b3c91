package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zdt-project/zdt/e2e/lab"
	"github.com/zdt-project/zdt/site/config"
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

// A switchover drill refuses at once a target it could not move the
// services to until someone acts, instead of waiting its --timeout.
func TestLastingRefusal(t *testing.T) {
	cfg, err := loadConfig(writePlainConfig(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name            string
		to              string
		fenced, drained string
		want            string // "" when nothing lasting stands in the way
		usage           bool
	}{
		{name: "may move", to: "b"},
		{name: "not one of the service's sites", to: "c", want: "service web may not run at site c (its sites: a, b): give --to one of them", usage: true},
		{name: "fenced", to: "b", fenced: "b", want: "site b is fenced: no switchover moves services to it until it is failed back (zdt failback --site b)"},
		{name: "drained", to: "b", drained: "b", want: "site b is drained for maintenance: undrain it first (zdt undrain --site b)"},
		{name: "another site drained", to: "b", drained: "c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := lastingRefusal(context.Background(), cfg, standing(tt.fenced, tt.drained), []string{"web"}, tt.to)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("lastingRefusal: %v; want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("lastingRefusal: %v; want %q", err, tt.want)
			case tt.want != "" && (exitCode(err) == 2) != tt.usage:
				t.Errorf("lastingRefusal: exit status %d; usage error %t", exitCode(err), tt.usage)
			}
		})
	}
}

// Without --to, a switchover drill takes the services to the site most of
// them list next that may take them now: a fenced or drained site is
// passed over while another will do.
func TestEligibleNextSite(t *testing.T) {
	cfg := &config.Cluster{
		Sites: []config.Site{{Name: "a"}, {Name: "b"}, {Name: "c"}},
		Services: []config.Service{
			{Name: "web", Sites: []string{"a", "b", "c"}},
			{Name: "db", Sites: []string{"a", "b", "c"}},
			{Name: "api", Sites: []string{"a", "c"}},
		},
	}
	services := []string{"web", "db", "api"}
	for _, tt := range []struct {
		name            string
		fenced, drained string
		want            string
	}{
		{name: "the site most list next", want: "b"},
		{name: "it is drained: the next one", drained: "b", want: "c"},
		{name: "it is fenced: the next one", fenced: "b", want: "c"},
		{name: "none may: the site most list next, for the refusal to say why", fenced: "b", drained: "c", want: "b"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := eligibleNextSite(context.Background(), cfg, standing(tt.fenced, tt.drained), services, "a")
			if err != nil || got != tt.want {
				t.Errorf("eligibleNextSite = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// standing is a cluster, to the drill, in which site fenced is fenced and
// site drained drained ("": none).
func standing(fenced, drained string) switchovers {
	st := siteStanding{fenced: map[string]bool{fenced: fenced != ""}, drained: map[string]bool{drained: drained != ""}}
	return switchovers{standing: func(context.Context) (siteStanding, error) { return st, nil }}
}
