package lab

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
)

// configName is the config file in the lab directory.
const configName = "zdt.yaml"

// configTemplate is the lab's zdt.yaml. It doubles as the example config
// users read, so it explains itself. Its format is package site/config's.
const configTemplate = `# zdt.yaml: one file describes the whole zdt cluster. Every site runs one
# controller, and every controller reads this same file and is told which
# site it is:
#
#     zdt controller --config zdt.yaml --site a
#
# This one was written by ` + "`zdt lab`" + `: {{len .Sites}} sites on loopback addresses of
# one machine, each with an embedded etcd member. File names are relative
# to the directory of this file.

# The cluster's name. All of its state lives in etcd under /zdt/<cluster>/.
cluster: {{.Cluster}}

# How the controllers and the CLI reach etcd. Every connection is mutual TLS:
# the CA that signed the members' certificates, and the certificate and key
# that clients present.
etcd:
  tls:
    ca: {{certPath "ca"}}
    cert: {{certPath "client"}}
    key: {{keyPath "client"}}

# A controller holds a lease for its site and renews it every renew_interval
# (at most a third of lease_ttl). When a renewal does not come back in time,
# the site fences itself (stops serving) self_fence_margin before its lease
# could expire anywhere; the coordinator declares a site dark only once its
# lease has expired, so by then the site has already stopped. A failover
# takes about lease_ttl plus the time to promote and converge.
#
# The lab's timings are short, so failovers are quick to watch. Sites tens of
# milliseconds apart want a longer etcd heartbeat and election timeout, and
# a lease_ttl well above the election timeout.
timings:
{{entry "lease_ttl" .Timings.LeaseTTL "a site whose lease has expired is dark"}}
{{entry "renew_interval" .Timings.RenewInterval "how often each site renews its lease"}}
{{entry "self_fence_margin" .Timings.SelfFenceMargin "fence this long before the lease could expire"}}
{{entry "etcd_heartbeat" .Timings.EtcdHeartbeat "raft heartbeat of the embedded etcd members"}}
{{entry "etcd_election_timeout" .Timings.EtcdElectionTimeout "raft election timeout, about 10 heartbeats"}}
{{entry "bootstrap_grace" .Timings.BootstrapGrace "a new coordinator waits this long for a service's first site"}}

# The sites, each a data centre with one controller and one etcd member; the
# members form one etcd cluster stretched across the sites, which needs a
# majority of them (2 of 3) to work.
#   api         the controller's HTTP API: /healthz, /metrics, the dashboard
#   etcd        where the site's etcd member serves clients and its peers, and
#               the certificate it presents to both (valid for its address)
sites:
{{- range .Sites}}
  - name: {{.Name}}
    api: {{$.API .}}
    etcd:
      client_url: {{$.EtcdClientURL .}}
      peer_url: {{$.EtcdPeerURL .}}
      cert: {{certPath .Name}}
      key: {{keyPath .Name}}
{{- end}}

# The services: each fails over as one unit.
#   sites       where the service may run, in order of preference: it runs at
#               the first; when its active site goes dark it moves to the
#               next one that is up
#   prefixes    the service's addresses, announced over BGP by its active
#               site (and, with a longer AS path, by the others)
services:
{{- range .Services}}
  - name: {{.Name}}
    sites: {{flow .Sites}}
    prefixes: {{flow (strings .Prefixes)}}
{{- end}}
`

// writeConfig writes DIR/zdt.yaml for the topology, replacing any old one.
func writeConfig(dir string, t Topology) error {
	tmpl, err := template.New(configName).Funcs(template.FuncMap{
		"certPath": func(name string) string { return filepath.ToSlash(certPath(name)) },
		"keyPath":  func(name string) string { return filepath.ToSlash(keyPath(name)) },
		"flow":     flowList,
		"strings":  prefixStrings,
		"entry":    commentedEntry,
	}).Parse(configTemplate)
	if err != nil {
		return fmt.Errorf("parse the config template: %w", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, t); err != nil {
		return fmt.Errorf("write the config: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, configName), buf.Bytes(), 0o644)
}

// flowList writes a YAML flow sequence, [a, b, "2001:db8::/48"], quoting
// the items a YAML reader could take for something else.
func flowList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		if s == "" || strings.ContainsAny(s, ":#,[]{}&*!|>'\"%@` ") {
			s = strconv.Quote(s)
		}
		quoted[i] = s
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// commentedEntry writes an indented "key: value" with a comment, the
// comments of neighbouring entries lined up.
func commentedEntry(key string, value fmt.Stringer, comment string) string {
	return fmt.Sprintf("  %-29s # %s", key+": "+value.String(), comment)
}

func prefixStrings(prefixes []netip.Prefix) []string {
	out := make([]string, len(prefixes))
	for i, p := range prefixes {
		out[i] = p.String()
	}
	return out
}

// writeFileAtomic writes a file so a reader sees the old content or the new,
// never a part.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
