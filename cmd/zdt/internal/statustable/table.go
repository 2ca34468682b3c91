// Package statustable writes zdt status for people: the cluster's line and
// health, the alarms, and each section of the status (sites, services,
// guests, prefixes, BGP sessions, replication members, drills, unfinished
// ops) as a table, a large section summarised as counts with a few
// examples. Its filters (--service, --site, --problems) cut a status to
// what they keep, for the table and for JSON.
//
// The CLI uses it on a status it read from etcd itself, and a controller's
// API on its own view (GET /status?format=table), so that a person waiting
// on a large cluster is sent the table, not the whole status: the table is
// the same wherever it is made.
package statustable

import (
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zdt-project/zdt/replication"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// NameError is a service or site name that the cluster does not have.
type NameError struct {
	// Kind is "service" or "site"; Name is the name given; Known says which
	// names there are, or how to see them.
	Kind, Name, Known string
}

// Error says it as zdt status's flags would.
func (e *NameError) Error() string {
	return fmt.Sprintf("--%s %q: unknown %s (%s)", e.Kind, e.Name, e.Kind, e.Known)
}

// NewFilter returns the filter that keeps the services and sites named and,
// with problems, only what is wrong; nil names keep every one. A name the
// config does not have is a *NameError.
func NewFilter(cfg *config.Cluster, services, sites []string, problems bool) (Filter, error) {
	f := Filter{services: services, sites: sites, problems: problems}
	var err error
	if f.serviceSet, err = nameSet("service", services, cfg.ServiceNames()); err != nil {
		return Filter{}, err
	}
	if f.siteSet, err = nameSet("site", sites, cfg.SiteNames()); err != nil {
		return Filter{}, err
	}
	if f.serviceSet != nil {
		f.groupSet = map[string]bool{}
		for _, svc := range cfg.Services {
			if f.serviceSet[svc.Name] && svc.ReplicationGroup != "" {
				f.groupSet[svc.ReplicationGroup] = true
			}
		}
	}
	return f, nil
}

// nameSet returns the names given as a set, nil when none is; a name not
// known is a *NameError.
func nameSet(kind string, names, known []string) (map[string]bool, error) {
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
			return nil, &NameError{Kind: kind, Name: n, Known: knownNames(kind, n, known)}
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

// View is what the table shows of a status: what the filter keeps, and
// every item (All) or the large sections summarised.
type View struct {
	Filter Filter
	All    bool
}

// Query is the view as GET /status's query: its filters, and all.
func (v View) Query() url.Values {
	q := url.Values{}
	if len(v.Filter.services) > 0 {
		q.Set("service", strings.Join(v.Filter.services, ","))
	}
	if len(v.Filter.sites) > 0 {
		q.Set("site", strings.Join(v.Filter.sites, ","))
	}
	if v.Filter.problems {
		q.Set("problems", "true")
	}
	if v.All {
		q.Set("all", "true")
	}
	return q
}

// Write writes the status for people as view says: the items the filter
// keeps in full; else every item with All; else each section in full when
// it is short, summarised when it is long.
func Write(w io.Writer, st site.Status, view View) error {
	writeStatusHeader(w, st)
	ix := newStatusIndex(st)
	shown, rows := view.Filter.cut(st, ix, ix.prefixRows(st.Services))
	filtered := view.Filter.Active()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	sec := &sections{w: tw}
	for _, s := range statusSections(st, shown, rows, ix, view.Filter.problems) {
		switch {
		case s.lines == 0 && (!s.always || filtered):
		case s.summarise == nil || view.All || (filtered && !s.whole) || s.lines <= summaryLimit:
			s.list(sec.next())
		default:
			s.summarise(sec.next())
		}
	}
	if !sec.written {
		fmt.Fprintf(tw, "nothing matches %s\n", view.Filter)
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
	// whole: the filters do not cut it (the alarms), so it is summarised
	// when long whether or not a filter is given.
	whole bool
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
		{lines: len(st.Alarms), whole: true, list: func(w io.Writer) { writeAlarms(w, st.Alarms) },
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
