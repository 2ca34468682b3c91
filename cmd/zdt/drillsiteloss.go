package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zdt-project/zdt/e2e/lab"
	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/failover/drill"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/ctxsleep"
)

// siteLossFaults are the faults a site-loss drill can cause, and what each
// does, for people.
var siteLossFaults = map[string]string{
	"down":    "links cut, then every process killed (SIGKILL)",
	"freeze":  "every process stopped (SIGSTOP), links up",
	"isolate": "cut off from the other sites, its link to the upstream up",
}

// siteLossFlags are the flags of zdt drill site-loss.
type siteLossFlags struct {
	labDir, siteName, fault, out string
	repeat                       int
	probeInterval, probeTimeout  time.Duration
	timeout                      time.Duration
}

func newDrillSiteLossCommand() *cobra.Command {
	var f siteLossFlags
	cmd := &cobra.Command{
		Use:   "site-loss --site SITE --lab DIR [--fault down|freeze|isolate] [--repeat N] [--out DIR]",
		Short: "Take a site of a lab dark, watch it fail over, bring it back and fail it back; write the report",
		Long: `The drill that proves a data centre can go dark, in a lab in network namespaces
(zdt lab --netns): the site's links, processes and BGP sessions are real,
and a client in the lab's client namespace reaches the service through the
upstream router, following BGP.

The client sends a write to the address of the first service active at
--site every --probe-interval (through the site's service responder, into
the replicated database) and records who answered and every failure. Then
the drill causes the fault (--fault):

  down     the site's links are cut, then all its processes killed
  freeze   all its processes are stopped (SIGSTOP); its links stay up, so
           its BGP sessions live until the upstream's hold timer
  isolate  the site is cut off from the other sites, not from the upstream

and waits for the failover and for the client to be served again. It
restores the site (starts it again, continues it, or heals its link), fails
it back (zdt failback), switches its services back, and checks: every op
succeeded, every service is back, the client is served at the end, no
acknowledged write was lost, the dark site answered nothing and no two
sites answered between the fault and the failback, and each op's RTO is
within the service's target. The report is written into --out as
drill-SITE-TIME.json, .md and .html (one page, no network needed, with a
timeline), and recorded as the site's last drill (zdt status).

--repeat N runs N drills, one after the other, and ends with the p50 and
p95 of the client's longest outage and of the failover's RTO. The exit
status is 0 when every drill passed, 1 otherwise, 2 for a usage error.`,
		Example: `  sudo zdt lab --netns --dir /tmp/lab --detach --synchronous
  sudo zdt drill site-loss --site a --lab /tmp/lab
  sudo zdt drill site-loss --site b --lab /tmp/lab --fault freeze --repeat 10 --out /tmp/drills`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, cfg, err := f.check()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			var reports []*drill.Report
			for i := range f.repeat {
				if f.repeat > 1 {
					fmt.Fprintf(out, "drill %d of %d\n", i+1, f.repeat)
				}
				ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
				r, err := runSiteLossDrill(ctx, out, l, cfg, &f)
				cancel()
				if err != nil {
					return err
				}
				paths, err := writeDrillReport(f.out, r)
				if err != nil {
					return err
				}
				writeDrillSummary(out, r, paths)
				reports = append(reports, r)
				if cmd.Context().Err() != nil {
					break
				}
			}
			if len(reports) > 1 {
				writeRepeatSummary(out, reports)
			}
			var failed []string
			for _, r := range reports {
				if !r.Passed {
					failed = append(failed, r.Started.UTC().Format(time.TimeOnly)+": "+failedChecks(r))
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("%d of %d site-loss drills of site %s failed: %s", len(failed), len(reports), f.siteName, strings.Join(failed, "; "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&f.labDir, "lab", "", "the directory of a lab started with zdt lab --netns (required)")
	cmd.Flags().StringVar(&f.siteName, "site", "", "the site the drill takes dark (required)")
	cmd.Flags().StringVar(&f.fault, "fault", "down", "how the site goes dark: down, freeze or isolate")
	cmd.Flags().IntVar(&f.repeat, "repeat", 1, "how many drills to run, one after the other")
	cmd.Flags().DurationVar(&f.probeInterval, "probe-interval", 10*time.Millisecond, "time between two requests of the client")
	cmd.Flags().DurationVar(&f.probeTimeout, "probe-timeout", 250*time.Millisecond, "how long one request of the client may take")
	cmd.Flags().StringVar(&f.out, "out", ".", "the directory the reports are written to")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Minute, "how long one drill may take")
	_ = cmd.MarkFlagRequired("site")
	_ = cmd.MarkFlagRequired("lab")
	return cmd
}

// check checks the flags, opens the lab and loads its config.
func (f *siteLossFlags) check() (*lab.Lab, *config.Cluster, error) {
	if _, ok := siteLossFaults[f.fault]; !ok {
		return nil, nil, usageErrorf("--fault %q: want down, freeze or isolate", f.fault)
	}
	switch {
	case f.repeat < 1:
		return nil, nil, usageErrorf("--repeat %d: want 1 or more", f.repeat)
	case f.probeInterval <= 0 || f.probeTimeout <= 0 || f.timeout <= 0:
		return nil, nil, usageErrorf("--probe-interval, --probe-timeout and --timeout want positive durations")
	}
	if st, err := os.Stat(f.out); err != nil || !st.IsDir() {
		return nil, nil, usageErrorf("--out %q: not a directory", f.out)
	}
	l, err := lab.Open(f.labDir, lab.Options{})
	if err != nil {
		return nil, nil, usageErrorf("--lab: %w", err)
	}
	if !l.InNetns() {
		return nil, nil, usageErrorf("--lab %s runs on loopback addresses: a site-loss drill needs a lab in network namespaces, whose links it cuts and whose client follows BGP; start one with `zdt lab --netns --dir DIR`", l.Dir())
	}
	if _, err := l.Site(f.siteName); err != nil {
		return nil, nil, usageErrorf("--site: %w (sites are %s)", err, strings.Join(l.SiteNames(), ", "))
	}
	cfg, err := readConfig(l.ConfigPath())
	if err != nil {
		return nil, nil, err
	}
	return l, cfg, nil
}

// runSiteLossDrill runs one drill and returns its report; an error is one
// that leaves no report to write.
func runSiteLossDrill(ctx context.Context, progress io.Writer, l *lab.Lab, cfg *config.Cluster, f *siteLossFlags) (*drill.Report, error) {
	sw, done, err := openSwitchovers(cfg)
	if err != nil {
		return nil, err
	}
	defer done()
	before, err := sw.assigned(ctx)
	if err != nil {
		return nil, err
	}
	var services []string
	probeURL := ""
	for _, svc := range cfg.Services {
		if before[svc.Name] != f.siteName {
			continue
		}
		services = append(services, svc.Name)
		if u, err := l.ServiceURL(svc.Name, 4); err == nil && probeURL == "" {
			probeURL = u
		}
	}
	if len(services) == 0 {
		return nil, usageErrorf("site %s serves no service now: losing it would prove nothing (zdt status shows where the services are)", f.siteName)
	}
	if probeURL == "" {
		return nil, usageErrorf("no service of site %s has an address for the client", f.siteName)
	}
	started := time.Now()
	id := fmt.Sprintf("drill-site-loss-%s-%s", f.siteName, started.UTC().Format("20060102T150405.000Z"))
	r := &drill.Report{Kind: "site-loss", Site: f.siteName, Cluster: cfg.Name, Who: operatorName(), Started: started}
	opts, err := l.ClientProbeOptions()
	if err != nil {
		return nil, err
	}
	probe, err := drill.NewProbeWith(ctx, probeURL, id, f.probeInterval, f.probeTimeout, opts)
	if err != nil {
		return nil, err
	}
	defer probe.Close()
	pctx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	probeDone := make(chan struct{})
	go func() { probe.Run(pctx); close(probeDone) }()
	// finish stops the client, checks what it saw between faultAt and
	// failedBack, and records the drill; every way out of the drill ends so.
	finish := func(faultAt, failedBack time.Time) (*drill.Report, error) {
		stopClient := func() { stopProbe(); <-probeDone }
		return finishSiteLoss(ctx, progress, r, sw, probe, stopClient, services, faultAt, failedBack)
	}

	fmt.Fprintf(progress, "drill %s: a client writes to %s every %s; waiting until it is served\n", id, probeURL, f.probeInterval)
	if err := waitSteady(ctx, probe, 20, 30*time.Second); err != nil {
		r.Checks = append(r.Checks, drill.Check{Name: "client served before the fault", OK: false, Detail: err.Error()})
		return finish(time.Time{}, time.Time{})
	}

	r.Fault = &drill.Fault{Kind: f.fault, At: time.Now()}
	fmt.Fprintf(progress, "drill %s: site %s goes dark: %s\n", id, f.siteName, siteLossFaults[f.fault])
	if err := causeFault(l, f.siteName, f.fault); err != nil {
		return nil, fmt.Errorf("drill %s: the fault: %w; the lab may need `zdt lab site %s up --dir %s`", id, err, f.siteName, l.Dir())
	}
	// From here the site is dark: a request that began before the fault
	// was done (its processes are stopped one after the other) may have
	// been answered.
	dark := time.Now()
	fo, err := waitFailoverOf(ctx, sw, f.siteName, r.Fault.At)
	r.Phases = append(r.Phases, drill.Phase{Name: "failover"})
	if fo != nil {
		r.Phases[0].Ops = append(r.Phases[0].Ops, targetRTO(cfg, drill.NewOpResult(fo)))
		fmt.Fprintf(progress, "drill %s: failover %s %s\n", id, fo.ID, fo.Outcome)
	}
	if err != nil {
		r.Checks = append(r.Checks, drill.Check{Name: "failed over", OK: false, Detail: err.Error()})
	} else if err := waitServed(ctx, probe, r.Fault.At, time.Minute); err != nil {
		r.Checks = append(r.Checks, drill.Check{Name: "client served after the failover", OK: false, Detail: err.Error()})
	}

	fmt.Fprintf(progress, "drill %s: restoring site %s\n", id, f.siteName)
	if err := restoreSite(ctx, l, f.siteName, f.fault); err != nil {
		r.Checks = append(r.Checks, drill.Check{Name: "site restored", OK: false, Detail: err.Error()})
		return finish(dark, time.Time{})
	}
	r.Fault.Restored = time.Now()
	fmt.Fprintf(progress, "drill %s: failing site %s back (it waits until the site is clean)\n", id, f.siteName)
	r.Phases = append(r.Phases, drill.Phase{Name: "failback"})
	err = failBack(ctx, progress, sw, f.siteName, r, &r.Phases[1])
	failedBack := time.Now()
	if err != nil {
		r.Checks = append(r.Checks, drill.Check{Name: "failed back", OK: false, Detail: err.Error()})
		return finish(dark, failedBack)
	}
	assigned, err := sw.assigned(ctx)
	if err != nil {
		return nil, err
	}
	r.Phases = append(r.Phases, drill.Phase{Name: "back"})
	for _, req := range failover.SwitchBackOf(cfg, assigned, f.siteName) {
		back, err := sw.ask(ctx, req, progress)
		if back.Op != nil {
			r.Phases[2].Ops = append(r.Phases[2].Ops, targetRTO(cfg, drill.NewOpResult(back.Op)))
		}
		if err != nil {
			r.Checks = append(r.Checks, drill.Check{Name: "switched " + req.Service + " back", OK: false, Detail: err.Error()})
		}
	}
	return finish(dark, failedBack)
}

// finishSiteLoss stops the client, checks, and records the drill.
func finishSiteLoss(ctx context.Context, progress io.Writer, r *drill.Report, sw switchovers, probe *drill.Probe,
	stopClient func(), services []string, faultAt, failedBack time.Time) (*drill.Report, error) {
	// A last look: the client is served again.
	_ = waitServed(ctx, probe, time.Now(), 10*time.Second)
	stopClient()
	r.Checks = append(r.Checks, checkBack(ctx, sw, services, r.Site)...)
	res, err := probe.Result(ctx)
	r.Probe = res
	r.Checks = append(r.Checks, probeChecks(res, err)...)
	if !faultAt.IsZero() {
		wrong := drill.CheckTakeover(probe.History(), r.Site, faultAt, failedBack)
		r.Checks = append(r.Checks, drill.Check{Name: "no answer from the dark site, one site answering", OK: len(wrong) == 0,
			Detail: cmp.Or(strings.Join(wrong, "; "), "between the fault and the failback")})
	}
	wrong := drill.CheckSequence(probe.History())
	r.Checks = append(r.Checks, drill.Check{Name: "the writes' ids only grow (one primary at a time)", OK: len(wrong) == 0,
		Detail: cmp.Or(strings.Join(wrong, "; "), fmt.Sprintf("%d acknowledged writes, linearizable (porcupine)", res.Acknowledged))})
	r.CheckRTO()
	r.Finish(time.Now())
	if err := sw.recordDrill(ctx, r.Record()); err != nil {
		fmt.Fprintf(progress, "could not record the drill as site %s's last drill: %v\n", r.Site, err)
	}
	return r, nil
}

// failBack fails the site back, and asks again while a failback op fails
// at its check with the site still fenced: the site's readiness can flip
// between the plan and the check (a standby's stream restarting), and a
// drill should measure zdt, not that race. The last op goes into the
// phase; the report keeps the earlier ones as a check that says so.
func failBack(ctx context.Context, progress io.Writer, sw switchovers, siteName string, r *drill.Report, phase *drill.Phase) error {
	var retried []string
	defer func() {
		if len(retried) > 0 {
			r.Checks = append(r.Checks, drill.Check{Name: "failback asked again", OK: true, Detail: strings.Join(retried, "; ")})
		}
	}()
	for {
		fb, err := sw.failback(ctx, siteName, progress)
		last := err == nil || fb.Op == nil || fb.Op.Outcome != site.OpFailed
		if !last {
			if fenced, ferr := sw.fenced(ctx, siteName); ferr != nil || !fenced {
				last = true
			}
		}
		if last || ctxsleep.For(ctx, time.Second) != nil {
			if fb.Op != nil {
				phase.Ops = append(phase.Ops, drill.NewOpResult(fb.Op))
			}
			return err
		}
		retried = append(retried, fmt.Sprintf("op %s failed at its check: %s", fb.Op.ID, fb.Op.Error))
		fmt.Fprintf(progress, "failback %s failed at its check, the site still fenced; asking again\n", fb.Op.ID)
	}
}

// causeFault takes the site dark.
func causeFault(l *lab.Lab, siteName, fault string) error {
	switch fault {
	case "freeze":
		_, err := l.HangSite(siteName)
		return err
	case "isolate":
		return l.IsolateSite(siteName)
	}
	return l.KillSite(siteName)
}

// restoreSite undoes the fault.
func restoreSite(ctx context.Context, l *lab.Lab, siteName, fault string) error {
	switch fault {
	case "freeze":
		_, err := l.ThawSite(siteName)
		return err
	case "isolate":
		return l.HealSite(siteName)
	}
	if err := l.StartSite(siteName); err != nil && !errors.Is(err, lab.ErrRunning) {
		return err
	}
	return l.WaitAnswering(ctx, siteName)
}

// waitFailoverOf waits until the failover of the site created at since or
// later has ended, and returns it.
func waitFailoverOf(ctx context.Context, sw switchovers, siteName string, since time.Time) (*site.Op, error) {
	var last *site.Op
	for {
		op, err := sw.failoverOf(ctx, siteName, since)
		if err == nil && op != nil {
			last = op
			if op.Finished() {
				if op.Outcome != site.OpSucceeded {
					return op, fmt.Errorf("failover %s %s: %s", op.ID, op.Outcome, op.Error)
				}
				return op, nil
			}
		}
		if ctxsleep.For(ctx, 100*time.Millisecond) != nil {
			if last != nil {
				return last, fmt.Errorf("failover %s had not ended when the drill's time ran out", last.ID)
			}
			return nil, fmt.Errorf("no failover of site %s began", siteName)
		}
	}
}

// waitServed waits, up to within, until a request the client began after
// since succeeded.
func waitServed(ctx context.Context, probe *drill.Probe, since time.Time, within time.Duration) error {
	return waitClient(ctx, probe, within, "served", func(h []drill.Request) bool {
		return slices.ContainsFunc(h, func(r drill.Request) bool { return r.Err == nil && r.Start.After(since) })
	})
}

// waitSteady waits, up to within, until the client's last n requests all
// succeeded.
func waitSteady(ctx context.Context, probe *drill.Probe, n int, within time.Duration) error {
	return waitClient(ctx, probe, within, fmt.Sprintf("served %d times in a row", n), func(h []drill.Request) bool {
		return len(h) >= n && !slices.ContainsFunc(h[len(h)-n:], func(r drill.Request) bool { return r.Err != nil })
	})
}

// waitClient waits, up to within, until served holds of the client's
// history; otherwise it says the client was not what, with its last error.
func waitClient(ctx context.Context, probe *drill.Probe, within time.Duration, what string, served func([]drill.Request) bool) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		h := probe.History()
		if served(h) {
			return nil
		}
		if ctxsleep.For(ctx, 20*time.Millisecond) != nil {
			last := "no request"
			if n := len(h); n > 0 && h[n-1].Err != nil {
				last = h[n-1].Err.Error()
			}
			return fmt.Errorf("not %s within %s (last: %s)", what, within, last)
		}
	}
}

// writeRepeatSummary prints the p50 and p95 of repeated drills.
func writeRepeatSummary(w io.Writer, reports []*drill.Report) {
	var outages, rtos, detections []time.Duration
	passed := 0
	for _, r := range reports {
		if r.Passed {
			passed++
		}
		if r.Probe != nil {
			outages = append(outages, r.Probe.LongestOutage())
		}
		if len(r.Phases) > 0 && len(r.Phases[0].Ops) > 0 {
			rtos = append(rtos, r.Phases[0].Ops[0].RTO())
			detections = append(detections, r.Detection())
		}
	}
	fmt.Fprintf(w, "%d drills, %d passed\n", len(reports), passed)
	for _, row := range []struct {
		name string
		ds   []time.Duration
	}{
		{"client's longest outage", outages},
		{"failover detected after the fault", detections},
		{"failover RTO (from detection)", rtos},
	} {
		if len(row.ds) == 0 {
			continue
		}
		fmt.Fprintf(w, "  %-34s p50 %s  p95 %s  max %s\n", row.name, percentile(row.ds, 50), percentile(row.ds, 95), slices.Max(row.ds).Round(time.Millisecond))
	}
}

// percentile is the nearest-rank percentile p of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := (p*len(s) + 99) / 100
	return s[max(rank, 1)-1].Round(time.Millisecond)
}
