// Package libvirtdtest runs real libvirtd daemons for tests: one per site,
// each serving the test driver (test:///default) on its own unix socket,
// with its own configuration, pid file and log, and stopped in t.Cleanup.
// It is for tests only.
//
// Debian's libvirtd (package libvirt-daemon) loads every connection driver
// in its driver directory; the QEMU driver refuses to start without the
// libvirt-qemu user, and the state drivers (network, storage, secrets, ...)
// keep shared state under /run/libvirt, /etc/libvirt and /var/lib/libvirt
// and lock it, so a second daemon could not start. Each daemon here is
// therefore started with LIBVIRT_DRIVER_DIR pointing at an empty directory:
// it then has only the drivers built into libvirt.so, among them the test
// driver, which keeps its state in memory. The one thing that daemons
// started as root still share is /run/libvirt/common/system.token, which
// libvirt creates once and every daemon only reads.
//
// When libvirtd is not installed the tests that need it are skipped, unless
// the environment variable CI is "true": then a missing libvirtd fails them.
// Install it with:
//
//	apt-get install -y --no-install-recommends libvirt-daemon
package libvirtdtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zdt-project/zdt/deploy/hypervisor"
	"github.com/zdt-project/zdt/site/testport"
)

// InstallHint says how to get libvirtd on Debian.
const InstallHint = "apt-get install -y --no-install-recommends libvirt-daemon"

// Options shapes a daemon.
type Options struct {
	// TCP makes the daemon also listen on 127.0.0.1 at a free port, without
	// authentication (libvirtd --listen).
	TCP bool
	// ReadyTimeout bounds the wait for the daemon to answer (default 30s).
	ReadyTimeout time.Duration
}

// Daemon is one libvirtd process.
type Daemon struct {
	t    testing.TB
	bin  string
	dir  string // configuration, pid file, log, driver directory
	conf string
	log  string
	sock string // the read-write socket
	port string // tcp port, empty without Options.TCP
	opts Options

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// Binary is the path of libvirtd, or an error when it is not installed.
func Binary() (string, error) {
	if p, err := exec.LookPath("libvirtd"); err == nil {
		return p, nil
	}
	const sbin = "/usr/sbin/libvirtd"
	if _, err := os.Stat(sbin); err == nil {
		return sbin, nil
	}
	return "", fmt.Errorf("libvirtd is not installed (%s)", InstallHint)
}

// Need returns the path of libvirtd. When it is missing it skips the test,
// or fails it when CI=true.
func Need(t testing.TB) string {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %v", err)
		}
		t.Skipf("%v; skipping", err)
	}
	return bin
}

// Start starts a daemon and waits until it answers on its socket. It is
// stopped in t.Cleanup, also when the test fails; then its log is shown.
func Start(t testing.TB, opts Options) *Daemon {
	t.Helper()
	bin := Need(t)
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 30 * time.Second
	}
	d := &Daemon{t: t, bin: bin, dir: t.TempDir(), opts: opts}
	d.conf = filepath.Join(d.dir, "libvirtd.conf")
	d.log = filepath.Join(d.dir, "libvirtd.log")
	sockDir := filepath.Join(d.dir, "run")
	// A unix socket path has at most 107 bytes; test names make long
	// temporary directories.
	if len(sockDir)+len("/libvirt-admin-sock") > 100 {
		short, err := os.MkdirTemp("", "lvd")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(short) })
		sockDir = short
	}
	d.sock = filepath.Join(sockDir, "libvirt-sock")
	for _, dir := range []string{sockDir, filepath.Join(d.dir, "drivers"), filepath.Join(d.dir, "xdg")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`# written by libvirtdtest
unix_sock_dir = %q
unix_sock_rw_perms = "0700"
unix_sock_ro_perms = "0700"
unix_sock_admin_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
listen_tls = 0
log_outputs = "3:stderr"
`, sockDir)
	if opts.TCP {
		d.port = strconv.Itoa(testport.Reserve(t, "127.0.0.1"))
		conf += fmt.Sprintf("listen_tcp = 1\nlisten_addr = \"127.0.0.1\"\ntcp_port = %q\nauth_tcp = \"none\"\n", d.port)
	} else {
		conf += "listen_tcp = 0\n"
	}
	if err := os.WriteFile(d.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			d.showLog()
		}
	})
	d.start()
	return d
}

// URI is the daemon's test driver over its unix socket.
func (d *Daemon) URI() string { return "test+unix:///default?socket=" + d.sock }

// TCPURI is the daemon's test driver over TCP; only with Options.TCP.
func (d *Daemon) TCPURI() string {
	if d.port == "" {
		d.t.Fatal("libvirtdtest: TCPURI of a daemon started without Options.TCP")
	}
	return "test+tcp://127.0.0.1:" + d.port + "/default"
}

// Socket is the path of the daemon's read-write socket.
func (d *Daemon) Socket() string { return d.sock }

// Args are the daemon's command-line arguments after the binary.
func (d *Daemon) Args() []string {
	args := []string{"-f", d.conf, "-p", filepath.Join(d.dir, "libvirtd.pid")}
	if d.opts.TCP {
		args = append(args, "--listen")
	}
	return args
}

// Env is what the daemon's environment adds to the test's.
func (d *Daemon) Env() []string {
	xdg := filepath.Join(d.dir, "xdg")
	return []string{
		// only the drivers built into libvirt.so: see the package doc
		"LIBVIRT_DRIVER_DIR=" + filepath.Join(d.dir, "drivers"),
		// used when not run as root
		"XDG_RUNTIME_DIR=" + xdg, "XDG_CONFIG_HOME=" + xdg, "XDG_CACHE_HOME=" + xdg,
	}
}

// Running says whether the daemon process is alive.
func (d *Daemon) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return false
	}
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

func (d *Daemon) start() {
	d.t.Helper()
	d.mu.Lock()
	if d.cmd != nil {
		select {
		case <-d.exited:
		default:
			d.mu.Unlock()
			d.t.Fatal("libvirtdtest: daemon is already running")
		}
	}
	logf, err := os.OpenFile(d.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		d.mu.Unlock()
		d.t.Fatal(err)
	}
	cmd := exec.Command(d.bin, d.Args()...)
	cmd.Env = append(os.Environ(), d.Env()...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, and killed with the test binary where Linux
	// can (the parent thread's death).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	logf.Close()
	if err != nil {
		d.mu.Unlock()
		d.t.Fatalf("libvirtdtest: start %s: %v", d.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	d.cmd, d.exited = cmd, exited
	d.mu.Unlock()

	if err := d.awaitReady(exited); err != nil {
		d.showLog()
		d.t.Fatalf("libvirtdtest: %s %v: %v", d.bin, d.Args(), err)
	}
}

// awaitReady tries a libvirt handshake on the socket, at growing intervals,
// until one succeeds, the daemon exits or ReadyTimeout passes.
func (d *Daemon) awaitReady(exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), d.opts.ReadyTimeout)
	defer cancel()
	wait := 5 * time.Millisecond
	for {
		err := handshake(ctx, d.sock)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("daemon exited before it answered: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("no answer within %s: %v", d.opts.ReadyTimeout, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// handshake opens test:///default on the socket and asks for the version.
func handshake(ctx context.Context, sock string) error {
	return hypervisor.Ping(ctx, "test+unix:///default?socket="+sock, 2*time.Second)
}

// Kill kills the daemon with SIGKILL and waits until it has exited. Its
// socket files stay behind, as after a crash.
func (d *Daemon) Kill() {
	d.t.Helper()
	d.signalAndWait(syscall.SIGKILL, 10*time.Second)
}

// Stop stops the daemon with SIGTERM, or SIGKILL when it has not exited
// after 10s. A stopped daemon is fine.
func (d *Daemon) Stop() {
	d.t.Helper()
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Process.Signal(syscall.SIGCONT) // in case it was paused
	select {
	case <-exited:
		return
	case <-time.After(10 * time.Second):
	}
	d.t.Logf("libvirtdtest: daemon ignored SIGTERM for 10s; killing it")
	d.Kill()
}

// Restart starts a stopped or killed daemon again, with the same
// configuration and socket, and waits until it answers.
func (d *Daemon) Restart() {
	d.t.Helper()
	d.start()
}

// Pause stops the daemon with SIGSTOP: it keeps its socket and connections
// but answers nothing until Resume.
func (d *Daemon) Pause() {
	d.t.Helper()
	d.signal(syscall.SIGSTOP)
}

// Resume continues a paused daemon.
func (d *Daemon) Resume() {
	d.t.Helper()
	d.signal(syscall.SIGCONT)
}

func (d *Daemon) signal(sig syscall.Signal) {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		d.t.Fatalf("libvirtdtest: signal %v: no daemon", sig)
	}
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatalf("libvirtdtest: signal %v: %v", sig, err)
	}
}

func (d *Daemon) signalAndWait(sig syscall.Signal, limit time.Duration) {
	d.t.Helper()
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		d.t.Errorf("libvirtdtest: signal %v: %v", sig, err)
	}
	select {
	case <-exited:
	case <-time.After(limit):
		d.t.Errorf("libvirtdtest: daemon %d still runs %s after %v", cmd.Process.Pid, limit, sig)
	}
}

func (d *Daemon) showLog() {
	b, err := os.ReadFile(d.log)
	if err != nil {
		d.t.Logf("libvirtdtest: no log: %v", err)
		return
	}
	const keep = 8 << 10
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	d.t.Logf("libvirtdtest: %s (last %d bytes):\n%s", d.log, len(b), b)
}
