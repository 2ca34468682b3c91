package hypervisor

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// DefaultTCPPort is libvirtd's port for the tcp transport.
const DefaultTCPPort = "16509"

// defaultSocket is libvirtd's system socket, used by unix URIs without a
// socket parameter.
const defaultSocket = "/run/libvirt/libvirt-sock"

// supported is said in every error about an unsupported URI.
const supported = "supported: unix (e.g. qemu+unix:///system, test+unix:///default?socket=/run/zdt/a1.sock) " +
	"and tcp (e.g. qemu+tcp://10.0.0.5/system, port " + DefaultTCPPort + " unless given)"

var driverName = regexp.MustCompile(`^[a-z][a-z0-9]*$`)

// Target is where a libvirt URI leads: the transport to dial and the URI
// that is then opened at the daemon.
type Target struct {
	Network string // "unix" or "tcp"
	Address string // the socket path, or host:port
	URI     string // the daemon-side URI, e.g. "test:///default"
}

func (t Target) String() string { return t.URI + " via " + t.Network + " " + t.Address }

// ParseURI reads a libvirt connection URI as operators write them:
//
//	qemu:///system                               unix socket /run/libvirt/libvirt-sock
//	qemu+unix:///system                          the same
//	test+unix:///default?socket=/run/zdt/a1.sock unix socket /run/zdt/a1.sock
//	qemu+tcp://10.0.0.5/system                   tcp 10.0.0.5:16509
//	qemu+tcp://[fd00::5]:16510/system            tcp [fd00::5]:16510
//
// The daemon-side URI is the driver and the path ("qemu:///system"), or the
// name parameter when there is one. Only the unix and tcp transports are
// supported (no tls, ssh or libssh yet, no SASL user names); of the URI
// parameters only socket, mode (auto or legacy) and name are accepted, so a
// typo is reported rather than ignored.
func ParseURI(uri string) (Target, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return Target{}, fmt.Errorf("libvirt URI %q: %w", uri, err)
	}
	shown := u.Redacted()
	bad := func(format string, args ...any) (Target, error) {
		return Target{}, fmt.Errorf("libvirt URI %q: %s", shown, fmt.Sprintf(format, args...))
	}
	if u.Opaque != "" || u.Scheme == "" {
		return bad("want driver[+transport]://[host]/path, e.g. qemu+unix:///system")
	}
	scheme := strings.ToLower(u.Scheme)
	driver, transport, hasTransport := strings.Cut(scheme, "+")
	if !driverName.MatchString(driver) {
		return bad("driver %q is not a driver name", driver)
	}
	if !hasTransport {
		// libvirt's rule: no transport means unix for a local URI and tls
		// when a host is named.
		transport = "unix"
		if u.Host != "" {
			return bad("a URI with a host and no transport means tls, which is not supported yet; %s", supported)
		}
	}
	if u.User != nil {
		return bad("user names need SASL authentication, which is not supported")
	}
	if u.Fragment != "" {
		return bad("unexpected fragment %q", u.Fragment)
	}
	if u.Path == "" || u.Path == "/" || path.Clean(u.Path) != u.Path {
		return bad("want a driver path such as /system or /default, got %q", u.Path)
	}

	q := u.Query()
	for key, vals := range q {
		switch key {
		case "socket", "mode":
			if transport != "unix" {
				return bad("parameter %q is for the unix transport only", key)
			}
		case "name":
		default:
			return bad("parameter %q is not supported (supported: socket, mode, name)", key)
		}
		if len(vals) != 1 || vals[0] == "" {
			return bad("parameter %q must be given once, with a value", key)
		}
	}

	t := Target{Network: transport, URI: driver + "://" + u.Path}
	if name := q.Get("name"); name != "" {
		t.URI = name
	}
	switch transport {
	case "unix":
		if u.Host != "" {
			return bad("the unix transport takes no host, got %q", u.Host)
		}
		switch mode := q.Get("mode"); mode {
		case "", "auto", "legacy":
		default:
			return bad("mode %q is not supported (supported: auto, legacy)", mode)
		}
		t.Address = q.Get("socket")
		switch {
		case t.Address == "" && u.Path == "/session":
			return bad("session daemons have a per-user socket: give it as socket=/path")
		case t.Address == "":
			t.Address = defaultSocket
		case !path.IsAbs(t.Address):
			return bad("socket %q is not an absolute path", t.Address)
		}
	case "tcp":
		host, port := u.Hostname(), u.Port()
		if host == "" {
			return bad("the tcp transport needs a host, e.g. qemu+tcp://10.0.0.5/system")
		}
		if port == "" {
			port = DefaultTCPPort
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return bad("port %q is not a TCP port", port)
		}
		t.Address = net.JoinHostPort(host, port)
	default:
		return bad("transport %q is not supported; %s", transport, supported)
	}
	return t, nil
}
