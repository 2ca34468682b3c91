package testport

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

func TestWindowOf(t *testing.T) {
	for _, c := range []struct {
		in     string
		lo, hi int
		err    string
	}{
		{in: "32768\t60999\n", lo: 24768, hi: 32767},
		{in: "1024 50000", lo: 50001, hi: 58000},
		{in: "15000 60000", err: "leaves no 8000 ports"},
		{in: "32768", err: "want two port numbers"},
		{in: "a 60999", err: `parsing "a"`},
	} {
		lo, hi, err := windowOf(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("windowOf(%q) = %d, %d, %v; want an error with %q", c.in, lo, hi, err, c.err)
			}
			continue
		}
		if err != nil || lo != c.lo || hi != c.hi {
			t.Errorf("windowOf(%q) = %d, %d, %v; want %d, %d", c.in, lo, hi, err, c.lo, c.hi)
		}
	}
}

// Reserved ports are distinct, inside the window, free, and outside the
// kernel's ephemeral range.
func TestReserveHandsOutDistinctFreePorts(t *testing.T) {
	lo, hi, err := window()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for range 200 {
		p := Reserve(t, "127.0.0.1")
		if p < lo || p > hi {
			t.Fatalf("port %d outside the window %d-%d", p, lo, hi)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	// Every port can be bound by the server it was reserved for.
	for p := range seen {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("reserved port %d: %v", p, err)
		}
		_ = l.Close()
	}
}

// A port whose file another holder locked is not taken, and is taken
// again once that holder lets go.
func TestTakeRespectsAnotherHolder(t *testing.T) {
	dir := t.TempDir()
	first, err := take(dir, 30000)
	if err != nil || first == nil {
		t.Fatalf("take = %v, %v; want the lock", first, err)
	}
	second, err := take(dir, 30000)
	if err != nil || second != nil {
		t.Fatalf("take of a held port = %v, %v; want nil, nil", second, err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	third, err := take(dir, 30000)
	if err != nil || third == nil {
		t.Fatalf("take after release = %v, %v; want the lock", third, err)
	}
	_ = third.Close()
}

// A port some listener holds is not handed out.
func TestBindableSeesAListener(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if bindable("127.0.0.1", l.Addr().(*net.TCPAddr).Port) {
		t.Fatal("a port with a listener was called bindable")
	}
}
