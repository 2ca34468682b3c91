// Package ctxsleep waits a while unless a context ends first: the one
// sleep that zdt's retry loops and backoffs share.
package ctxsleep

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// For waits d, or until ctx ends: then it returns ctx's error.
func For(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Backoff doubles a wait from a minimum up to a maximum, without jitter
// and without ever giving up (cenkalti/backoff's exponential backoff).
type Backoff struct {
	b *backoff.ExponentialBackOff
}

// NewBackoff returns a backoff whose first wait is min.
func NewBackoff(min, max time.Duration) *Backoff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = min, max
	b.Multiplier, b.RandomizationFactor = 2, 0
	b.Reset()
	return &Backoff{b: b}
}

// Reset makes the next wait the minimum again.
func (b *Backoff) Reset() { b.b.Reset() }

// Wait waits the current wait, or until ctx ends (its error), and doubles
// the next one, up to the maximum.
func (b *Backoff) Wait(ctx context.Context) error { return For(ctx, b.b.NextBackOff()) }
