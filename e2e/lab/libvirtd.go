package lab

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/zdt-project/zdt/deploy/hypervisor"
)

// InstallLibvirtd is how to get libvirtd on Debian. Without it the lab runs
// without hypervisors and guests.
const InstallLibvirtd = "apt-get install -y --no-install-recommends libvirt-daemon"

// A site's libvirtd lives in DIR/<site>/libvirt: its configuration, its log,
// its pid files, an empty driver directory and, when the path is short
// enough, its sockets.
const (
	libvirtDirName   = "libvirt"
	libvirtdConfName = "libvirtd.conf"
	libvirtdLogName  = "libvirtd.log"
	// libvirtdPIDName is libvirtd's own pid file (-p), which it locks; the
	// lab's is pidFileName beside it.
	libvirtdPIDName = "libvirtd.pid"
	driversDirName  = "drivers"
	xdgDirName      = "xdg"
	// socketName is the read-write socket in the socket directory.
	socketName = "libvirt-sock"
	// maxSocketDir keeps the longest socket libvirtd creates,
	// libvirt-admin-sock, within the 107 bytes of a unix socket path.
	maxSocketDir = 100 - len("/libvirt-admin-sock")
	// libvirtdAnswerTimeout bounds one handshake with a libvirtd.
	libvirtdAnswerTimeout = 2 * time.Second
)

// ErrNoLibvirtd is wrapped by the error of FindLibvirtd when libvirtd is
// not installed.
var ErrNoLibvirtd = errors.New("libvirtd is not installed")

// ErrLibvirtdNeedsRoot is wrapped by the error of FindLibvirtd when the lab
// does not run as root: libvirtd run by another user serves no socket where
// the lab asks for it.
var ErrLibvirtdNeedsRoot = errors.New("the lab runs libvirtd only as root")

// FindLibvirtd returns the path of the libvirtd the lab can run, from PATH
// or /usr/sbin, or an error that says what to do: wrapping ErrNoLibvirtd
// (install it) or ErrLibvirtdNeedsRoot.
func FindLibvirtd() (string, error) {
	p, err := exec.LookPath("libvirtd")
	if err != nil {
		const sbin = "/usr/sbin/libvirtd"
		if p, err = exec.LookPath(sbin); err != nil {
			return "", fmt.Errorf("%w: install it with `%s`", ErrNoLibvirtd, InstallLibvirtd)
		}
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("%w: %s is installed, but run the lab as root to have it", ErrLibvirtdNeedsRoot, p)
	}
	return p, nil
}

// libvirtdBinary is opts.Libvirtd if it is an executable (whoever runs
// the lab), or the one FindLibvirtd finds.
func (o Options) libvirtdBinary() (string, error) {
	if o.Libvirtd == "" {
		return FindLibvirtd()
	}
	p, err := exec.LookPath(o.Libvirtd)
	if err != nil {
		return "", fmt.Errorf("%w (%v): install it with `%s`", ErrNoLibvirtd, err, InstallLibvirtd)
	}
	return p, nil
}

// libvirtDir is DIR/<site>/libvirt.
func libvirtDir(labDir, site string) string { return filepath.Join(labDir, site, libvirtDirName) }

// socketDir is where a new lab's site has its libvirtd's sockets: in its
// libvirt directory, or, when that path is too long for a unix socket, in a
// directory of the system's temporary directory named after the lab.
func socketDir(labDir, site string) (string, error) {
	dir := libvirtDir(labDir, site)
	if len(dir) <= maxSocketDir {
		return dir, nil
	}
	sum := sha256.Sum256([]byte(labDir))
	short := filepath.Join(os.TempDir(), fmt.Sprintf("zdt-lab-%x", sum[:6]), site)
	if len(short) > maxSocketDir {
		return "", fmt.Errorf("site %s: the socket directory of its libvirtd, %s, is too long for a unix socket (at most %d bytes): use a shorter lab directory",
			site, dir, maxSocketDir)
	}
	return short, nil
}

// hostURI is the libvirt URI of the test driver of the libvirtd with
// sockets in sockDir: its shared hypervisor, test:///default, which every
// connection to it sees (while one is open).
func hostURI(sockDir string) string {
	return "test+unix:///default?socket=" + queryValue(filepath.Join(sockDir, socketName))
}

// ownHostURI is the URI of a hypervisor of its own on the libvirtd with
// sockets in sockDir: the test driver on the node XML at path node (the
// name parameter is the URI the daemon opens). The driver keeps such a
// hypervisor for one connection: only the host's controller, which keeps
// its connection, sees its guests; another connection gets a new one,
// without guests.
func ownHostURI(sockDir, node string) string {
	name := url.URL{Scheme: "test", Path: filepath.ToSlash(node)}
	return hostURI(sockDir) + "&name=" + queryValue(name.String())
}

// queryValue escapes a URI's query value, slashes and colons aside: "+"
// would read as a space, "&" would end it.
func queryValue(s string) string {
	return strings.NewReplacer("%2F", "/", "%3A", ":").Replace(url.QueryEscape(s))
}

// nodeFilePrefix begins the name of a host's node XML in its site's
// libvirt directory: DIR/<site>/libvirt/node-<host>.xml.
const nodeFilePrefix = "node-"

// nodePath is where the node XML of a host of the site is.
func nodePath(labDir, site, host string) string {
	return filepath.Join(libvirtDir(labDir, site), nodeFilePrefix+host+".xml")
}

// ownHypervisors reports whether the site's hosts are hypervisors of their
// own, each the test driver on its node XML.
func ownHypervisors(s SiteSpec) bool { return s.OwnHypervisors && len(s.Hosts) > 0 }

// nodeXML describes a host to libvirt's test driver: one NUMA node and
// socket with the host's vCPUs as cores, and its memory (in KiB). A size
// the topology leaves out is the driver's default.
func nodeXML(h HostSpec) string {
	var b strings.Builder
	b.WriteString("<node>\n")
	if h.VCPUs > 0 {
		fmt.Fprintf(&b, "  <cpu><nodes>1</nodes><sockets>1</sockets><cores>%d</cores><threads>1</threads><active>%d</active><mhz>2000</mhz><model>x86_64</model></cpu>\n",
			h.VCPUs, h.VCPUs)
	}
	if h.MemoryMiB > 0 {
		fmt.Fprintf(&b, "  <memory>%d</memory>\n", h.MemoryMiB*1024)
	}
	b.WriteString("</node>\n")
	return b.String()
}

// writeNodes writes the node XML of every host of the sites whose hosts
// are hypervisors of their own, and removes the old ones of every site.
func writeNodes(dir string, t Topology) error {
	for _, s := range t.Sites {
		old, err := filepath.Glob(filepath.Join(libvirtDir(dir, s.Name), nodeFilePrefix+"*.xml"))
		if err != nil {
			return fmt.Errorf("site %s: find the old node XML: %w", s.Name, err)
		}
		for _, p := range old {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("site %s: remove the old node XML: %w", s.Name, err)
			}
		}
		if !ownHypervisors(s) {
			continue
		}
		if err := os.MkdirAll(libvirtDir(dir, s.Name), 0o700); err != nil {
			return fmt.Errorf("site %s: %w", s.Name, err)
		}
		for _, h := range s.Hosts {
			if err := writeFileAtomic(nodePath(dir, s.Name, h.Name), []byte(nodeXML(h)), 0o644); err != nil {
				return fmt.Errorf("write the node XML of host %s: %w", h.Name, err)
			}
		}
	}
	return nil
}

// socketOf returns the socket of a host's unix URI.
func socketOf(uri string) (string, error) {
	t, err := hypervisor.ParseURI(uri)
	if err != nil {
		return "", err
	}
	if t.Network != "unix" {
		return "", fmt.Errorf("libvirt URI %s: the lab serves its hosts on unix sockets, not %s", uri, t.Network)
	}
	return t.Address, nil
}

// libvirtdConf is the configuration of a site's libvirtd: its sockets in
// sockDir, only for root (or the user who runs the lab), without
// authentication, no TCP or TLS, and its warnings on stderr, which goes to
// its log.
func libvirtdConf(sockDir string) string {
	return fmt.Sprintf(`# written by zdt lab: the libvirtd of one site of the lab
unix_sock_dir = %q
unix_sock_rw_perms = "0700"
unix_sock_ro_perms = "0700"
unix_sock_admin_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
listen_tls = 0
listen_tcp = 0
log_outputs = "3:stderr"
`, sockDir)
}

// libvirtdEnv is what a site's libvirtd's environment adds to ours.
//
// Debian's libvirtd loads every driver in its driver directory: the QEMU
// driver refuses to start without the libvirt-qemu user, and the state
// drivers (network, storage, ...) keep shared state under /run/libvirt and
// lock it, so a second daemon could not start. With LIBVIRT_DRIVER_DIR an
// empty directory it has only the drivers built into libvirt.so, the test
// driver among them, which keeps its state in memory while a connection is
// open. The XDG directories are used when it does not run as root.
func libvirtdEnv(dir string) []string {
	xdg := filepath.Join(dir, xdgDirName)
	return []string{
		"LIBVIRT_DRIVER_DIR=" + filepath.Join(dir, driversDirName),
		"XDG_RUNTIME_DIR=" + xdg, "XDG_CONFIG_HOME=" + xdg, "XDG_CACHE_HOME=" + xdg,
	}
}

// prepareLibvirtd writes a site's libvirtd configuration and makes its
// directories; it returns the arguments to run it with.
func prepareLibvirtd(dir, sockDir string) ([]string, error) {
	for _, d := range []string{dir, filepath.Join(dir, driversDirName), filepath.Join(dir, xdgDirName), sockDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	conf := filepath.Join(dir, libvirtdConfName)
	if err := writeFileAtomic(conf, []byte(libvirtdConf(sockDir)), 0o600); err != nil {
		return nil, err
	}
	return []string{"-f", conf, "-p", filepath.Join(dir, libvirtdPIDName)}, nil
}

// handshake opens the test driver on the socket and asks for the
// library version.
func handshake(ctx context.Context, sock string) error {
	return hypervisor.Ping(ctx, "test+unix:///default?socket="+sock, libvirtdAnswerTimeout)
}

// isLibvirtd reports whether pid is a live libvirtd with this
// configuration file.
func isLibvirtd(pid int, conf string) bool {
	args := cmdline(pid)
	return len(args) >= 2 && flagValue(args[1:], "-f") == conf
}

// removeSocketDir removes a socket directory outside the lab directory
// (made because the lab's path was too long), once its libvirtd is gone.
func removeSocketDir(labDir, sockDir string) error {
	if sockDir == "" || strings.HasPrefix(sockDir, labDir+string(filepath.Separator)) {
		return nil
	}
	if err := os.RemoveAll(sockDir); err != nil {
		return fmt.Errorf("remove the socket directory %s: %w", sockDir, err)
	}
	// Its parent, named after the lab, once no site uses it.
	err := os.Remove(filepath.Dir(sockDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("remove %s: %w", filepath.Dir(sockDir), err)
	}
	return nil
}
