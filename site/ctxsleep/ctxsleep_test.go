package ctxsleep

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestForEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := For(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("For with a cancelled context: %v; want context.Canceled at once", err)
	}
	if err := For(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("For 1ms: %v", err)
	}
}

// TestBackoffDoubles reads the waits without waiting them.
func TestBackoffDoubles(t *testing.T) {
	b := NewBackoff(10*time.Millisecond, 50*time.Millisecond)
	var got []time.Duration
	for range 5 {
		got = append(got, b.b.NextBackOff())
	}
	want := []time.Duration{10, 20, 40, 50, 50}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("waits %v; want %v ms", got, want)
		}
	}
	b.Reset()
	if d := b.b.NextBackOff(); d != 10*time.Millisecond {
		t.Fatalf("after Reset the wait is %v; want 10ms", d)
	}
}
