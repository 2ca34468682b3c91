package speaker

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCall(t *testing.T) {
	t.Run("returns f's result", func(t *testing.T) {
		boom := errors.New("boom")
		finished, err := call(context.Background(), time.Second, "op", func() error { return boom })
		if !errors.Is(err, boom) || err.Error() != "gobgp op: boom" {
			t.Errorf("error = %v, want gobgp op: boom", err)
		}
		<-finished
		if _, err := call(context.Background(), time.Second, "op", func() error { return nil }); err != nil {
			t.Errorf("error = %v, want nil", err)
		}
	})

	t.Run("timeout while f blocks", func(t *testing.T) {
		release := make(chan struct{})
		start := time.Now()
		finished, err := call(context.Background(), 20*time.Millisecond, "AddPath", func() error {
			<-release
			return nil
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("call returned after %v", d)
		}
		select {
		case <-finished:
			t.Fatalf("finished closed while f still runs")
		default:
		}
		close(release)
		<-finished // f completes later, and says so
	})

	t.Run("context cancelled while f blocks", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		ctx, cancel := context.WithCancel(context.Background())
		go cancel()
		_, err := call(ctx, time.Hour, "ListPeer", func() error {
			<-release
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error = %v, want context.Canceled", err)
		}
	})

	t.Run("context done before: f does not run", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		ran := false
		finished, err := call(ctx, time.Hour, "op", func() error { ran = true; return nil })
		<-finished
		if !errors.Is(err, context.Canceled) || ran {
			t.Errorf("error = %v, ran = %v; want context.Canceled, not run", err, ran)
		}
	})
}
