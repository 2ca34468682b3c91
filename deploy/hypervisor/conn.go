package hypervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	libvirt "github.com/digitalocean/go-libvirt"
)

// conn is one open libvirt connection.
type conn struct {
	lv      *libvirt.Libvirt
	raw     *watchedConn
	version string // the daemon's libvirt version
}

// close drops the connection at once. go-libvirt's reader sees the socket
// close, ends its goroutines and fails the calls still waiting with
// libvirt.ErrInterrupted. The daemon sees the client go as after any
// disconnect.
func (c *conn) close() { _ = c.raw.Close() }

// connect opens a connection and waits for its first answer, for at most
// answerLimit.
func (h *Host) connect(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, h.answerLimit)
	defer cancel()
	d := &dialer{ctx: ctx, network: h.target.Network, address: h.target.Address}
	lv := libvirt.NewWithDialer(d)
	opened := make(chan error, 1)
	go func() { opened <- lv.ConnectToURI(libvirt.ConnectURI(h.target.URI)) }()
	var err error
	select {
	case err = <-opened:
	case <-ctx.Done():
		d.abort() // unblocks ConnectToURI
		<-opened
		err = ctx.Err()
	}
	if err != nil {
		d.abort()
		return nil, fmt.Errorf("open %s: %w", h.target, err)
	}
	c := &conn{lv: lv, raw: d.conn}
	// The first call comes from this goroutine, before anyone else uses the
	// connection; it also proves that the driver answers.
	v, err := callOn(ctx, h, c, probe)
	if err != nil {
		c.close()
		return nil, fmt.Errorf("open %s: first call: %w", h.target, err)
	}
	c.version = fmt.Sprintf("%d.%d.%d", v/1_000_000, v/1000%1000, v%1000)
	return c, nil
}

// probe is the cheapest call that the daemon itself answers.
func probe(lv *libvirt.Libvirt) (uint64, error) { return lv.ConnectGetLibVersion() }

// call runs fn on the open connection; it fails fast with ErrUnavailable
// when there is none.
func call[T any](ctx context.Context, h *Host, fn func(*libvirt.Libvirt) (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	c, err := h.acquire()
	if err != nil {
		return zero, err
	}
	return runCall(ctx, h, c, fn)
}

// callOn runs fn on c, which need not be the host's connection yet.
func callOn[T any](ctx context.Context, h *Host, c *conn, fn func(*libvirt.Libvirt) (T, error)) (T, error) {
	h.calls.Add(1)
	return runCall(ctx, h, c, fn)
}

type result[T any] struct {
	v   T
	err error
}

// runCall runs fn in its own goroutine, so that a connection that hangs holds
// up the caller no longer than ctx. The goroutine ends when the answer
// comes or the connection is dropped, at the latest when the host is
// closed. It is counted in h.calls by the caller.
func runCall[T any](ctx context.Context, h *Host, c *conn, fn func(*libvirt.Libvirt) (T, error)) (T, error) {
	done := make(chan result[T], 1)
	go func() {
		defer h.calls.Done()
		v, err := fn(c.lv)
		done <- result[T]{v, err}
	}()
	select {
	case r := <-done:
		return r.v, h.classify(r.err)
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// classify notes answers and says what an error from go-libvirt means:
// libvirt's own errors are answers (ErrNoDomain among them); anything else
// is a broken connection.
func (h *Host) classify(err error) error {
	if err == nil {
		h.answered()
		return nil
	}
	var lerr libvirt.Error
	if errors.As(err, &lerr) {
		h.answered()
		if lerr.Code == uint32(libvirt.ErrNoDomain) {
			return fmt.Errorf("%w: %w", ErrNoDomain, err)
		}
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// hasCode says whether err is a libvirt error with one of the codes.
func hasCode(err error, codes ...libvirt.ErrorNumber) bool {
	var lerr libvirt.Error
	if !errors.As(err, &lerr) {
		return false
	}
	for _, c := range codes {
		if lerr.Code == uint32(c) {
			return true
		}
	}
	return false
}

// dialer dials one connection for go-libvirt and keeps it, so that it can
// be closed from outside.
type dialer struct {
	ctx              context.Context
	network, address string

	mu      sync.Mutex
	aborted bool
	conn    *watchedConn
}

func (d *dialer) Dial() (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(d.ctx, d.network, d.address)
	if err != nil {
		return nil, err
	}
	w := &watchedConn{Conn: c, dead: make(chan struct{})}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.aborted {
		_ = w.Close()
		return nil, net.ErrClosed
	}
	d.conn = w
	return w, nil
}

// abort closes the connection, if there is one, and refuses to dial more.
func (d *dialer) abort() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.aborted = true
	if d.conn != nil {
		_ = d.conn.Close()
	}
}

// watchedConn is a net.Conn that tells when it broke. go-libvirt's own
// Disconnected channel is not safe to use across reconnects.
type watchedConn struct {
	net.Conn
	once sync.Once
	err  error // set before dead is closed
	dead chan struct{}
}

var errDropped = errors.New("connection dropped")

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.broke(fmt.Errorf("read: %w", err))
	}
	return n, err
}

func (c *watchedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		c.broke(fmt.Errorf("write: %w", err))
	}
	return n, err
}

func (c *watchedConn) Close() error {
	c.broke(errDropped)
	return c.Conn.Close()
}

func (c *watchedConn) broke(err error) {
	c.once.Do(func() {
		c.err = err
		close(c.dead)
	})
}

// cause is why the connection broke; only after dead is closed.
func (c *watchedConn) cause() error { return c.err }
