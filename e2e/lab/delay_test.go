package lab

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// fakePeer is a stand-in for an etcd member's peer listener: it answers
// every byte with the address the connection came from.
func fakePeer(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				from := c.RemoteAddr().(*net.TCPAddr).IP.String() + "\n"
				b := make([]byte, 1)
				for {
					if _, err := c.Read(b); err != nil {
						return
					}
					if _, err := io.WriteString(c, from); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// askPeer dials addr from the given source address, asks the peer once and
// returns what it saw and how long the round trip took.
func askPeer(t *testing.T, from, addr string) (seen string, rtt time.Duration) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := c.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(buf[:n])), time.Since(start)
}

// TestDelayLines: connects to a site's peer address are steered through
// its delay line, which delays them and dials the member from the address
// the peer dialled from; other ports go direct, and so does everything once
// the lines are closed.
func TestDelayLines(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: the delay lines need root (cgroup BPF)")
		}
		t.Skip("the delay lines need root (cgroup BPF)")
	}
	const delay = 30 * time.Millisecond
	a, b := "127.0.41.11", "127.0.41.12"
	fakePeer(t, a+":2380")
	fakePeer(t, a+":2379") // not a peer port: never delayed
	fakePeer(t, b+":2380")
	l := &Lab{sites: []SiteAddrs{
		{Name: "a", EtcdPeerURL: "https://" + a + ":2380"},
		{Name: "b", EtcdPeerURL: "https://" + b + ":2380"},
	}}
	dl, err := l.StartDelayLines(SiteDelay{Delay: delay})
	if errors.Is(err, errNoCgroup2) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %v", err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			dl.Close()
		}
	})

	for _, tc := range []struct{ from, to string }{{b, a + ":2380"}, {a, b + ":2380"}} {
		seen, rtt := askPeer(t, tc.from, tc.to)
		if seen != tc.from {
			t.Errorf("%s → %s: the member saw a connection from %s", tc.from, tc.to, seen)
		}
		if rtt < 2*delay {
			t.Errorf("%s → %s: round trip %s; want at least %s through the line", tc.from, tc.to, rtt, 2*delay)
		}
		t.Logf("%s → %s: round trip %s through the delay line", tc.from, tc.to, rtt)
	}
	if _, rtt := askPeer(t, b, a+":2379"); rtt >= 2*delay {
		t.Errorf("a client port was delayed: round trip %s", rtt)
	}
	if st := dl.Stats(); st.Conns != 2 {
		t.Errorf("the lines accepted %d connections, want 2 (one to each peer port): %s", st.Conns, dl.Summary())
	}
	t.Log(dl.Summary())

	if err := dl.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	closed = true
	if seen, rtt := askPeer(t, b, a+":2380"); seen != b || rtt >= 2*delay {
		t.Errorf("after Close: the member saw %s after a round trip of %s; want a direct connection", seen, rtt)
	}
}
