package hypervisor_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/zdt-project/zdt/deploy/hypervisor"
	"github.com/zdt-project/zdt/deploy/hypervisor/libvirtdtest"
)

// BenchmarkStart100Guests defines and starts 100 test-driver guests at one
// host, one after another (serial) and 8 at a time (parallel8). One op is
// all 100 guests; guests/s is the rate. The guests are destroyed and
// undefined between ops, outside the timer.
func BenchmarkStart100Guests(b *testing.B) {
	daemon := libvirtdtest.Start(b, libvirtdtest.Options{})
	h := dial(b, daemon.URI(), hypervisor.Options{Log: zap.NewNop()})
	const guests = 100
	xml := make([]string, guests)
	for i := range xml {
		xml[i] = guestXML(fmt.Sprintf("bench-%03d", i), "", 1, 64)
	}
	for _, par := range []int{1, 8} {
		name := "serial"
		if par > 1 {
			name = fmt.Sprintf("parallel%d", par)
		}
		b.Run(name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			each := func(f func(i int) error) error {
				var g errgroup.Group
				g.SetLimit(par)
				for i := range guests {
					g.Go(func() error { return f(i) })
				}
				return g.Wait()
			}
			for b.Loop() {
				err := each(func(i int) error {
					name, err := h.Define(ctx, xml[i])
					if err != nil {
						return err
					}
					return h.Start(ctx, name)
				})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				err = each(func(i int) error {
					name := fmt.Sprintf("bench-%03d", i)
					if err := h.Destroy(ctx, name); err != nil {
						return err
					}
					return h.Undefine(ctx, name)
				})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			if s := b.Elapsed().Seconds(); s > 0 {
				b.ReportMetric(float64(guests*b.N)/s, "guests/s")
			}
		})
	}
}

// BenchmarkList100Guests lists a host with 100 running guests, as a
// reconciler's resync does: one op is one List.
func BenchmarkList100Guests(b *testing.B) {
	daemon := libvirtdtest.Start(b, libvirtdtest.Options{})
	h := dial(b, daemon.URI(), hypervisor.Options{Log: zap.NewNop()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const guests = 100
	for i := range guests {
		name, err := h.Define(ctx, guestXML(fmt.Sprintf("bench-%03d", i), "", 1, 64))
		if err != nil {
			b.Fatal(err)
		}
		if err := h.Start(ctx, name); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		list, err := h.List(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(list) != guests+1 { // and the test driver's own "test"
			b.Fatalf("listed %d domains, want %d", len(list), guests+1)
		}
	}
}
