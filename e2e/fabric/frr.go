package fabric

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Where Debian's frr package puts the daemons.
const (
	bgpdPath  = "/usr/lib/frr/bgpd"
	zebraPath = "/usr/lib/frr/zebra"
)

// FRR is one FRR instance, a zebra and a bgpd, running in a namespace. Its
// files (configuration, pid files, logs, vty and zebra sockets) are in a
// directory of its own, so it shares nothing with another instance or with
// a system FRR.
type FRR struct {
	NS  NS
	Dir string // configuration, pid files, logs

	t       testing.TB
	cfg     FRRConfig
	sockDir string
	vty     *vtyClient
	zebra   *daemon
	bgpd    *daemon
}

// Family is an address family of BGP unicast.
type Family string

const (
	IPv4 Family = "ipv4"
	IPv6 Family = "ipv6"
)

func familyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// StartFRR runs zebra and bgpd with cfg in ns and waits until bgpd has
// read its configuration. Both run in the foreground, as children of the
// test, and are stopped in t.Cleanup; when the test has failed, their logs
// are shown. It skips the test when FRR, ip or root is missing, or fails it
// when CI=true.
//
// bgpd runs with zebra: zebra tells it about interfaces, connected
// networks and next hops. Without zebra (bgpd -Z), FRR 8.4 takes IPv4
// paths as valid, but an upstream so run had no path at all from its IPv6
// neighbors, and it cannot see a link go down: a directly connected eBGP
// session would drop only after its hold time, not at once
// (fast-external-failover).
func StartFRR(t testing.TB, ns NS, cfg FRRConfig) *FRR {
	t.Helper()
	need(t, errors.Join(checkNetwork(), checkFRR()))
	dir := t.TempDir()
	sockDir := dir
	// A unix socket path has at most 107 bytes; test names make long
	// temporary directories.
	if len(dir)+len("/zserv.api") > 100 {
		short, err := os.MkdirTemp("", "zdtfrr")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(short) })
		sockDir = short
	}
	setup, err := PrepareFRR(cfg, ns.Name, dir, sockDir)
	if err != nil {
		t.Fatal(err)
	}
	f := &FRR{NS: ns, Dir: dir, t: t, cfg: cfg, sockDir: sockDir}
	f.vty = &vtyClient{path: setup.VTY}
	t.Cleanup(f.cleanup)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.zebra, err = startDaemon(ns, dir, "zebra", setup.Zebra[0], setup.Zebra[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	// bgpd that finds no zebra retries only after a delay: start it once
	// zebra listens.
	if err := f.zebra.waitListening(ctx, setup.Zserv); err != nil {
		t.Fatal(err)
	}
	if f.bgpd, err = startDaemon(ns, dir, "bgpd", setup.Bgpd[0], setup.Bgpd[1:]...); err != nil {
		t.Fatal(err)
	}
	if err := f.waitConfigured(ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

// FRRSetup is how to run an FRR instance that PrepareFRR configured.
type FRRSetup struct {
	// Zebra and Bgpd are the daemons' command lines, to run in the
	// namespace in that order: bgpd once zebra listens on Zserv.
	Zebra, Bgpd []string
	Zserv       string // zebra's socket
	VTY         string // bgpd's vty socket
}

// PrepareFRR writes the configuration of an FRR instance, a zebra and a
// bgpd, into dir (where they also log) and says how to run them, with
// their sockets in sockDir (keep its path short: a unix socket path has
// at most 107 bytes). StartFRR runs one for a test; a lab runs its own.
func PrepareFRR(cfg FRRConfig, hostname, dir, sockDir string) (FRRSetup, error) {
	if err := checkFRR(); err != nil {
		return FRRSetup{}, err
	}
	conf, err := cfg.bgpdConf(hostname, filepath.Join(dir, "bgpd.log"))
	if err != nil {
		return FRRSetup{}, err
	}
	zconf := fmt.Sprintf("! written by zdt e2e/fabric\nhostname %s\nlog file %s\nlog timestamp precision 3\n",
		hostname, filepath.Join(dir, "zebra.log"))
	for name, text := range map[string]string{"bgpd.conf": conf, "zebra.conf": zconf} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			return FRRSetup{}, err
		}
	}
	zserv := filepath.Join(sockDir, "zserv.api")
	// -u root: the daemons can read and write the test's files. FRR wants
	// the user to be in its vty group (frrvty); -g adds that group.
	// -z, --vty_socket, -i, -f: nothing shared with another FRR.
	common := []string{"-u", "root", "-g", vtyGroup(), "-z", zserv, "--vty_socket", sockDir}
	setup := FRRSetup{
		Zebra: slices.Concat([]string{zebraPath}, common,
			[]string{"-f", filepath.Join(dir, "zebra.conf"), "-i", filepath.Join(dir, "zebra.pid")}),
		Bgpd: slices.Concat([]string{bgpdPath}, common,
			[]string{"-f", filepath.Join(dir, "bgpd.conf"), "-i", filepath.Join(dir, "bgpd.pid")}),
		Zserv: zserv,
		VTY:   filepath.Join(sockDir, "bgpd.vty"),
	}
	if cfg.NoKernel {
		setup.Bgpd = append(setup.Bgpd, "-n")
	}
	return setup, nil
}

// CheckFRR reports whether FRR's daemons are installed.
func CheckFRR() error { return checkFRR() }

// Stop stops bgpd and zebra (SIGTERM: bgpd closes its sessions with a
// NOTIFICATION) and waits until they have exited. Idempotent; also run in
// t.Cleanup.
func (f *FRR) Stop() error {
	f.vty.close()
	var errs []error
	for _, d := range []*daemon{f.bgpd, f.zebra} {
		if d != nil {
			errs = append(errs, d.stop())
		}
	}
	return errors.Join(errs...)
}

func (f *FRR) cleanup() {
	if err := f.Stop(); err != nil {
		f.t.Errorf("stop FRR in %s: %v", f.NS.Name, err)
	}
	if f.t.Failed() {
		for _, name := range []string{"bgpd.log", "bgpd.out", "zebra.log", "zebra.out"} {
			f.t.Logf("FRR in %s: %s:\n%s", f.NS.Name, name, tail(filepath.Join(f.Dir, name), 300))
		}
	}
}

// Show runs a show command on bgpd, as `vtysh -c cmd` would, and returns
// its output. It talks to bgpd's vty socket itself, the way vtysh does,
// over a kept connection: a command takes well under a millisecond, where
// starting vtysh takes about 100ms. Without a deadline in ctx it gives up
// after 30s.
func (f *FRR) Show(ctx context.Context, cmd string) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	out, err := f.vty.run(ctx, cmd)
	if err != nil && !f.bgpd.running() {
		err = fmt.Errorf("%w (bgpd has exited: %v)", err, f.bgpd.exitErr())
	}
	return out, err
}

// Paths returns every path of prefix in bgpd's table (no error and no path
// when it has none). The prefix is looked up as is, not by longest match.
func (f *FRR) Paths(ctx context.Context, prefix netip.Prefix) ([]Path, error) {
	if !prefix.IsValid() || prefix != prefix.Masked() {
		return nil, fmt.Errorf("bgp paths of %v: want a prefix without host bits", prefix)
	}
	out, err := f.Show(ctx, fmt.Sprintf("show bgp %s unicast %s json", familyOf(prefix.Addr()), prefix))
	if err != nil {
		return nil, err
	}
	return parseRoute(out)
}

// Best returns the best path of prefix, and false when it has none.
func (f *FRR) Best(ctx context.Context, prefix netip.Prefix) (Path, bool, error) {
	paths, err := f.Paths(ctx, prefix)
	if err != nil {
		return Path{}, false, err
	}
	for _, p := range paths {
		if p.Best {
			return p, true, nil
		}
	}
	return Path{}, false, nil
}

// Table returns the best path of every prefix of the family, from one
// command.
func (f *FRR) Table(ctx context.Context, fam Family) (map[netip.Prefix]Path, error) {
	if fam != IPv4 && fam != IPv6 {
		return nil, fmt.Errorf("bgp table: family %q: want %q or %q", fam, IPv4, IPv6)
	}
	out, err := f.Show(ctx, fmt.Sprintf("show bgp %s unicast json", fam))
	if err != nil {
		return nil, err
	}
	return parseTable(out)
}

// Neighbors returns the state of every neighbor ("Established", "Active",
// "Connect", "Idle", ...).
func (f *FRR) Neighbors(ctx context.Context) (map[netip.Addr]string, error) {
	out, err := f.Show(ctx, "show bgp neighbors json")
	if err != nil {
		return nil, err
	}
	return parseNeighbors(out)
}

// WaitEstablished waits until the sessions with every one of addrs are
// Established. Without a deadline in ctx it waits at most a minute.
func (f *FRR) WaitEstablished(ctx context.Context, addrs ...netip.Addr) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var states map[netip.Addr]string
	var err error
	for {
		states, err = f.Neighbors(ctx)
		if err == nil && allEstablished(states, addrs) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("FRR in %s: sessions with %v not established: states %v, last error %v: %w",
				f.NS.Name, addrs, states, err, ctx.Err())
		case <-f.bgpd.exited:
			return fmt.Errorf("FRR in %s: bgpd has exited: %v", f.NS.Name, f.bgpd.exitErr())
		case <-tick.C:
		}
	}
}

func allEstablished(states map[netip.Addr]string, addrs []netip.Addr) bool {
	for _, a := range addrs {
		if states[a] != "Established" {
			return false
		}
	}
	return true
}

// waitConfigured waits until bgpd answers on its vty and has read its
// configuration (its BGP instance has the router ID).
func (f *FRR) waitConfigured(ctx context.Context) error {
	var last error
	for i := 0; ; i++ {
		out, err := f.vty.run(ctx, "show bgp vrfs json")
		if err == nil {
			var v struct {
				VRFs map[string]struct {
					RouterID string `json:"routerId"`
				} `json:"vrfs"`
			}
			err = json.Unmarshal(out, &v)
			if err == nil && v.VRFs["default"].RouterID == f.cfg.RouterID.String() {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("not configured yet: %s", bytes.TrimSpace(out))
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("FRR in %s: bgpd not ready: %v: %w", f.NS.Name, last, ctx.Err())
		case <-f.bgpd.exited:
			return fmt.Errorf("FRR in %s: bgpd has exited: %v; its output:\n%s", f.NS.Name,
				f.bgpd.exitErr(), tail(filepath.Join(f.Dir, "bgpd.out"), 50))
		case <-time.After(time.Duration(min(i+1, 10)) * 10 * time.Millisecond):
		}
	}
}

// vtyGroup is the group FRR's daemons check their user against: frrvty
// on Debian. Without it, they check nothing.
func vtyGroup() string {
	if _, err := user.LookupGroup("frrvty"); err == nil {
		return "frrvty"
	}
	return "root"
}

// daemon is one FRR daemon process.
type daemon struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
	err    error         // cmd.Wait's, once exited is closed
}

func startDaemon(ns NS, dir, name, path string, args ...string) (*daemon, error) {
	out, err := os.Create(filepath.Join(dir, name+".out"))
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child has its own copy
	cmd := ns.Command(context.Background(), path, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s in netns %s: %w", name, ns.Name, err)
	}
	d := &daemon{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		close(d.exited)
	}()
	return d, nil
}

func (d *daemon) running() bool {
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

func (d *daemon) exitErr() error {
	select {
	case <-d.exited:
		if d.err == nil {
			return errors.New("exit status 0")
		}
		return d.err
	default:
		return nil
	}
}

// stop sends SIGTERM to the daemon's process group, SIGKILL after 10s.
func (d *daemon) stop() error {
	if !d.running() {
		return nil
	}
	pgid := d.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-d.exited:
		return nil
	case <-time.After(10 * time.Second):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-d.exited
	return fmt.Errorf("%s did not exit on SIGTERM within 10s; killed", d.name)
}

// waitListening waits until a unix socket accepts connections.
func (d *daemon) waitListening(ctx context.Context, path string) error {
	for i := 0; ; i++ {
		var dl net.Dialer
		c, err := dl.DialContext(ctx, "unix", path)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s does not listen on %s: %v: %w", d.name, path, err, ctx.Err())
		case <-d.exited:
			return fmt.Errorf("%s has exited: %v", d.name, d.exitErr())
		case <-time.After(time.Duration(min(i+1, 10)) * 10 * time.Millisecond):
		}
	}
}

// tail returns the last n lines of a file, or why it cannot.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.SplitAfter(string(b), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[%d lines before]\n", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "")
}
