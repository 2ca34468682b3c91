package lab

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
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
{{- if .Netns}}
# This one was written by ` + "`zdt lab --netns`" + `: {{len .Sites}} sites in network namespaces
# of one machine, each with an embedded etcd member, linked to each other
# by one bridge (198.51.100.0/24) and to an upstream router (FRR) by
# another (192.0.2.0/24, 2001:db8:1::/64). File names are relative to the
# directory of this file.
{{- else}}
# This one was written by ` + "`zdt lab`" + `: {{len .Sites}} sites on loopback addresses of
# one machine, each with an embedded etcd member. File names are relative
# to the directory of this file.
{{- end}}

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

# Who may use the controllers' API (/api/v1, over TLS with each site's
# member certificate), each identity with a role: viewer reads; operator
# also runs switchovers, failbacks, evacuations, runbooks, approvals and
# aborts; admin also declares failovers, forces moves and confirms fences.
# An identity proves itself by a client certificate signed by api.ca (by
# default etcd.tls.ca) whose common name is cert_cn, or by a bearer token
# whose SHA-256 is token_sha256 (printf %s TOKEN | sha256sum): the tokens
# themselves are in tokens/ and nowhere else. /healthz and /metrics need no
# identity.
api:
  identities:
    - {name: lab-admin, role: admin, cert_cn: "zdt client"}
{{- range $role := .TokenRoles}}
    - {name: {{$role}}, role: {{$role}}, token_sha256: {{index $.TokenSums $role}}}
{{- end}}

# A controller holds a lease for its site and renews it every renew_interval
# (at most a third of lease_ttl), with a beat (a small etcd write) each time.
# When a renewal does not come back in time, the site fences itself (stops
# serving) self_fence_margin before any other site can count it dark: when
# its lease expires, or when the others have seen no beat from it for
# lease_ttl. A failover takes about lease_ttl plus the time to promote and
# converge.
#
# The lab's timings are short, so failovers are quick to watch. Sites tens of
# milliseconds apart want a longer etcd heartbeat and election timeout, and
# a lease_ttl well above the election timeout.
timings:
{{entry "lease_ttl" .Timings.LeaseTTL "a site silent this long is dark"}}
{{entry "renew_interval" .Timings.RenewInterval "how often each site renews its lease"}}
{{entry "self_fence_margin" .Timings.SelfFenceMargin "fence this long before the lease could expire"}}
{{entry "etcd_heartbeat" .Timings.EtcdHeartbeat "raft heartbeat of the embedded etcd members"}}
{{entry "etcd_election_timeout" .Timings.EtcdElectionTimeout "raft election timeout, about 10 heartbeats"}}
{{entry "bootstrap_grace" .Timings.BootstrapGrace "a new coordinator waits this long for a service's first site"}}
{{entry "host_fail_after" .Timings.HostFailAfter "a hypervisor silent this long is failed and its guests move"}}

# Before a failover promotes a member or starts a guest elsewhere, the
# coordinator fences what it can still reach of the dark site from outside:
# its old primary made read-only (sessions cut) through its own connection,
# its guests destroyed through their hypervisor's URI. A controller that
# crashed or froze fences nothing itself. Each attempt is bounded: a site
# that is truly dark does not answer. With require_confirmation a resource
# that did not answer holds the takeover until an operator runs
# zdt fence confirm --site S.
fencing:
{{entry "timeout" .Timings.FenceTimeout "each attempt, all in parallel; unreachable: presumed dark"}}
  require_confirmation: {{.RequireConfirmation}}

# A controller that cannot renew its lease fences itself before the lease can
# expire: a working etcd majority may be fencing its site. When etcd itself
# has failed for every site (its quorum lost while the sites and the network
# are fine, or its database at the quota), that would be an outage caused by
# etcd alone. With fail_static, before its deadline the controller asks every
# other site's controller (at its peer_api, mutual TLS with the sites' etcd
# certificates, signed by etcd.tls.ca) what its etcd member sees. Only if
# every site answers, no majority of the members follows one leader that
# takes writes, and no op is under way, it serves on in its current roles,
# automation frozen, with a loud alarm (zdt status, /healthz,
# zdt_fail_static); any silent site or sign of a working majority, and it
# fences itself as usual. check_timeout bounds each of the check's two
# rounds, by default (lease_ttl - self_fence_margin)/5.
fail_static:
  enabled: true

# The sites, each a data centre with one controller and one etcd member; the
# members form one etcd cluster stretched across the sites, which needs a
# majority of them (2 of 3) to work.
#   api         the controller's HTTP API: /healthz, /metrics, the dashboard
#   peer_api    where the controller answers the other sites' controllers'
#               fail-static checks (mutual TLS)
#   etcd        where the site's etcd member serves clients and its peers, and
#               the certificate it presents to both (valid for its address)
{{- if .HasGuests}}
#   hosts       the site's hypervisors, which its controller runs its guests
#               on: a name unique in the cluster and a libvirt URI
#               (qemu+tcp://10.0.1.21/system, ...). vcpus and memory_mib are
#               its capacity (left out: ask the hypervisor); cpu_overcommit
#               and memory_overcommit multiply it (1, the default, is none).
{{- if .OwnHypervisors}}
#               The hosts of a site of the lab are served by the site's own
#               libvirtd with the test driver, each a hypervisor of its own
#               (name=test:///.../node-<host>.xml: the driver on the host's
#               node XML, which states its size). The driver keeps its
#               guests in memory, for the controller's connection alone:
#               when the site goes dark, its guests are gone. The
{{- else}}
#               Each site of the lab has one host, served by the site's own
#               libvirtd with the test driver, which keeps its guests in
#               memory: when the site goes dark, its guests are gone. The
{{- end}}
#               hosts have room for every guest while all sites are up, but
#               not once one is dark: then bronze guests make way for gold
{{- end}}
{{- if .BGP}}
#   bgp         the site's BGP speaker: its AS number, its router id, and its
#               sessions with the upstream routers, to which it announces the
#               prefixes of the services it may serve: the active site with
#               the shortest AS path, the others with longer ones (prepends),
#               so the upstream sends the traffic to the active site. Here
#               the upstream is the lab's route observer (bgp.observer
#               below), and each site dials it from its own address
{{- end}}
sites:
{{- range .Sites}}
  - name: {{.Name}}
    api: {{$.API .}}
    peer_api: {{$.PeerAPI .}}
    etcd:
      client_url: {{$.EtcdClientURL .}}
      peer_url: {{$.EtcdPeerURL .}}
      cert: {{certPath .Name}}
      key: {{keyPath .Name}}
{{- if .Hosts}}
    hosts:
{{- range .Hosts}}
      - name: {{.Name}}
        uri: {{scalar ($.HostURI .Name)}}
{{- if .VCPUs}}
        vcpus: {{.VCPUs}}
{{- end}}
{{- if .MemoryMiB}}
        memory_mib: {{.MemoryMiB}}
{{- end}}
{{- if .CPUOvercommit}}
        cpu_overcommit: {{.CPUOvercommit}}
{{- end}}
{{- end}}
{{- end}}
{{- if $.BGP}}
    bgp:
      asn: {{.ASN}}
      router_id: {{.RouterID}}
{{- if $.BGP.Interface}}
      interface: {{$.BGP.Interface}}   # carries the addresses of the services the site is active for
{{- end}}
      peers:
        - address: {{scalar $.BGP.ObserverListen.Addr.String}}
          port: {{$.BGP.ObserverListen.Port}}
          asn: {{$.BGP.ObserverASN}}
          local_address: {{scalar .BGPAddr.String}}
          hold_time: {{$.BGP.HoldTime}}
          keepalive: {{$.BGP.Keepalive}}
          connect_retry: {{$.BGP.ConnectRetry}}
          families: [ipv4, ipv6]   # the IPv6 prefixes too, over this IPv4 session
          description: the lab's route observer
{{- $site := .}}
{{- range $.BGP.Routers}}
        - address: {{scalar .Address.String}}
          asn: {{.ASN}}
          local_address: {{scalar ($.RouterLocal $site .)}}
          hold_time: {{$.BGP.HoldTime}}
          keepalive: {{$.BGP.Keepalive}}
          connect_retry: {{$.BGP.ConnectRetry}}
          description: {{.Description}}
{{- end}}
{{- end}}
{{- end}}

# The services: each fails over as one unit.
#   sites       where the service may run, in order of preference: it runs at
#               the first; when its active site goes dark it moves to the
#               next one that is up
#   prefixes    the service's addresses, announced over BGP by its active
#               site (and, with a longer AS path, by the others)
#   rto         how long moving the service may take (its recovery time
#               objective): zdt drill measures against it
{{- if .Postgres}}
#   replication_group
#               the replication group (below) the service's data lives in:
#               its member at the service's active site is the primary, the
#               others stream from it; when the service moves, the member at
#               its new site is promoted and the others follow it
{{- end}}
{{- if .HasGuests}}
#   guests      the service's virtual machines, each with a name unique in
#               the cluster, an SLA tier (gold, silver or bronze), a zone (A,
#               B or none), its size, and its libvirt domain XML on storage
#               every site can read. The coordinator places them on the
#               hosts of the sites that are up; when a site goes dark it
#               starts the site's guests elsewhere, gold first, and stops
#               (preempts) bronze, then silver guests to make room
{{- end}}
services:
{{- range .Services}}
  - name: {{.Name}}
    sites: {{flow .Sites}}
    prefixes: {{flow (strings .Prefixes)}}
{{- if .Addresses}}
    addresses: {{flow (addrs .Addresses)}}
{{- end}}
    rto: 30s
{{- if and $.Postgres (eq .Name $.Postgres.Service)}}
    replication_group: {{$.Postgres.Group}}
{{- end}}
{{- if .Guests}}
    guests:
{{- range .Guests}}
      - name: {{.Name}}
        tier: {{.Tier}}
{{- if .Zone}}
        zone: {{.Zone}}
{{- end}}
        vcpus: {{.VCPUs}}
        memory_mib: {{.MemoryMiB}}
        domain: {{scalar (domainPath .Name)}}
{{- end}}
{{- end}}
{{- end}}
{{- if .HasGuests}}

# The rules of guest placement: Gold-Zone-A and Gold-Zone-B guests never
# share a site, and Silver-Zone-A and Silver-Zone-B guests never share a
# host. With zone_scope: cluster the rules hold between all guests of the
# cluster, as the SLA states them; with service, only between the guests
# of one service.
placement:
  zone_scope: {{.ZoneScope}}
{{- else if .NotRoot}}

# This lab has no hypervisors and no guests: it was not made by root, and
# it runs libvirtd only as root. Create it again as root to have them.
{{- else if .NoLibvirtd}}

# This lab has no hypervisors and no guests: libvirtd was not installed
# when it was made. Install it with
#
#     ` + InstallLibvirtd + `
#
# and create the lab again to have them.
{{- end}}
{{- if .BGP}}

# How the sites announce their services' prefixes (see the sites' bgp):
# min_change_interval is the least time between two changes of one prefix
# at one site that are not urgent (a takeover is), against flapping.
#
# The route observer learns the paths the upstream holds and publishes, for
# every prefix, which site its best path leads to; ` + "`zdt status`" + ` shows it in
# its UPSTREAM BEST column, and a site taking a service over waits until the
# dark site's stale path is gone. In the lab the observer is the upstream
# itself: ` + "`zdt observer --config zdt.yaml`" + ` listens on listen, and its peers
# are the sites' speakers, each naming its site.
bgp:
  min_change_interval: {{.BGP.MinChangeInterval}}
  observer:
    asn: {{.BGP.ObserverASN}}
    router_id: {{.BGP.ObserverRouterID}}
    listen: {{scalar .BGP.ObserverListen.String}}
    peers:
{{- range .Sites}}
      - {address: {{scalar .BGPAddr.String}}, asn: {{.ASN}}, site: {{.Name}}}
{{- end}}
{{- end}}
{{- if .Postgres}}

# Replication groups: storage mirrored across the sites, one member per
# site, the member at the active site of the services that use the group
# primary and the others following it. Each site's controller drives its
# own member: it promotes it when its site becomes active (if it is
# recent enough for the service's rpo), makes it follow the new primary
# otherwise, and fences it (read-only) when the site is fenced. A former
# primary is rewound with pg_rewind and comes back as a standby.
#   synchronous       true: the primary replicates synchronously to at least
#                     one other member (synchronous_standby_names 'ANY 1
#                     (...)'): a commit is acknowledged once a standby holds
#                     it, and while no standby is connected commits wait.
#                     false: the standbys may lag, and a failover may lose
#                     what they had not received, within the service's rpo
#                     (by default 16 MiB and 30 s)
#   conn              an administrative session on the member (observe,
#                     promote, fence), password_file holding its password
#   replication_conn  what the other members stream from when this one is
#                     primary (the lab's password file is libpq's passfile)
#   data_dir, bin_dir, os_user
#                     local control of the server, to rewind and restart it
#                     (as os_user, since PostgreSQL refuses to run as root)
# In the lab every site has a PostgreSQL {{.PGVersion}} server on its own
# address, port {{.Postgres.Port}}, its data and its log in <site>/postgres/.
replication:
  groups:
    - name: {{.Postgres.Group}}
      driver: postgres
      synchronous: {{.Synchronous}}
      members:
{{- range .PGMembers}}
        - site: {{.Site}}
          conn: {{scalar .Conn}}
          password_file: {{scalar .PasswordFile}}
          replication_conn: {{scalar .ReplicationConn}}
          data_dir: {{scalar .DataDir}}
          bin_dir: {{scalar .BinDir}}
{{- if .OSUser}}
          os_user: {{.OSUser}}
{{- end}}
{{- end}}
{{- else if .NoPostgres}}

# This lab has no replication group: {{.NoPostgresReason}}.
# With PostgreSQL installed (` + InstallPostgres + `),
# service {{.PostgresService}} keeps its data in a group of three servers, and its
# failovers promote one.
{{- end}}
`

// configData is what the config template is executed with.
type configData struct {
	Topology
	dir string
	// uris are the hosts' libvirt URIs, by host name.
	uris map[string]string
	// NoLibvirtd says why the topology's guests were left out, nil if
	// they were not.
	NoLibvirtd error
	pg         pgSetup
	// NoPostgres says why the topology's replication group was left out,
	// nil if it was not.
	NoPostgres error
	// PostgresService is the service the left-out group was for.
	PostgresService string
	// Synchronous is what the group's synchronous says (Options.Synchronous).
	Synchronous bool
	// TokenSums are the SHA-256 of the API tokens, by role.
	TokenSums map[string]string
}

// configExtras is what the config says beside the topology: where the
// libvirtds have their sockets, who runs the PostgreSQL servers, and why
// what was left out was.
type configExtras struct {
	sockDirs   map[string]string
	noLibvirtd error
	pg         pgSetup
	// noPostgres is why the group was left out, and postgresService the
	// service it was for.
	noPostgres      error
	postgresService string
	// synchronous: the group replicates synchronously.
	synchronous bool
	// tokenSums are the SHA-256 of the API tokens, by role.
	tokenSums map[string]string
}

// TokenRoles are the roles with a token, least first.
func (d configData) TokenRoles() []string { return TokenRoles }

// NoPostgresReason is why the group was left out, as a sentence fragment.
func (d configData) NoPostgresReason() string {
	return strings.ReplaceAll(strings.TrimSuffix(d.NoPostgres.Error(), "."), "\n", " ")
}

// PGVersion is the PostgreSQL major version, from its bin directory.
func (d configData) PGVersion() string { return filepath.Base(filepath.Dir(d.pg.binDir)) }

// pgMemberData is one member of the group as the config writes it.
type pgMemberData struct {
	Site, Conn, PasswordFile, ReplicationConn, DataDir, BinDir, OSUser string
}

// PGMembers are the group's members, one per site of its service, in the
// order of the sites.
func (d configData) PGMembers() []pgMemberData {
	svc, _ := d.Service(d.Postgres.Service)
	var out []pgMemberData
	for _, s := range d.Sites {
		if !slices.Contains(svc.Sites, s.Name) {
			continue
		}
		m := pgMember{site: s.Name, host: s.IP.String(), port: strconv.Itoa(int(d.Postgres.Port))}
		out = append(out, pgMemberData{
			Site:            s.Name,
			Conn:            pgAdminConn(m),
			PasswordFile:    filepath.ToSlash(filepath.Join(secretsDirName, pgPasswordName)),
			ReplicationConn: pgReplConn(m, d.dir),
			DataDir:         filepath.ToSlash(pgDataPath(s.Name)),
			BinDir:          d.pg.binDir,
			OSUser:          d.pg.user.name,
		})
	}
	return out
}

// RouterLocal is the address a site's session with an upstream router
// leaves from: its address of the router's family.
func (d configData) RouterLocal(s SiteSpec, r RouterSpec) string {
	if r.Address.Is6() {
		return s.BGPAddr6.String()
	}
	return s.BGPAddr().String()
}

// NotRoot says the guests were left out because the lab is not root's.
func (d configData) NotRoot() bool { return errors.Is(d.NoLibvirtd, ErrLibvirtdNeedsRoot) }

// OwnHypervisors reports whether the hosts of some site are each a
// hypervisor of its own.
func (d configData) OwnHypervisors() bool { return slices.ContainsFunc(d.Sites, ownHypervisors) }

// HostURI is the libvirt URI of the named host.
func (d configData) HostURI(host string) string { return d.uris[host] }

// writeConfig writes DIR/zdt.yaml for the topology, replacing any old one.
// Every host is the libvirtd of its site, with its sockets in
// x.sockDirs[site]; the hosts of a site with OwnHypervisors are each the
// test driver on its node XML (writeNodes).
func writeConfig(dir string, t Topology, x configExtras) error {
	tmpl, err := template.New(configName).Funcs(template.FuncMap{
		"certPath":   func(name string) string { return filepath.ToSlash(certPath(name)) },
		"keyPath":    func(name string) string { return filepath.ToSlash(keyPath(name)) },
		"domainPath": func(name string) string { return filepath.ToSlash(domainPath(name)) },
		"flow":       flowList,
		"scalar":     scalar,
		"strings":    prefixStrings,
		"addrs":      addrStrings,
		"entry":      commentedEntry,
	}).Parse(configTemplate)
	if err != nil {
		return fmt.Errorf("parse the config template: %w", err)
	}
	data := configData{Topology: t, dir: dir, uris: map[string]string{}, NoLibvirtd: x.noLibvirtd,
		pg: x.pg, NoPostgres: x.noPostgres, PostgresService: x.postgresService, Synchronous: x.synchronous, TokenSums: x.tokenSums}
	for _, s := range t.Sites {
		for _, h := range s.Hosts {
			data.uris[h.Name] = hostURI(x.sockDirs[s.Name])
			if ownHypervisors(s) {
				data.uris[h.Name] = ownHostURI(x.sockDirs[s.Name], nodePath(dir, s.Name, h.Name))
			}
		}
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		return fmt.Errorf("write the config: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, configName), buf.Bytes(), 0o644)
}

// scalar writes a YAML scalar, quoted if a YAML reader could take it for
// something else.
func scalar(s string) string {
	if needsQuotes(s) {
		return strconv.Quote(s)
	}
	return s
}

func needsQuotes(s string) bool {
	return s == "" || strings.ContainsAny(s, ":#,[]{}&*!|>'\"%@` ")
}

// flowList writes a YAML flow sequence, [a, b, "2001:db8::/48"], quoting
// the items a YAML reader could take for something else.
func flowList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = scalar(s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// commentedEntry writes an indented "key: value" with a comment, the
// comments of neighbouring entries lined up.
func commentedEntry(key string, value fmt.Stringer, comment string) string {
	return fmt.Sprintf("  %-29s # %s", key+": "+value.String(), comment)
}

func addrStrings(addrs []netip.Addr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
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
