package svcaddr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"
)

var (
	v4      = netip.MustParsePrefix("203.0.113.10/32")
	v4b     = netip.MustParsePrefix("203.0.113.11/32")
	v6      = netip.MustParsePrefix("2001:db8:5::10/128")
	foreign = netip.MustParsePrefix("203.0.113.99/32") // put there by someone else
	managed = []netip.Prefix{v4, v4b, v6}
)

// TestApply runs Apply in a network namespace of the test's own.
func TestApply(t *testing.T) {
	ns, h := newNetns(t)
	if !haveDummy(t, h) {
		addLocalLink(t, h, "zdt0") // Apply cannot create it
	}
	core, logs := observer.New(zap.InfoLevel)
	m := NewWithHandle("zdt0", h, zap.New(core))
	ctx := t.Context()

	if err := m.Apply(ctx, []netip.Prefix{v4, v6}, managed); err != nil {
		t.Fatal(err)
	}
	link, err := h.LinkByName("zdt0")
	if err != nil {
		t.Fatal(err)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("zdt0: flags %v; want it up", link.Attrs().Flags)
	}
	wantCarries(t, m, v4, v6)
	addrs, err := h.AddrList(link, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.IP.Equal(v6.Addr().AsSlice()) && a.Flags&unix.IFA_F_NODAD == 0 {
			t.Errorf("%s: flags %#x, want IFA_F_NODAD", v6, a.Flags)
		}
	}
	// Usable at once: a service can listen on them and be reached.
	for _, p := range []netip.Prefix{v4, v6} {
		if err := inNetns(ns, func() error { return listenAndDial(p.Addr()) }); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}

	// An address zdt does not manage stays, whatever Apply is asked.
	if err := h.AddrAdd(link, toAddr(foreign)); err != nil {
		t.Fatal(err)
	}
	before := logs.Len()
	if err := m.Apply(ctx, []netip.Prefix{v6, v4, v4}, managed); err != nil {
		t.Fatal(err)
	}
	if n := logs.Len() - before; n != 0 {
		t.Errorf("the same Apply again logged %d changes: %v", n, logs.All()[before:])
	}
	wantCarries(t, m, v4, v6, foreign)

	if err := m.Apply(ctx, []netip.Prefix{v6}, managed); err != nil {
		t.Fatal(err)
	}
	wantCarries(t, m, v6, foreign)

	// A link set down by someone is set up again, and the IPv6 address,
	// which the kernel drops from a link that goes down, is back.
	if err := h.LinkSetDown(link); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(ctx, []netip.Prefix{v6}, managed); err != nil {
		t.Fatal(err)
	}
	wantCarries(t, m, v6, foreign)
	if link, err = h.LinkByName("zdt0"); err != nil || link.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("zdt0 after Apply: %v, %v; want it up", link, err)
	}

	if err := m.Apply(ctx, nil, managed); err != nil {
		t.Fatal(err)
	}
	wantCarries(t, m, foreign)
	var ops []string
	for _, e := range logs.All() {
		if e.ContextMap()["iface"] != "zdt0" {
			t.Errorf("log entry without iface: %v", e)
		}
		ops = append(ops, fmt.Sprint(e.ContextMap()["op"], " ", e.ContextMap()["addr"]))
	}
	wantOps := []string{"add 203.0.113.10/32", "add 2001:db8:5::10/128", "remove 203.0.113.10/32",
		"add 2001:db8:5::10/128", "remove 2001:db8:5::10/128"}
	if len(ops) > 0 && ops[0] == "create <nil>" {
		ops = ops[1:]
	}
	if !slices.Equal(ops, wantOps) {
		t.Errorf("logged %q, want %q", ops, wantOps)
	}
}

// TestApplyCreates: Apply creates the dummy interface, also with nothing
// to carry, so that a site finds out early whether it can.
func TestApplyCreates(t *testing.T) {
	_, h := newNetns(t)
	m := NewWithHandle("zdt0", h, nil)
	if !haveDummy(t, h) {
		err := m.Apply(t.Context(), nil, managed)
		if !errors.Is(err, ErrNoDummy) || !strings.Contains(err.Error(), "modprobe dummy") {
			t.Errorf("Apply: %v, want ErrNoDummy saying what to do", err)
		}
		// This kernel cannot make the interface (some VM kernels are built
		// without CONFIG_DUMMY, and modprobe cannot add it): what Apply
		// must do then is asserted above; creating one cannot be tested.
		t.Logf("the kernel has no dummy interfaces: only the refusal was tested (%v)", err)
		return
	}
	if got, err := m.Addresses(); err != nil || got != nil {
		t.Fatalf("Addresses without the interface: %v, %v", got, err)
	}
	if err := m.Apply(t.Context(), nil, managed); err != nil {
		t.Fatal(err)
	}
	link, err := h.LinkByName("zdt0")
	if err != nil || link.Type() != "dummy" || link.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("zdt0: %v, %v; want an up dummy", link, err)
	}
	wantCarries(t, m)
}

func TestApplyInvalid(t *testing.T) {
	_, h := newNetns(t)
	m := NewWithHandle("zdt0", h, nil)
	ctx := t.Context()
	for _, tc := range []struct {
		name    string
		iface   string
		want    []netip.Prefix
		managed []netip.Prefix
	}{
		{name: "not a host", want: []netip.Prefix{v4, netip.MustParsePrefix("203.0.113.0/24")}},
		{name: "not a host in managed", want: []netip.Prefix{v4}, managed: []netip.Prefix{netip.MustParsePrefix("2001:db8:5::/64")}},
		{name: "zero prefix", want: []netip.Prefix{v4, {}}},
		{name: "IPv4 in IPv6", want: []netip.Prefix{netip.MustParsePrefix("::ffff:203.0.113.10/128")}},
		{name: "too long", want: []netip.Prefix{netip.PrefixFrom(v4.Addr(), 33)}},
		{name: "link-local", want: []netip.Prefix{netip.MustParsePrefix("fe80::1/128")}},
		{name: "unspecified", want: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")}},
		{name: "multicast", want: []netip.Prefix{netip.MustParsePrefix("ff02::1/128")}},
		{name: "no interface name", iface: "-", want: []netip.Prefix{v4}},
		{name: "long interface name", iface: "zdt0123456789abc", want: []netip.Prefix{v4}},
		{name: "interface name with /", iface: "zdt/0", want: []netip.Prefix{v4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iface := "zdt0"
			if tc.iface == "-" {
				iface = ""
			} else if tc.iface != "" {
				iface = tc.iface
			}
			m := NewWithHandle(iface, h, nil)
			err := m.Apply(ctx, tc.want, append(slices.Clone(managed), tc.managed...))
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Apply: %v, want ErrInvalid", err)
			}
			if _, err := h.LinkByName(iface); err == nil {
				t.Errorf("interface %q created", iface)
			}
		})
	}

	// With the interface there, bad input changes nothing on it either.
	addLocalLink(t, h, "zdt0")
	if err := m.Apply(ctx, []netip.Prefix{v4b}, managed); err != nil {
		t.Fatal(err)
	}
	err := m.Apply(ctx, []netip.Prefix{v4, netip.MustParsePrefix("203.0.113.0/24")}, managed)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "203.0.113.0/24") {
		t.Errorf("Apply: %v, want ErrInvalid naming 203.0.113.0/24", err)
	}
	wantCarries(t, m, v4b)
}

// TestApplyExisting: an interface that exists is used whatever its type.
func TestApplyExisting(t *testing.T) {
	_, h := newNetns(t)
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "zdt0"}}); err != nil {
		t.Fatal(err)
	}
	m := NewWithHandle("zdt0", h, nil)
	if err := m.Apply(t.Context(), []netip.Prefix{v4}, managed); err != nil {
		t.Fatal(err)
	}
	wantCarries(t, m, v4)
	if link, err := h.LinkByName("zdt0"); err != nil || link.Type() != "bridge" {
		t.Errorf("zdt0: %v, %v; want the bridge", link, err)
	}
}

func TestApplyCanceled(t *testing.T) {
	_, h := newNetns(t)
	m := NewWithHandle("zdt0", h, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := m.Apply(ctx, []netip.Prefix{v4}, managed); !errors.Is(err, context.Canceled) {
		t.Errorf("Apply: %v, want context.Canceled", err)
	}
	if _, err := h.LinkByName("zdt0"); err == nil {
		t.Error("zdt0 created by a canceled Apply")
	}
}

// TestNew uses New, which works in the namespace of the calling thread.
func TestNew(t *testing.T) {
	ns, h := newNetns(t)
	addLocalLink(t, h, "zdt0")
	err := inNetns(ns, func() error {
		m := New("zdt0", nil)
		if err := m.Check(); err != nil {
			return err
		}
		if err := m.Apply(context.Background(), []netip.Prefix{v4, v6}, managed); err != nil {
			return err
		}
		got, err := m.Addresses()
		if err == nil && (!slices.Contains(got, v4) || !slices.Contains(got, v6)) {
			err = fmt.Errorf("carries %v", got)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.LinkByName("zdt0"); err != nil {
		t.Errorf("zdt0 not in the test's namespace: %v", err)
	}
}

// helperEnv makes the test binary run TestHelperNoCapability's body.
const helperEnv = "ZDT_SVCADDR_HELPER"

// TestNoCapability runs Check and Apply in a child process without any
// capability (setpriv clears the bounding set: root's exec gains none), in
// a namespace with zdt0 carrying v4b: both fail clearly, nothing changes.
func TestNoCapability(t *testing.T) {
	ns, h := newNetns(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		need(t, fmt.Errorf("setpriv is missing (apt-get install -y util-linux)"))
	}
	addLocalLink(t, h, "zdt0")
	m := NewWithHandle("zdt0", h, nil)
	if err := m.Apply(t.Context(), []netip.Prefix{v4b}, managed); err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(t.Context(), setpriv, "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--",
		os.Args[0], "-test.run=^TestHelperNoCapability$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := inNetns(ns, cmd.Start); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "--- PASS: TestHelperNoCapability") {
		t.Fatalf("the helper did not run:\n%s", out.String())
	}
	t.Logf("helper:\n%s", out.String())
	wantCarries(t, m, v4b)
	if _, err := h.LinkByName("zdt1"); err == nil {
		t.Error("zdt1 created without CAP_NET_ADMIN")
	}
}

// TestHelperNoCapability is the child of TestNoCapability.
func TestHelperNoCapability(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("run by TestNoCapability")
	}
	for _, iface := range []string{"zdt0", "zdt1"} {
		m := New(iface, nil)
		err := m.Check()
		t.Logf("Check: %v", err)
		if !errors.Is(err, ErrNoCapability) || !strings.Contains(err.Error(), "CAP_NET_ADMIN") || !strings.Contains(err.Error(), iface) {
			t.Errorf("Check without CAP_NET_ADMIN: %v; want ErrNoCapability naming CAP_NET_ADMIN and %s", err, iface)
		}
		if err := m.Apply(context.Background(), []netip.Prefix{v4}, managed); !errors.Is(err, ErrNoCapability) {
			t.Errorf("Apply without CAP_NET_ADMIN: %v; want ErrNoCapability", err)
		}
	}
}

// wantCarries checks the addresses of m's interface other than IPv6
// link-local ones.
func wantCarries(t *testing.T, m *Manager, want ...netip.Prefix) {
	t.Helper()
	got, err := m.Addresses()
	if err != nil {
		t.Fatal(err)
	}
	got = slices.DeleteFunc(got, func(p netip.Prefix) bool { return p.Addr().IsLinkLocalUnicast() })
	slices.SortFunc(want, comparePrefix)
	if !slices.Equal(got, want) {
		t.Errorf("%s carries %v, want %v", m.iface, got, want)
	}
}

// haveDummy reports whether the kernel makes dummy interfaces.
func haveDummy(t *testing.T, h *netlink.Handle) bool {
	t.Helper()
	err := h.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "zdtprobe"}})
	if errors.Is(err, unix.EOPNOTSUPP) {
		return false
	}
	if err != nil {
		t.Fatalf("add dummy: %v", err)
	}
	l, err := h.LinkByName("zdtprobe")
	if err == nil {
		err = h.LinkDel(l)
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// addLocalLink adds a dummy interface or, where the kernel has none, one
// end of a veth pair whose other end is up too: a link with carrier that
// takes local addresses.
func addLocalLink(t *testing.T, h *netlink.Handle, name string) {
	t.Helper()
	if haveDummy(t, h) {
		if err := h.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
			t.Fatalf("add dummy %s: %v", name, err)
		}
		return
	}
	peer := name + "p"
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer}); err != nil {
		t.Fatalf("add veth %s: %v", name, err)
	}
	l, err := h.LinkByName(peer)
	if err == nil {
		err = h.LinkSetUp(l)
	}
	if err != nil {
		t.Fatalf("set %s up: %v", peer, err)
	}
}

// listenAndDial listens on a and connects to it, in the calling thread's
// namespace.
func listenAndDial(a netip.Addr) error {
	l, err := net.Listen("tcp", netip.AddrPortFrom(a, 0).String())
	if err != nil {
		return err
	}
	defer l.Close()
	c, err := net.DialTimeout("tcp", l.Addr().String(), time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// need skips the test when err is not nil, or fails it when CI=true.
func need(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %v", err)
	}
	t.Skipf("%v; skipping", err)
}

// newNetns makes a network namespace for the test and returns it and a
// netlink handle in it; both are closed (and the namespace is gone) at
// cleanup.
func newNetns(t *testing.T) (netns.NsHandle, *netlink.Handle) {
	t.Helper()
	if os.Geteuid() != 0 {
		need(t, fmt.Errorf("not root (euid %d): the test makes a network namespace; run it as root", os.Geteuid()))
	}
	type result struct {
		ns  netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer orig.Close()
		ns, err := netns.New() // unshare: this thread is now in ns
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		if err := netns.Set(orig); err != nil {
			ch <- result{ns: ns, err: err} // stay locked: the thread dies
			return
		}
		runtime.UnlockOSThread()
		ch <- result{ns: ns}
	}()
	r := <-ch
	if r.ns.IsOpen() {
		t.Cleanup(func() { r.ns.Close() })
	}
	if r.err != nil {
		t.Fatalf("new network namespace: %v", r.err)
	}
	h, err := netlink.NewHandleAt(r.ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	if lo, err := h.LinkByName("lo"); err != nil || h.LinkSetUp(lo) != nil {
		t.Fatalf("lo: %v", err)
	}
	return r.ns, h
}

// inNetns runs f on a thread in ns. A child process that f starts is in
// ns: it inherits the namespace of the thread that forks it.
func inNetns(ns netns.NsHandle, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			done <- errors.Join(ferr, err) // stay locked: the thread dies
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}
