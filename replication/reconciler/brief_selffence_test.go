package reconciler

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
)

// A site that holds the active primary fences itself for a moment (an etcd
// election at another site's loss, say) and is up again at once: the
// primary must take writes again, whether the fence finished before the
// site came back or was cut short by it.
func TestBriefSelfFenceLifted(t *testing.T) {
	for _, tc := range []struct {
		name string
		up   time.Duration // after the self-fence
	}{{"fence cut short", 0}, {"fence finished", 300 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{})
			ctx := context.Background()
			if err := tryWrite(ctx, f.srv["a"], 1); err != nil {
				t.Fatalf("a before the self-fence: %v", err)
			}
			f.recs["a"].SetState(site.ControllerSelfFenced)
			if tc.up > 0 {
				time.Sleep(tc.up) // the self-fence lasts this long
			}
			f.recs["a"].SetState(site.ControllerUp)
			f.waitWritable("a", "after its site is up again")
		})
	}
}

// A fence whose ALTER SYSTEM landed but whose reload never came (its pass
// cut short between the two), applied later by another reload: the active
// site's primary turns read-only with nobody fencing it, and the next
// passes must lift it.
func TestLateFenceLifted(t *testing.T) {
	for _, sync := range []bool{false, true} {
		t.Run(fmt.Sprintf("synchronous=%v", sync), func(t *testing.T) {
			f := newFixture(t, fixtureOptions{synchronous: sync})
			ctx := context.Background()
			if err := tryWrite(ctx, f.srv["a"], 1); err != nil {
				t.Fatalf("a before: %v", err)
			}
			c := f.srv["a"].Connect(ctx)
			for _, q := range []string{`ALTER SYSTEM SET default_transaction_read_only = on`, `SELECT pg_reload_conf()`} {
				if _, err := c.Exec(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			f.waitWritable("a", "read-only with nobody fencing it")
		})
	}
}

// waitWritable waits, for at most 15s of passes, until site s's member
// takes writes.
func (f *fixture) waitWritable(s, when string) {
	f.t.Helper()
	ctx := context.Background()
	var err error
	f.waitPasses(s, 15*time.Second, func() bool {
		err = tryWrite(ctx, f.srv[s], time.Now().UnixNano())
		return err == nil
	}, "site "+s+" takes writes again")
	if err != nil {
		f.t.Errorf("site %s's primary, %s: %v", s, when, err)
	}
}
