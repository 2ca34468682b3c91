package reconciler

import (
	"context"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
)

// BenchmarkPromotion measures a planned switchover through the reconcilers:
// from the assignment's write to the new primary accepting a write (the old
// primary fenced first, the new one promoted). Each run moves the service
// to the next site; the rewind of the old primary is not timed.
func BenchmarkPromotion(b *testing.B) {
	f := newFixture(b, fixtureOptions{})
	ctx := context.Background()
	cur := 0
	var id int64
	for b.Loop() {
		next := (cur + 1) % len(sites)
		from, to := sites[cur], sites[next]
		epoch := f.assign("db", to, from, "switchover")
		deadline := time.Now().Add(30 * time.Second)
		for {
			id++
			if tryWrite(ctx, f.srv[to], id) == nil {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s not writable 30s after the assignment", to)
			}
			time.Sleep(5 * time.Millisecond) // a server's writability has no event to wait on
		}
		b.StopTimer()
		for _, s := range sites {
			if s != to {
				f.waitMember(s, 60*time.Second, func(m site.MemberReport) bool {
					return m.Role == "standby" && m.Healthy && m.Epoch == epoch
				})
			}
		}
		cur = next
		b.StartTimer()
	}
}
