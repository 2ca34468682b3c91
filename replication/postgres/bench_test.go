package postgres_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/zdt-project/zdt/replication/postgres/pgtest"
)

// BenchmarkPromote times Promote of a standby, from the pg_promote call to
// a checked writable primary; each iteration has fresh servers.
func BenchmarkPromote(b *testing.B) {
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		g := pgtest.Start(b, 2, pgtest.Options{})
		m := member(b, g.Members[1], nil)
		g.Members[0].Kill(syscall.SIGKILL)
		b.StartTimer()
		if err := m.Promote(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if st, err := m.Observe(ctx); err != nil || !st.Writable {
			b.Fatalf("after Promote: %+v, %v", st, err)
		}
	}
}

// BenchmarkFollowSwitch times re-pointing a running standby to another
// sender until it streams from it: c switches between the primary a and b,
// a cascading standby, so no server is rebuilt between iterations.
func BenchmarkFollowSwitch(b *testing.B) {
	ctx := context.Background()
	g := pgtest.Start(b, 3, pgtest.Options{})
	mc := member(b, g.Members[2], nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		to := g.Members[1-i%2] // b first: c already follows a
		if err := mc.Follow(ctx, to.ReplicationConnInfo); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	st, err := mc.Observe(ctx)
	if err != nil || !st.Healthy {
		b.Fatalf("c after the switches: %+v, %v", st, err)
	}
}

// BenchmarkRewind times Follow on a former primary that wrote rewindMB of
// data the new primary does not have: fence, stop, pg_rewind, start, stream.
func BenchmarkRewind(b *testing.B) {
	const rewindMB = 32
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		g := pgtest.Start(b, 2, pgtest.Options{})
		a, sb := g.Members[0], g.Members[1]
		ma, mb := member(b, a, nil), member(b, sb, nil)
		a.Exec(ctx, `CREATE TABLE d (v text)`)
		if err := mb.Promote(ctx); err != nil {
			b.Fatal(err)
		}
		a.Exec(ctx, fmt.Sprintf(`INSERT INTO d SELECT repeat('x', 1000) FROM generate_series(1, %d)`, rewindMB<<10))
		sb.Exec(ctx, `INSERT INTO d VALUES ('b')`)
		b.StartTimer()
		if err := ma.Follow(ctx, sb.ReplicationConnInfo); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if st, err := ma.Observe(ctx); err != nil || !st.Healthy {
			b.Fatalf("a after Follow: %+v, %v", st, err)
		}
	}
	b.ReportMetric(rewindMB, "divergent-MB")
}

// BenchmarkObserve measures observations per second of a primary and a
// standby.
func BenchmarkObserve(b *testing.B) {
	ctx := context.Background()
	g := pgtest.Start(b, 2, pgtest.Options{})
	for i, role := range []string{"primary", "standby"} {
		m := member(b, g.Members[i], nil)
		if _, err := m.Observe(ctx); err != nil {
			b.Fatal(err)
		}
		b.Run(role, func(b *testing.B) {
			began := time.Now()
			for b.Loop() {
				if _, err := m.Observe(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "observations/s")
		})
	}
}
