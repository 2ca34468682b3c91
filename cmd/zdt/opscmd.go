package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/cmd/zdt/internal/api"
	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// readFlags are the flags of the commands that read the cluster's state:
// zdt ops and zdt events.
type readFlags struct {
	config  string
	output  string
	timeout time.Duration
	// formats are the -o values the command takes: table and json when
	// nil.
	formats []string
}

func (f *readFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.config, "config", "", configFlagHelp)
	cmd.Flags().StringVarP(&f.output, "output", "o", "table", "output format: "+f.formatList())
	cmd.Flags().DurationVar(&f.timeout, "timeout", 5*time.Second, "how long to wait for etcd")
}

// check is a usage error for a bad value of one of the flags.
func (f *readFlags) check() error {
	switch {
	case !slices.Contains(f.outputFormats(), f.output):
		return usageErrorf("-o %q: want %s", f.output, f.formatList())
	case f.config == "":
		return &exitError{code: 2, err: errNoConfig}
	case f.timeout <= 0:
		return usageErrorf("--timeout %s: want a positive duration (5s)", f.timeout)
	}
	return nil
}

// outputFormats are the -o values the command takes.
func (f *readFlags) outputFormats() []string {
	if f.formats == nil {
		return []string{"table", "json"}
	}
	return f.formats
}

// formatList is "table or json", "table, json or markdown".
func (f *readFlags) formatList() string {
	formats := f.outputFormats()
	if len(formats) == 1 {
		return formats[0]
	}
	return strings.Join(formats[:len(formats)-1], ", ") + " or " + formats[len(formats)-1]
}

// session is the API session of the token in the environment, nil without
// one: then the command reads and writes etcd itself.
func (f *readFlags) session() (*apiSession, error) {
	cfg, err := readConfig(f.config)
	if err != nil {
		return nil, err
	}
	return openAPISession(cfg)
}

// open loads the cluster config and connects to its etcd; the caller closes
// the store's client.
func (f *readFlags) open() (*config.Cluster, *site.Store, error) {
	cfg, err := readConfig(f.config)
	if err != nil {
		return nil, nil, err
	}
	client, err := site.NewClient(cfg, nil, zap.NewNop())
	if err != nil {
		return nil, nil, err
	}
	return cfg, site.NewStore(client, cfg.Name), nil
}

// etcdError says where etcd was looked for, and what to check.
func etcdError(cfg *config.Cluster, err error) error {
	return fmt.Errorf("%w (etcd endpoints %s: is a quorum of sites up?)", err, strings.Join(cfg.Etcd.Endpoints, ", "))
}

// flagUsageError makes a flag that cannot be parsed a usage error.
func flagUsageError(cmd *cobra.Command, err error) error {
	return usageErrorf("%w (zdt %s --help says more)", err, strings.TrimPrefix(cmd.CommandPath(), "zdt "))
}

// noArgs is cobra.NoArgs as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

// oneOpID takes exactly one argument, an op ID.
func oneOpID(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageErrorf("%s takes one op ID (zdt ops list shows them), got %d arguments", cmd.CommandPath(), len(args))
	}
	return nil
}

func newOpsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ops",
		Short: "List, show, watch and abort the journaled ops",
		Long: `Every failover, bootstrap, placement, failback... is an op: journaled steps
that the elected coordinator runs and records, with their outcome. These
commands read the journal and ask the coordinator to abort a running op.

An op ID may be shortened to any prefix that only one op has.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q for \"zdt ops\": want list, show, watch or abort", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.SetFlagErrorFunc(flagUsageError)
	cmd.AddCommand(newOpsListCommand(), newOpsShowCommand(), newOpsWatchCommand(), newOpsAbortCommand())
	return cmd
}

func newOpsListCommand() *cobra.Command {
	var f readFlags
	var all bool
	var kind string
	var limit int
	cmd := &cobra.Command{
		Use:   "list --config FILE [--all] [--kind KIND] [--limit N] [-o table|json]",
		Short: "List the journal's ops, newest first",
		Long: `List the journal's ops, newest first: when each started, how long it took
(so far, for a running op), its outcome and, for a running op, the step it is
at; for a failed or aborted one, why.

Running ops are always listed; of the finished ones, the newest --limit (20),
or every one with --all. --kind keeps the ops of one kind (failover,
bootstrap, placement, failback...).`,
		Example: `  zdt ops list --config zdt.yaml
  zdt ops list --config zdt.yaml --kind failover --all -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			if all && cmd.Flags().Changed("limit") {
				return usageErrorf("--all and --limit: give one of them")
			}
			if all {
				limit = 0
			} else if limit < 1 {
				return usageErrorf("--limit %d: want 1 or more (--all lists the whole journal)", limit)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			list, err := f.listOps(ctx, kind, limit)
			if err != nil {
				return err
			}
			if f.output == "json" {
				return writeJSON(cmd.OutOrStdout(), list.Ops)
			}
			return writeOpList(cmd.OutOrStdout(), list, kind)
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "list the whole journal")
	cmd.Flags().StringVar(&kind, "kind", "", "list only the ops of this kind")
	cmd.Flags().IntVar(&limit, "limit", 20, "list this many finished ops at most (running ones are always listed)")
	return cmd
}

// listOps reads the journal as `zdt ops list` shows it: through the API
// with a token, from etcd otherwise.
func (f *readFlags) listOps(ctx context.Context, kind string, limit int) (api.OpList, error) {
	sess, err := f.session()
	if err != nil {
		return api.OpList{}, err
	}
	if sess != nil {
		var list api.OpList
		q := url.Values{"limit": {strconv.Itoa(limit)}}
		if kind != "" {
			q.Set("kind", kind)
		}
		return list, sess.call(ctx, http.MethodGet, "/ops?"+q.Encode(), nil, &list)
	}
	cfg, store, err := f.open()
	if err != nil {
		return api.OpList{}, err
	}
	defer store.Client().Close()
	journal, err := retryTransient(ctx, func() ([]*site.Op, error) { return store.Ops(ctx) })
	if err != nil {
		return api.OpList{}, etcdError(cfg, err)
	}
	shown, left := site.ListOps(journal, kind, limit)
	list := api.OpList{Ops: make([]site.OpSummary, len(shown)), Left: left}
	now := time.Now()
	for i, op := range shown {
		list.Ops[i] = site.Summarize(op, now)
	}
	return list, nil
}

// writeOpList writes the ops as a table, for people.
func writeOpList(w io.Writer, list api.OpList, kind string) error {
	if len(list.Ops) == 0 {
		switch {
		case kind != "":
			fmt.Fprintf(w, "no op of kind %s in the journal\n", kind)
		default:
			fmt.Fprintln(w, "the journal has no ops")
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tWHO\tSTARTED\tDURATION\tOUTCOME\tSUMMARY")
	for _, s := range list.Ops {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Kind, orDash(s.Who), s.Created.UTC().Format(time.RFC3339),
			formatDuration(time.Duration(s.DurationSeconds*float64(time.Second))), s.Outcome, orDash(truncate(oneLine(s.Summary), 120)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if list.Left > 0 {
		fmt.Fprintf(w, "%d older finished ops not listed (--limit N or --all lists more)\n", list.Left)
	}
	return nil
}

func newOpsShowCommand() *cobra.Command {
	f := readFlags{formats: []string{"table", "json", "markdown"}}
	cmd := &cobra.Command{
		Use:   "show ID --config FILE [-o table|json|markdown]",
		Short: "Show one op in full, with a timeline per service",
		Long: `Show one op of the journal in full: its kind, who asked for it, its
parameters and the coordinators that worked on it; every step with its start,
end, duration, status and detail, and what it did to each resource it
touched; and, for each service the op moves, a timeline of its milestones
(for a failover: detected, or declared by an operator; fenced; fenced itself;
fenced from outside; assigned; guests placed) with the RTO so far: from the
op's creation to the last milestone reached.

-o markdown writes the same as Markdown tables, for a change ticket.

An unknown ID is refused with the closest IDs (exit status 2).`,
		Example: `  zdt ops show 20261202T031300.000Z-failover-3fa2c1 --config zdt.yaml
  zdt ops show 20261202T0313 --config zdt.yaml -o json
  zdt ops show 20261202T0313 --config zdt.yaml -o markdown > CHG-1234.md`,
		Args:              oneOpID,
		ValidArgsFunction: completeOpID,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			op, err := f.readOp(ctx, args[0])
			if err != nil {
				return err
			}
			switch f.output {
			case "json":
				return writeJSON(cmd.OutOrStdout(), newOpView(op))
			case "markdown":
				return writeOpMarkdown(cmd.OutOrStdout(), op, time.Now())
			}
			return writeOp(cmd.OutOrStdout(), op, time.Now())
		},
	}
	f.add(cmd)
	return cmd
}

// readOp reads the op whose ID, or unique prefix of it, is arg: through
// the API with a token, from etcd otherwise.
func (f *readFlags) readOp(ctx context.Context, arg string) (*site.Op, error) {
	sess, err := f.session()
	if err != nil {
		return nil, err
	}
	if sess != nil {
		return sess.op(ctx, arg)
	}
	cfg, store, err := f.open()
	if err != nil {
		return nil, err
	}
	defer store.Client().Close()
	return readOp(ctx, cfg, store, arg)
}

// readOp reads the op whose ID, or unique prefix of it, is arg.
func readOp(ctx context.Context, cfg *config.Cluster, store *site.Store, arg string) (*site.Op, error) {
	ids, err := retryTransient(ctx, func() ([]string, error) { return store.OpIDs(ctx) })
	if err != nil {
		return nil, etcdError(cfg, err)
	}
	id, err := resolveOpID(ids, arg)
	if err != nil {
		return nil, err
	}
	op, err := retryTransient(ctx, func() (*site.Op, error) { return store.Op(ctx, id) })
	switch {
	case errors.Is(err, site.ErrNotFound):
		return nil, usageErrorf("op %s was removed from the journal just now", id)
	case err != nil:
		return nil, etcdError(cfg, err)
	}
	return op, nil
}

// resolveOpID returns the ID of ids (oldest first) that arg names
// (site.ResolveOpID); a usage error otherwise.
func resolveOpID(ids []string, arg string) (string, error) {
	if arg == "" {
		return "", usageErrorf("an empty op ID: give an op ID (zdt ops list shows them)")
	}
	id, err := site.ResolveOpID(ids, arg)
	var idErr *site.OpIDError
	switch {
	case errors.As(err, &idErr) && len(idErr.Closest) > 0:
		return "", usageErrorf("%w (zdt ops list --all lists them all)", err)
	case err != nil:
		return "", usageErrorf("%w", err)
	}
	return id, nil
}

// opView is an op as `zdt ops show -o json` gives it.
type opView struct {
	Op *site.Op `json:"op"`
	// Revision is the etcd revision the op was last written at.
	Revision int64                      `json:"revision"`
	Timeline []failover.ServiceTimeline `json:"timeline"`
}

func newOpView(op *site.Op) opView {
	return opView{Op: op, Revision: op.Rev, Timeline: failover.Timeline(op)}
}

// writeOp writes an op in full, for people.
func writeOp(w io.Writer, op *site.Op, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "op\t%s\n", op.ID)
	fmt.Fprintf(tw, "kind\t%s\n", op.Kind)
	if len(op.Params) > 0 {
		fmt.Fprintf(tw, "params\t%s\n", site.ParamString(op.Params))
	}
	fmt.Fprintf(tw, "who\t%s\n", orDash(op.Who))
	outcome := string(op.Outcome)
	if op.Error != "" {
		outcome += ": " + oneLine(op.Error)
	}
	fmt.Fprintf(tw, "outcome\t%s\n", outcome)
	fmt.Fprintf(tw, "created\t%s\n", op.Created.UTC().Format(timeMillis))
	if op.Finished() {
		fmt.Fprintf(tw, "ended\t%s (took %s)\n", stamp(op.Ended), formatDuration(site.OpDuration(op, now)))
	} else {
		fmt.Fprintf(tw, "running for\t%s\n", formatDuration(site.OpDuration(op, now)))
	}
	fmt.Fprintf(tw, "coordinators\t%s\n", orDash(strings.Join(op.Coordinators, ", ")))
	if r := op.AbortRequested; r != nil {
		abort := fmt.Sprintf("requested by %s at %s", r.By, stamp(r.At))
		if r.Reason != "" {
			abort += ": " + oneLine(r.Reason)
		}
		fmt.Fprintf(tw, "abort\t%s\n", abort)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(op.Steps) > 0 {
		fmt.Fprintln(w)
		if err := writeSteps(w, op, now); err != nil {
			return err
		}
	}
	for _, tl := range failover.Timeline(op) {
		fmt.Fprintln(w)
		if err := writeTimeline(w, op, tl); err != nil {
			return err
		}
	}
	return nil
}

// writeSteps writes a table of the op's steps, each step's detail and
// resources indented under it.
func writeSteps(w io.Writer, op *site.Op, now time.Time) error {
	var rows strings.Builder
	tw := tabwriter.NewWriter(&rows, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tSTEP\tSTATUS\tBY\tSTARTED\tENDED\tTOOK")
	for i, st := range op.Steps {
		took := "-"
		switch {
		case st.Started.IsZero():
		case st.Status == site.StepRunning:
			took = formatDuration(now.Sub(st.Started)) + " so far"
		case !st.Ended.IsZero():
			took = formatDuration(st.Ended.Sub(st.Started))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, mdStepName(st), st.Status, orDash(st.By),
			clock(st.Started, op.Created), clock(st.Ended, op.Created), took)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSuffix(rows.String(), "\n"), "\n")
	indent := strings.Repeat(" ", strings.Index(lines[0], "STEP"))
	fmt.Fprintln(w, lines[0])
	for i, st := range op.Steps {
		fmt.Fprintln(w, lines[i+1])
		if st.Detail != "" {
			fmt.Fprintln(w, indent+oneLine(st.Detail))
		}
		if len(st.Resources) == 0 {
			continue
		}
		var res strings.Builder
		rw := tabwriter.NewWriter(&res, 0, 4, 2, ' ', 0)
		fmt.Fprintln(rw, "RESOURCE\tOUTCOME\tDETAIL")
		for _, r := range st.Resources {
			fmt.Fprintf(rw, "%s\t%s\t%s\n", r.Resource, r.Outcome, oneLine(r.Detail))
		}
		if err := rw.Flush(); err != nil {
			return err
		}
		for line := range strings.Lines(res.String()) {
			fmt.Fprint(w, indent+"  "+line)
		}
	}
	return nil
}

// writeTimeline writes one service's timeline.
func writeTimeline(w io.Writer, op *site.Op, tl failover.ServiceTimeline) error {
	rto := formatDuration(time.Duration(tl.RTOSeconds * float64(time.Second)))
	switch {
	case tl.Complete:
		fmt.Fprintf(w, "TIMELINE of service %s: RTO %s\n", tl.Service, rto)
	case op.Finished():
		fmt.Fprintf(w, "TIMELINE of service %s: RTO so far %s; the op %s before the last milestone\n", tl.Service, rto, op.Outcome)
	default:
		fmt.Fprintf(w, "TIMELINE of service %s: RTO so far %s\n", tl.Service, rto)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  MILESTONE\tAT\tAFTER\tSTATUS")
	for _, m := range tl.Milestones {
		after, status := milestoneCells(m)
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", m.Name, clock(m.At, op.Created), after, status)
	}
	return tw.Flush()
}

func newOpsWatchCommand() *cobra.Command {
	var f readFlags
	cmd := &cobra.Command{
		Use:   "watch ID --config FILE [-o table|json]",
		Short: "Follow an op until it ends; the exit status says how it ended",
		Long: `Print an op as zdt ops show does, then again each time it changes, until it
has an outcome. With -o json, each version is one JSON object on a line.

The watch needs a quorum of etcd members. When it breaks (no leader, a lost
connection), zdt says so on stderr, reads the op again and watches on.

Exit status:
  0  the op succeeded
  1  the op failed or was aborted
  2  a usage error, or no such op
  3  zdt could not see the op end: interrupted, or etcd could not be read`,
		Example:           `  zdt ops watch 20261202T031300.000Z-failover-3fa2c1 --config zdt.yaml && echo done`,
		Args:              oneOpID,
		ValidArgsFunction: completeOpID,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			op, err := f.readOp(ctx, args[0])
			cancel()
			if err != nil {
				var ee *exitError
				if errors.As(err, &ee) {
					return err
				}
				return &exitError{code: 3, err: err}
			}
			sess, err := f.session()
			if err != nil {
				return err
			}
			var watch opWatcher
			if sess != nil {
				watch = sess.watchOp
			} else {
				_, store, err := f.open()
				if err != nil {
					return err
				}
				defer store.Client().Close()
				watch = func(ctx context.Context, id string, fn func(*site.Op) (bool, error), broken func(error)) error {
					return store.WatchOp(ctx, id, 0, fn, broken)
				}
			}
			return watchOp(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), watch, op.ID, f.output == "json")
		},
	}
	f.add(cmd)
	return cmd
}

// opWatcher calls fn with the op id as it stands and each new version of
// it until fn says stop, ctx ends or the op cannot be read; broken hears of
// each time the watch broke and was started again (site.Store.WatchOp, or
// an op stream of the API).
type opWatcher func(ctx context.Context, id string, fn func(*site.Op) (stop bool, err error), broken func(error)) error

// watchOp prints the op and each new version of it until it ends, and
// returns the error that gives `zdt ops watch` its exit status.
func watchOp(ctx context.Context, out, errOut io.Writer, watch opWatcher, id string, asJSON bool) error {
	var last *site.Op
	err := watch(ctx, id, func(op *site.Op) (bool, error) {
		if asJSON {
			b, err := json.Marshal(newOpView(op))
			if err != nil {
				return true, err
			}
			fmt.Fprintf(out, "%s\n", b)
		} else {
			if last != nil {
				fmt.Fprintf(out, "\n=== revision %d\n", op.Rev)
			}
			if err := writeOp(out, op, time.Now()); err != nil {
				return true, err
			}
		}
		last = op
		return op.Finished(), nil
	}, func(err error) {
		fmt.Fprintf(errOut, "zdt: %v; reading the op again\n", err)
	})
	switch {
	case err != nil && last != nil && !last.Finished():
		step := ""
		if i := site.CurrentStep(last); i >= 0 {
			step = fmt.Sprintf(", at step %d/%d %s", i+1, len(last.Steps), site.StepLabel(last.Steps[i]))
		}
		// Not wrapped: an interrupted watch is no clean exit.
		return &exitError{code: 3, err: fmt.Errorf("stopped watching op %s before it ended (%s): it was still running%s", id, err, step)}
	case err != nil:
		return &exitError{code: 3, err: fmt.Errorf("watch op %s: %s", id, err)} // not wrapped, as above
	case last.Outcome == site.OpSucceeded:
		return nil
	}
	return &exitError{code: 1, err: fmt.Errorf("op %s %s: %s", id, last.Outcome, orDash(last.Error))}
}

func newOpsAbortCommand() *cobra.Command {
	var f readFlags
	var reason string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "abort ID --config FILE [--reason TEXT] [--dry-run] [-o table|json]",
		Short: "Ask the coordinator to abort a running op",
		Long: `Ask the coordinator to abort a running op: one that waits (for an operator's
confirmation, for a site to fence itself) or that you asked for by mistake.

The request (who, when, why) is written into the op's journal record and
the event log. The coordinator ends the op, aborted, before it runs another
step: a step it is in when the request arrives finishes what it does but is
recorded as interrupted; the steps after it are not run. What was done stays
done, and the coordinator goes on acting on the cluster's state: a failover
aborted before its fence step, of a site that is still dark, is followed by a
new failover; services left at a site it fenced are moved by a reassign op
once a site can take them. Check zdt status afterwards.

Asking again changes nothing. --dry-run says what would be asked, changing
nothing. Follow the op with zdt ops watch ID.

Exit status: 0 when the abort was asked for (or already had been, or would
be, with --dry-run); 1 when the op has ended already (zdt says how) or etcd
could not be written; 2 for a usage error or an unknown op.`,
		Example:           `  zdt ops abort 20261202T031300.000Z-failover-3fa2c1 --config zdt.yaml --reason "site c is back; drill over"`,
		Args:              oneOpID,
		ValidArgsFunction: completeOpID,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			req := site.Request{By: operatorName(), Reason: strings.TrimSpace(reason)}
			if sess, err := f.session(); err != nil || sess != nil {
				if err != nil {
					return err
				}
				res, err := sess.abort(ctx, args[0], req.Reason, dryRun)
				if err != nil {
					return err
				}
				if f.output == "json" {
					return writeJSON(cmd.OutOrStdout(), res)
				}
				writeAbort(cmd.OutOrStdout(), res)
				return nil
			}
			cfg, store, err := f.open()
			if err != nil {
				return err
			}
			defer store.Client().Close()
			op, err := readOp(ctx, cfg, store, args[0])
			if err != nil {
				return err
			}
			res, err := requestAbort(ctx, cfg, store, op, req, dryRun)
			if err != nil {
				return err
			}
			if f.output == "json" {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			writeAbort(cmd.OutOrStdout(), res)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the journal and the event log")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what would be asked; change nothing")
	return cmd
}

// requestAbort asks for op to be aborted, or only says what it would ask
// for a dry run (Store.Abort). A finished op is an error that says its
// outcome.
func requestAbort(ctx context.Context, cfg *config.Cluster, store *site.Store, op *site.Op, req site.Request, dryRun bool) (site.AbortResult, error) {
	res, err := store.Abort(ctx, op.ID, req, dryRun)
	switch {
	case errors.Is(err, site.ErrOpEnded):
		return res, err
	case errors.Is(err, site.ErrNotFound):
		return res, usageErrorf("op %s was removed from the journal just now", op.ID)
	case err != nil:
		return res, etcdError(cfg, err)
	}
	return res, nil
}

// writeAbort says what `zdt ops abort` did, for people.
func writeAbort(w io.Writer, res site.AbortResult) {
	op := res.Op
	what := fmt.Sprintf("op %s (%s", op.ID, op.Kind)
	if len(op.Params) > 0 {
		what += " " + site.ParamString(op.Params)
	}
	what += ")"
	switch res.Action {
	case site.AbortAlreadyRequested:
		r := op.AbortRequested
		fmt.Fprintf(w, "the abort of %s was already requested by %s at %s", what, r.By, stamp(r.At))
		if r.Reason != "" {
			fmt.Fprintf(w, ": %s", oneLine(r.Reason))
		}
		fmt.Fprintln(w, "; nothing changed")
	case site.AbortWouldRequest:
		fmt.Fprintf(w, "dry run: would ask the coordinator to abort %s, as %s; nothing changed\n", what, res.Who)
	default:
		fmt.Fprintf(w, "asked the coordinator to abort %s, as %s", what, res.Who)
		if res.Reason != "" {
			fmt.Fprintf(w, ": %s", oneLine(res.Reason))
		}
		fmt.Fprintln(w)
	}
	if i := site.CurrentStep(op); i >= 0 {
		var rest []string
		for _, st := range op.Steps[i:] {
			rest = append(rest, site.StepLabel(st))
		}
		verb := "will not run"
		if res.Action == site.AbortWouldRequest {
			verb = "would not run"
		}
		if op.Steps[i].Status == site.StepRunning {
			fmt.Fprintf(w, "step %d/%d %s is running: what it does stays done, and it is recorded as interrupted\n", i+1, len(op.Steps), site.StepLabel(op.Steps[i]))
			rest = rest[1:]
		}
		if len(rest) > 0 {
			fmt.Fprintf(w, "the steps that %s: %s\n", verb, strings.Join(rest, "; "))
		}
	}
	if res.Coordinator == "" {
		fmt.Fprintln(w, "warning: no controller coordinates now; the op is aborted when one does")
	}
	if res.Action != site.AbortWouldRequest {
		fmt.Fprintf(w, "follow it with: zdt ops watch %s\n", op.ID)
	}
}

// formatDuration rounds d for people: 340ms, 4.2s, 3m12s.
func formatDuration(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
	case d < time.Second:
		d = d.Round(time.Millisecond)
	case d < time.Minute:
		d = d.Round(100 * time.Millisecond)
	default:
		d = d.Round(time.Second)
	}
	return d.String()
}

// timeMillis is how ops show a full time.
const timeMillis = "2006-01-02T15:04:05.000Z07:00"

// stamp is t in UTC to the millisecond, "-" when zero.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(timeMillis)
}

// clock is t in UTC as a time of day, with its date when that is not the
// date of day; "-" when zero.
func clock(t, day time.Time) string {
	switch {
	case t.IsZero():
		return "-"
	case t.UTC().Format(time.DateOnly) == day.UTC().Format(time.DateOnly):
		return t.UTC().Format("15:04:05.000")
	}
	return t.UTC().Format("2006-01-02 15:04:05.000")
}

// oneLine folds every run of white space, new lines too, into one space.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// truncate cuts s to n runes at most, marking the cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// milestoneCells are a milestone's time after the op's creation ("-" when
// not reached) and its status ("reached" for a step done).
func milestoneCells(m failover.Milestone) (after, status string) {
	after = "-"
	if !m.At.IsZero() {
		after = "+" + formatDuration(time.Duration(m.AfterSeconds*float64(time.Second)))
	}
	status = string(m.Status)
	if m.Reached && m.Status == site.StepDone {
		status = "reached"
	}
	return after, status
}
