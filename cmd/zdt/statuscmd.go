package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/replication"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

func newStatusCommand() *cobra.Command {
	var configPath, output string
	var timeout, interval time.Duration
	var watch bool
	cmd := &cobra.Command{
		Use:   "status --config FILE [-o table|json] [-w [--interval D]]",
		Short: "Show the cluster: alarms, sites, the coordinator, services and unfinished ops",
		Long: `Show the cluster's state as etcd holds it: every site with its state (up,
dark, fenced) and the time left on its lease, which site coordinates, where
each service is active and at which epoch, and the ops not finished yet.
It needs a quorum of etcd members, not any particular controller. When
etcd does not answer, it asks every site's controller instead (/healthz)
and shows what each says of itself: its state, its lease and whether it
fails static (etcd has failed for every site, so the sites serve on in
their roles and decide nothing until it returns); the exit status is then
not 0.

When what the sites report contradicts what the cluster wants, an ALARMS
section comes first (and "alarms" in -o json): a guest that runs where it is
not placed, or at two places at once; a replication member that is writable at
a site that does not hold its services, or two writable members in one group.
An alarm that rests on the last report of a dark site is shown too, marked
stale with the time and age of that report: its controller may have crashed or
frozen while the servers it ran go on. Check the site; once you know it is
dark, confirm its fence (zdt fence confirm), which makes the alarm a warning.
The first line after the cluster's says its health: HEALTHY; DEGRADED when
a site is not up, an alarm is raised, a group has no writable primary or
two, a Gold guest does not run, or etcd fails; DOWN when a service is served
nowhere; each with every reason ("health" in -o json).

-w (--watch) shows the status again every --interval (2s) until Ctrl-C,
redrawing the screen on a terminal; with -o json it writes one JSON object
per line, for scripts. A read that fails is shown as it would be once, and
the watch goes on.

Exit status: 0 healthy, 3 degraded, 4 down; 1 when etcd cannot be read (and
the controllers were asked instead), 2 for a usage or config error. With
-w, 0 when stopped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: want table or json", output)
			}
			if watch && interval <= 0 {
				return usageErrorf("--interval %s: want a positive duration (2s)", interval)
			}
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			if !watch {
				return showStatus(cmd.Context(), cmd.OutOrStdout(), cfg, output, timeout)
			}
			out := cmd.OutOrStdout()
			clear := output == "table" && isTerminal(out)
			var werr error
			repeat(cmd.Context(), interval, func() bool {
				var b bytes.Buffer // one write per frame: no half-drawn screen
				if clear {
					b.WriteString("\x1b[H\x1b[2J")
				}
				if output == "table" {
					fmt.Fprintf(&b, "%s, every %s; Ctrl-C stops\n", time.Now().Format(time.TimeOnly), interval)
				}
				format := output
				if format == "json" {
					format = "jsonl"
				}
				err := showStatus(cmd.Context(), &b, cfg, format, timeout)
				if code := exitCode(err); output == "table" && err != nil && code != exitDegraded && code != exitDown && cmd.Context().Err() == nil {
					fmt.Fprintf(&b, "%v\n", err) // the health is in the table already
				}
				if cmd.Context().Err() != nil {
					return false
				}
				if output == "table" && !clear {
					b.WriteString("\n")
				}
				_, werr = out.Write(b.Bytes())
				return werr == nil
			})
			return werr
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "show the status again every --interval until Ctrl-C")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "with -w: how often")
	cmd.Flags().StringVar(&configPath, "config", "", configFlagHelp)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for etcd")
	return cmd
}

// readStatus reads the cluster's status from etcd.
func readStatus(ctx context.Context, cfg *config.Cluster) (site.Status, error) {
	sess, err := openAPISession(cfg)
	if err != nil {
		return site.Status{}, err
	}
	if sess != nil { // a controller reads it, as this would
		var st site.Status
		err := sess.call(ctx, http.MethodGet, "/status", nil, &st)
		return st, err
	}
	client, err := site.NewClient(cfg, nil, zap.NewNop())
	if err != nil {
		return site.Status{}, err
	}
	defer client.Close()
	store := site.NewStore(client, cfg.Name)
	st, err := retryTransient(ctx, func() (site.Status, error) { return store.Status(ctx, cfg) })
	if err != nil {
		return site.Status{}, fmt.Errorf("%w (etcd endpoints %s: is a quorum of sites up?)", err, strings.Join(cfg.Etcd.Endpoints, ", "))
	}
	// etcd answers reads at its quota but refuses every write: then the
	// sites fail static, and only their controllers can say so.
	if len(st.EtcdAlarms) > 0 {
		st.FailStatic = readControllers(ctx, cfg, errors.New("etcd raised an alarm")).failingStatic()
		st.Health = st.Judge()
	}
	return st, nil
}

// showStatus writes the status once, as a table or JSON ("jsonl": one
// compact object on one line), and returns the health as an error
// (healthError). When etcd does not answer, it writes what the controllers
// say instead and returns the etcd error.
func showStatus(ctx context.Context, w io.Writer, cfg *config.Cluster, output string, timeout time.Duration) error {
	write := writeJSON
	if output == "jsonl" {
		write = func(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := readStatus(rctx, cfg)
	if err != nil {
		// etcd does not answer: the controllers still say what they do,
		// fail static above all.
		hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		cs := readControllers(hctx, cfg, err)
		if output != "table" {
			if werr := write(w, cs); werr != nil {
				return werr
			}
		} else if werr := writeControllersTable(w, cs); werr != nil {
			return werr
		}
		return err
	}
	if output != "table" {
		if err := write(w, st); err != nil {
			return err
		}
	} else if err := writeStatusTable(w, st); err != nil {
		return err
	}
	return healthError(st.Health)
}

// repeat calls fn at once and then every interval, until ctx ends or fn
// says to stop.
func repeat(ctx context.Context, interval time.Duration, fn func() bool) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for fn() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// The exit statuses of zdt status for a cluster that is not healthy.
const (
	exitDegraded = 3
	exitDown     = 4
)

// healthError is the exit status of zdt status: nil when the cluster is
// healthy.
func healthError(h site.Health) error {
	switch h.State {
	case site.HealthDown:
		return &exitError{code: exitDown, err: fmt.Errorf("the cluster is down: %s", strings.Join(h.Reasons, "; "))}
	case site.HealthDegraded:
		return &exitError{code: exitDegraded, err: fmt.Errorf("the cluster is degraded: %s", strings.Join(h.Reasons, "; "))}
	}
	return nil
}

// renderStatusTable returns the human status table of the cluster described
// by the config file at configPath, read from etcd.
func renderStatusTable(ctx context.Context, configPath string) (string, error) {
	cfg, err := loadConfig(configPath)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := readStatus(ctx, cfg)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := writeStatusTable(&b, st); err != nil {
		return "", err
	}
	return b.String(), nil
}

// writeStatusTable writes the status for people.
func writeStatusTable(w io.Writer, st site.Status) error {
	coord := st.Coordinator
	if coord == "" {
		coord = "(none)"
	}
	fmt.Fprintf(w, "cluster %s   coordinator %s   revision %d\n", st.Cluster, coord, st.Revision)
	fmt.Fprintf(w, "HEALTH %s", strings.ToUpper(string(st.Health.State)))
	if len(st.Health.Reasons) > 0 {
		fmt.Fprintf(w, ": %s", strings.Join(st.Health.Reasons, "; "))
	}
	fmt.Fprint(w, "\n\n")
	if len(st.Insecure) > 0 {
		fmt.Fprintf(w, "INSECURE (insecure_plaintext: true): no TLS on %s. Anyone on these networks can read and forge the cluster's state; for a test bed only.\n\n", strings.Join(st.Insecure, ", "))
	}
	if len(st.EtcdAlarms) > 0 {
		fmt.Fprintf(w, "ETCD ALARM %s\n", strings.Join(st.EtcdAlarms, ", "))
		if strings.Contains(strings.Join(st.EtcdAlarms, " "), "NOSPACE") {
			fmt.Fprintln(w, "  etcd's database is at its quota and it refuses every write: no fence, move, op step or report can be written until the alarm is cleared (compact, defragment, etcdctl alarm disarm)")
		}
		if len(st.FailStatic) > 0 {
			fmt.Fprintf(w, "FAIL STATIC at %s: they serve on in their current roles and decide nothing until etcd takes writes again\n", strings.Join(st.FailStatic, ", "))
		}
		fmt.Fprintln(w)
	}

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	writeAlarms(tw, st)
	fmt.Fprintln(tw, "SITE\tSTATE\tCONTROLLER\tLEASE\tNOTE")
	for _, s := range st.Sites {
		lease := "-"
		if s.LeaseRemainingMS >= 0 {
			lease = (time.Duration(s.LeaseRemainingMS) * time.Millisecond).String()
		}
		note := ""
		switch {
		case s.Fence != nil:
			note = fmt.Sprintf("fenced by op %s at %s: %s", s.Fence.Op, s.Fence.At.UTC().Format(time.RFC3339), s.Fence.Reason)
			if c := s.Fence.Confirmed; c != nil {
				note += fmt.Sprintf("; confirmed dark by %s at %s", c.By, c.At.UTC().Format(time.RFC3339))
			}
		case !s.Joined:
			note = "never joined"
		case s.Reason != "" && s.Controller != site.ControllerUp:
			note = s.Reason
		}
		if d := s.Drain; d != nil {
			note = strings.TrimSpace(fmt.Sprintf("drained by op %s at %s (zdt undrain --site %s) %s", d.Op, d.At.UTC().Format(time.RFC3339), s.Name, note))
		}
		if s.Coordinator {
			note = strings.TrimSpace("coordinator " + note)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.State, orDash(string(s.Controller)), lease, note)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "SERVICE\tACTIVE\tEPOCH\tSITES\tPREFIXES")
	for _, s := range st.Services {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", s.Name, orDash(s.Active), s.Epoch, strings.Join(s.Sites, ","), strings.Join(s.Prefixes, " "))
	}
	if len(st.Guests) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "GUEST\tSERVICE\tTIER\tZONE\tSTATE\tPLACED ON\tRUNNING ON")
		for _, g := range st.Guests {
			where := "-"
			if g.Host != "" {
				where = g.Host + " (site " + g.Site + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.Name, g.Service, g.Tier, orDash(g.Zone), g.State, where, orDash(strings.Join(g.RunningOn, ",")))
		}
	}
	writeRouting(tw, st)
	writeReplication(tw, st)
	writeDrills(tw, st)
	fmt.Fprintln(tw)
	if len(st.Ops) == 0 {
		fmt.Fprintln(tw, "no unfinished ops")
	} else {
		fmt.Fprintln(tw, "UNFINISHED OP\tKIND\tPARAMS\tSTEP\tCOORDINATORS")
		for _, op := range st.Ops {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", op.ID, op.Kind, orDash(op.Params), orDash(op.Step), strings.Join(op.Coordinators, ","))
		}
	}
	return tw.Flush()
}

// writeDrills writes each site's last drill, when one was recorded.
func writeDrills(tw io.Writer, st site.Status) {
	header := false
	for _, s := range st.Sites {
		if s.LastDrill == nil {
			continue
		}
		if !header {
			fmt.Fprintln(tw)
			fmt.Fprintln(tw, "SITE\tLAST DRILL")
			header = true
		}
		fmt.Fprintf(tw, "%s\t%s\n", s.Name, s.LastDrill)
	}
}

// writeAlarms writes the alarms, the critical ones first, when there are
// any.
func writeAlarms(tw io.Writer, st site.Status) {
	if len(st.Alarms) == 0 {
		return
	}
	fmt.Fprintln(tw, "ALARM\tKIND\tSUBJECT\tSITE\tWHAT")
	for _, a := range st.Alarms {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", strings.ToUpper(string(a.Severity)), a.Kind, a.Subject, orDash(a.Site), a.Message)
	}
	fmt.Fprintln(tw)
}

// writeRouting writes one line per service prefix: what each site
// announces (prepends, "-" for nothing) and where the upstream's best path
// leads, then the sites' BGP sessions.
func writeRouting(tw io.Writer, st site.Status) {
	if len(st.Announcements) == 0 && len(st.Peers) == 0 && len(st.Upstream) == 0 {
		return
	}
	type key struct{ site, prefix string }
	ann := map[key]int{}
	for _, a := range st.Announcements {
		ann[key{a.Site, a.Prefix}] = a.Prepends
	}
	up := map[string]site.UpstreamStatus{}
	for _, u := range st.Upstream {
		up[u.Prefix] = u
	}
	// Without the observer's beat, its records are its last view.
	stale := st.Observer != nil && !st.Observer.Running && len(st.Upstream) > 0
	fmt.Fprintln(tw)
	if stale {
		fmt.Fprintln(tw, "THE ROUTE OBSERVER IS NOT RUNNING (no beat in etcd): UPSTREAM BEST below is its last view, stale")
	}
	head := "PREFIX\tSERVICE\tACTIVE"
	for _, s := range st.Sites {
		head += "\t" + strings.ToUpper(s.Name)
	}
	if len(st.Upstream) > 0 {
		head += "\tUPSTREAM BEST\tAS PATH"
	}
	fmt.Fprintln(tw, head)
	for _, svc := range st.Services {
		for _, p := range svc.Prefixes {
			line := p + "\t" + svc.Name + "\t" + orDash(svc.Active)
			for _, s := range st.Sites {
				if n, ok := ann[key{s.Name, p}]; ok {
					line += "\t" + strconv.Itoa(n)
				} else {
					line += "\t-"
				}
			}
			if len(st.Upstream) > 0 {
				u := up[p]
				best := orDash(u.BestSite)
				if u.BestSite != "" && u.BestSite != svc.Active {
					best += " (not active!)"
				}
				if stale {
					best += " (stale)"
				}
				path := make([]string, len(u.ASPath))
				for i, as := range u.ASPath {
					path[i] = strconv.FormatUint(uint64(as), 10)
				}
				line += "\t" + best + "\t" + orDash(strings.Join(path, " "))
			}
			fmt.Fprintln(tw, line)
		}
	}
	if len(st.Peers) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "BGP PEER\tSITE\tASN\tSTATE")
		for _, p := range st.Peers {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", p.Address, p.Site, p.ASN, p.State)
		}
	}
}

// writeReplication writes one line per replication member.
func writeReplication(tw io.Writer, st site.Status) {
	if len(st.Replication) == 0 {
		return
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "GROUP\tSITE\tROLE\tHEALTHY\tLAG\tSYNC\tNOTE")
	for _, g := range st.Replication {
		for _, m := range g.Members {
			lag := "-"
			if m.Role == "standby" {
				lag = replication.FormatBytes(m.LagBytes)
				if m.LagSeconds > 0 {
					lag += fmt.Sprintf(" / %.1fs", m.LagSeconds)
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%t\t%s\n", g.Group, m.Site, m.Role, m.Healthy, lag, m.Sync, strings.Join(strings.Fields(m.Detail), " "))
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// retryTransient runs read, and again, backing off, while it fails with an
// error that passes by itself (site.Transient: an etcd leader change), until
// ctx ends: a read during an election must not look like a lost quorum.
func retryTransient[T any](ctx context.Context, read func() (T, error)) (T, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 50*time.Millisecond, time.Second
	return backoff.Retry(ctx, func() (T, error) {
		v, err := read()
		if err != nil && !site.Transient(err) {
			return v, backoff.Permanent(err)
		}
		return v, err
	}, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(0))
}
