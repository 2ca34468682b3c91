package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/runbooks"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

func newRunbookCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runbook",
		Short: "List, show, plan, run, approve and abort runbooks",
		Long: `A runbook is a written procedure as a YAML file: typed parameters and
ordered steps, in priority groups with readiness gates, with confirmations,
waits, webhooks, rollback steps. It runs as an op in the same journal as the
automatic failover (zdt ops shows both), carried out by the coordinator step
by step, and resumed by the next coordinator if this one is lost.

A runbook is named by its file, or by the name of a runbook shipped with
zdt (zdt runbook list). docs/runbooks.md describes the format.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newRunbookListCommand(), newRunbookShowCommand(), newRunbookPlanCommand(), newRunbookRunCommand(),
		newRunbookApproveCommand(), newRunbookAbortCommand())
	return cmd
}

func newRunbookListCommand() *cobra.Command {
	var dir string
	var listActions bool
	cmd := &cobra.Command{
		Use:   "list [--dir DIR] [--actions]",
		Short: "List the shipped runbooks and those in a folder, or the step actions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if listActions {
				for _, a := range runbooks.Actions() {
					fmt.Fprintln(cmd.OutOrStdout(), a)
				}
				return nil
			}
			all, err := runbooks.Shipped()
			if err != nil {
				return err
			}
			var problems []string
			if dir != "" {
				files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
				if err != nil {
					return usageErrorf("--dir %q: %w", dir, err)
				}
				if _, err := os.Stat(dir); err != nil {
					return usageErrorf("--dir: %w", err)
				}
				for _, f := range files {
					rb, err := runbooks.Load(f)
					if err != nil {
						problems = append(problems, err.Error())
						continue
					}
					all = append(all, rb)
				}
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tFROM\tPARAMS\tDESCRIPTION")
			for _, rb := range all {
				var params []string
				for _, p := range rb.Params {
					s := p.Name
					if p.Required {
						s += "*"
					}
					params = append(params, s)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", rb.Name, rb.File, orDash(strings.Join(params, ",")), firstLine(rb.Description))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(problems) > 0 {
				return fmt.Errorf("some runbooks in %s are not valid:\n%s", dir, strings.Join(problems, "\n"))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "a folder of runbook files (*.yaml) to list with the shipped ones")
	cmd.Flags().BoolVar(&listActions, "actions", false, "list the step actions a runbook may use, with their arguments")
	return cmd
}

func newRunbookShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "show RUNBOOK",
		Short:             "Render a runbook as Markdown, for a change ticket",
		Args:              oneRunbook,
		ValidArgsFunction: completeRunbook,
		RunE: func(cmd *cobra.Command, args []string) error {
			rb, err := findRunbook(args[0])
			if err != nil {
				return err
			}
			_, err = io.WriteString(cmd.OutOrStdout(), runbooks.Markdown(rb))
			return err
		},
	}
}

func oneRunbook(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageErrorf("%s takes one runbook (a file, or a shipped runbook's name: zdt runbook list), got %d arguments", cmd.CommandPath(), len(args))
	}
	return nil
}

// findRunbook loads a runbook; a runbook with problems is a usage error
// that lists them, FILE:LINE each.
func findRunbook(ref string) (*runbooks.Runbook, error) {
	rb, err := runbooks.Find(ref)
	var problems runbooks.Problems
	if errors.As(err, &problems) {
		return nil, &exitError{code: 2, err: fmt.Errorf("runbook %s is not valid:\n%w", ref, problems)}
	}
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return rb, nil
}

// runbookFlags are the flags of plan and run.
type runbookFlags struct {
	configPath, output string
	params             []string
	timeout            time.Duration
}

func (f *runbookFlags) add(cmd *cobra.Command, formats string) {
	cmd.Flags().StringVar(&f.configPath, "config", "", configFlagHelp)
	cmd.Flags().StringArrayVar(&f.params, "param", nil, "a parameter, NAME=VALUE (repeat the flag for each)")
	cmd.Flags().StringVarP(&f.output, "output", "o", "table", "output format: "+formats)
}

// load loads the runbook and the config and resolves the parameters.
func (f *runbookFlags) load(ref string) (*runbooks.Runbook, *config.Cluster, map[string]string, error) {
	given := map[string]string{}
	for _, p := range f.params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, nil, nil, usageErrorf("--param %q: want NAME=VALUE", p)
		}
		if _, dup := given[k]; dup {
			return nil, nil, nil, usageErrorf("--param %s is given twice", k)
		}
		given[k] = v
	}
	rb, err := findRunbook(ref)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg, err := readConfig(f.configPath)
	if err != nil {
		return nil, nil, nil, err
	}
	args, err := runbooks.Resolve(rb, cfg, given)
	if err != nil {
		return nil, nil, nil, &exitError{code: 2, err: fmt.Errorf("runbook %s:\n%w", rb.Name, err)}
	}
	return rb, cfg, args, nil
}

// planRunbook plans the runbook against the cluster as it is: through the
// API with a token, from a snapshot of etcd otherwise.
func planRunbook(ctx context.Context, cfg *config.Cluster, rb *runbooks.Runbook, params map[string]string) (*runbooks.Plan, error) {
	sess, err := openAPISession(cfg)
	if err != nil {
		return nil, err
	}
	if sess != nil {
		path, body, err := runbookRequest(rb, "plan", map[string]any{"params": params})
		if err != nil {
			return nil, err
		}
		var plan runbooks.Plan
		if err := sess.call(ctx, http.MethodPost, path, body, &plan); err != nil {
			return nil, err
		}
		return &plan, nil
	}
	store, closeStore, err := openStore(cfg)
	if err != nil {
		return nil, err
	}
	defer closeStore()
	snap, err := store.Snapshot(ctx)
	if err != nil {
		return nil, etcdError(cfg, err)
	}
	return makePlan(rb, cfg, snap, params, runbooks.PlanOptions{Who: operatorName()})
}

// runbookRequest is the route and body that plan or run (what) rb through
// the API: a shipped runbook by its name, a runbook file with its text.
func runbookRequest(rb *runbooks.Runbook, what string, body map[string]any) (string, map[string]any, error) {
	if name, shipped := strings.CutPrefix(rb.File, "shipped:"); shipped {
		return "/runbooks/" + name + "/" + what, body, nil
	}
	data, err := os.ReadFile(rb.File)
	if err != nil {
		return "", nil, err
	}
	body["file"], body["runbook"] = filepath.Base(rb.File), string(data)
	return "/runbooks/" + what, body, nil
}

// makePlan plans the runbook against a snapshot; a value the config does
// not know is a usage error.
func makePlan(rb *runbooks.Runbook, cfg *config.Cluster, snap *site.Snapshot, args map[string]string, opts runbooks.PlanOptions) (*runbooks.Plan, error) {
	plan, err := runbooks.MakePlan(rb, cfg, snap, args, opts)
	var problems runbooks.Problems
	if errors.As(err, &problems) {
		return nil, &exitError{code: 2, err: fmt.Errorf("runbook %s does not fit this cluster:\n%w", rb.Name, problems)}
	}
	return plan, err
}

func openStore(cfg *config.Cluster) (*site.Store, func(), error) {
	client, err := site.NewClient(cfg, nil, zap.NewNop())
	if err != nil {
		return nil, nil, err
	}
	return site.NewStore(client, cfg.Name), func() { client.Close() }, nil
}

func newRunbookPlanCommand() *cobra.Command {
	var f runbookFlags
	cmd := &cobra.Command{
		Use:   "plan RUNBOOK --config FILE [--param NAME=VALUE]... [-o table|json|markdown]",
		Short: "Show what a runbook would do now, step by step; change nothing",
		Long: `Check a runbook and its parameters against the cluster's config and show
every step with its resolved arguments and what it would act on in the
cluster's state as it is now. Nothing is changed.

The first step, when it is a switchover, an evacuation, a failback or a
failover, is planned in full now: the plan shows its op's steps, and its
refusal refuses the runbook. Such steps later in a runbook are planned again
when reached; the plan says whether they would be refused now.

Exit status: 0 when the runbook may run now, 1 when it is refused now or
etcd cannot be read, 2 for a runbook, parameter or usage error.`,
		Example:           `  zdt runbook plan site-switchover --param site=b --param to=c --param group=pg --config zdt.yaml`,
		Args:              oneRunbook,
		ValidArgsFunction: completeRunbook,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.output != "table" && f.output != "json" && f.output != "markdown" {
				return usageErrorf("-o %q: want table, json or markdown", f.output)
			}
			rb, cfg, params, err := f.load(args[0])
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			plan, err := planRunbook(ctx, cfg, rb, params)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch f.output {
			case "json":
				if err := writeJSON(out, plan); err != nil {
					return err
				}
			case "markdown":
				if _, err := io.WriteString(out, runbooks.PlanMarkdown(plan)); err != nil {
					return err
				}
			default:
				writePlan(out, plan)
			}
			if len(plan.Blockers) > 0 {
				return fmt.Errorf("runbook %s may not run now: %s: %w", rb.Name, strings.Join(plan.Blockers, "; "), errNotNow)
			}
			return nil
		},
	}
	f.add(cmd, "table, json or markdown")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 30*time.Second, "how long to wait for etcd")
	return cmd
}

// writePlan writes a plan for people.
func writePlan(w io.Writer, plan *runbooks.Plan) {
	fmt.Fprintf(w, "runbook %s (%s)", plan.Runbook.Name, plan.Runbook.File)
	if len(plan.Args) > 0 {
		fmt.Fprintf(w, " with %s", site.ParamString(plan.Args))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tGROUP\tSTEP\tACTION\tWITH\tNOW")
	for i, s := range plan.Steps {
		step := orDash(s.ID)
		if s.Rollback {
			step += " (rollback)"
		}
		now := s.Now
		if s.When != "" {
			now = "when " + s.When + "; " + now
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", i+1, orDash(s.Group), step, s.Action, orDash(site.ParamString(s.With)), orDash(oneLine(now)))
	}
	_ = tw.Flush()
	if len(plan.Blockers) > 0 {
		fmt.Fprintln(w, "refused now:")
		for _, b := range plan.Blockers {
			fmt.Fprintf(w, "  - %s\n", b)
		}
		return
	}
	fmt.Fprintf(w, "the op would have %d steps; nothing was changed\n", len(plan.Op.Steps))
}

func newRunbookRunCommand() *cobra.Command {
	var f runbookFlags
	var yes, detach bool
	cmd := &cobra.Command{
		Use:   "run RUNBOOK --config FILE [--param NAME=VALUE]... [--yes] [--detach]",
		Short: "Run a runbook as a journaled op, following it",
		Long: `Plan a runbook (as zdt runbook plan) and journal it as an op for the
coordinator, which carries it out step by step. The command follows the op,
printing each step as it ends. At each confirm step the op stops until a
person approves it with zdt runbook approve OP (from any machine); with
--yes, every confirm step is approved in advance, in your name. --detach
returns once the op is journaled. Abort with zdt runbook abort OP.

Exit status: 0 when the op succeeded (with --detach: was journaled), 1 when
it was refused, failed or was aborted, or etcd could not be reached, 2 for a
runbook, parameter or usage error.`,
		Example: `  zdt runbook run site-evacuation --param site=b --config zdt.yaml
  zdt runbook run ./my-runbook.yaml --param site=b --yes --config zdt.yaml`,
		Args:              oneRunbook,
		ValidArgsFunction: completeRunbook,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.output != "table" && f.output != "json" {
				return usageErrorf("-o %q: want table or json", f.output)
			}
			rb, cfg, params, err := f.load(args[0])
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			progress := cmd.OutOrStdout()
			if f.output == "json" {
				progress = nil
			}
			sess, err := openAPISession(cfg)
			if err != nil {
				return err
			}
			asked := opRequest{Site: params["site"], Service: params["service"]}
			var res opRequest
			if sess != nil {
				path, body, rerr := runbookRequest(rb, "run", map[string]any{"params": params, "yes": yes})
				if rerr != nil {
					return rerr
				}
				res, err = sess.requestOp(ctx, progress, asked, !detach, path, body)
			} else {
				var planErr error
				res, planErr, err = runRunbook(ctx, cfg, rb, params, yes, detach, progress, asked)
				if planErr != nil {
					return planErr
				}
			}
			if f.output == "json" {
				if jerr := writeJSON(cmd.OutOrStdout(), res); jerr != nil {
					return jerr
				}
			} else {
				writeOpRequest(cmd.OutOrStdout(), "runbook "+rb.Name, res)
			}
			return err
		},
	}
	f.add(cmd, "table or json")
	cmd.Flags().BoolVar(&yes, "yes", false, "approve every confirm step in advance, in your name")
	cmd.Flags().BoolVar(&detach, "detach", false, "return once the op is journaled; follow it with zdt ops watch")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 24*time.Hour, "how long to follow the op (it runs on without you)")
	return cmd
}

// runRunbook journals a runbook's op in etcd and, unless detach, follows
// it. planErr says the runbook could not be planned (nothing to report).
func runRunbook(ctx context.Context, cfg *config.Cluster, rb *runbooks.Runbook, params map[string]string, yes, detach bool, progress io.Writer, asked opRequest) (res opRequest, planErr, err error) {
	who := operatorName()
	res, err = requestOp(ctx, nil, cfg, asked, false, func(snap *site.Snapshot) (*site.Op, []string) {
		plan, err := makePlan(rb, cfg, snap, params, runbooks.PlanOptions{Who: who, Yes: yes})
		if err != nil {
			planErr = err
			return nil, []string{err.Error()}
		}
		return plan.Op, plan.Blockers
	})
	if planErr != nil {
		return res, planErr, nil
	}
	if err == nil && !detach {
		if progress != nil {
			fmt.Fprintf(progress, "runbook %s runs as op %s\n", rb.Name, res.Op.ID)
		}
		res.Op, err = followRunbook(ctx, cfg, res.Op.ID, progress)
	}
	return res, nil, err
}

// followRunbook follows a runbook's op until it ends, writing each step as
// it ends, and, once per waiting confirm step, how to approve it.
func followRunbook(ctx context.Context, cfg *config.Cluster, id string, w io.Writer) (*site.Op, error) {
	store, closeStore, err := openStore(cfg)
	if err != nil {
		return nil, err
	}
	defer closeStore()
	shown, asked := map[string]bool{}, map[string]bool{}
	var last *site.Op
	err = store.WatchOp(ctx, id, 0, func(op *site.Op) (bool, error) {
		last = op
		for i, st := range op.Steps {
			key := fmt.Sprintf("%d %s %s", i, st.ID, st.Name)
			switch {
			case w == nil:
			case st.Status != site.StepPending && st.Status != site.StepRunning && !shown[key]:
				shown[key] = true
				fmt.Fprintf(w, "  %-20s %-8s %s\n", mdStepName(st), st.Status, oneLine(st.Detail))
			case st.Name == failover.StepConfirm && st.Status == site.StepRunning && st.Approved == nil && st.Detail != "" && !asked[key]:
				asked[key] = true
				fmt.Fprintf(w, "  %-20s waiting  %s\n", mdStepName(st), oneLine(st.Detail))
			}
		}
		return op.Finished(), nil
	}, nil)
	if err != nil {
		return last, fmt.Errorf("op %s: %w (follow it with zdt ops watch %s)", id, err, id)
	}
	if last.Outcome != site.OpSucceeded {
		return last, fmt.Errorf("op %s %s: %s", id, last.Outcome, last.Error)
	}
	return last, nil
}

func newRunbookApproveCommand() *cobra.Command {
	var f readFlags
	var reason string
	cmd := &cobra.Command{
		Use:   "approve OP --config FILE [--reason TEXT]",
		Short: "Approve the confirm step a runbook's op waits at",
		Long: `Approve the confirm step at which a runbook's op waits. Your name, the time
and the reason are written into the step and the event log; the coordinator
goes on with the next step.

Exit status: 0 when approved; 1 when the op waits at no confirm step, has
ended, or etcd could not be written; 2 for a usage error or an unknown op.`,
		Example:           `  zdt runbook approve 20261203T050000.000Z-runbook-3fa2c1 --config zdt.yaml --reason "CHG-1234 approved"`,
		Args:              oneOpID,
		ValidArgsFunction: completeOpID,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			op, err := approve(ctx, f, args[0], reason)
			if err != nil {
				return err
			}
			if f.output == "json" {
				return writeJSON(cmd.OutOrStdout(), op)
			}
			for _, st := range op.Steps {
				if a := st.Approved; st.Name == failover.StepConfirm && st.Status == site.StepRunning && a != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "approved step %s of op %s as %s; the coordinator goes on\n", stepName(st), op.ID, a.By)
				}
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the journal (a change ticket)")
	return cmd
}

// approve approves the confirm step op id waits at: through the API with a
// token, in etcd otherwise.
func approve(ctx context.Context, f readFlags, id, reason string) (*site.Op, error) {
	sess, err := f.session()
	if err != nil {
		return nil, err
	}
	if sess != nil {
		return sess.approve(ctx, id, reason)
	}
	cfg, store, err := f.open()
	if err != nil {
		return nil, err
	}
	defer store.Client().Close()
	op, err := store.ApproveStep(ctx, id, site.Request{By: operatorName(), Reason: reason})
	switch {
	case errors.Is(err, site.ErrNotFound):
		return nil, usageErrorf("no op %s in the journal (zdt ops list shows them)", id)
	case err != nil:
		return nil, etcdError(cfg, err)
	}
	return op, nil
}

func stepName(st site.Step) string {
	if st.ID != "" {
		return st.ID
	}
	return st.Name
}

func newRunbookAbortCommand() *cobra.Command {
	cmd := newOpsAbortCommand()
	cmd.Short = "Ask the coordinator to abort a runbook's op (zdt ops abort)"
	return cmd
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
