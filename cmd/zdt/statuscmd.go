package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
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
cluster's: a filter hides no alarm and does not change the exit status.
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
func (f *statusFlags) view(cfg *config.Cluster) (statusView, error) {
	filter := statusFilter{services: f.services, sites: f.sites, problems: f.problems}
	var err error
	if filter.serviceSet, err = nameSet("--service", "service", f.services, cfg.ServiceNames()); err != nil {
		return statusView{}, err
	}
	if filter.siteSet, err = nameSet("--site", "site", f.sites, cfg.SiteNames()); err != nil {
		return statusView{}, err
	}
	if filter.serviceSet != nil {
		filter.groupSet = map[string]bool{}
		for _, svc := range cfg.Services {
			if filter.serviceSet[svc.Name] && svc.ReplicationGroup != "" {
				filter.groupSet[svc.ReplicationGroup] = true
			}
		}
	}
	return statusView{filter: filter, all: f.all}, nil
}

// nameSet returns the names given as a set, nil when none is; a name not
// known is a usage error.
func nameSet(flag, kind string, names, known []string) (map[string]bool, error) {
	if len(names) == 0 {
		return nil, nil
	}
	knownSet := make(map[string]bool, len(known))
	for _, n := range known {
		knownSet[n] = true
	}
	set := make(map[string]bool, len(names))
	for _, n := range names {
		if !knownSet[n] {
			return nil, usageErrorf("%s %q: unknown %s (%s)", flag, n, kind, knownNames(kind, n, known))
		}
		set[n] = true
	}
	return set, nil
}

// knownNames says which names there are: all of them when they are few,
// else how many, where to see them, and those that look like the one given.
func knownNames(kind, given string, known []string) string {
	switch {
	case len(known) == 0:
		return "the config has no " + kind + "s"
	case len(known) <= summaryLimit:
		return kind + "s are " + strings.Join(known, ", ")
	}
	s := fmt.Sprintf("the config has %d %ss; zdt status --all lists them", len(known), kind)
	var like []string
	for _, n := range known {
		if len(like) < exampleNames && strings.Contains(strings.ToLower(n), strings.ToLower(given)) {
			like = append(like, n)
		}
	}
	if len(like) > 0 {
		s += "; those like it: " + strings.Join(like, ", ")
	}
	return s
}

// statusView is what zdt status shows of the status: what the filter
// keeps, and every item (all) or the large sections summarised.
type statusView struct {
	filter statusFilter
	all    bool
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
// compact object on one line), as view says, and returns the whole
// cluster's health as an error (healthError). When etcd does not answer,
// it writes what the controllers say instead and returns the etcd error.
func showStatus(ctx context.Context, w io.Writer, cfg *config.Cluster, output string, timeout time.Duration, view statusView) error {
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
		if err := write(w, view.filter.cutStatus(st)); err != nil {
			return err
		}
	} else if err := writeStatusView(w, st, view); err != nil {
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

// writeStatusTable writes the status for people, the large sections
// summarised.
func writeStatusTable(w io.Writer, st site.Status) error {
	return writeStatusView(w, st, statusView{})
}

// writeStatusView writes the status for people as view says: the items the
// filter keeps in full; else every item with --all; else each section in
// full when it is short, summarised when it is long.
func writeStatusView(w io.Writer, st site.Status, view statusView) error {
	writeStatusHeader(w, st)
	ix := newStatusIndex(st)
	shown, rows := view.filter.cut(st, ix, ix.prefixRows(st.Services))
	filtered := view.filter.active()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	sec := &sections{w: tw}
	for _, s := range statusSections(st, shown, rows, ix, view.filter.problems) {
		switch {
		case s.lines == 0 && (!s.always || filtered):
		case s.summarise == nil || view.all || filtered || s.lines <= summaryLimit:
			s.list(sec.next())
		default:
			s.summarise(sec.next())
		}
	}
	if !sec.written {
		fmt.Fprintf(tw, "nothing matches %s\n", view.filter)
	}
	return tw.Flush()
}

// statusSection is one section of the status table.
type statusSection struct {
	// lines is how many items it lists.
	lines int
	// always: without a filter, it is shown even with nothing to list, as
	// it always was.
	always bool
	// list writes each item; summarise, nil for a section that is never
	// long, writes counts instead.
	list, summarise func(io.Writer)
}

// statusSections are the table's sections, in their order, of the status
// shown (cut by the filter) and its prefixes; the alarms are all of st's.
func statusSections(st, shown site.Status, rows []prefixRow, ix *statusIndex, withProblems bool) []statusSection {
	if !ix.routing {
		rows = nil // without BGP, no PREFIX table
	}
	drills := slices.DeleteFunc(slices.Clone(shown.Sites), func(s site.SiteStatus) bool { return s.LastDrill == nil })
	return []statusSection{
		{lines: len(st.Alarms), list: func(w io.Writer) { writeAlarms(w, st.Alarms) },
			summarise: func(w io.Writer) { writeAlarmsSummary(w, st.Alarms) }},
		{lines: len(shown.Sites), always: true, list: func(w io.Writer) { writeSites(w, shown.Sites) }},
		{lines: len(shown.Services), always: true,
			list:      func(w io.Writer) { writeServices(w, shown.Services, ix, withProblems) },
			summarise: func(w io.Writer) { writeServicesSummary(w, shown.Services, ix) }},
		{lines: len(shown.Guests),
			list:      func(w io.Writer) { writeGuestRows(w, shown.Guests) },
			summarise: func(w io.Writer) { writeGuestsSummary(w, shown.Guests, ix) }},
		{lines: len(rows), always: ix.routing,
			list:      func(w io.Writer) { writePrefixes(w, rows, ix, withProblems) },
			summarise: func(w io.Writer) { writePrefixesSummary(w, shown, rows, ix) }},
		{lines: len(shown.Peers),
			list:      func(w io.Writer) { writePeers(w, shown.Peers) },
			summarise: func(w io.Writer) { writePeersSummary(w, shown.Peers, ix) }},
		{lines: memberCount(shown.Replication),
			list:      func(w io.Writer) { writeReplication(w, shown.Replication, ix, withProblems) },
			summarise: func(w io.Writer) { writeReplicationSummary(w, shown.Replication, ix) }},
		{lines: len(drills), list: func(w io.Writer) { writeDrills(w, drills) }},
		{lines: len(shown.Ops), always: true, list: func(w io.Writer) { writeOps(w, shown.Ops) }},
	}
}

// sections writes the tables one after another, a blank line between two.
type sections struct {
	w       io.Writer
	written bool
}

// next starts a section.
func (s *sections) next() io.Writer {
	if s.written {
		fmt.Fprintln(s.w)
	}
	s.written = true
	return s.w
}

// writeStatusHeader writes the cluster's line, its health, and what is
// wrong with etcd or the cluster's security.
func writeStatusHeader(w io.Writer, st site.Status) {
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
	writeEtcdMembers(w, st)
}

// writeAlarms writes the alarms, the critical ones first.
func writeAlarms(tw io.Writer, alarms []site.Alarm) {
	fmt.Fprintln(tw, "ALARM\tKIND\tSUBJECT\tSITE\tWHAT")
	for _, a := range alarms {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", strings.ToUpper(string(a.Severity)), a.Kind, a.Subject, orDash(a.Site), a.Message)
	}
}

// writeSites writes one line per site.
func writeSites(tw io.Writer, sites []site.SiteStatus) {
	fmt.Fprintln(tw, "SITE\tSTATE\tCONTROLLER\tLEASE\tNOTE")
	for _, s := range sites {
		lease := "-"
		if s.LeaseRemainingMS >= 0 {
			lease = (time.Duration(s.LeaseRemainingMS) * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.State, orDash(string(s.Controller)), lease, siteNote(s))
	}
}

// siteNote says why a site is fenced, never joined, or not up by its
// controller's word; drained; the coordinator.
func siteNote(s site.SiteStatus) string {
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
	return note
}

// problemColumn is a table's header, with a PROBLEM column last when the
// table says what is wrong with each line.
func problemColumn(head string, withProblems bool) string {
	if withProblems {
		return head + "\tPROBLEM"
	}
	return head
}

// writeServices writes one line per service; withProblems adds what is
// wrong with each.
func writeServices(tw io.Writer, services []site.ServiceStatus, ix *statusIndex, withProblems bool) {
	fmt.Fprintln(tw, problemColumn("SERVICE\tACTIVE\tEPOCH\tSITES\tPREFIXES", withProblems))
	for _, s := range services {
		line := fmt.Sprintf("%s\t%s\t%d\t%s\t%s", s.Name, orDash(s.Active), s.Epoch, strings.Join(s.Sites, ","), strings.Join(s.Prefixes, " "))
		if withProblems {
			line += "\t" + strings.Join(ix.serviceProblems(s), "; ")
		}
		fmt.Fprintln(tw, line)
	}
}

// writeGuestRows writes one line per guest.
func writeGuestRows(tw io.Writer, guests []site.GuestStatus) {
	fmt.Fprintln(tw, "GUEST\tSERVICE\tTIER\tZONE\tSTATE\tPLACED ON\tRUNNING ON")
	for _, g := range guests {
		where := "-"
		if g.Host != "" {
			where = g.Host + " (site " + g.Site + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.Name, g.Service, g.Tier, orDash(g.Zone), g.State, where, orDash(strings.Join(g.RunningOn, ",")))
	}
}

// writePrefixes writes one line per service prefix: what each site
// announces (prepends, "-" for nothing) and where the upstream's best path
// leads; withProblems adds what is wrong with each.
func writePrefixes(tw io.Writer, rows []prefixRow, ix *statusIndex, withProblems bool) {
	// Without the observer's beat, its records are its last view.
	if ix.staleUpstream {
		fmt.Fprintln(tw, "THE ROUTE OBSERVER IS NOT RUNNING (no beat in etcd): UPSTREAM BEST below is its last view, stale")
	}
	observed := len(ix.upstream) > 0
	var head strings.Builder
	head.WriteString("PREFIX\tSERVICE\tACTIVE")
	for _, s := range ix.sites {
		head.WriteString("\t" + strings.ToUpper(s))
	}
	if observed {
		head.WriteString("\tUPSTREAM BEST\tAS PATH")
	}
	fmt.Fprintln(tw, problemColumn(head.String(), withProblems))
	var line strings.Builder
	for _, r := range rows {
		line.Reset()
		line.WriteString(r.prefix + "\t" + r.service + "\t" + orDash(r.active))
		for _, n := range r.prepends {
			if n >= 0 {
				line.WriteString("\t" + strconv.Itoa(n))
			} else {
				line.WriteString("\t-")
			}
		}
		if observed {
			line.WriteString("\t" + upstreamBest(r, ix.staleUpstream) + "\t" + asPath(r.upstream.ASPath))
		}
		if withProblems {
			line.WriteString("\t" + strings.Join(r.problems, "; "))
		}
		fmt.Fprintln(tw, line.String())
	}
}

// upstreamBest is where the upstream's best path for a prefix leads,
// marked when it is not the active site, or the view is stale.
func upstreamBest(r prefixRow, stale bool) string {
	best := orDash(r.upstream.BestSite)
	if r.upstream.BestSite != "" && r.upstream.BestSite != r.active {
		best += " (not active!)"
	}
	if stale {
		best += " (stale)"
	}
	return best
}

func asPath(path []uint32) string {
	ases := make([]string, len(path))
	for i, as := range path {
		ases[i] = strconv.FormatUint(uint64(as), 10)
	}
	return orDash(strings.Join(ases, " "))
}

// writePeers writes one line per BGP session.
func writePeers(tw io.Writer, peers []site.PeerStatus) {
	fmt.Fprintln(tw, "BGP PEER\tSITE\tASN\tSTATE")
	for _, p := range peers {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", p.Address, p.Site, p.ASN, p.State)
	}
}

// writeDrills writes the last drill of each site given.
func writeDrills(tw io.Writer, sites []site.SiteStatus) {
	fmt.Fprintln(tw, "SITE\tLAST DRILL")
	for _, s := range sites {
		fmt.Fprintf(tw, "%s\t%s\n", s.Name, s.LastDrill)
	}
}

// writeOps writes one line per unfinished op.
func writeOps(tw io.Writer, ops []site.OpStatus) {
	if len(ops) == 0 {
		fmt.Fprintln(tw, "no unfinished ops")
		return
	}
	fmt.Fprintln(tw, "UNFINISHED OP\tKIND\tPARAMS\tSTEP\tCOORDINATORS")
	for _, op := range ops {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", op.ID, op.Kind, orDash(op.Params), orDash(op.Step), strings.Join(op.Coordinators, ","))
	}
}

func memberCount(groups []site.GroupStatus) int {
	n := 0
	for _, g := range groups {
		n += len(g.Members)
	}
	return n
}

// writeReplication writes one line per replication member; withProblems
// adds why its group has no healthy writable primary.
func writeReplication(tw io.Writer, groups []site.GroupStatus, ix *statusIndex, withProblems bool) {
	fmt.Fprintln(tw, problemColumn("GROUP\tSITE\tROLE\tHEALTHY\tLAG\tSYNC\tNOTE", withProblems))
	for _, g := range groups {
		for _, m := range g.Members {
			lag := "-"
			if m.Role == "standby" {
				lag = replication.FormatBytes(m.LagBytes)
				if m.LagSeconds > 0 {
					lag += fmt.Sprintf(" / %.1fs", m.LagSeconds)
				}
			}
			line := fmt.Sprintf("%s\t%s\t%s\t%t\t%s\t%t\t%s", g.Group, m.Site, m.Role, m.Healthy, lag, m.Sync, strings.Join(strings.Fields(m.Detail), " "))
			if withProblems {
				line += "\t" + ix.groupProblem[g.Group]
			}
			fmt.Fprintln(tw, line)
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
