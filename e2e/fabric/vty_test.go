package fabric

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeVty serves the vty protocol on a unix socket: "ok" answers in
// pieces that split the trailer, "bad" fails with status 2, "hang" never
// answers, "close" closes the connection.
func fakeVty(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "bgpd.vty")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					cmd, err := r.ReadString(0)
					if err != nil {
						return
					}
					switch strings.TrimSuffix(cmd, "\x00") {
					case "ok":
						c.Write([]byte("hello\n\x00"))
						c.Write([]byte("\x00\x00\x00"))
					case "bad":
						c.Write([]byte("% Unknown command\n\x00\x00\x00\x02"))
					case "hang":
					case "close":
						return
					}
				}
			}()
		}
	}()
	return path
}

func TestVty(t *testing.T) {
	v := &vtyClient{path: fakeVty(t)}
	defer v.close()
	ctx := t.Context()
	for range 3 {
		out, err := v.run(ctx, "ok")
		if err != nil || string(out) != "hello\n" {
			t.Fatalf("ok: %q, %v", out, err)
		}
	}
	if len(v.idle) != 1 {
		t.Errorf("%d idle connections, want the one reused", len(v.idle))
	}
	if out, err := v.run(ctx, "bad"); err == nil || !strings.Contains(err.Error(), "status 2: % Unknown command") || string(out) != "% Unknown command\n" {
		t.Errorf("bad: %q, %v", out, err)
	}
	// The kept connection is closed by the daemon: the next command
	// takes a new one.
	if _, err := v.run(ctx, "close"); err == nil {
		t.Error("close: no error")
	}
	if out, err := v.run(ctx, "ok"); err != nil || string(out) != "hello\n" {
		t.Errorf("ok after close: %q, %v", out, err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := v.run(short, "hang"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang: %v, want DeadlineExceeded", err)
	}
	if out, err := v.run(ctx, "ok"); err != nil || string(out) != "hello\n" {
		t.Errorf("ok after a timeout: %q, %v", out, err)
	}
	if _, err := v.run(ctx, "two\nlines"); err == nil {
		t.Error("a command of two lines ran")
	}
}
