package hypervisor_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/zdt-project/zdt/deploy/hypervisor"
	"github.com/zdt-project/zdt/deploy/hypervisor/libvirtdtest"
)

// guestXML is a test-driver domain.
func guestXML(name, uuid string, vcpus int, memMiB int64) string {
	u := ""
	if uuid != "" {
		u = "\n  <uuid>" + uuid + "</uuid>"
	}
	return fmt.Sprintf(`<domain type='test'>
  <name>%s</name>%s
  <memory unit='MiB'>%d</memory>
  <vcpu>%d</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
</domain>`, name, u, memMiB, vcpus)
}

func dial(t testing.TB, uri string, opts hypervisor.Options) *hypervisor.Host {
	t.Helper()
	if opts.Log == nil {
		opts.Log = zaptest.NewLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := hypervisor.Dial(ctx, uri, opts)
	if err != nil {
		t.Fatalf("Dial(%s): %v", uri, err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// await waits, at most 20s, until cond holds for h.
func await(t testing.TB, h *hypervisor.Host, what string, cond func(hypervisor.Health) bool) hypervisor.Health {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hl, err := h.Await(ctx, cond)
	if err != nil {
		t.Fatalf("waiting until host %s: %v (health %+v)", what, err, hl)
	}
	return hl
}

func connected(hl hypervisor.Health) bool { return hl.Connected }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// domains lists the host's domains by name.
func domains(t testing.TB, h *hypervisor.Host) map[string]hypervisor.Domain {
	t.Helper()
	list, err := h.List(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]hypervisor.Domain, len(list))
	for _, d := range list {
		m[d.Name] = d
	}
	return m
}

func wantState(t testing.TB, h *hypervisor.Host, name string, want hypervisor.State) hypervisor.Domain {
	t.Helper()
	d, ok := domains(t, h)[name]
	if !ok {
		t.Fatalf("domain %s is not listed at %s", name, h.Name())
	}
	if d.State != want {
		t.Fatalf("domain %s is %s, want %s", name, d.State, want)
	}
	return d
}

func TestDomainLifecycle(t *testing.T) {
	daemon := libvirtdtest.Start(t, libvirtdtest.Options{})
	h := dial(t, daemon.URI(), hypervisor.Options{Name: "a1"})
	ctx := ctxT(t)
	const uuid = "3f1c2a9e-5b7d-4e60-9a21-c4d8e7f0b512"
	xml := guestXML("web-1", uuid, 2, 512)

	t.Run("capacity", func(t *testing.T) {
		vcpus, mem, err := h.Capacity(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if vcpus <= 0 || mem <= 0 {
			t.Fatalf("Capacity = %d vCPUs, %d MiB; want both positive", vcpus, mem)
		}
	})
	t.Run("define", func(t *testing.T) {
		for i := range 2 { // identical again: fine
			name, err := h.Define(ctx, xml)
			if err != nil {
				t.Fatalf("Define #%d: %v", i+1, err)
			}
			if name != "web-1" {
				t.Fatalf("Define = %q, want web-1", name)
			}
		}
		d := wantState(t, h, "web-1", hypervisor.StateShutoff)
		want := hypervisor.Domain{Name: "web-1", UUID: uuid, State: hypervisor.StateShutoff, VCPUs: 2, MemoryMiB: 512}
		if d != want {
			t.Fatalf("listed %+v, want %+v", d, want)
		}
	})
	t.Run("define without uuid keeps the domain", func(t *testing.T) {
		for range 2 {
			if _, err := h.Define(ctx, guestXML("web-2", "", 1, 256)); err != nil {
				t.Fatal(err)
			}
		}
		first := wantState(t, h, "web-2", hypervisor.StateShutoff)
		if _, err := h.Define(ctx, guestXML("web-2", "", 1, 384)); err != nil {
			t.Fatal(err)
		}
		again := wantState(t, h, "web-2", hypervisor.StateShutoff)
		if again.UUID != first.UUID || again.MemoryMiB != 384 {
			t.Fatalf("redefined as %+v, want UUID %s and 384 MiB", again, first.UUID)
		}
	})
	t.Run("define conflicts", func(t *testing.T) {
		_, err := h.Define(ctx, guestXML("web-1", "11111111-2222-3333-4444-555555555555", 2, 512))
		if !errors.Is(err, hypervisor.ErrConflict) {
			t.Fatalf("Define of web-1 with another UUID: %v, want ErrConflict", err)
		}
		_, err = h.Define(ctx, guestXML("web-1-copy", uuid, 2, 512))
		if !errors.Is(err, hypervisor.ErrConflict) || !strings.Contains(err.Error(), "web-1") {
			t.Fatalf("Define of web-1's UUID under another name: %v, want ErrConflict naming web-1", err)
		}
		_, err = h.Define(ctx, "<network><name>n</name></network>")
		if err == nil || !strings.Contains(err.Error(), "host a1") {
			t.Fatalf("Define of a network: %v, want an error naming host a1", err)
		}
	})
	t.Run("start", func(t *testing.T) {
		for range 2 {
			if err := h.Start(ctx, "web-1"); err != nil {
				t.Fatal(err)
			}
			wantState(t, h, "web-1", hypervisor.StateRunning)
		}
	})
	t.Run("undefine running", func(t *testing.T) {
		err := h.Undefine(ctx, "web-1")
		if !errors.Is(err, hypervisor.ErrConflict) {
			t.Fatalf("Undefine of a running domain: %v, want ErrConflict", err)
		}
		wantState(t, h, "web-1", hypervisor.StateRunning)
	})
	t.Run("redefine running", func(t *testing.T) {
		if _, err := h.Define(ctx, xml); err != nil {
			t.Fatal(err)
		}
		wantState(t, h, "web-1", hypervisor.StateRunning)
	})
	t.Run("shutdown", func(t *testing.T) {
		for range 2 {
			if err := h.Shutdown(ctx, "web-1", 5*time.Second); err != nil {
				t.Fatal(err)
			}
			wantState(t, h, "web-1", hypervisor.StateShutoff)
		}
	})
	t.Run("destroy", func(t *testing.T) {
		if err := h.Start(ctx, "web-1"); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := h.Destroy(ctx, "web-1"); err != nil {
				t.Fatal(err)
			}
			wantState(t, h, "web-1", hypervisor.StateShutoff)
		}
	})
	t.Run("undefine", func(t *testing.T) {
		for range 2 {
			if err := h.Undefine(ctx, "web-1"); err != nil {
				t.Fatal(err)
			}
			if _, ok := domains(t, h)["web-1"]; ok {
				t.Fatal("web-1 is still listed")
			}
		}
	})
	t.Run("no domain", func(t *testing.T) {
		ops := map[string]func() error{
			"start":     func() error { return h.Start(ctx, "nope") },
			"shut down": func() error { return h.Shutdown(ctx, "nope", time.Second) },
			"destroy":   func() error { return h.Destroy(ctx, "nope") },
		}
		for op, f := range ops {
			err := f()
			if !errors.Is(err, hypervisor.ErrNoDomain) {
				t.Errorf("%s: %v, want ErrNoDomain", op, err)
				continue
			}
			if msg := err.Error(); !strings.Contains(msg, op+" domain nope at host a1") {
				t.Errorf("%s: error %q does not say the operation, domain and host", op, msg)
			}
		}
	})
	t.Run("closed", func(t *testing.T) {
		h.Close()
		if _, err := h.List(ctx); !errors.Is(err, hypervisor.ErrUnavailable) {
			t.Fatalf("List after Close: %v, want ErrUnavailable", err)
		}
		if hl := h.Health(); hl.Connected {
			t.Fatalf("health after Close %+v", hl)
		}
	})
}

func TestPausedGuest(t *testing.T) {
	daemon := libvirtdtest.Start(t, libvirtdtest.Options{})
	h := dial(t, daemon.URI(), hypervisor.Options{Name: "a1"})
	ctx := ctxT(t)
	if _, err := h.Define(ctx, guestXML("p", "", 1, 64)); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		op   func() error
		want hypervisor.State
	}{
		{"suspend inactive", func() error { return h.Suspend(ctx, "p") }, hypervisor.StateShutoff},
		{"start", func() error { return h.Start(ctx, "p") }, hypervisor.StateRunning},
		{"suspend", func() error { return h.Suspend(ctx, "p") }, hypervisor.StatePaused},
		{"suspend again", func() error { return h.Suspend(ctx, "p") }, hypervisor.StatePaused},
		{"resume", func() error { return h.Resume(ctx, "p") }, hypervisor.StateRunning},
		{"resume again", func() error { return h.Resume(ctx, "p") }, hypervisor.StateRunning},
		{"suspend for start", func() error { return h.Suspend(ctx, "p") }, hypervisor.StatePaused},
		// Start resumes a paused guest.
		{"start paused", func() error { return h.Start(ctx, "p") }, hypervisor.StateRunning},
		{"suspend for shutdown", func() error { return h.Suspend(ctx, "p") }, hypervisor.StatePaused},
		// A paused guest cannot act on ACPI, so Shutdown destroys it (the
		// test driver refuses the request; QEMU takes it and Shutdown
		// waits out its timeout).
		{"shutdown paused", func() error { return h.Shutdown(ctx, "p", 300*time.Millisecond) }, hypervisor.StateShutoff},
	}
	for _, s := range steps {
		if err := s.op(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if d := domains(t, h)["p"]; d.State != s.want {
			t.Fatalf("after %s: p is %q, want %s", s.name, d.State, s.want)
		}
	}
	if err := h.Resume(ctx, "p"); err == nil || !strings.Contains(err.Error(), "resume domain p at host a1") {
		t.Fatalf("Resume of an inactive domain: %v, want an error", err)
	}
	if err := h.Suspend(ctx, "nope"); !errors.Is(err, hypervisor.ErrNoDomain) {
		t.Fatalf("Suspend of no domain: %v, want ErrNoDomain", err)
	}
}

// TestListFollowsSizesChangedElsewhere: List reads a domain's size again
// when it was defined anew elsewhere (another connection to the same
// host), once the domain's state changes or it is another domain of the
// same name.
func TestListFollowsSizesChangedElsewhere(t *testing.T) {
	daemon := libvirtdtest.Start(t, libvirtdtest.Options{})
	h := dial(t, daemon.URI(), hypervisor.Options{Name: "a1"})
	admin := dial(t, daemon.URI(), hypervisor.Options{Name: "a1-admin"})
	ctx := ctxT(t)
	size := func(name string, want hypervisor.State) (int, int64) {
		d := wantState(t, h, name, want)
		return d.VCPUs, d.MemoryMiB
	}
	if _, err := h.Define(ctx, guestXML("g", "", 1, 128)); err != nil {
		t.Fatal(err)
	}
	if v, m := size("g", hypervisor.StateShutoff); v != 1 || m != 128 {
		t.Fatalf("g listed with %d vCPUs, %d MiB; want 1, 128", v, m)
	}
	if _, err := admin.Define(ctx, guestXML("g", "", 2, 256)); err != nil {
		t.Fatal(err)
	}
	if err := admin.Start(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if v, m := size("g", hypervisor.StateRunning); v != 2 || m != 256 {
		t.Fatalf("g started with a new size elsewhere is listed with %d vCPUs, %d MiB; want 2, 256", v, m)
	}
	if err := admin.Destroy(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if err := admin.Undefine(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Define(ctx, guestXML("g", "", 4, 512)); err != nil { // a new UUID
		t.Fatal(err)
	}
	if err := admin.Start(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if v, m := size("g", hypervisor.StateRunning); v != 4 || m != 512 {
		t.Fatalf("g defined anew elsewhere is listed with %d vCPUs, %d MiB; want 4, 512", v, m)
	}
}

func TestSitesAreIndependent(t *testing.T) {
	a := libvirtdtest.Start(t, libvirtdtest.Options{})
	b := libvirtdtest.Start(t, libvirtdtest.Options{})
	ha := dial(t, a.URI(), hypervisor.Options{Name: "a1", FailAfter: time.Second})
	hb := dial(t, b.URI(), hypervisor.Options{Name: "b1", FailAfter: time.Second})
	ctx := ctxT(t)

	if _, err := ha.Define(ctx, guestXML("db-1", "", 1, 128)); err != nil {
		t.Fatal(err)
	}
	if err := ha.Start(ctx, "db-1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := domains(t, hb)["db-1"]; ok {
		t.Fatal("db-1, defined at site a, is listed at site b")
	}
	if err := hb.Start(ctx, "db-1"); !errors.Is(err, hypervisor.ErrNoDomain) {
		t.Fatalf("Start of db-1 at site b: %v, want ErrNoDomain", err)
	}
	if _, err := hb.Define(ctx, guestXML("db-1", "", 1, 128)); err != nil {
		t.Fatal(err)
	}
	wantState(t, hb, "db-1", hypervisor.StateShutoff)
	wantState(t, ha, "db-1", hypervisor.StateRunning)

	a.Kill()
	await(t, ha, "a1 fails", func(hl hypervisor.Health) bool { return hl.Failed })
	if err := hb.Start(ctx, "db-1"); err != nil {
		t.Fatalf("site b after site a died: %v", err)
	}
	wantState(t, hb, "db-1", hypervisor.StateRunning)
	if hl := hb.Health(); !hl.Connected || hl.Failed {
		t.Fatalf("site b health %+v after site a died", hl)
	}
}

func TestKilledDaemonFailsAndReconnects(t *testing.T) {
	daemon := libvirtdtest.Start(t, libvirtdtest.Options{})
	const failAfter = 500 * time.Millisecond
	h := dial(t, daemon.URI(), hypervisor.Options{
		Name: "a1", FailAfter: failAfter, BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
	})
	ctx := ctxT(t)
	if hl := h.Health(); !hl.Connected || hl.Failed || hl.Err != nil {
		t.Fatalf("health after Dial %+v", hl)
	}
	if _, err := h.Define(ctx, guestXML("g", "", 1, 64)); err != nil {
		t.Fatal(err)
	}

	daemon.Kill()
	killed := time.Now() // it has exited: no answer comes after this
	down := await(t, h, "loses its connection", func(hl hypervisor.Health) bool { return !hl.Connected })
	if down.Err == nil {
		t.Fatalf("disconnected without a reason: %+v", down)
	}
	// Calls fail at once, well before their context ends.
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := h.List(callCtx)
	late := callCtx.Err()
	cancel()
	if !errors.Is(err, hypervisor.ErrUnavailable) || late != nil {
		t.Fatalf("List while disconnected: %v, want ErrUnavailable at once", err)
	}
	if err := h.Start(ctx, "g"); !errors.Is(err, hypervisor.ErrUnavailable) || !strings.Contains(err.Error(), "start domain g at host a1") {
		t.Fatalf("Start while disconnected: %v, want ErrUnavailable naming op, domain and host", err)
	}

	failed := await(t, h, "fails", func(hl hypervisor.Health) bool { return hl.Failed })
	seen := time.Now()
	isFailed, since := h.Failed()
	if !isFailed || !since.Equal(failed.LastAnswer) {
		t.Fatalf("Failed() = %v, %v; health %+v", isFailed, since, failed)
	}
	if since.After(killed) {
		t.Fatalf("silent since %v, after the kill at %v", since, killed)
	}
	if silent := seen.Sub(since); silent < failAfter {
		t.Fatalf("reported failed after %v of silence, before FailAfter %v", silent, failAfter)
	}
	if _, _, err := h.Capacity(ctx); !errors.Is(err, hypervisor.ErrUnavailable) {
		t.Fatalf("Capacity of a failed host: %v, want ErrUnavailable", err)
	}

	daemon.Restart()
	back := await(t, h, "reconnects", func(hl hypervisor.Health) bool { return hl.Connected && !hl.Failed })
	if back.Err != nil {
		t.Fatalf("reconnected with an error: %+v", back)
	}
	// The new daemon's test driver starts afresh: only its own "test".
	got := domains(t, h)
	if _, ok := got["g"]; ok || len(got) != 1 {
		t.Fatalf("domains after the restart: %v, want only test:///default's own", got)
	}
}

func TestHungDaemonDoesNotHangCalls(t *testing.T) {
	daemon := libvirtdtest.Start(t, libvirtdtest.Options{})
	const failAfter = 800 * time.Millisecond
	h := dial(t, daemon.URI(), hypervisor.Options{
		Name: "a1", FailAfter: failAfter, BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
	})
	ctx := ctxT(t)

	daemon.Pause()
	t.Cleanup(daemon.Resume) // before Stop, also when the test fails
	callCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err := h.List(callCtx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, hypervisor.ErrUnavailable) {
		t.Fatalf("List of a hung daemon: %v, want the context's deadline", err)
	}
	failed := await(t, h, "fails", func(hl hypervisor.Health) bool { return hl.Failed })
	if failed.Connected {
		t.Fatalf("failed but connected: %+v", failed)
	}

	daemon.Resume()
	await(t, h, "answers again", func(hl hypervisor.Health) bool { return hl.Connected && !hl.Failed })
	if _, err := h.List(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestTCPTransport(t *testing.T) {
	daemon := libvirtdtest.Start(t, libvirtdtest.Options{TCP: true})
	h := dial(t, daemon.TCPURI(), hypervisor.Options{})
	if hl := h.Health(); !hl.Connected {
		t.Fatalf("not connected over tcp: %+v", hl)
	}
	if h.Target().Network != "tcp" {
		t.Fatalf("target %v", h.Target())
	}
	ctx := ctxT(t)
	if _, err := h.Define(ctx, guestXML("t1", "", 1, 64)); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	wantState(t, h, "t1", hypervisor.StateRunning)
}

func TestUnreachableHost(t *testing.T) {
	// Needs no daemon: nothing listens on the socket.
	sock := filepath.Join(t.TempDir(), "none.sock")
	const failAfter = 200 * time.Millisecond
	h := dial(t, "test+unix:///default?socket="+sock, hypervisor.Options{
		Name: "x1", FailAfter: failAfter, BackoffMin: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond,
	})
	hl := h.Health()
	if hl.Connected || hl.Err == nil || !strings.Contains(hl.Err.Error(), sock) {
		t.Fatalf("health %+v, want disconnected, saying why", hl)
	}
	_, err := h.List(ctxT(t))
	if !errors.Is(err, hypervisor.ErrUnavailable) || !strings.Contains(err.Error(), "host x1") {
		t.Fatalf("List: %v, want ErrUnavailable naming host x1", err)
	}
	hl = await(t, h, "fails", func(hl hypervisor.Health) bool { return hl.Failed })
	if time.Since(hl.LastAnswer) < failAfter {
		t.Fatalf("failed too early: %+v", hl)
	}
}

func TestDialRejectsUnsupportedURI(t *testing.T) {
	_, err := hypervisor.Dial(context.Background(), "qemu+tls://10.0.0.5/system", hypervisor.Options{})
	if err == nil || !strings.Contains(err.Error(), "qemu+tls://10.0.0.5/system") || !strings.Contains(err.Error(), "supported: unix") {
		t.Fatalf("Dial of a tls URI: %v, want an error naming the URI and what is supported", err)
	}
}

func TestPing(t *testing.T) {
	d := libvirtdtest.Start(t, libvirtdtest.Options{})
	if err := hypervisor.Ping(t.Context(), d.URI(), 2*time.Second); err != nil {
		t.Fatalf("ping of a running daemon: %v", err)
	}
	d.Kill()
	if err := hypervisor.Ping(t.Context(), d.URI(), 2*time.Second); err == nil {
		t.Fatal("ping of a killed daemon answered")
	}
	if err := hypervisor.Ping(t.Context(), "qemu+tls://198.51.100.5/system", time.Second); err == nil {
		t.Fatal("ping of an unsupported URI did not fail")
	}
}
