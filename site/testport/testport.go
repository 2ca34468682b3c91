// Package testport hands out TCP ports to tests whose servers must be told
// their port before they bind it: PostgreSQL, libvirtd, etcd members and
// GoBGP speakers cannot listen on port 0 and report back.
//
// Asking the kernel for a free port (listen on port 0, close, pass the
// number on) races: between the close and the server's bind, another test
// process listening on port 0, or any outgoing connection, may be given the
// same number from the ephemeral range. So a port here comes from below
// the ephemeral range, where the kernel hands out nothing by itself, and
// is reserved for the test's lifetime by an exclusive lock on a file named
// after it, shared by every test process on the machine. The kernel drops
// the lock when the process ends, however it ends.
package testport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const (
	// span is how many ports the window holds.
	span = 8000
	// tries bounds the search for a port nobody holds.
	tries = 500
	// rangeFile holds the kernel's ephemeral port range.
	rangeFile = "/proc/sys/net/ipv4/ip_local_port_range"
)

// Reserve returns a TCP port that is free on host and stays reserved to t
// until t and its cleanups have ended: no other caller of Reserve on this
// machine gets it meanwhile. host is a literal address, such as
// "127.0.0.1" or "::1".
func Reserve(t testing.TB, host string) int {
	t.Helper()
	lo, hi, err := window()
	if err != nil {
		t.Fatalf("testport: %v", err)
	}
	dir := filepath.Join(os.TempDir(), "zdt-testport")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatalf("testport: %v", err)
	}
	for range tries {
		port := lo + rand.IntN(hi-lo+1)
		lock, err := take(dir, port)
		if err != nil {
			t.Fatalf("testport: %v", err)
		}
		if lock == nil {
			continue
		}
		if !bindable(host, port) {
			_ = lock.Close()
			continue
		}
		// Cleanups run last in, first out: this one runs after those of
		// the server the port is for.
		t.Cleanup(func() { _ = lock.Close() })
		return port
	}
	t.Fatalf("testport: no free port on %s in %d tries between %d and %d", host, tries, lo, hi)
	return 0
}

// take locks port's file in dir; it returns nil when another holds it.
func take(dir string, port int) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("lock port %d: %w", port, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("lock port %d: %w", port, err)
	}
	return f, nil
}

// bindable reports whether a listener can bind host:port now, so that a
// server outside the tests (a lab left running) is not handed its port.
func bindable(host string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// window is the range ports are taken from: the span below the kernel's
// ephemeral range, or above it when there is no room below.
func window() (lo, hi int, err error) {
	b, err := os.ReadFile(rangeFile)
	if err != nil {
		return 0, 0, fmt.Errorf("the kernel's ephemeral port range: %w", err)
	}
	return windowOf(string(b))
}

// windowOf is window for the contents of ip_local_port_range.
func windowOf(s string) (lo, hi int, err error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("%s: %q: want two port numbers", rangeFile, s)
	}
	first, err1 := strconv.Atoi(f[0])
	last, err2 := strconv.Atoi(f[1])
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("%s: %q: %w", rangeFile, s, err)
	}
	const lowest, highest = 10000, 65535
	switch {
	case first-span >= lowest:
		return first - span, first - 1, nil
	case last+span <= highest:
		return last + 1, last + span, nil
	default:
		return 0, 0, fmt.Errorf("%s: %d-%d leaves no %d ports between %d and %d outside it", rangeFile, first, last, span, lowest, highest)
	}
}
