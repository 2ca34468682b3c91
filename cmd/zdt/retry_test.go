package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

func TestRetryTransient(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	calls := 0
	got, err := retryTransient(ctx, func() (int, error) {
		calls++
		if calls < 3 {
			return 0, rpctypes.ErrLeaderChanged
		}
		return 42, nil
	})
	if err != nil || got != 42 || calls != 3 {
		t.Errorf("a read failing twice on a leader change: %d, %v after %d calls; want 42 after 3", got, err, calls)
	}

	calls = 0
	lost := errors.New("no quorum")
	if _, err := retryTransient(ctx, func() (int, error) { calls++; return 0, lost }); !errors.Is(err, lost) || calls != 1 {
		t.Errorf("a read failing for good: %v after %d calls; want it at once", err, calls)
	}

	short, cancelShort := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancelShort()
	if _, err := retryTransient(short, func() (int, error) { return 0, rpctypes.ErrNoLeader }); err == nil {
		t.Error("a leader election that outlasts the context: no error")
	}
}
