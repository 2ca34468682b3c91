package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

func newEventsCommand() *cobra.Command {
	var f readFlags
	var follow bool
	var since string
	var sites, services, kinds []string
	var limit int
	cmd := &cobra.Command{
		Use:   "events --config FILE [--follow] [--since 10m|TIME] [--site S] [--service S] [--kind K] [--limit N] [-o table|json]",
		Short: "Show the cluster's event log, oldest first; --follow prints new events as they come",
		Long: `Show the cluster's event log, oldest first: what the coordinator and the
site controllers did and saw (ops started, waiting, ended; steps; alarms; the
coordinator elected; fences confirmed; aborts requested...).

--since keeps the events of the last while (10m, 2h30m) or from a time on
(2026-12-02T03:13:00Z, RFC 3339). --site keeps the events written by a site's
controller or about the site, --service those about a service, --kind those
of a kind ("op-*": every kind that begins with op-); each may be given more
than once, or as a comma-separated list. --limit shows the last N events
that match (0: all).

--follow then prints each new event that matches until interrupted, from
where the log was read, so none is missed; when the watch breaks (no leader,
a lost connection) zdt says so on stderr, catches up and follows on. With
-o json the events are a JSON array, or with --follow one JSON object per
line.`,
		Example: `  zdt events --config zdt.yaml --since 1h --kind 'op-*'
  zdt events --config zdt.yaml --follow --site c -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			from, err := site.ParseSince(since, time.Now())
			if err != nil {
				return usageErrorf("--since %q: %w", since, err)
			}
			if limit < 0 {
				return usageErrorf("--limit %d: want 0 (all) or more", limit)
			}
			cfg, err := readConfig(f.config)
			if err != nil {
				return err
			}
			filter := site.EventFilter{Since: from, Sites: sites, Services: services, Kinds: kinds}
			if err := checkEventFilter(cfg, filter); err != nil {
				return err
			}
			src, done, err := f.eventSource(cfg)
			if err != nil {
				return err
			}
			defer done()
			return showEvents(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), src, filter, eventsOptions{
				limit: limit, follow: follow, json: f.output == "json", timeout: f.timeout, sites: cfg.SiteNames(),
			})
		},
	}
	cmd.SetFlagErrorFunc(flagUsageError)
	f.add(cmd)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "then print new events as they come, until interrupted")
	cmd.Flags().StringVar(&since, "since", "", "only events of the last while (10m) or from a time on (RFC 3339)")
	cmd.Flags().StringSliceVar(&sites, "site", nil, "only events written by or about this site")
	cmd.Flags().StringSliceVar(&services, "service", nil, "only events about this service")
	cmd.Flags().StringSliceVar(&kinds, "kind", nil, "only events of this kind (op-* for every op- kind)")
	cmd.Flags().IntVar(&limit, "limit", 100, "show the last N events that match (0: all)")
	return cmd
}

// checkEventFilter refuses a site or service the config does not know.
func checkEventFilter(cfg *config.Cluster, f site.EventFilter) error {
	for _, s := range f.Sites {
		if _, ok := cfg.Site(s); !ok {
			return usageErrorf("--site %q: unknown site (sites are %s)", s, strings.Join(cfg.SiteNames(), ", "))
		}
	}
	for _, s := range f.Services {
		if _, ok := cfg.Service(s); !ok {
			return usageErrorf("--service %q: unknown service (services are %s)", s, strings.Join(cfg.ServiceNames(), ", "))
		}
	}
	for _, k := range f.Kinds {
		if err := site.CheckEventKind(k); err != nil {
			return usageErrorf("--kind %q: %w", k, err)
		}
	}
	return nil
}

type eventsOptions struct {
	limit   int
	follow  bool
	json    bool
	timeout time.Duration
	// sites are the config's sites, for the width of the table's columns.
	sites []string
}

// eventSource is where zdt events reads the event log: etcd, or a
// controller's API with a token.
type eventSource struct {
	// read returns the last limit events (0: all) that match f, and the
	// revision they were read at.
	read func(ctx context.Context, f site.EventFilter, limit int) ([]site.Event, int64, error)
	// follow calls fn with each event that matches f written after rev,
	// until ctx ends or fn fails; broken hears of each time the watch
	// broke and was started again.
	follow func(ctx context.Context, rev int64, f site.EventFilter, fn func(site.Event) error, broken func(error)) error
}

// eventSource returns the event log of cfg's cluster, through the API with
// a token; done releases it.
func (f *readFlags) eventSource(cfg *config.Cluster) (src eventSource, done func(), err error) {
	sess, err := openAPISession(cfg)
	if err != nil {
		return src, nil, err
	}
	if sess != nil {
		return eventSource{read: sess.events, follow: sess.followEvents}, func() {}, nil
	}
	client, err := site.NewClient(cfg, nil, zap.NewNop())
	if err != nil {
		return src, nil, err
	}
	store := site.NewStore(client, cfg.Name)
	src.read = func(ctx context.Context, f site.EventFilter, limit int) ([]site.Event, int64, error) {
		type read struct {
			events []site.Event
			rev    int64
		}
		got, err := retryTransient(ctx, func() (read, error) {
			events, rev, err := store.EventsSince(ctx, f.Since, limit, f.Match)
			return read{events, rev}, err
		})
		if err != nil {
			return nil, 0, etcdError(cfg, err)
		}
		return got.events, got.rev, nil
	}
	src.follow = func(ctx context.Context, rev int64, f site.EventFilter, fn func(site.Event) error, broken func(error)) error {
		return store.FollowEvents(ctx, rev, func(e site.Event) error {
			if !f.Match(e) {
				return nil
			}
			return fn(e)
		}, broken)
	}
	return src, func() { client.Close() }, nil
}

// showEvents prints the events that match f and, to follow, each new one
// until ctx ends (a clean end, not an error).
func showEvents(ctx context.Context, out, errOut io.Writer, src eventSource, f site.EventFilter, o eventsOptions) error {
	rctx, cancel := context.WithTimeout(ctx, o.timeout)
	events, rev, err := src.read(rctx, f, o.limit)
	cancel()
	if err != nil {
		return err
	}
	var print func(site.Event) error
	switch {
	case o.json && !o.follow:
		if events == nil {
			events = []site.Event{}
		}
		return writeJSON(out, events)
	case o.json:
		enc := json.NewEncoder(out)
		print = func(e site.Event) error { return enc.Encode(e) }
	default:
		t := newEventTable(events, o.sites)
		print = func(e site.Event) error { return t.write(out, e) }
		if len(events) > 0 || o.follow {
			if err := t.header(out); err != nil {
				return err
			}
		}
		if len(events) == 0 && !o.follow {
			fmt.Fprintln(out, "no events match")
		}
	}
	for _, e := range events {
		if err := print(e); err != nil {
			return err
		}
	}
	if !o.follow {
		return nil
	}
	err = src.follow(ctx, rev, f, print, func(err error) {
		fmt.Fprintf(errOut, "zdt: %v; catching up and following on\n", err)
	})
	if ctx.Err() != nil {
		return nil // interrupted: the way --follow ends
	}
	return err
}

// eventTable writes events as rows of fixed columns, so that the events
// that --follow prints line up with those before.
type eventTable struct {
	site, kind, op, subject int
}

const eventTime = "2006-01-02T15:04:05.000Z07:00"

func newEventTable(events []site.Event, sites []string) *eventTable {
	t := &eventTable{site: len("SITE"), kind: len("KIND"), op: len("OP"), subject: len("SUBJECT")}
	for _, s := range sites {
		t.site = max(t.site, len(s))
	}
	for _, e := range events {
		t.site = max(t.site, len(orDash(e.Site)))
		t.kind = max(t.kind, len(e.Kind))
		t.op = max(t.op, len(orDash(e.Op)))
		t.subject = max(t.subject, len(orDash(e.Subject)))
	}
	return t
}

func (t *eventTable) header(w io.Writer) error {
	return t.row(w, "TIME", "SITE", "KIND", "OP", "SUBJECT", "MESSAGE")
}

func (t *eventTable) write(w io.Writer, e site.Event) error {
	return t.row(w, e.At.UTC().Format(eventTime), orDash(e.Site), e.Kind, orDash(e.Op), orDash(e.Subject), oneLine(e.Message))
}

func (t *eventTable) row(w io.Writer, at, siteName, kind, op, subject, msg string) error {
	line := fmt.Sprintf("%-24s  %-*s  %-*s  %-*s  %-*s  %s", at, t.site, siteName, t.kind, kind, t.op, op, t.subject, subject, msg)
	_, err := fmt.Fprintln(w, strings.TrimRight(line, " "))
	return err
}
