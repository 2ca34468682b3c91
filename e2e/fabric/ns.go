package fabric

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NS is a named network namespace, one of /run/netns/*, the kind
// `ip netns add` makes. The zero NS is not usable.
type NS struct {
	Name string
}

// Command returns a command that runs name inside the namespace (through
// `ip netns exec`, which execs name: the started process is name itself).
// The command is the leader of its own process group; cancelling ctx kills
// the whole group, and so does the Fabric's cleanup for whatever is still
// running in the namespace.
func (ns NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, ipBinary(), append([]string{"netns", "exec", ns.Name, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	return cmd
}

// Do runs f on an OS thread that is switched into the namespace, and
// returns its error. Sockets and netlink handles that f creates stay in the
// namespace after f returns. f must do its work on the calling goroutine:
// goroutines it starts run outside the namespace.
func (ns NS) Do(f func() error) error {
	target, err := netns.GetFromName(ns.Name)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", ns.Name, err)
	}
	defer target.Close()

	// A fresh goroutine, so that a thread left in the namespace (when
	// switching back fails) dies with it instead of serving the caller.
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("netns of this thread: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			// setns failed: the thread is where it was.
			runtime.UnlockOSThread()
			done <- fmt.Errorf("enter netns %s: %w", ns.Name, err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			// Stay locked: the runtime ends the thread with this goroutine.
			done <- errors.Join(ferr, fmt.Errorf("leave netns %s: %w", ns.Name, err))
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

// DialContext connects to addr (an IP literal and port, as for net.Dial)
// from inside the namespace. It has the signature of
// http.Transport.DialContext. Only the socket is made in the namespace;
// the connection is then used from anywhere.
func (ns NS) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s in netns %s: %w", addr, ns.Name, err)
	}
	// A host name would be resolved, and a dual-stack dial raced, on
	// other goroutines, outside the namespace.
	if _, err := netip.ParseAddr(host); err != nil {
		return nil, fmt.Errorf("dial %s in netns %s: want an IP address, not %q", addr, ns.Name, host)
	}
	var conn net.Conn
	err = ns.Do(func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		conn = c
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("in netns %s: %w", ns.Name, err)
	}
	return conn, nil
}

// Listen is net.Listen inside the namespace.
func (ns NS) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := ns.Do(func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("in netns %s: %w", ns.Name, err)
	}
	return l, nil
}

// AddLocalLink adds a link for local addresses (a service's addresses)
// to the namespace, up: a dummy or, where the kernel has no dummy
// interfaces, one end of a veth pair whose other end (name + "p") is up
// too, which has carrier all the same. It returns the link's type.
func (ns NS) AddLocalLink(name string) (string, error) {
	if name == "" || len(name) > 14 {
		return "", fmt.Errorf("local link %q: want 1 to 14 characters", name)
	}
	var kind string
	err := ns.withHandle(func(h *netlink.Handle) error {
		kind = "dummy"
		err := h.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}})
		if errors.Is(err, unix.EOPNOTSUPP) {
			kind = "veth"
			peer := name + "p"
			err = h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer})
			if err == nil {
				err = setUp(h, ns, peer, nil)
			}
		}
		if err != nil {
			return fmt.Errorf("add local link %s in netns %s: %w", name, ns.Name, err)
		}
		return setUp(h, ns, name, nil)
	})
	return kind, err
}

// withHandle runs f with a netlink handle whose socket is in the namespace.
func (ns NS) withHandle(f func(h *netlink.Handle) error) error {
	target, err := netns.GetFromName(ns.Name)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", ns.Name, err)
	}
	defer target.Close()
	h, err := netlink.NewHandleAt(target)
	if err != nil {
		return fmt.Errorf("netlink in netns %s: %w", ns.Name, err)
	}
	defer h.Close()
	return f(h)
}

// setLink sets a link of the namespace up or down.
func (ns NS) setLink(name string, up bool) error {
	return ns.withHandle(func(h *netlink.Handle) error {
		l, err := h.LinkByName(name)
		if err != nil {
			return fmt.Errorf("link %s in netns %s: %w", name, ns.Name, err)
		}
		if up {
			err = h.LinkSetUp(l)
		} else {
			err = h.LinkSetDown(l)
		}
		if err != nil {
			return fmt.Errorf("set link %s in netns %s up=%t: %w", name, ns.Name, up, err)
		}
		return nil
	})
}
