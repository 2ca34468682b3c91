package fabric

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"testing"
	"time"

	"github.com/zdt-project/zdt/e2e/softswitch"
)

// TestSwitchedFabric runs three sites over a switched fabric and checks
// that the switch carries what a bridge does (connections, a bulk stream
// whole), delays one pair of sites and not the others, and cuts one pair
// while the others still reach each other.
func TestSwitchedFabric(t *testing.T) {
	f := NewWith(t, []string{"a", "b", "c"}, Options{Switched: true})
	a, b, c := f.Site("a"), f.Site("b"), f.Site("c")
	if f.Switch == nil {
		t.Fatal("NewWith started no switch for a switched fabric")
	}
	aL := listen(t, a.NS, net.JoinHostPort(a.FabricAddr.String(), "0"))
	bL := listen(t, b.NS, net.JoinHostPort(b.FabricAddr.String(), "0"))
	fabL := listen(t, f.Fabric, net.JoinHostPort(f.FabricAddr.String(), "0"))
	for _, tc := range []struct {
		from NS
		to   net.Listener
		what string
	}{{a.NS, bL, "a to b"}, {c.NS, aL, "c to a"}, {c.NS, bL, "c to b"}, {b.NS, fabL, "b to the fabric"}, {f.Fabric, aL, "the fabric to a"}} {
		if err := reachable(tc.from, tc.to); err != nil {
			t.Errorf("%s: %v", tc.what, err)
		}
	}

	sink := sumServer(t, b.NS, net.JoinHostPort(b.FabricAddr.String(), "0"))
	sendAndSum(t, a.NS, sink, 8<<20)

	// A delay between a and b, both ways: a's handshake with b takes a
	// round trip of at least twice the delay; c's with b is not delayed.
	const delay = 60 * time.Millisecond
	if err := f.Switch.SetLink("a", "b", softswitch.Link{Delay: delay, Jitter: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if rtt := connectTime(t, a.NS, bL); rtt < 2*(delay-10*time.Millisecond) {
		t.Errorf("a to b with %v each way: connected in %v", delay, rtt)
	}
	sendAndSum(t, a.NS, sink, 1<<20) // whole and in order through the jitter
	if got := f.Switch.Links(); len(got) != 1 || got[[2]string{"a", "b"}].Delay != delay {
		t.Errorf("links: %v, want a-b delayed", got)
	}

	// Cut a and b apart: each still reaches c, c both.
	if err := f.Switch.SetLink("b", "a", softswitch.Link{Cut: true}); err != nil {
		t.Fatal(err)
	}
	cL := listen(t, c.NS, net.JoinHostPort(c.FabricAddr.String(), "0"))
	if err := reachable(a.NS, bL); err == nil {
		t.Error("a reaches b with their link cut")
	}
	if err := reachable(b.NS, aL); err == nil {
		t.Error("b reaches a with their link cut")
	}
	for _, tc := range []struct {
		from NS
		to   net.Listener
		what string
	}{{a.NS, cL, "a to c"}, {b.NS, cL, "b to c"}, {c.NS, aL, "c to a"}, {c.NS, bL, "c to b"}} {
		if err := reachable(tc.from, tc.to); err != nil {
			t.Errorf("%s with a-b cut: %v", tc.what, err)
		}
	}
	if st := f.Switch.Stats(); st.CutDrops == 0 || st.Sent == 0 {
		t.Errorf("stats with a-b cut: %+v", st)
	}
	if err := f.Switch.SetLink("a", "b", softswitch.Link{}); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(5*time.Second, func() error { return reachable(a.NS, bL) }); err != nil {
		t.Errorf("a to b after healing: %v", err)
	}
	if got := f.Switch.Links(); len(got) != 0 {
		t.Errorf("links after healing: %v, want none", got)
	}

	// Block one TCP port between a and b: b's other listener still answers.
	if err := f.Switch.SetLink("a", "b", softswitch.Link{BlockTCPPort: uint16(bL.Addr().(*net.TCPAddr).Port)}); err != nil {
		t.Fatal(err)
	}
	if err := reachable(a.NS, bL); err == nil {
		t.Error("a reaches b's blocked port")
	}
	if err := reachable(c.NS, bL); err != nil {
		t.Errorf("c to b's port blocked between a and b only: %v", err)
	}
	if err := reachable(a.NS, listen(t, b.NS, net.JoinHostPort(b.FabricAddr.String(), "0"))); err != nil {
		t.Errorf("a to b's other port: %v", err)
	}
	if err := f.Switch.SetLink("a", "b", softswitch.Link{}); err != nil {
		t.Fatal(err)
	}

	for _, bad := range []struct {
		a, b string
		l    softswitch.Link
	}{{"a", "d", softswitch.Link{Cut: true}}, {"a", "a", softswitch.Link{Cut: true}}, {"a", "b", softswitch.Link{Jitter: time.Second}}} {
		if err := f.Switch.SetLink(bad.a, bad.b, bad.l); err == nil {
			t.Errorf("SetLink(%s, %s, %v): no error", bad.a, bad.b, bad.l)
		}
	}
}

// sumServer serves connections in ns at addr: it reads each to its end
// and answers with the SHA-256 of what it read.
func sumServer(t *testing.T, ns NS, addr string) string {
	t.Helper()
	return serve(t, ns, addr, func(c net.Conn) {
		h := sha256.New()
		if _, err := io.Copy(h, c); err == nil {
			_, _ = c.Write(h.Sum(nil))
		}
	}).Addr().String()
}

// sendAndSum sends n random bytes from ns to a sumServer and checks the
// sum it answers.
func sendAndSum(t *testing.T, ns NS, addr string, n int) {
	t.Helper()
	data := make([]byte, n)
	_, _ = rand.Read(data)
	want := sha256.Sum256(data)
	conn, err := ns.DialContext(ctxTimeout(t, 30*time.Second), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write(data); err != nil {
		t.Fatalf("send %d bytes: %v", n, err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	if err != nil || !bytes.Equal(got, want[:]) {
		t.Fatalf("%d bytes through the switch: sum %x (%v), want %x", n, got, err, want)
	}
}

// connectTime is how long a TCP handshake from ns to l takes.
func connectTime(t *testing.T, ns NS, l net.Listener) time.Duration {
	t.Helper()
	start := time.Now()
	conn, err := ns.DialContext(ctxTimeout(t, 5*time.Second), "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	conn.Close()
	return d
}
