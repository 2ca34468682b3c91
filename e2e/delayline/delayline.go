// Package delayline is a userspace stand-in for netem's delay on TCP links,
// for kernels without it: a proxy that forwards every connection it accepts
// to one target and holds each chunk of data, in each direction, for a
// one-way delay with jitter before it passes it on.
//
// Chunks of one direction of one connection leave in the order they came: a
// chunk is never released before the one before it, as on one TCP stream,
// so jitter can hold a chunk longer but never let it overtake. The chunks
// are held in parallel, not one after another: a line of 100 ms passes a
// steady stream with 100 ms of delay, not 100 ms per chunk (etcd's
// pkg/proxy, which sleeps before each write, does the latter). The bytes
// held per direction are bounded; at the bound the line stops reading from
// the sender and TCP's flow control pushes back.
//
// It is for tests and the lab.
package delayline

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// DefaultMaxBuffered is Config.MaxBuffered when it is 0.
const DefaultMaxBuffered = 1 << 20

// maxChunk is the most one read takes from a sender, and maxChunks the
// most chunks one direction holds.
const (
	maxChunk  = 32 << 10
	maxChunks = 1024
)

// Config configures a Line.
type Config struct {
	// Target is the host:port every accepted connection is forwarded to.
	Target string
	// Delay is the one-way delay every chunk gets in each direction; Jitter
	// spreads it uniformly over Delay ± Jitter (never below zero).
	Delay, Jitter time.Duration
	// MaxBuffered bounds the bytes held per direction of a connection; 0
	// means DefaultMaxBuffered.
	MaxBuffered int
	// Dial connects to Target for an accepted connection (to pick a source
	// address or mark the socket, say); nil means a plain TCP dial.
	Dial func(ctx context.Context, accepted net.Conn) (net.Conn, error)
}

// Stats count what a line has done since it started.
type Stats struct {
	Conns      int64 // connections accepted
	DialErrors int64 // accepted connections closed because Target did not answer
	Chunks     int64 // chunks passed on (or being written)
	Bytes      int64 // bytes passed on (or being written)
	// MaxHeld is the most bytes one direction of one connection held at
	// once.
	MaxHeld int64
	// Lateness is how long after its due time a chunk was written: the
	// line's own scheduling delay, and any wait for a slow receiver.
	TotalLate, MaxLate time.Duration
	Over10ms, Over50ms int64 // chunks more than 10 ms, 50 ms late
}

// MeanLate is the mean lateness of a chunk.
func (s Stats) MeanLate() time.Duration {
	if s.Chunks == 0 {
		return 0
	}
	return s.TotalLate / time.Duration(s.Chunks)
}

// Line is a running delay line. Close stops it.
type Line struct {
	ln  net.Listener
	cfg Config

	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}

	accepted, dialErrors, chunks, bytes, maxHeld atomic.Int64
	totalLate, maxLate, over10, over50           atomic.Int64
}

// Serve starts a line that accepts connections on ln until Close. It owns
// ln.
func Serve(ln net.Listener, cfg Config) *Line {
	if cfg.MaxBuffered <= 0 {
		cfg.MaxBuffered = DefaultMaxBuffered
	}
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = func(ctx context.Context, _ net.Conn) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", cfg.Target)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Line{ln: ln, cfg: cfg, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
	l.wg.Add(1)
	go l.accept()
	return l
}

// Addr is where the line listens.
func (l *Line) Addr() net.Addr { return l.ln.Addr() }

// Close stops accepting, closes every connection (what it still held is
// lost, as on a cut link) and returns once every goroutine of the line has
// ended.
func (l *Line) Close() error {
	l.cancel()
	err := l.ln.Close()
	l.mu.Lock()
	for c := range l.conns {
		_ = c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	return err
}

// Stats returns the line's counts so far.
func (l *Line) Stats() Stats {
	return Stats{
		Conns:      l.accepted.Load(),
		DialErrors: l.dialErrors.Load(),
		Chunks:     l.chunks.Load(),
		Bytes:      l.bytes.Load(),
		MaxHeld:    l.maxHeld.Load(),
		TotalLate:  time.Duration(l.totalLate.Load()),
		MaxLate:    time.Duration(l.maxLate.Load()),
		Over10ms:   l.over10.Load(),
		Over50ms:   l.over50.Load(),
	}
}

func (l *Line) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient accept error (out of descriptors, say): go on
			// after a breath rather than spin.
			select {
			case <-l.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		l.accepted.Add(1)
		if !l.track(c) {
			return
		}
		l.wg.Add(1)
		go l.handle(c)
	}
}

// track records a connection so Close can close it; false (and the
// connection closed) once the line is closing.
func (l *Line) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ctx.Err() != nil {
		_ = c.Close()
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *Line) untrack(cs ...net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range cs {
		delete(l.conns, c)
		_ = c.Close()
	}
}

// handle forwards one accepted connection until both directions have ended
// or either fails.
func (l *Line) handle(in net.Conn) {
	defer l.wg.Done()
	out, err := l.cfg.Dial(l.ctx, in)
	if err != nil {
		l.dialErrors.Add(1)
		l.untrack(in)
		return
	}
	if !l.track(out) {
		l.untrack(in)
		return
	}
	ctx, cancel := context.WithCancel(l.ctx)
	var once sync.Once
	abort := func() {
		once.Do(func() {
			cancel()
			_ = in.Close()
			_ = out.Close()
		})
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.pipe(ctx, in, out, abort) }()
	go func() { defer wg.Done(); l.pipe(ctx, out, in, abort) }()
	wg.Wait()
	cancel()
	l.untrack(in, out)
}

// chunk is data read at one instant, due to be written at due; a chunk
// with end set is the end of the direction instead (eof: cleanly).
type chunk struct {
	data     []byte
	due      time.Time
	end, eof bool
}

// pipe carries one direction, src to dst: it reads chunks, stamps each
// with its due time and hands them to a writer that writes each at its
// time.
func (l *Line) pipe(ctx context.Context, src, dst net.Conn, abort func()) {
	size := min(maxChunk, l.cfg.MaxBuffered)
	held := semaphore.NewWeighted(int64(l.cfg.MaxBuffered))
	var inUse atomic.Int64
	// The queue bounds the number of chunks held as the budget bounds
	// their bytes: when it is full the reader waits.
	q := make(chan chunk, maxChunks)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.release(ctx, q, dst, held, &inUse, abort)
	}()
	defer func() {
		close(q)
		<-done
	}()

	buf := make([]byte, size)
	var last time.Time
	for {
		// Reserve room for a whole read before reading: at the bound the
		// line does not read, so the sender's TCP window closes.
		if err := held.Acquire(ctx, int64(size)); err != nil {
			return
		}
		n, err := src.Read(buf)
		now := time.Now()
		held.Release(int64(size - n))
		due := now.Add(l.delay())
		if due.Before(last) {
			due = last // never overtake the chunk before
		}
		last = due
		if n > 0 {
			l.noteHeld(inUse.Add(int64(n)))
			q <- chunk{data: append([]byte(nil), buf[:n]...), due: due}
		}
		if err != nil {
			q <- chunk{due: due, end: true, eof: errors.Is(err, io.EOF)}
			return
		}
	}
}

// release writes each chunk at its due time, in order. After a failure it
// only drains the queue.
func (l *Line) release(ctx context.Context, q <-chan chunk, dst net.Conn, held *semaphore.Weighted, inUse *atomic.Int64, abort func()) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	failed := false
	for c := range q {
		n := int64(len(c.data))
		if !failed {
			if wait := time.Until(c.due); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-ctx.Done():
					timer.Stop()
					failed = true
				}
			}
		}
		switch {
		case failed:
		case c.end && c.eof:
			closeWrite(dst)
		case c.end:
			abort()
			failed = true
		default:
			l.noteLate(time.Since(c.due))
			l.chunks.Add(1)
			l.bytes.Add(n)
			if _, err := dst.Write(c.data); err != nil {
				abort()
				failed = true
			}
		}
		if n > 0 {
			inUse.Add(-n)
			held.Release(n)
		}
	}
}

func (l *Line) delay() time.Duration {
	d := l.cfg.Delay
	if j := l.cfg.Jitter; j > 0 {
		d += time.Duration((rand.Float64()*2 - 1) * float64(j))
	}
	return max(d, 0)
}

func (l *Line) noteLate(late time.Duration) {
	late = max(late, 0)
	l.totalLate.Add(int64(late))
	storeMax(&l.maxLate, int64(late))
	if late > 10*time.Millisecond {
		l.over10.Add(1)
	}
	if late > 50*time.Millisecond {
		l.over50.Add(1)
	}
}

func (l *Line) noteHeld(n int64) { storeMax(&l.maxHeld, n) }

func storeMax(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}

// closeWrite passes a clean end of one direction on: the receiver reads
// EOF while the other direction goes on.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}
