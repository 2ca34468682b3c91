package site

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/site/ctxsleep"
)

// ObserverBeat is the route observer's sign of life: a record held under a
// lease the observer keeps alive, so it is gone within the lease's TTL of
// the observer stopping, dying or losing etcd. Its records of the upstream
// are written only when a path changes; without the beat they are its
// last view, stale.
type ObserverBeat struct {
	Since time.Time `json:"since"`
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
}

// ObserverBeatTTL is the lease of the observer's beat.
const ObserverBeatTTL = 5 * time.Second

var errBeatLost = errors.New("the observer's beat lease was lost")

// HoldObserverBeat writes the beat under a lease of ttl (whole seconds, at
// least one) and keeps the lease alive until ctx ends, then revokes it.
// When the lease is lost (etcd out of reach for longer than ttl), it writes
// the beat again under a new lease as soon as etcd answers.
func (s *Store) HoldObserverBeat(ctx context.Context, beat ObserverBeat, ttl time.Duration) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 100*time.Millisecond, time.Second
	for {
		err := s.holdObserverBeat(ctx, beat, max(ttl, time.Second))
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			b.Reset()
		}
		if ctxsleep.For(ctx, b.NextBackOff()) != nil {
			return nil
		}
	}
}

func (s *Store) holdObserverBeat(ctx context.Context, beat ObserverBeat, ttl time.Duration) error {
	grant, err := s.c.Grant(ctx, int64(ttl/time.Second))
	if err != nil {
		return fmt.Errorf("the observer's beat: %w", err)
	}
	defer func() { // gone at once on a clean stop, not a TTL later
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_, _ = s.c.Revoke(rctx, grant.ID)
	}()
	put, err := putJSON(s.keys.ObserverBeat(), beat, clientv3.WithLease(grant.ID))
	if err != nil {
		return err
	}
	if _, err := s.c.Do(ctx, put); err != nil {
		return fmt.Errorf("the observer's beat: %w", err)
	}
	alive, err := s.c.KeepAlive(ctx, grant.ID)
	if err != nil {
		return fmt.Errorf("the observer's beat: %w", err)
	}
	for range alive { // until the lease is lost or ctx ends
	}
	return errBeatLost
}

// ObserverBeatNow reads the observer's beat; false when there is none (no
// observer runs, or it lost etcd).
func (s *Store) ObserverBeatNow(ctx context.Context) (ObserverBeat, bool, error) {
	b, _, err := get[ObserverBeat](ctx, s, s.keys.ObserverBeat())
	switch {
	case errors.Is(err, ErrNotFound):
		return ObserverBeat{}, false, nil
	case err != nil:
		return ObserverBeat{}, false, err
	}
	return b, true, nil
}
