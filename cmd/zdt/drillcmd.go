package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/failover/drill"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/ctxsleep"
)

func newDrillCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Rehearse leaving a site, measured, with a report",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q for \"zdt drill\": want switchover or site-loss", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.SetFlagErrorFunc(flagUsageError)
	cmd.AddCommand(newDrillSwitchoverCommand(), newDrillSiteLossCommand())
	return cmd
}

// drillFlags are the flags of a drill.
type drillFlags struct {
	configPath, siteName, to, out string
	probe                         string
	probeInterval, probeTimeout   time.Duration
	timeout                       time.Duration
}

func newDrillSwitchoverCommand() *cobra.Command {
	var f drillFlags
	cmd := &cobra.Command{
		Use:   "switchover --site SITE --config FILE [--to SITE] [--probe URL] [--out DIR]",
		Short: "Switch a site's services over and back, measured; write the report",
		Long: `The drill for production: it leaves nothing changed. Every service active at
--site moves to --to by a planned switchover (one op: nothing is lost, the
new primaries are caught up before they are promoted), then each comes back
to --site by a switchover of its own. Meanwhile a client probes the
service (--probe) every --probe-interval and records every failure: the
outage a consumer saw.

--probe tcp://HOST:PORT connects to the service's address. --probe
postgres://... writes a row per request into the table zdt_drill_probe of
the service's database, over a connection opened again after each failure
(give every member's host and target_session_attrs=read-write, as your
clients do); afterwards every write that was acknowledged must be there
(the RPO), and the rows are removed.

The drill then checks that every op succeeded, that every service is back
at --site, that the client's last requests succeeded and that no
acknowledged write was lost, and writes the report into --out (default the
current directory) as drill-SITE-TIME.json, .md and .html (one page, no
network needed, with a timeline). The exit status is 0 when the drill
passed, 1 when it did not (the report says why), 2 for a usage error.

With $ZDT_TOKEN the switchovers go through a controller's API as the
token's identity (operator).`,
		Example: `  zdt drill switchover --site a --config zdt.yaml
  zdt drill switchover --site b --to c --probe 'postgres://drill@db-a,db-b,db-c/app?target_session_attrs=read-write' --out /srv/drills`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.check()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			report, err := runSwitchoverDrill(ctx, cmd.OutOrStdout(), cfg, &f)
			if err != nil {
				return err
			}
			paths, err := writeDrillReport(f.out, report)
			if err != nil {
				return err
			}
			writeDrillSummary(cmd.OutOrStdout(), report, paths)
			if !report.Passed {
				return fmt.Errorf("the drill of site %s failed: %s", report.Site, failedChecks(report))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&f.configPath, "config", "", configFlagHelp)
	cmd.Flags().StringVar(&f.siteName, "site", "", "the site whose services the drill moves away and back (required)")
	cmd.Flags().StringVar(&f.to, "to", "", "where they go (default: the site most of them list next)")
	cmd.Flags().StringVar(&f.probe, "probe", "", "the client: tcp://HOST:PORT or postgres://... (see above)")
	cmd.Flags().DurationVar(&f.probeInterval, "probe-interval", 10*time.Millisecond, "time between two requests of the probe")
	cmd.Flags().DurationVar(&f.probeTimeout, "probe-timeout", 500*time.Millisecond, "how long one request of the probe may take")
	cmd.Flags().StringVar(&f.out, "out", ".", "the directory the reports are written to")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Minute, "how long the whole drill may take")
	_ = cmd.MarkFlagRequired("site")
	return cmd
}

// check checks the flags and loads the config.
func (f *drillFlags) check() (*config.Cluster, error) {
	switch {
	case f.configPath == "":
		return nil, &exitError{code: 2, err: errNoConfig}
	case f.probeInterval <= 0:
		return nil, usageErrorf("--probe-interval %s: want a positive duration (10ms)", f.probeInterval)
	case f.probeTimeout <= 0:
		return nil, usageErrorf("--probe-timeout %s: want a positive duration (500ms)", f.probeTimeout)
	case f.timeout <= 0:
		return nil, usageErrorf("--timeout %s: want a positive duration (10m)", f.timeout)
	}
	if st, err := os.Stat(f.out); err != nil || !st.IsDir() {
		return nil, usageErrorf("--out %q: not a directory", f.out)
	}
	cfg, err := readConfig(f.configPath)
	if err != nil {
		return nil, err
	}
	for flag, name := range map[string]string{"--site": f.siteName, "--to": f.to} {
		if _, ok := cfg.Site(name); name != "" && !ok {
			return nil, usageErrorf("%s %q: unknown site (sites are %s)", flag, name, strings.Join(cfg.SiteNames(), ", "))
		}
	}
	if f.to == f.siteName {
		return nil, usageErrorf("--to %s: the drill moves the services away from --site %s; give another site", f.to, f.siteName)
	}
	return cfg, nil
}

// runSwitchoverDrill runs the drill and returns its report; an error is
// one that leaves no report to write (the cluster could not be read, the
// site serves nothing).
func runSwitchoverDrill(ctx context.Context, progress io.Writer, cfg *config.Cluster, f *drillFlags) (*drill.Report, error) {
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
	for _, svc := range cfg.Services {
		if before[svc.Name] == f.siteName {
			services = append(services, svc.Name)
		}
	}
	if len(services) == 0 {
		return nil, usageErrorf("site %s serves no service now: there is nothing to switch over (zdt status shows where they are)", f.siteName)
	}
	to := f.to
	if to == "" {
		if to, err = eligibleNextSite(ctx, cfg, sw, services, f.siteName); err != nil {
			return nil, err
		}
	}
	if to == "" {
		return nil, usageErrorf("the services of site %s list no other site: give --to", f.siteName)
	}
	if err := lastingRefusal(ctx, cfg, sw, services, to); err != nil {
		return nil, err
	}
	started := time.Now()
	r := &drill.Report{Kind: "switchover", Site: f.siteName, Cluster: cfg.Name, Who: operatorName(), Started: started}
	id := fmt.Sprintf("drill-%s-%s", f.siteName, started.UTC().Format("20060102T150405Z"))

	var probe *drill.Probe
	probeDone := make(chan struct{})
	pctx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	if f.probe != "" {
		if probe, err = drill.NewProbe(ctx, f.probe, id, f.probeInterval, f.probeTimeout); err != nil {
			return nil, usageErrorf("%w", err)
		}
		defer probe.Close()
		go func() { probe.Run(pctx); close(probeDone) }()
	} else {
		close(probeDone)
	}

	fmt.Fprintf(progress, "drill %s: switching %s over from site %s to site %s\n", id, strings.Join(services, ", "), f.siteName, to)
	away, err := sw.ask(ctx, failover.SwitchoverRequest{Site: f.siteName, To: to}, progress)
	r.Phases = append(r.Phases, drill.Phase{Name: "away"})
	if away.Op != nil {
		r.Phases[0].Ops = append(r.Phases[0].Ops, targetRTO(cfg, drill.NewOpResult(away.Op)))
		r.Who = away.Op.Who
	}
	if err != nil {
		r.Checks = append(r.Checks, drill.Check{Name: "switched away", OK: false, Detail: err.Error()})
	} else {
		fmt.Fprintf(progress, "drill %s: switching them back to site %s\n", id, f.siteName)
		r.Phases = append(r.Phases, drill.Phase{Name: "back"})
		for _, svc := range services {
			now, err := sw.assigned(ctx)
			if err != nil {
				r.Checks = append(r.Checks, drill.Check{Name: "switched back", OK: false, Detail: err.Error()})
				break
			}
			if now[svc] == f.siteName {
				continue // it came back with its group
			}
			back, err := sw.ask(ctx, failover.SwitchoverRequest{Service: svc, To: f.siteName}, progress)
			if back.Op != nil {
				r.Phases[1].Ops = append(r.Phases[1].Ops, targetRTO(cfg, drill.NewOpResult(back.Op)))
			}
			if err != nil {
				r.Checks = append(r.Checks, drill.Check{Name: "switched " + svc + " back", OK: false, Detail: err.Error()})
			}
		}
	}

	if probe != nil {
		// A last look: the client is served again.
		_ = ctxsleep.For(ctx, max(10*f.probeInterval, 200*time.Millisecond))
	}
	stopProbe()
	<-probeDone
	r.Checks = append(r.Checks, checkBack(ctx, sw, services, f.siteName)...)
	if probe != nil {
		res, err := probe.Result(ctx)
		r.Probe = res
		r.Checks = append(r.Checks, probeChecks(res, err)...)
	}
	r.CheckRTO()
	r.Finish(time.Now())
	if err := sw.recordDrill(ctx, r.Record()); err != nil {
		// The report is still written; zdt status just does not show it.
		fmt.Fprintf(progress, "drill %s: could not record it as site %s's last drill: %v\n", id, f.siteName, err)
	}
	return r, nil
}

// eligibleNextSite is nextSite among the sites that are neither fenced nor
// drained now; when none is, nextSite among all, which lastingRefusal
// then refuses with why.
func eligibleNextSite(ctx context.Context, cfg *config.Cluster, sw switchovers, services []string, from string) (string, error) {
	st, err := sw.standing(ctx)
	if err != nil {
		return "", err
	}
	skip := map[string]bool{}
	for _, s := range cfg.SiteNames() {
		skip[s] = st.fenced[s] || st.drained[s]
	}
	return cmp.Or(nextSite(cfg, services, from, skip), nextSite(cfg, services, from, nil)), nil
}

// lastingRefusal says why moving the services to site to would be refused
// until someone acts, not just for now: the drill waits while a
// switchover is refused for now (another op runs, a standby catches up),
// and would wait its whole --timeout on these.
func lastingRefusal(ctx context.Context, cfg *config.Cluster, sw switchovers, services []string, to string) error {
	for _, name := range services {
		if svc, ok := cfg.Service(name); ok && !slices.Contains(svc.Sites, to) {
			return usageErrorf("service %s may not run at site %s (its sites: %s): give --to one of them", name, to, strings.Join(svc.Sites, ", "))
		}
	}
	st, err := sw.standing(ctx)
	switch {
	case err != nil:
		return err
	case st.fenced[to]:
		return fmt.Errorf("site %s is fenced: no switchover moves services to it until it is failed back (zdt failback --site %s); give --to another site", to, to)
	case st.drained[to]:
		return fmt.Errorf("site %s is drained for maintenance: undrain it first (zdt undrain --site %s), or give --to another site", to, to)
	}
	return nil
}

// nextSite is the site, other than from and those in skip, that most of
// the services list first after it in their orders (ties: the config's
// order).
func nextSite(cfg *config.Cluster, services []string, from string, skip map[string]bool) string {
	votes := map[string]int{}
	for _, name := range services {
		svc, _ := cfg.Service(name)
		for _, s := range svc.Sites {
			if s != from && !skip[s] {
				votes[s]++
				break
			}
		}
	}
	best := ""
	for _, s := range cfg.SiteNames() {
		if votes[s] > votes[best] {
			best = s
		}
	}
	return best
}

// targetRTO adds the op's services' RTO target: the shortest.
func targetRTO(cfg *config.Cluster, op drill.OpResult) drill.OpResult {
	for _, tl := range op.Services {
		if svc, ok := cfg.Service(tl.Service); ok && svc.RTO > 0 {
			s := svc.RTO.Seconds()
			if op.TargetRTOSeconds == 0 || s < op.TargetRTOSeconds {
				op.TargetRTOSeconds = s
			}
		}
	}
	return op
}

// checkBack checks that every service of the drill is at its site again.
func checkBack(ctx context.Context, sw switchovers, services []string, siteName string) []drill.Check {
	now, err := sw.assigned(ctx)
	if err != nil {
		return []drill.Check{{Name: "services back", OK: false, Detail: "cannot read where they are: " + err.Error()}}
	}
	var away []string
	for _, svc := range services {
		if now[svc] != siteName {
			away = append(away, fmt.Sprintf("%s at %s", svc, cmp.Or(now[svc], "no site")))
		}
	}
	if len(away) > 0 {
		return []drill.Check{{Name: "services back", OK: false, Detail: strings.Join(away, ", ")}}
	}
	return []drill.Check{{Name: "services back", OK: true, Detail: fmt.Sprintf("%s at %s again", strings.Join(services, ", "), siteName)}}
}

// probeChecks are the checks of what the client saw.
func probeChecks(res *drill.ProbeResult, verifyErr error) []drill.Check {
	var checks []drill.Check
	served := drill.Check{Name: "client served at the end", OK: true, Detail: fmt.Sprintf("%d requests, %d failed", res.Sent, res.Failed)}
	if n := len(res.Outages); n > 0 && res.Outages[n-1].End.Equal(res.Ended) {
		served.OK, served.Detail = false, "the client's last requests failed: "+res.Outages[n-1].LastError
	}
	if res.Sent == 0 {
		served.OK, served.Detail = false, "the probe sent no request"
	}
	checks = append(checks, served)
	if res.Writes {
		lost := drill.Check{Name: "no acknowledged write lost", OK: res.Missing == 0 && verifyErr == nil,
			Detail: fmt.Sprintf("%d acknowledged, %d missing", res.Acknowledged, res.Missing)}
		if verifyErr != nil {
			lost.Detail = verifyErr.Error()
		}
		checks = append(checks, lost)
	}
	return checks
}

func failedChecks(r *drill.Report) string {
	var bad []string
	for _, c := range r.Failed() {
		bad = append(bad, c.Name+": "+c.Detail)
	}
	for _, op := range r.Ops() {
		if op.Outcome != "succeeded" {
			bad = append(bad, fmt.Sprintf("op %s %s", op.ID, op.Outcome))
		}
	}
	return strings.Join(bad, "; ")
}

// writeDrillReport writes the report as JSON, Markdown and HTML into dir,
// and returns their paths.
func writeDrillReport(dir string, r *drill.Report) ([]string, error) {
	page, err := r.HTML()
	if err != nil {
		return nil, err
	}
	var js strings.Builder
	if err := writeJSON(&js, r); err != nil {
		return nil, err
	}
	base := filepath.Join(dir, fmt.Sprintf("drill-%s-%s", r.Site, r.Started.UTC().Format("20060102T150405Z")))
	files := map[string][]byte{".json": []byte(js.String()), ".md": []byte(r.Markdown()), ".html": page}
	var paths []string
	for _, ext := range []string{".json", ".md", ".html"} {
		if err := os.WriteFile(base+ext, files[ext], 0o644); err != nil {
			return paths, fmt.Errorf("write the drill's report: %w", err)
		}
		paths = append(paths, base+ext)
	}
	return paths, nil
}

// writeDrillSummary says how the drill went, for people.
func writeDrillSummary(w io.Writer, r *drill.Report, paths []string) {
	verdict := "PASSED"
	if !r.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "drill: %s of site %s %s in %s\n", r.Kind, r.Site, verdict, r.Ended.Sub(r.Started).Round(10*time.Millisecond))
	if f := r.Fault; f != nil {
		fmt.Fprintf(w, "  fault %s at %s; failover began %s later\n", f.Kind, f.At.Format("15:04:05.000"), r.Detection().Round(time.Millisecond))
	}
	for _, p := range r.Phases {
		for _, op := range p.Ops {
			fmt.Fprintf(w, "  %-5s op %s %s, RTO %s\n", p.Name, op.ID, op.Outcome, op.RTO().Round(10*time.Millisecond))
		}
	}
	if pr := r.Probe; pr != nil {
		fmt.Fprintf(w, "  client: %d requests, %d failed, longest outage %s", pr.Sent, pr.Failed, pr.LongestOutage().Round(time.Millisecond))
		if pr.Writes {
			fmt.Fprintf(w, ", %d writes acknowledged, %d missing", pr.Acknowledged, pr.Missing)
		}
		fmt.Fprintln(w)
	}
	for _, c := range r.Checks {
		mark := "ok    "
		if !c.OK {
			mark = "FAILED"
		}
		fmt.Fprintf(w, "  %s %s: %s\n", mark, c.Name, c.Detail)
	}
	slices.Sort(paths)
	fmt.Fprintf(w, "report: %s\n", strings.Join(paths, ", "))
}
