package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/e2e/fabric"
	"github.com/zdt-project/zdt/site"
)

// BenchmarkBGPMoveAll moves 1,000 services with 10 prefixes each (10,000
// IPv6 prefixes) to another site in one go, and measures the time from the
// first assignment written to FRR's best path for every prefix leading to
// the new site. It reports the controllers' resident memory (speaker,
// etcd member and all) after the move.
//
//	go test -run NONE -bench BGPMoveAll -benchtime 3x ./e2e/
func BenchmarkBGPMoveAll(b *testing.B) {
	const services, perService = 1000, 10
	var svcs []bgpService
	var all []netip.Prefix
	for i := range services {
		s := bgpService{name: "svc-" + strconv.Itoa(i), sites: []string{"a", "b", "c"}}
		for j := range perService {
			n := 0x1000 + i*perService + j
			p := netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x::/48", n))
			s.prefixes = append(s.prefixes, p)
			all = append(all, p)
		}
		svcs = append(svcs, s)
	}
	bed := startBenchBed(b, svcs)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bed.waitTable(ctx, all, "a")

	sites := []string{"b", "c", "a"}
	from := "a"
	var total time.Duration
	b.ResetTimer()
	for i := range b.N {
		to := sites[i%len(sites)]
		start := time.Now()
		bed.assignAll(ctx, svcs, to, from)
		bed.waitTable(ctx, all, to)
		total += time.Since(start)
		from = to
	}
	b.StopTimer()
	b.ReportMetric(total.Seconds()/float64(b.N), "s/move-10k")
	for _, name := range []string{"a", "b", "c"} {
		b.ReportMetric(rssMiB(bed.procs[name].Process.Pid), "MiB-rss-"+name)
	}
}

// BenchmarkBGPMoveOne moves one service with one prefix back and forth and
// reports the p50 and p95 of the time from the assignment written to FRR's
// best path leading to the new site.
//
//	go test -run NONE -bench BGPMoveOne -benchtime 20x ./e2e/
func BenchmarkBGPMoveOne(b *testing.B) {
	p := netip.MustParsePrefix("203.0.113.0/24")
	svcs := []bgpService{{name: "web", sites: []string{"a", "b", "c"}, prefixes: []netip.Prefix{p}}}
	bed := startBenchBed(b, svcs)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bed.waitTable(ctx, []netip.Prefix{p}, "a")

	sites := []string{"b", "c", "a"}
	from := "a"
	var took []time.Duration
	b.ResetTimer()
	for i := range b.N {
		to := sites[i%len(sites)]
		start := time.Now()
		bed.assignAll(ctx, svcs, to, from)
		for {
			best, ok, err := bed.frr.Best(ctx, p)
			if err == nil && ok && bed.siteOf(best) == to {
				break
			}
			if ctx.Err() != nil {
				b.Fatalf("the best path never moved to %s", to)
			}
		}
		took = append(took, time.Since(start))
		from = to
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(took[(len(took)*95+99)/100-1].Microseconds())/1000, "ms-p95")
}

func startBenchBed(b *testing.B, svcs []bgpService) *bgpBed {
	b.Helper()
	if os.Getenv("CI") != "true" && os.Geteuid() != 0 {
		b.Skip("needs root for network namespaces")
	}
	zdt := buildZDT(b)
	// No flap guard: every move is measured the same way.
	return startBGPBed(b, zdt, svcs, "  min_change_interval: 0s\n")
}

// assignAll assigns every service to site to, in transactions of 100.
func (bed *bgpBed) assignAll(ctx context.Context, svcs []bgpService, to, from string) {
	bed.t.Helper()
	at := time.Now()
	var ops []clientv3.Op
	flush := func() {
		if len(ops) == 0 {
			return
		}
		if _, err := bed.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			bed.t.Fatalf("assign: %v", err)
		}
		ops = ops[:0]
	}
	for _, s := range svcs {
		data, _ := json.Marshal(site.Assignment{Service: s.name, Site: to, Op: "bench", At: at, From: from, Kind: "switchover"})
		ops = append(ops, clientv3.OpPut(bed.keys.Assignment(s.name), string(data)))
		if len(ops) == 100 {
			flush()
		}
	}
	flush()
}

// waitTable waits until FRR's best path of every prefix leads to site to.
func (bed *bgpBed) waitTable(ctx context.Context, prefixes []netip.Prefix, to string) {
	bed.t.Helper()
	fams := map[fabric.Family]bool{}
	for _, p := range prefixes {
		if p.Addr().Is4() {
			fams[fabric.IPv4] = true
		} else {
			fams[fabric.IPv6] = true
		}
	}
	missing := len(prefixes)
	for ctx.Err() == nil {
		best := map[netip.Prefix]fabric.Path{}
		for f := range fams {
			t, err := bed.frr.Table(ctx, f)
			if err != nil {
				continue
			}
			for p, path := range t {
				best[p] = path
			}
		}
		missing = 0
		for _, p := range prefixes {
			if path, ok := best[p]; !ok || bed.siteOf(path) != to {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	bed.dumpLogs()
	bed.t.Fatalf("%d of %d prefixes do not lead to site %s", missing, len(prefixes), to)
}

// rssMiB is a process's resident memory in MiB, 0 if unknown.
func rssMiB(pid int) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
