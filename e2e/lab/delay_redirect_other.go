//go:build !linux

package lab

import (
	"errors"
	"net/netip"
)

// connectRedirect needs Linux's cgroup BPF.
type connectRedirect struct{}

func redirectConnects(map[netip.AddrPort]netip.AddrPort) (*connectRedirect, error) {
	return nil, errors.New("the delay lines need Linux (cgroup BPF)")
}

func (*connectRedirect) Close() error { return nil }

func markSocket(uintptr) error { return errors.New("the delay lines need Linux") }

var errNoCgroup2 = errors.New("the delay lines need cgroup v2")
