package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site/config"
)

// examplePath is the example production config shipped in dist/.
const examplePath = "../../dist/zdt.example.yaml"

// installRoot is where the example's files live; the test moves it to a
// temporary directory.
const installRoot = "/etc/zdt/"

// installedFile matches a file the example names under installRoot.
var installedFile = regexp.MustCompile(regexp.QuoteMeta(installRoot) + `[A-Za-z0-9._/-]+`)

// installExample writes the example config into a temporary directory with
// every file it names under /etc/zdt/ (certificates, keys, password files,
// guest domain XML) created there, since the validator reads them. It
// returns the config's text with /etc/zdt/ moved there, and that
// directory.
func installExample(t *testing.T) (data, root string) {
	t.Helper()
	raw, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	root = t.TempDir()
	for _, name := range slices.Compact(slices.Sorted(slices.Values(installedFile.FindAllString(string(raw), -1)))) {
		path := filepath.Join(root, strings.TrimPrefix(name, installRoot))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		content := "example secret\n"
		if guest, ok := strings.CutSuffix(filepath.Base(name), ".xml"); ok {
			content = "<domain type='kvm'><name>" + guest + "</name></domain>\n"
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return strings.ReplaceAll(string(raw), installRoot, root+"/"), root
}

// loadExample writes data as a config file in dir and loads it.
func loadExample(t *testing.T, dir, name, data string) *config.Cluster {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	cl, err := config.Load(path)
	var problems config.Problems
	if errors.As(err, &problems) {
		t.Fatalf("%s has %d problem(s) (lines as in %s):\n%v", name, len(problems), examplePath, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// TestExampleConfig proves that dist/zdt.example.yaml is a valid config
// for three sites with every section an operator needs, and that the
// values its comments call the defaults are the defaults.
func TestExampleConfig(t *testing.T) {
	data, root := installExample(t)
	cl := loadExample(t, root, "zdt.yaml", data)

	t.Run("complete", func(t *testing.T) {
		if cl.Name != "prod" {
			t.Errorf("cluster %q, want prod", cl.Name)
		}
		if got := cl.SiteNames(); !slices.Equal(got, []string{"a", "b", "c"}) {
			t.Errorf("sites %v, want [a b c]", got)
		}
		pki := filepath.Join(root, "pki")
		if cl.Etcd.TLS == nil || filepath.Dir(cl.Etcd.TLS.CA) != pki {
			t.Errorf("etcd.tls %+v: want the CA and client certificate in %s", cl.Etcd.TLS, pki)
		}
		if p := cl.Plaintext(); len(p) > 0 || cl.InsecurePlaintext {
			t.Errorf("plaintext %q (insecure_plaintext %v): a production example runs TLS throughout", p, cl.InsecurePlaintext)
		}
		roles := map[config.Role]bool{}
		for _, id := range cl.API.Identities {
			roles[id.Role] = true
		}
		if len(roles) != len(config.Roles()) {
			t.Errorf("api identities %+v: want an example of every role", cl.API.Identities)
		}
		for _, s := range cl.Sites {
			switch {
			case s.PeerAPI == "":
				t.Errorf("site %s has no peer_api", s.Name)
			case filepath.Dir(s.Etcd.Cert) != pki || filepath.Dir(s.Etcd.Key) != pki:
				t.Errorf("site %s: member certificate %s, key %s: want them in %s", s.Name, s.Etcd.Cert, s.Etcd.Key, pki)
			case len(s.Hosts) == 0:
				t.Errorf("site %s has no hypervisors", s.Name)
			case s.BGP == nil || len(s.BGP.Peers) == 0:
				t.Errorf("site %s has no BGP sessions", s.Name)
			}
			if s.BGP == nil {
				continue
			}
			for _, p := range s.BGP.Peers {
				if p.Password == "" {
					t.Errorf("site %s: the session with %s has no TCP-MD5 password", s.Name, p.Address)
				}
			}
		}
		if !cl.FailStatic.Enabled {
			t.Error("fail_static is not enabled")
		}
		if cl.BGP.Observer == nil {
			t.Error("no route observer")
		}
		if len(cl.Services) == 0 || len(cl.Replication) == 0 || len(cl.Guests()) == 0 {
			t.Errorf("%d services, %d replication groups, %d guests: want some of each", len(cl.Services), len(cl.Replication), len(cl.Guests()))
		}
		for _, g := range cl.Replication {
			for _, m := range g.Members {
				if m.Password == "" || m.DataDir == "" || m.BinDir == "" || m.OSUser == "" {
					t.Errorf("group %s, site %s: want a password and local control (data_dir, bin_dir, os_user): %+v", g.Name, m.Site, m)
				}
			}
		}
	})

	t.Run("defaults as written", func(t *testing.T) {
		// The settings the example's comments call the defaults; without
		// them the file must describe the same cluster.
		lines := []string{
			"  dial_timeout: 2s",
			"timings:",
			"  lease_ttl: 6s",
			"  renew_interval: 2s",
			"  self_fence_margin: 1500ms",
			"  etcd_heartbeat: 100ms",
			"  etcd_election_timeout: 1s",
			"  bootstrap_grace: 10s",
			"  host_fail_after: 10s",
			"  timeout: 2s",
			"  require_confirmation: false",
			"  check_timeout: 900ms",
			"retention:",
			"  ops: {max_age: 2160h, max_count: 1000}",
			"  events: {max_age: 720h, max_count: 100000}",
			"runbooks:",
			"  allow_shell: false",
			"placement:",
			"  zone_scope: cluster",
			"  headroom: 2",
			"  prepend_step: 1",
			"  max_prepends: 10",
			"  min_change_interval: 30s",
			"      synchronous: false",
		}
		stripped := withoutLines(t, data, lines)
		dflt := loadExample(t, root, "defaults.yaml", stripped)
		want := *cl
		got := *dflt
		want.Path, got.Path = "", ""
		if !reflect.DeepEqual(got, want) {
			t.Errorf("without the settings it calls defaults, the example describes another cluster:\n got %+v\nwant %+v", got, want)
		}
		if cl.Timings.LeaseTTL != 6*time.Second || cl.FailStatic.CheckTimeout != 900*time.Millisecond {
			t.Errorf("lease_ttl %s, check_timeout %s: the comments say 6s and 900ms", cl.Timings.LeaseTTL, cl.FailStatic.CheckTimeout)
		}
	})
}

// withoutLines removes from data each line that is exactly one of lines;
// each must be there exactly once.
func withoutLines(t *testing.T, data string, lines []string) string {
	t.Helper()
	found := map[string]int{}
	var b strings.Builder
	for line := range strings.Lines(data) {
		key := strings.TrimRight(strings.SplitN(line, " #", 2)[0], " \n")
		if slices.Contains(lines, key) {
			found[key]++
			continue
		}
		b.WriteString(line)
	}
	for _, l := range lines {
		if found[l] != 1 {
			t.Fatalf("the example has the line %q %d times, want once", l, found[l])
		}
	}
	return b.String()
}
