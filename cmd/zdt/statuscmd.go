package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/cmd/zdt/internal/statustable"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

func newStatusCommand() *cobra.Command {
	var configPath, output string
	var timeout, interval time.Duration
	var watch bool
	var flags statusFlags
	cmd := &cobra.Command{
		Use:   "status --config FILE [-o table|json] [-w [--interval D]] [--service S] [--site S] [--problems] [--all]",
		Short: "Show the cluster: alarms, sites, the coordinator, services and unfinished ops",
		Long: `Show the cluster's state as etcd holds it: every site with its state (up,
dark, fenced) and the time left on its lease, which site coordinates, where
each service is active and at which epoch, and the ops not finished yet.
It needs a quorum of etcd members, not any particular controller. When
etcd does not answer, it asks every site's controller instead (/healthz)
and shows what each says of itself: its state, its lease and whether it
fails static (etcd has failed for every site, so the sites serve on in
their roles and decide nothing until it returns); the exit status is then
not 0, and the filters below do not apply.

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
nowhere; each with every reason ("health" in -o json): more than five
services, groups or Gold guests with the same reason make one reason, with
the count and a few names.

A large cluster is summarised. A section of more than 20 lines (services,
prefixes, guests, replication members, BGP sessions) shows counts instead of
one line per item: services by active site and by problem (not assigned,
stranded at a site that is not up, moving), prefixes by site and by state,
guests by state and site with the Gold guests that do not run by name,
replication members by role and site and groups by problem, each problem with
a few examples. The health line, the alarms, the sites, the coordinator and
the unfinished ops are always shown in full, and so are the alarms unless
there are more than 20: then one line per kind of alarm and site, with the
count, a few of its subjects and one alarm's message (a site lost at scale
leaves thousands of stale guest-runs-twice alarms until its fence is
confirmed). --all (or --full) lists every item.

The filters list what they keep in full, never summarised:
  --service NAME  the service, its prefixes, guests and replication groups,
                  and the ops that move it
  --site NAME     the site; the services active there and their prefixes;
                  the guests placed there; each replication group's member
                  there; its BGP sessions; the ops that name it
  --problems      only what is wrong: sites not up, services not assigned,
                  stranded or moving, prefixes not announced as expected,
                  guests not running that should, groups without one healthy
                  writable primary, BGP sessions not established; and every
                  unfinished op, which says what is moving
--service and --site may be given more than once or as a comma-separated
list. An item is shown when it passes every flag given: --site c --problems
shows the problems at site c. The health line and the alarms stay the whole
cluster's: a filter hides no alarm and does not change the exit status (more
than 20 alarms are summarised with a filter too; --all lists them).
-o json is the whole structure, as scripts know it, cut by the same filters
(the health and the alarms whole); --all changes nothing there.

-w (--watch) shows the status again every --interval (2s) until Ctrl-C,
redrawing the screen on a terminal; with -o json it writes one JSON object
per line, for scripts. A read that fails is shown as it would be once, and
the watch goes on. The filters and --all apply to every frame.

Exit status: 0 healthy, 3 degraded, 4 down, judged on the whole cluster
whatever the filters; 1 when etcd cannot be read (and the controllers were
asked instead); 2 for a usage or config error, an unknown --service or
--site among them. With -w, 0 when stopped.`,
		Example: `  zdt status --config zdt.yaml
  zdt status --config zdt.yaml --problems
  zdt status --config zdt.yaml --site c --problems
  zdt status --config zdt.yaml --service db,web -w
  zdt status --config zdt.yaml -o json --problems`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return usageErrorf("-o %q: want table or json", output)
			}
			if watch && interval <= 0 {
				return usageErrorf("--interval %s: want a positive duration (2s)", interval)
			}
			cfg, err := readConfig(configPath)
			if err != nil {
				return err
			}
			view, err := flags.view(cfg)
			if err != nil {
				return err
			}
			if !watch {
				return showStatus(cmd.Context(), cmd.OutOrStdout(), cfg, output, timeout, view)
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
				err := showStatus(cmd.Context(), &b, cfg, format, timeout, view)
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
	flags.add(cmd)
	return cmd
}

// statusFlags are zdt status's filters and --all.
type statusFlags struct {
	services, sites []string
	problems, all   bool
}

func (f *statusFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringSliceVar(&f.services, "service", nil, "only this service, its prefixes, guests, groups and ops (repeat, or a comma-separated list)")
	cmd.Flags().StringSliceVar(&f.sites, "site", nil, "only this site and what is active or placed there (repeat, or a comma-separated list)")
	cmd.Flags().BoolVar(&f.problems, "problems", false, "only what is wrong: sites, services, prefixes, guests, groups and sessions with a problem")
	cmd.Flags().BoolVar(&f.all, "all", false, "list every item, summarising no section")
	cmd.Flags().BoolVar(&f.all, "full", false, "the same as --all")
}

// view checks the names against the config and returns what to show: a
// usage error names a service or site the cluster does not have.
func (f *statusFlags) view(cfg *config.Cluster) (statustable.View, error) {
	filter, err := statustable.NewFilter(cfg, f.services, f.sites, f.problems)
	if err != nil {
		return statustable.View{}, usageErrorf("%w", err)
	}
	return statustable.View{Filter: filter, All: f.all}, nil
}

// readStatus reads the cluster's status from etcd, or from a controller
// when the API has a token.
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
	return readStatusFromEtcd(ctx, cfg)
}

// readStatusFromEtcd reads the cluster's status from etcd itself.
func readStatusFromEtcd(ctx context.Context, cfg *config.Cluster) (site.Status, error) {
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

// statusAnswer is a controller's answer to GET /status?format=table: the
// whole cluster's health and the table. A controller of an older zdt
// answers the whole status instead, which fills Status and leaves Table
// empty.
type statusAnswer struct {
	site.Status
	Table string `json:"table"`
}

// readStatusTable reads the table zdt status shows as view says: made by a
// controller when the API has a token (at scale, the table is a few KB and
// the whole status megabytes), else from the status read from etcd. It
// returns the whole cluster's health with it.
func readStatusTable(ctx context.Context, cfg *config.Cluster, view statustable.View) (string, site.Health, error) {
	sess, err := openAPISession(cfg)
	if err != nil {
		return "", site.Health{}, err
	}
	var st site.Status
	if sess != nil {
		var answer statusAnswer
		q := view.Query()
		q.Set("format", "table")
		if err := sess.call(ctx, http.MethodGet, "/status?"+q.Encode(), nil, &answer); err != nil {
			return "", site.Health{}, err
		}
		if answer.Table != "" {
			return answer.Table, answer.Health, nil
		}
		st = answer.Status
	} else if st, err = readStatusFromEtcd(ctx, cfg); err != nil {
		return "", site.Health{}, err
	}
	var b strings.Builder
	if err := statustable.Write(&b, st, view); err != nil {
		return "", site.Health{}, err
	}
	return b.String(), st.Health, nil
}

// showStatus writes the status once, as a table or JSON ("jsonl": one
// compact object on one line), as view says, and returns the
// whole cluster's health as an error (healthError). When etcd does not
// answer, it writes what the controllers say instead and returns the etcd
// error.
func showStatus(ctx context.Context, w io.Writer, cfg *config.Cluster, output string, timeout time.Duration, view statustable.View) error {
	write := writeJSON
	if output == "jsonl" {
		write = func(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var st site.Status
	var table string
	var err error
	if output == "table" {
		table, st.Health, err = readStatusTable(rctx, cfg, view)
	} else {
		st, err = readStatus(rctx, cfg)
	}
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
		if err := write(w, view.Filter.Cut(st)); err != nil {
			return err
		}
	} else if _, err := io.WriteString(w, table); err != nil {
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
	cfg, err := readConfig(configPath)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	table, _, err := readStatusTable(ctx, cfg, statustable.View{})
	return table, err
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

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
