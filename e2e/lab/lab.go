package lab

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/zdt-project/zdt/e2e/fabric"
)

// ErrRunning is wrapped by the errors that refuse to act on a lab or a site
// that is still running.
var ErrRunning = errors.New("still running")

// ErrNotRunning is wrapped by the errors of acting on a site that does not
// run.
var ErrNotRunning = errors.New("not running")

// Options tune how a lab runs its controllers.
type Options struct {
	// Binary is the zdt binary that runs the controllers; empty means this
	// program (os.Executable).
	Binary string
	// Env is added to the controllers' environment (KEY=value).
	Env []string
	// ControllerArgs are added to the controllers' command lines (zdt
	// lab --enable-pprof gives --enable-pprof).
	ControllerArgs []string
	// Topology is the lab that Create writes; nil means DefaultTopology.
	// Open reads the lab's own zdt.yaml instead.
	Topology *Topology
	// Libvirtd is the libvirtd that serves the sites' hypervisors; empty
	// means the one FindLibvirtd finds. When there is none (or this one is
	// not an executable), Create leaves the topology's hosts and guests
	// out.
	Libvirtd string
	// Postgres is the directory of the PostgreSQL server binaries; empty
	// means the one FindPostgres finds. When there is none (or it lacks a
	// program), Create leaves the topology's replication group out.
	Postgres string
	// Synchronous makes Create write the replication group synchronous
	// (synchronous: true): zdt keeps its primary replicating synchronously
	// to at least one other member, so a commit is acknowledged only once
	// a standby holds it, and waits while none is connected. false writes
	// it asynchronous. Without a group it changes nothing. Open ignores
	// it: the lab's zdt.yaml says.
	Synchronous bool
}

// Lab is a lab directory and the controllers it runs. Its methods are safe
// for concurrent use.
type Lab struct {
	dir     string
	cluster string
	sites   []SiteAddrs
	tls     tlsFiles
	binary  string
	env     []string
	ctlArgs []string
	// sockDirs holds the socket directory of the libvirtd of every site
	// with hypervisors: the sites whose libvirtd the lab runs.
	sockDirs map[string]string
	// libvirtdOption is Options.Libvirtd.
	libvirtdOption string
	// observer: the config has a route observer, which the lab runs.
	observer bool
	// pg is the lab's PostgreSQL replication group, nil if it has none;
	// noPostgres says why a lab Create made has none.
	pg         *pgGroup
	noPostgres error

	// fab is the lab's network namespaces, nil for a loopback lab;
	// siteASNs are the sites' AS numbers, in order, and serviceAddrs the
	// services' addresses, which its upstream router and client need.
	fab          *fabric.Fabric
	siteASNs     []uint32
	serviceAddrs map[string][]netip.Addr

	mu       sync.Mutex
	children map[proc]*child // the processes this Lab started
}

// SiteAddrs is where a site of a lab listens, as the lab's zdt.yaml says.
type SiteAddrs struct {
	Name          string
	API           string // host:port of the controller's HTTP API
	EtcdClientURL string
	EtcdPeerURL   string
}

// tlsFiles are the absolute paths of the client's TLS files.
type tlsFiles struct{ ca, cert, key string }

// Create makes a fresh lab in dir: new keys and certificates, a new
// zdt.yaml, no etcd data (an old lab's is wiped, its logs are kept). dir may
// be missing, empty or an old lab that no longer runs.
func Create(dir string, opts Options) (*Lab, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("lab directory: %w", err)
	}
	t := DefaultTopology()
	if opts.Topology != nil {
		t = *opts.Topology
	}
	if err := t.validate(); err != nil {
		return nil, err
	}
	var noLibvirtd error
	if t.HasGuests() {
		if _, noLibvirtd = opts.libvirtdBinary(); noLibvirtd != nil {
			t = t.WithoutGuests()
		}
	}
	var pg pgSetup
	var noPostgres error
	var pgService string
	if t.Postgres != nil {
		if pg, noPostgres = opts.postgresSetup(dir); noPostgres != nil {
			pgService = t.Postgres.Service
			t = t.WithoutPostgres()
		}
	}
	sockDirs := map[string]string{}
	for _, s := range t.Sites {
		if len(s.Hosts) > 0 {
			if sockDirs[s.Name], err = socketDir(dir, s.Name); err != nil {
				return nil, err
			}
		}
	}
	old, err := previousLab(dir, t, opts)
	if err != nil {
		return nil, err
	}
	if old != nil {
		if err := old.refuseIfRunning(); err != nil {
			return nil, err
		}
		for _, name := range append(old.SiteNames(), t.siteNames()...) {
			if err := os.RemoveAll(filepath.Join(dir, name, "etcd")); err != nil {
				return nil, fmt.Errorf("wipe the etcd data of site %s: %w", name, err)
			}
			for _, pidDir := range []string{filepath.Join(dir, name), libvirtDir(dir, name)} {
				if err := removePIDFile(pidDir); err != nil {
					return nil, err
				}
			}
			if err := os.RemoveAll(filepath.Join(dir, name, pgDirName)); err != nil {
				return nil, fmt.Errorf("wipe the PostgreSQL data of site %s: %w", name, err)
			}
		}
		if err := removePIDFile(filepath.Join(dir, observerDirName)); err != nil {
			return nil, err
		}
		if err := old.removeFabric(); err != nil {
			return nil, err
		}
		if err := os.Remove(filepath.Join(dir, netnsFileName)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create the lab directory: %w", err)
	}
	if t.Netns != nil {
		if err := fabric.CheckNetwork(); err != nil {
			return nil, fmt.Errorf("a lab in network namespaces: %w", err)
		}
		if err := fabric.CheckFRR(); err != nil {
			return nil, fmt.Errorf("a lab in network namespaces needs FRR as its upstream router: %w", err)
		}
		if err := newFabricID(dir); err != nil {
			return nil, err
		}
	}
	if err := writeSecrets(dir, t, pg); err != nil {
		return nil, err
	}
	if err := writePKI(dir, t, time.Now()); err != nil {
		return nil, fmt.Errorf("create the lab's PKI in %s: %w", dir, err)
	}
	if err := writeDomains(dir, t); err != nil {
		return nil, err
	}
	sums, err := writeTokens(dir)
	if err != nil {
		return nil, err
	}
	x := configExtras{sockDirs: sockDirs, noLibvirtd: noLibvirtd, pg: pg, noPostgres: noPostgres, postgresService: pgService,
		synchronous: opts.Synchronous, tokenSums: sums}
	if err := writeConfig(dir, t, x); err != nil {
		return nil, err
	}
	l, err := Open(dir, opts)
	if err != nil {
		return nil, err
	}
	l.noPostgres = noPostgres
	if l.HasPostgres() {
		u, err := l.PostgresClientURL()
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, PostgresClientURLFile), []byte(u+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("write the group's client URL: %w", err)
		}
	}
	return l, nil
}

// PostgresClientURLFile, in the lab's directory, holds PostgresClientURL:
// what a drill's probe is given.
const PostgresClientURLFile = "pg-client-url"

// previousLab returns the lab that dir holds, nil if dir is missing or
// empty, and an error if dir holds something else.
func previousLab(dir string, t Topology, opts Options) (*Lab, error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("lab directory: %w", err)
	case len(entries) == 0:
		return nil, nil
	}
	if _, err := os.Stat(filepath.Join(dir, configName)); err != nil {
		return nil, fmt.Errorf("%s is not empty and holds no zdt lab (no %s): give a new or an empty directory", dir, configName)
	}
	old, err := Open(dir, opts)
	if err != nil {
		// A broken config must not hide running sites: look for the
		// sites the new lab will have.
		old = newLab(dir, "", nil, tlsFiles{}, opts)
		for _, name := range t.siteNames() {
			old.sites = append(old.sites, SiteAddrs{Name: name})
		}
	}
	return old, nil
}

// refuseIfRunning fails if any site of the lab still runs, or its
// libvirtd or PostgreSQL server, or the lab's observer.
func (l *Lab) refuseIfRunning() error {
	var running []string
	for _, s := range l.sites {
		if pid, ok := l.Running(s.Name); ok {
			running = append(running, fmt.Sprintf("site %s is pid %d", s.Name, pid))
		}
		if pid, ok := l.LibvirtdRunning(s.Name); ok {
			running = append(running, fmt.Sprintf("site %s's libvirtd is pid %d", s.Name, pid))
		}
		if pid, ok := l.PostgresRunning(s.Name); ok {
			running = append(running, fmt.Sprintf("site %s's PostgreSQL is pid %d", s.Name, pid))
		}
	}
	if pid, ok := l.ObserverRunning(); ok {
		running = append(running, fmt.Sprintf("the route observer is pid %d", pid))
	}
	if len(running) == 0 {
		return nil
	}
	return fmt.Errorf("the lab in %s is %w (%s): stop it first with `zdt lab stop --dir %s`",
		l.dir, ErrRunning, strings.Join(running, ", "), l.dir)
}

// Open takes up the lab in dir, as Create left it, to start, kill or stop
// its sites. opts.Topology is ignored: the lab's zdt.yaml says what it is.
func Open(dir string, opts Options) (*Lab, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("lab directory: %w", err)
	}
	path := filepath.Join(dir, configName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s is not a zdt lab (it has no %s): give the directory `zdt lab` printed, or create a lab with `zdt lab --dir %s`", dir, configName, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("open the lab: %w", err)
	}
	var f labFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(f.Sites) == 0 {
		return nil, fmt.Errorf("read %s: it names no sites; recreate the lab with `zdt lab --dir %s`", path, dir)
	}
	sites := make([]SiteAddrs, len(f.Sites))
	sockDirs := map[string]string{}
	for i, s := range f.Sites {
		sites[i] = SiteAddrs{Name: s.Name, API: s.API, EtcdClientURL: s.Etcd.ClientURL, EtcdPeerURL: s.Etcd.PeerURL}
		if len(s.Hosts) == 0 {
			continue
		}
		sock, err := socketOf(s.Hosts[0].URI)
		if err != nil {
			return nil, fmt.Errorf("read %s: site %s: %w", path, s.Name, err)
		}
		sockDirs[s.Name] = filepath.Dir(sock)
	}
	files := tlsFiles{
		ca:   absIn(dir, f.Etcd.TLS.CA),
		cert: absIn(dir, f.Etcd.TLS.Cert),
		key:  absIn(dir, f.Etcd.TLS.Key),
	}
	if opts.Binary == "" {
		if opts.Binary, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find the zdt binary to run the controllers with: %w", err)
		}
	}
	l := newLab(dir, f.Cluster, sites, files, opts)
	l.sockDirs = sockDirs
	l.observer = f.BGP.Observer != nil
	if l.pg, err = f.pgGroup(dir); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if l.fab, err = openFabric(dir, l.SiteNames()); err != nil {
		return nil, fmt.Errorf("the lab's network namespaces: %w", err)
	}
	l.serviceAddrs = map[string][]netip.Addr{}
	for _, s := range f.Sites {
		l.siteASNs = append(l.siteASNs, s.BGP.ASN)
	}
	for _, svc := range f.Services {
		for _, raw := range svc.Addresses {
			a, err := netip.ParseAddr(raw)
			if err != nil {
				return nil, fmt.Errorf("read %s: service %s: %w", path, svc.Name, err)
			}
			l.serviceAddrs[svc.Name] = append(l.serviceAddrs[svc.Name], a)
		}
	}
	return l, nil
}

func newLab(dir, cluster string, sites []SiteAddrs, files tlsFiles, opts Options) *Lab {
	return &Lab{
		dir:      dir,
		cluster:  cluster,
		sites:    sites,
		tls:      files,
		binary:   opts.Binary,
		env:      opts.Env,
		ctlArgs:  opts.ControllerArgs,
		sockDirs: map[string]string{},
		children: make(map[proc]*child),

		libvirtdOption: opts.Libvirtd,
	}
}

// labFile is the part of zdt.yaml the lab needs to run it.
type labFile struct {
	Cluster string `yaml:"cluster"`
	Etcd    struct {
		TLS struct {
			CA   string `yaml:"ca"`
			Cert string `yaml:"cert"`
			Key  string `yaml:"key"`
		} `yaml:"tls"`
	} `yaml:"etcd"`
	Sites []struct {
		Name string `yaml:"name"`
		API  string `yaml:"api"`
		Etcd struct {
			ClientURL string `yaml:"client_url"`
			PeerURL   string `yaml:"peer_url"`
		} `yaml:"etcd"`
		Hosts []struct {
			URI string `yaml:"uri"`
		} `yaml:"hosts"`
		BGP struct {
			ASN uint32 `yaml:"asn"`
		} `yaml:"bgp"`
	} `yaml:"sites"`
	Services []struct {
		Name             string   `yaml:"name"`
		Sites            []string `yaml:"sites"`
		ReplicationGroup string   `yaml:"replication_group"`
		Addresses        []string `yaml:"addresses"`
	} `yaml:"services"`
	BGP struct {
		Observer *struct{} `yaml:"observer"`
	} `yaml:"bgp"`
	Replication struct {
		Groups []labGroupFile `yaml:"groups"`
	} `yaml:"replication"`
}

func absIn(dir, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// Dir is the lab's directory (absolute).
func (l *Lab) Dir() string { return l.dir }

// Cluster is the cluster's name.
func (l *Lab) Cluster() string { return l.cluster }

// ConfigPath is the lab's zdt.yaml (absolute).
func (l *Lab) ConfigPath() string { return filepath.Join(l.dir, configName) }

// LogPath is the file a site's controller writes its output to.
func (l *Lab) LogPath(site string) string { return filepath.Join(l.dir, site, "controller.log") }

// ResponderLogPath is the log of the site's service responder (a lab in
// network namespaces).
func (l *Lab) ResponderLogPath(site string) string { return l.logPath(responderOf(site)) }

// ObserverLogPath is the file the route observer writes its output to.
func (l *Lab) ObserverLogPath() string {
	return filepath.Join(l.dir, observerDirName, "observer.log")
}

// HasObserver reports whether the lab runs a route observer.
func (l *Lab) HasObserver() bool { return l.observer }

// LibvirtdLogPath is the file a site's libvirtd writes its output to.
func (l *Lab) LibvirtdLogPath(site string) string {
	return filepath.Join(libvirtDir(l.dir, site), libvirtdLogName)
}

// HasHypervisors reports whether the lab's sites have hypervisors (and its
// services guests): then each site runs its own libvirtd.
func (l *Lab) HasHypervisors() bool { return len(l.sockDirs) > 0 }

// hasLibvirtd reports whether the lab runs a libvirtd for the site.
func (l *Lab) hasLibvirtd(site string) bool {
	_, ok := l.sockDirs[site]
	return ok
}

// libvirtdSocket is the read-write socket of the site's libvirtd.
func (l *Lab) libvirtdSocket(site string) string {
	return filepath.Join(l.sockDirs[site], socketName)
}

// Sites lists the lab's sites in the config's order.
func (l *Lab) Sites() []SiteAddrs { return append([]SiteAddrs(nil), l.sites...) }

// SiteNames lists the names of the lab's sites in the config's order.
func (l *Lab) SiteNames() []string {
	names := make([]string, len(l.sites))
	for i, s := range l.sites {
		names[i] = s.Name
	}
	return names
}

// Site returns the named site, or an error that lists the valid names.
func (l *Lab) Site(name string) (SiteAddrs, error) {
	for _, s := range l.sites {
		if s.Name == name {
			return s, nil
		}
	}
	return SiteAddrs{}, fmt.Errorf("unknown site %q: the lab's sites are %s", name, strings.Join(l.SiteNames(), ", "))
}

// ClientTLS is the TLS config of an etcd client of the lab: the lab's CA
// and its client certificate.
func (l *Lab) ClientTLS() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(l.tls.cert, l.tls.key)
	if err != nil {
		return nil, fmt.Errorf("load the lab's client certificate: %w", err)
	}
	caPEM, err := os.ReadFile(l.tls.ca)
	if err != nil {
		return nil, fmt.Errorf("load the lab's CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("load the lab's CA: no certificate in %s", l.tls.ca)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS12,
	}, nil
}
