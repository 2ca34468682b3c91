package delayline

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// echo serves connections on loopback by writing back what they send, until
// the test ends.
func echo(t *testing.T) string {
	t.Helper()
	return serve(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
}

// serve runs handle for every connection to a new loopback listener, each
// closed after handle returns, until the test ends.
func serve(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// newLine starts a line to target on loopback, closed when the test ends.
func newLine(t *testing.T, cfg Config) *Line {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Serve(ln, cfg)
	t.Cleanup(func() { l.Close() })
	return l
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// roundTrips sends one byte n times and waits for its echo each time, and
// returns each round trip's time.
func roundTrips(t *testing.T, c net.Conn, n int) []time.Duration {
	t.Helper()
	rtts := make([]time.Duration, n)
	b := []byte{0}
	for i := range rtts {
		start := time.Now()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		rtts[i] = time.Since(start)
	}
	return rtts
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestRoundTripDelay measures what a line adds to a round trip over
// loopback: twice its one-way delay, within a bound for the machine's
// scheduling.
func TestRoundTripDelay(t *testing.T) {
	target := echo(t)
	base := median(roundTrips(t, dial(t, target), 20))

	for _, tc := range []struct {
		name          string
		delay, jitter time.Duration
	}{
		{"40ms", 40 * time.Millisecond, 0},
		{"40ms±15ms", 40 * time.Millisecond, 15 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLine(t, Config{Target: target, Delay: tc.delay, Jitter: tc.jitter})
			rtts := roundTrips(t, dial(t, l.Addr().String()), 30)
			// No chunk leaves early, ever; late is the machine's
			// scheduling (and -race), so only the median is bounded
			// above, generously.
			lo, hi := 2*(tc.delay-tc.jitter), 2*(tc.delay+tc.jitter)
			const slack = 50 * time.Millisecond
			for i, rtt := range rtts {
				if rtt < lo {
					t.Errorf("round trip %d took %s; want at least %s", i, rtt, lo)
				}
			}
			if m := median(rtts); m > hi+slack {
				t.Errorf("median round trip %s; want at most %s (+%s of slack)", m, hi, slack)
			}
			st := l.Stats()
			t.Logf("round trip over loopback: %s directly, %s (median; min %s, max %s) through a line of %s ± %s; "+
				"chunks %d, mean lateness %s, max %s",
				base, median(rtts), slices.Min(rtts), slices.Max(rtts), tc.delay, tc.jitter, st.Chunks, st.MeanLate(), st.MaxLate)
			if st.Conns != 1 || st.Chunks != 60 || st.Bytes != 60 {
				t.Errorf("stats %+v; want 1 connection, 60 chunks of 1 byte", st)
			}
		})
	}
}

// TestOrderUnderJitter: a stream sent in many chunks through a line with
// jitter as large as its delay comes back byte for byte, so no chunk
// overtook another, and the whole stream takes about one delay each way,
// not one per chunk.
func TestOrderUnderJitter(t *testing.T) {
	const delay = 20 * time.Millisecond
	l := newLine(t, Config{Target: echo(t), Delay: delay, Jitter: delay})
	c := dial(t, l.Addr().String())
	c.SetNoDelay(true)

	sent := make([]byte, 64<<10)
	rand.Read(sent)
	start := time.Now()
	writeErr := make(chan error, 1)
	go func() {
		// Small writes a millisecond apart, so that the line sees many
		// chunks.
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		var err error
		for p := sent; len(p) > 0 && err == nil; p = p[min(len(p), 256):] {
			_, err = c.Write(p[:min(len(p), 256)])
			<-tick.C
		}
		if err == nil {
			err = c.CloseWrite()
		}
		writeErr <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, sent) {
		i := 0
		for i < min(len(got), len(sent)) && got[i] == sent[i] {
			i++
		}
		t.Fatalf("echoed %d bytes, sent %d; first difference at byte %d", len(got), len(sent), i)
	}
	st := l.Stats()
	t.Logf("%d KiB in %d chunks took %s with a delay of %s ± %s each way", len(sent)>>10, st.Chunks, took, delay, delay)
	if st.Chunks < 50 {
		t.Errorf("only %d chunks passed: the test wants many", st.Chunks)
	}
	// One after another, the chunks would take a delay each: seconds.
	if took > 3*time.Second {
		t.Errorf("the stream took %s: chunks were delayed one after another, not in parallel", took)
	}
}

// TestBoundedMemory: a receiver that does not read makes the line stop
// reading once it holds MaxBuffered bytes; the sender is pushed back, and
// everything arrives once the receiver reads.
func TestBoundedMemory(t *testing.T) {
	const maxBuffered = 64 << 10
	const total = 32 << 20
	start := make(chan struct{})
	received := make(chan int64, 1)
	target := serve(t, func(c net.Conn) {
		<-start
		n, _ := io.Copy(io.Discard, c)
		received <- n
	})
	l := newLine(t, Config{Target: target, Delay: time.Millisecond, MaxBuffered: maxBuffered})
	c := dial(t, l.Addr().String())

	// Until the receiver reads, the sender gets only as far as the
	// buffers allow: the kernel's on both hops and the line's.
	c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	p := make([]byte, total)
	n, err := c.Write(p)
	if !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
		t.Fatalf("wrote %d bytes (%v) to a receiver that does not read; want the write held back", n, err)
	}
	if held := l.Stats().MaxHeld; held > maxBuffered {
		t.Errorf("line held %d bytes in one direction; bound %d", held, maxBuffered)
	}
	t.Logf("a sender got %d bytes in before the line pushed back (line bound %d)", n, maxBuffered)

	close(start)
	c.SetWriteDeadline(time.Time{})
	if _, err := c.Write(p[n:]); err != nil {
		t.Fatal(err)
	}
	c.CloseWrite()
	if got := <-received; got != total {
		t.Errorf("receiver got %d bytes, want %d", got, total)
	}
	if held := l.Stats().MaxHeld; held > maxBuffered {
		t.Errorf("line held %d bytes in one direction; bound %d", held, maxBuffered)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestHalfClose: a client that closes its side and then reads gets the
// server's answer, which the server sends after it read the client's EOF.
func TestHalfClose(t *testing.T) {
	target := serve(t, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		c.Write(append([]byte("got "), b...))
	})
	l := newLine(t, Config{Target: target, Delay: 5 * time.Millisecond})
	c := dial(t, l.Addr().String())
	c.Write([]byte("ping"))
	c.CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "got ping" {
		t.Errorf("read %q (%v), want %q", got, err, "got ping")
	}
}

// TestTargetDown: a connection the line cannot forward is closed at once.
func TestTargetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close()
	l := newLine(t, Config{Target: target, Delay: time.Millisecond})
	c := dial(t, l.Addr().String())
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a line whose target is down", n)
	}
	if st := l.Stats(); st.DialErrors != 1 {
		t.Errorf("stats %+v, want one dial error", st)
	}
}

// TestClose: Close returns at once with data in flight, the clients see
// their connections end, and no goroutine of the line is left.
func TestClose(t *testing.T) {
	target := echo(t)
	before := runtime.NumGoroutine()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Serve(ln, Config{Target: target, Delay: time.Hour})
	var clients []*net.TCPConn
	for range 3 {
		c := dial(t, l.Addr().String())
		if _, err := c.Write([]byte("held for an hour")); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	waitFor(t, "the line holds the clients' data", func() bool { return l.Stats().MaxHeld > 0 && l.Stats().Conns == 3 })

	start := time.Now()
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Close took %s", took)
	}
	for i, c := range clients {
		if n, err := c.Read(make([]byte, 64)); err == nil {
			t.Errorf("client %d read %d bytes after Close", i, n)
		}
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Error("the line still accepts after Close")
	}
	// The echo server's goroutines end with its connections.
	waitFor(t, "the goroutines of the line end", func() bool { return runtime.NumGoroutine() <= before })
}

// waitFor polls cond until it holds, or fails the test after 10 s with the
// goroutines' stacks.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			buf := make([]byte, 1<<20)
			t.Fatalf("waited 10s for %s:\n%s", what, buf[:runtime.Stack(buf, true)])
		}
	}
}
