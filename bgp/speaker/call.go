package speaker

import (
	"context"
	"fmt"
	"time"
)

// call runs f in its own goroutine and waits until f returns, ctx is done or
// timeout has passed, whichever comes first. GoBGP's API ignores contexts, so
// this is the only bound on its calls.
//
// When call gives up, it returns an error wrapping ctx.Err() (or
// context.DeadlineExceeded for the timeout) and f keeps running; finished is
// closed once f has returned, whether call waited for it or not.
func call(ctx context.Context, timeout time.Duration, op string, f func() error) (finished <-chan struct{}, err error) {
	done := make(chan struct{})
	if err := ctx.Err(); err != nil {
		close(done)
		return done, fmt.Errorf("gobgp %s: %w", op, err)
	}
	var ferr error
	go func() {
		defer close(done)
		ferr = f()
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-done:
		if ferr != nil {
			return done, fmt.Errorf("gobgp %s: %w", op, ferr)
		}
		return done, nil
	case <-ctx.Done():
		return done, fmt.Errorf("gobgp %s: %w", op, ctx.Err())
	case <-timer.C:
		return done, fmt.Errorf("gobgp %s: no answer within %v: %w", op, timeout, context.DeadlineExceeded)
	}
}
