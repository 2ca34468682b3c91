package config

import (
	"path/filepath"
	"testing"
	"time"
)

// withFailStatic appends a fail_static section to baseYAML (line 50 on)
// and, when peers, gives every site a peer_api.
func withFailStatic(fields string, peers bool) []string {
	last := "        - {site: c, conn: host=127.0.0.13 user=zdt, replication_conn: host=127.0.0.13 user=replicator}\n"
	edits := []string{last, last + "fail_static:\n" + fields}
	if peers {
		for _, s := range []string{"11", "12", "13"} {
			api := "    api: 127.0.0." + s + ":7480\n"
			edits = append(edits, api, api+"    peer_api: 127.0.0."+s+":7481\n")
		}
	}
	return edits
}

func TestFailStaticAccepted(t *testing.T) {
	c, dir := mustLoad(t, edit(t, withFailStatic("  enabled: true\n", true)...))
	want := FailStatic{Enabled: true, CheckTimeout: 450 * time.Millisecond, CA: filepath.Join(dir, "pki", "ca.pem")}
	if c.FailStatic != want {
		t.Errorf("FailStatic = %+v, want %+v ((3s - 750ms)/5, the etcd CA)", c.FailStatic, want)
	}
	if s, _ := c.Site("b"); s.PeerAPI != "127.0.0.12:7481" {
		t.Errorf("site b's peer_api = %q", s.PeerAPI)
	}
}

func TestFailStaticProblems(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edits []string
		want  []string
	}{
		{"no peer_api", withFailStatic("  enabled: true\n", false), []string{
			`zdt.yaml:13: sites[0].peer_api: required with fail_static enabled: the host:port where this site's controller answers the other sites' controllers (mutual TLS), like 10.0.0.1:7481`,
			`zdt.yaml:20: sites[1].peer_api: required with fail_static enabled: the host:port where this site's controller answers the other sites' controllers (mutual TLS), like 10.0.0.1:7481`,
			`zdt.yaml:27: sites[2].peer_api: required with fail_static enabled: the host:port where this site's controller answers the other sites' controllers (mutual TLS), like 10.0.0.1:7481`,
		}},
		{"check_timeout too long", withFailStatic("  enabled: true\n  check_timeout: 600ms\n", true), []string{
			`zdt.yaml:55: fail_static.check_timeout: 600ms is longer than (lease_ttl - self_fence_margin)/4 (2.25s/4 = 562.5ms): ` +
				`the check starts 2.5 timeouts before the self-fence deadline, and a verdict that holds must last long enough for the next check to start before it runs out; lower it to at most 562.5ms`,
		}},
		{"a peer_api taken by another listener", append(withFailStatic("  enabled: true\n", true),
			"    peer_api: 127.0.0.12:7481\n", "    peer_api: 127.0.0.12:7480\n"), []string{
			`zdt.yaml:23: sites[1].peer_api: 127.0.0.12:7480 is already used by sites[1].api (line 22); every listener needs its own host:port`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, edit(t, tc.edits...), tc.want...)
		})
	}
}
