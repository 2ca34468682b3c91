package site_test

import (
	"context"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/sitetest"
)

// TestObserverBeat: the observer's beat is there while it is held, gone at
// once when the holder stops, and gone within its lease's TTL when the
// holder's client dies without a word.
func TestObserverBeat(t *testing.T) {
	cl := sitetest.New(t, sitetest.Options{})
	store := site.NewStore(cl.Client(), cl.Config.Name)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	waitBeat := func(want bool, what string) {
		t.Helper()
		watch := store.WatchKey(ctx, store.Keys().ObserverBeat(), false, 0)
		for {
			_, ok, err := store.ObserverBeatNow(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ok == want {
				return
			}
			select {
			case <-watch:
			case <-ctx.Done():
				t.Fatalf("%s: the beat is there: %v", what, ok)
			}
		}
	}
	if _, ok, err := store.ObserverBeatNow(ctx); err != nil || ok {
		t.Fatalf("a beat before any observer: %v, %v", ok, err)
	}

	hctx, stop := context.WithCancel(ctx)
	held := make(chan error, 1)
	beat := site.ObserverBeat{Since: time.Now().UTC().Truncate(time.Second), Host: "observer-1", PID: 42}
	go func() { held <- store.HoldObserverBeat(hctx, beat, 2*time.Second) }()
	waitBeat(true, "held")
	if got, _, _ := store.ObserverBeatNow(ctx); !got.Since.Equal(beat.Since) || got.Host != beat.Host || got.PID != beat.PID {
		t.Errorf("the beat says %+v; want %+v", got, beat)
	}
	stop()
	if err := <-held; err != nil {
		t.Errorf("HoldObserverBeat stopped: %v", err)
	}
	if _, ok, _ := store.ObserverBeatNow(ctx); ok {
		t.Error("the beat outlived a clean stop")
	}

	// A holder whose client dies: the lease runs out.
	dying := cl.Client()
	other := site.NewStore(dying, cl.Config.Name)
	go func() { _ = other.HoldObserverBeat(ctx, beat, time.Second) }()
	waitBeat(true, "held again")
	gone := time.Now()
	_ = dying.Close()
	waitBeat(false, "after its client died")
	t.Logf("the beat of a dead holder went %s after (TTL 1s)", time.Since(gone).Round(10*time.Millisecond))
}
