package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

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
			from, err := parseSince(since, time.Now())
			if err != nil {
				return usageErrorf("--since %q: %w", since, err)
			}
			if limit < 0 {
				return usageErrorf("--limit %d: want 0 (all) or more", limit)
			}
			cfg, store, err := f.open()
			if err != nil {
				return err
			}
			defer store.Client().Close()
			filter := site.EventFilter{Since: from, Sites: sites, Services: services, Kinds: kinds}
			if err := checkEventFilter(cfg, filter); err != nil {
				return err
			}
			return showEvents(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), cfg, store, filter, eventsOptions{
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

// parseSince reads --since: a duration before now (10m, 1h30m) or a time
// in RFC 3339. "" is no bound: the zero time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, errors.New("want how long before now, not a negative duration (10m, 1h30m)")
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	const want = "want a duration before now (10m, 1h30m) or a time in RFC 3339 (2026-12-02T03:13:00Z)"
	switch {
	case strings.HasSuffix(s, "d") && isDigits(strings.TrimSuffix(s, "d")):
		return time.Time{}, fmt.Errorf("%s; a day is not a unit: say %sh", want, times24(strings.TrimSuffix(s, "d")))
	case isDate(s):
		return time.Time{}, fmt.Errorf("%s; add a time and a zone: %sT00:00:00Z", want, s)
	case isDate(s[:min(len(s), 10)]) && len(s) > 10:
		if _, err := time.Parse("2006-01-02T15:04:05", strings.Replace(s, " ", "T", 1)); err == nil {
			return time.Time{}, fmt.Errorf("%s; add the zone: Z for UTC, or an offset such as +01:00", want)
		}
	}
	return time.Time{}, errors.New(want)
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func isDate(s string) bool {
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

// times24 is the count of days n in hours.
func times24(n string) string {
	d, err := strconv.Atoi(n)
	if err != nil || d > 1<<30 {
		return n + "*24"
	}
	return strconv.Itoa(d * 24)
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
			names := make([]string, len(cfg.Services))
			for i, svc := range cfg.Services {
				names[i] = svc.Name
			}
			return usageErrorf("--service %q: unknown service (services are %s)", s, strings.Join(names, ", "))
		}
	}
	for _, k := range f.Kinds {
		if k == "" || strings.Contains(strings.TrimSuffix(k, "*"), "*") {
			return usageErrorf("--kind %q: want a kind (op-failed), or the beginning of kinds followed by * (op-*)", k)
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

// showEvents prints the events that match f and, to follow, each new one
// until ctx ends (a clean end, not an error).
func showEvents(ctx context.Context, out, errOut io.Writer, cfg *config.Cluster, store *site.Store, f site.EventFilter, o eventsOptions) error {
	rctx, cancel := context.WithTimeout(ctx, o.timeout)
	type read struct {
		events []site.Event
		rev    int64
	}
	got, err := retryTransient(rctx, func() (read, error) {
		events, rev, err := store.EventsSince(rctx, f.Since, o.limit, f.Match)
		return read{events, rev}, err
	})
	events, rev := got.events, got.rev
	cancel()
	if err != nil {
		return etcdError(cfg, err)
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
	err = store.FollowEvents(ctx, rev, func(e site.Event) error {
		if !f.Match(e) {
			return nil
		}
		return print(e)
	}, func(err error) {
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
