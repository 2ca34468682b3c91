package fabric

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// vtyClient runs commands on a daemon's vty socket, the unix socket vtysh
// itself talks to: the client writes a command and a NUL byte; the daemon
// answers with the command's output, three NUL bytes and the command's
// status (0 is success). Connections are kept and reused: a command costs
// well under a millisecond, where running vtysh costs tens of milliseconds.
type vtyClient struct {
	path string

	mu     sync.Mutex
	idle   []net.Conn
	closed bool
}

// maxIdle bounds the connections kept for reuse.
const maxIdle = 8

// run runs one command and returns its output. Commands of concurrent
// calls run on connections of their own.
func (v *vtyClient) run(ctx context.Context, cmd string) ([]byte, error) {
	if cmd == "" || strings.ContainsAny(cmd, "\x00\n\r") {
		return nil, fmt.Errorf("vty command %q: want one line", cmd)
	}
	conn, reused, err := v.get(ctx)
	if err != nil {
		return nil, err
	}
	out, status, err := exchange(ctx, conn, cmd)
	if err != nil && reused && ctx.Err() == nil {
		// The kept connection may have been closed by the daemon.
		conn.Close()
		if conn, err = v.dial(ctx); err != nil {
			return nil, err
		}
		out, status, err = exchange(ctx, conn, cmd)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("vty %s: %q: %w", v.path, cmd, err)
	}
	v.put(conn)
	if status != 0 {
		return out, fmt.Errorf("vty %s: %q: status %d: %s", v.path, cmd, status, bytes.TrimSpace(out))
	}
	return out, nil
}

func (v *vtyClient) get(ctx context.Context) (net.Conn, bool, error) {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil, false, fmt.Errorf("vty %s: closed", v.path)
	}
	if n := len(v.idle); n > 0 {
		c := v.idle[n-1]
		v.idle = v.idle[:n-1]
		v.mu.Unlock()
		return c, true, nil
	}
	v.mu.Unlock()
	c, err := v.dial(ctx)
	return c, false, err
}

func (v *vtyClient) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", v.path)
	if err != nil {
		return nil, fmt.Errorf("vty: %w", err)
	}
	return c, nil
}

func (v *vtyClient) put(c net.Conn) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed || len(v.idle) >= maxIdle {
		c.Close()
		return
	}
	v.idle = append(v.idle, c)
}

func (v *vtyClient) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.closed = true
	for _, c := range v.idle {
		c.Close()
	}
	v.idle = nil
}

// exchange writes cmd and reads the answer, until ctx is done.
func exchange(ctx context.Context, conn net.Conn, cmd string) (out []byte, status byte, err error) {
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() && err == nil {
			err = ctx.Err() // the deadline is set: the conn is spoilt
		}
		if err != nil && ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
	}()
	if _, err := conn.Write(append([]byte(cmd), 0)); err != nil {
		return nil, 0, err
	}
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if l := len(buf); l >= 4 && buf[l-4] == 0 && buf[l-3] == 0 && buf[l-2] == 0 {
			return buf[:l-4], buf[l-1], nil
		}
		if err != nil {
			return nil, 0, err
		}
	}
}
