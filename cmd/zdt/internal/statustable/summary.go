package statustable

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/zdt-project/zdt/site"
)

// zdt status at scale: what is wrong with each item of a status (what
// --problems keeps and the summaries count), the filters, and the
// summaries the table shows instead of one line per item for a large
// section. Everything here is linear in the status's items: each item is
// judged through maps built once (statusIndex).

// summaryLimit is the most rows a section lists by default; a larger one
// is summarised.
const summaryLimit = 20

// exampleNames is how many names a summary line gives as examples.
const exampleNames = 5

// sitePrefix is one prefix at one site.
type sitePrefix struct{ site, prefix string }

// statusIndex holds what judging an item of one status needs.
type statusIndex struct {
	// sites are every site's name, in the status's order.
	sites      []string
	siteState  map[string]site.SiteState
	failStatic map[string]bool
	// moving maps a service to the unfinished op that moves it.
	moving map[string]string
	// routing: the status shows routing (announcements, BGP sessions or
	// the observer's view); bgpSites are the sites that announce or have
	// sessions.
	routing   bool
	bgpSites  map[string]bool
	announced map[sitePrefix]int
	upstream  map[string]site.UpstreamStatus
	// staleUpstream: the observer is not running, its view is its last.
	staleUpstream bool
	// groupProblem says why each replication group has no healthy writable
	// primary ("" when it has one), judged on all its members.
	groupProblem map[string]string
}

func newStatusIndex(st site.Status) *statusIndex {
	ix := &statusIndex{
		siteState:     make(map[string]site.SiteState, len(st.Sites)),
		failStatic:    make(map[string]bool, len(st.FailStatic)),
		routing:       len(st.Announcements) > 0 || len(st.Peers) > 0 || len(st.Upstream) > 0,
		bgpSites:      map[string]bool{},
		announced:     make(map[sitePrefix]int, len(st.Announcements)),
		upstream:      make(map[string]site.UpstreamStatus, len(st.Upstream)),
		staleUpstream: st.Observer != nil && !st.Observer.Running && len(st.Upstream) > 0,
		groupProblem:  make(map[string]string, len(st.Replication)),
	}
	for _, s := range st.Sites {
		ix.sites = append(ix.sites, s.Name)
		ix.siteState[s.Name] = s.State
	}
	for _, s := range st.FailStatic {
		ix.failStatic[s] = true
	}
	for _, a := range st.Announcements {
		ix.announced[sitePrefix{a.Site, a.Prefix}] = a.Prepends
		ix.bgpSites[a.Site] = true
	}
	for _, p := range st.Peers {
		ix.bgpSites[p.Site] = true
	}
	for _, u := range st.Upstream {
		ix.upstream[u.Prefix] = u
	}
	for _, g := range st.Replication {
		ix.groupProblem[g.Group] = groupProblem(g)
	}
	ix.moving = movingServices(st.Ops, st.Services)
	return ix
}

// movingServices maps each service an unfinished op moves to that op: the
// services its parameters or its current step name, and those whose
// assignment it wrote.
func movingServices(ops []site.OpStatus, services []site.ServiceStatus) map[string]string {
	known := make(map[string]bool, len(services))
	for _, s := range services {
		known[s.Name] = true
	}
	moving := map[string]string{}
	unfinished := make(map[string]bool, len(ops))
	for _, op := range ops {
		unfinished[op.ID] = true
		for _, name := range opServices(op) {
			if known[name] {
				moving[name] = op.ID
			}
		}
	}
	for _, s := range services {
		if unfinished[s.Op] {
			moving[s.Name] = s.Op
		}
	}
	return moving
}

// opParams splits an op's parameters ("service=db to=b") into their
// values, a comma-separated value into its parts.
func opParams(params string) map[string][]string {
	out := map[string][]string{}
	for field := range strings.FieldsSeq(params) {
		key, value, ok := strings.Cut(field, "=")
		if ok {
			out[key] = append(out[key], strings.Split(value, ",")...)
		}
	}
	return out
}

// opServices are the names an op gives as its services: its service and
// services parameters, and the last word of its current step ("assign db").
func opServices(op site.OpStatus) []string {
	p := opParams(op.Params)
	names := append(slices.Clone(p["service"]), p["services"]...)
	if words := strings.Fields(op.Step); len(words) > 1 {
		names = append(names, words[len(words)-1])
	}
	return names
}

// opSites are the sites an op's parameters name (site, from, to).
func opSites(op site.OpStatus) []string {
	p := opParams(op.Params)
	return slices.Concat(p["site"], p["from"], p["to"])
}

// siteHasProblem: the site is not up, its controller says it is not up,
// or it fails static.
func (ix *statusIndex) siteHasProblem(s site.SiteStatus) bool {
	return s.State != site.SiteUp || (s.Controller != "" && s.Controller != site.ControllerUp) || ix.failStatic[s.Name]
}

// serviceProblems says what is wrong with a service: assigned nowhere,
// stranded at a site that is not up, active at a site not its own, moving.
func (ix *statusIndex) serviceProblems(svc site.ServiceStatus) []string {
	var out []string
	switch state, known := ix.siteState[svc.Active]; {
	case svc.Active == "":
		out = append(out, "not assigned to any site")
	case !known:
		out = append(out, fmt.Sprintf("active at %s, not a site of the cluster", svc.Active))
	case state != site.SiteUp:
		out = append(out, fmt.Sprintf("stranded at %s (%s): served nowhere", svc.Active, state))
	case len(svc.Sites) > 0 && !slices.Contains(svc.Sites, svc.Active):
		out = append(out, fmt.Sprintf("active at %s, not one of its sites", svc.Active))
	}
	if op, ok := ix.moving[svc.Name]; ok {
		out = append(out, "moving (op "+op+")")
	}
	return out
}

// prefixRow is one service prefix: what each site announces and where the
// upstream's best path leads.
type prefixRow struct {
	prefix, service, active string
	// prepends are each site's (statusIndex.sites), -1 where it does not
	// announce the prefix.
	prepends []int
	upstream site.UpstreamStatus
	problems []string
}

// prefixRows lists every prefix of the services, in their order.
func (ix *statusIndex) prefixRows(services []site.ServiceStatus) []prefixRow {
	n := 0
	for _, svc := range services {
		n += len(svc.Prefixes)
	}
	rows := make([]prefixRow, 0, n)
	prepends := make([]int, n*len(ix.sites)) // one allocation for every row's
	for _, svc := range services {
		for _, p := range svc.Prefixes {
			r := prefixRow{prefix: p, service: svc.Name, active: svc.Active, upstream: ix.upstream[p]}
			r.prepends, prepends = prepends[:len(ix.sites):len(ix.sites)], prepends[len(ix.sites):]
			for i, s := range ix.sites {
				n, ok := ix.announced[sitePrefix{s, p}]
				if !ok {
					n = -1
				}
				r.prepends[i] = n
			}
			r.problems = ix.prefixProblems(r)
			rows = append(rows, r)
		}
	}
	return rows
}

// prefixProblems says how a prefix is not announced as its service's
// placement wants: by its active site, with fewer prepends than at any
// other, the upstream's best path leading there. A status without routing
// judges nothing.
func (ix *statusIndex) prefixProblems(r prefixRow) []string {
	if !ix.routing {
		return nil
	}
	if r.active == "" {
		return []string{"its service is assigned to no site"}
	}
	var out []string
	atActive, announced := ix.announced[sitePrefix{r.active, r.prefix}]
	if !announced && ix.bgpSites[r.active] {
		out = append(out, "not announced by its active site "+r.active)
	}
	for i, s := range ix.sites {
		if n := r.prepends[i]; announced && s != r.active && n >= 0 && n <= atActive {
			out = append(out, fmt.Sprintf("announced at %s with no more prepends than at its active site %s", s, r.active))
		}
	}
	if _, observed := ix.upstream[r.prefix]; observed && !ix.staleUpstream {
		switch best := r.upstream.BestSite; {
		case best == "":
			out = append(out, "no path at the upstream")
		case best != r.active:
			out = append(out, fmt.Sprintf("the upstream's best path leads to %s, not to its active site %s", best, r.active))
		}
	}
	return out
}

// guestHasProblem: a guest that should run does not (a Gold one whatever
// its state; another unless it was preempted to make room), or it runs
// somewhere it is not placed.
func guestHasProblem(g site.GuestStatus) bool {
	switch {
	case len(g.RunningOn) > 1, len(g.RunningOn) == 1 && g.RunningOn[0] != g.Host:
		return true
	case g.State == string(site.GuestRunning):
		return false
	case g.Tier == "gold":
		return true
	}
	return g.State != string(site.GuestPreempted)
}

// groupProblem says why a replication group has no healthy writable
// primary, "" when it has one.
func groupProblem(g site.GroupStatus) string {
	var writable []site.MemberStatus
	for _, m := range g.Members {
		if m.Writable {
			writable = append(writable, m)
		}
	}
	switch {
	case len(g.Members) == 0:
		return ""
	case len(writable) == 0:
		return "no writable primary"
	case len(writable) > 1:
		return fmt.Sprintf("%d writable members", len(writable))
	case !writable[0].Healthy:
		return fmt.Sprintf("its writable primary at %s is not healthy", writable[0].Site)
	}
	return ""
}

func peerHasProblem(p site.PeerStatus) bool { return p.State != "established" }

// Filter is what --service, --site and --problems keep: an item is kept
// when it passes every flag given. The health line and the alarms are the
// whole cluster's whatever the filter. The zero Filter keeps everything;
// NewFilter makes one.
type Filter struct {
	// services and sites are the names as given, for messages.
	services, sites []string
	problems        bool
	serviceSet      map[string]bool
	siteSet         map[string]bool
	// groupSet are the replication groups of the services.
	groupSet map[string]bool
}

// Active says whether the filter keeps less than everything.
func (f Filter) Active() bool {
	return len(f.services) > 0 || len(f.sites) > 0 || f.problems
}

// String gives the filter as its flags.
func (f Filter) String() string {
	var flags []string
	if len(f.services) > 0 {
		flags = append(flags, "--service "+strings.Join(f.services, ","))
	}
	if len(f.sites) > 0 {
		flags = append(flags, "--site "+strings.Join(f.sites, ","))
	}
	if f.problems {
		flags = append(flags, "--problems")
	}
	return strings.Join(flags, " ")
}

// keepsSite: the site is named by --site and, with --problems, has one.
// --service keeps every site.
func (f Filter) keepsSite(ix *statusIndex, s site.SiteStatus) bool {
	return (f.siteSet == nil || f.siteSet[s.Name]) && (!f.problems || ix.siteHasProblem(s))
}

// keepsService: the service is named, active at a site named, and has a
// problem, as the flags ask.
func (f Filter) keepsService(ix *statusIndex, svc site.ServiceStatus) bool {
	return (f.serviceSet == nil || f.serviceSet[svc.Name]) && (f.siteSet == nil || f.siteSet[svc.Active]) &&
		(!f.problems || len(ix.serviceProblems(svc)) > 0)
}

// keepsPrefix: a prefix goes with its service for --service and --site,
// and has a problem of its own for --problems.
func (f Filter) keepsPrefix(r prefixRow) bool {
	return (f.serviceSet == nil || f.serviceSet[r.service]) && (f.siteSet == nil || f.siteSet[r.active]) &&
		(!f.problems || len(r.problems) > 0)
}

// keepsGuest: the guest is of a service named, placed at a site named,
// and has a problem, as the flags ask.
func (f Filter) keepsGuest(g site.GuestStatus) bool {
	return (f.serviceSet == nil || f.serviceSet[g.Service]) && (f.siteSet == nil || f.siteSet[g.Site]) &&
		(!f.problems || guestHasProblem(g))
}

// cutGroup keeps a group used by a service named, with no healthy
// writable primary for --problems, and of it the members at a site named.
func (f Filter) cutGroup(ix *statusIndex, g site.GroupStatus) (site.GroupStatus, bool) {
	if (f.serviceSet != nil && !f.groupSet[g.Group]) || (f.problems && ix.groupProblem[g.Group] == "") {
		return g, false
	}
	if f.siteSet == nil {
		return g, true
	}
	g.Members = keep(g.Members, func(m site.MemberStatus) bool { return f.siteSet[m.Site] })
	return g, len(g.Members) > 0
}

// keepsPeer: a BGP session is no service's; it is kept for its site and
// when it is not established, as the flags ask.
func (f Filter) keepsPeer(p site.PeerStatus) bool {
	return f.serviceSet == nil && (f.siteSet == nil || f.siteSet[p.Site]) && (!f.problems || peerHasProblem(p))
}

// keepsOp: the op names a service or a site given, or moves a service
// given. Every unfinished op is kept for --problems: they are few, and
// they say what is moving.
func (f Filter) keepsOp(ix *statusIndex, op site.OpStatus) bool {
	named := func(set map[string]bool, names []string) bool {
		return set == nil || slices.ContainsFunc(names, func(n string) bool { return set[n] })
	}
	moves := f.serviceSet != nil && slices.ContainsFunc(f.services, func(s string) bool { return ix.moving[s] == op.ID })
	return (moves || named(f.serviceSet, opServices(op))) && named(f.siteSet, opSites(op))
}

// cut returns the status with only the items f keeps, and the prefix rows
// it keeps (the announcements and the observer's view in the status follow
// them). The health, the alarms and the rest are the whole cluster's.
func (f Filter) cut(st site.Status, ix *statusIndex, rows []prefixRow) (site.Status, []prefixRow) {
	if !f.Active() {
		return st, rows
	}
	rows = keep(rows, f.keepsPrefix)
	prefixes := make(map[string]bool, len(rows))
	for _, r := range rows {
		prefixes[r.prefix] = true
	}
	st.Sites = keep(st.Sites, func(s site.SiteStatus) bool { return f.keepsSite(ix, s) })
	st.Services = keep(st.Services, func(s site.ServiceStatus) bool { return f.keepsService(ix, s) })
	st.Guests = keep(st.Guests, f.keepsGuest)
	st.Announcements = keep(st.Announcements, func(a site.AnnouncementStatus) bool { return prefixes[a.Prefix] })
	st.Upstream = keep(st.Upstream, func(u site.UpstreamStatus) bool { return prefixes[u.Prefix] })
	st.Replication = cutGroups(st.Replication, func(g site.GroupStatus) (site.GroupStatus, bool) { return f.cutGroup(ix, g) })
	st.Peers = keep(st.Peers, f.keepsPeer)
	st.Ops = keep(st.Ops, func(op site.OpStatus) bool { return f.keepsOp(ix, op) })
	return st, rows
}

// Cut returns the status with only what f keeps, for -o json.
func (f Filter) Cut(st site.Status) site.Status {
	if !f.Active() {
		return st
	}
	ix := newStatusIndex(st)
	cut, _ := f.cut(st, ix, ix.prefixRows(st.Services))
	return cut
}

// keep returns the items ok keeps in a new slice; nil stays nil (null in
// JSON, as the whole status has it).
func keep[T any](items []T, ok func(T) bool) []T {
	if items == nil {
		return nil
	}
	out := []T{}
	for _, it := range items {
		if ok(it) {
			out = append(out, it)
		}
	}
	return out
}

// cutGroups returns the groups cut keeps, as it cuts them.
func cutGroups(groups []site.GroupStatus, cut func(site.GroupStatus) (site.GroupStatus, bool)) []site.GroupStatus {
	if groups == nil {
		return nil
	}
	out := []site.GroupStatus{}
	for _, g := range groups {
		if g, ok := cut(g); ok {
			out = append(out, g)
		}
	}
	return out
}

// tally counts items by a label, in the order the labels first come, with
// the first few names of each.
type tally struct {
	labels []string
	counts map[string]int
	names  map[string][]string
}

func newTally() *tally { return &tally{counts: map[string]int{}, names: map[string][]string{}} }

// add counts one item under label; name "" gives no example.
func (t *tally) add(label, name string) {
	if _, seen := t.counts[label]; !seen {
		t.labels = append(t.labels, label)
	}
	t.counts[label]++
	if name != "" && len(t.names[label]) < exampleNames {
		t.names[label] = append(t.names[label], name)
	}
}

// write writes one line per label: its count, the label and examples.
func (t *tally) write(tw io.Writer, header string) {
	lines := []string{header}
	for _, l := range t.labels {
		lines = append(lines, strconv.Itoa(t.counts[l])+"\t"+l+"\t"+examples(t.names[l], t.counts[l]))
	}
	writeTable(tw, lines)
}

// writeTable writes lines as a table of their own: the form feed after the
// last ends the tabwriter's columns (and is written as a newline), so the
// next lines are not aligned with these.
func writeTable(tw io.Writer, lines []string) {
	fmt.Fprint(tw, strings.Join(lines, "\n")+"\f")
}

// examples lists the names given and says how many more there are.
func examples(names []string, count int) string {
	s := strings.Join(names, ", ")
	if more := count - len(names); len(names) > 0 && more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}

// nowhere is the column of the items at no site: services not assigned,
// guests not placed, prefixes with no path at the upstream.
const nowhere = "nowhere"

// bySite counts items by a label (a row) and a site (a column).
type bySite struct {
	sites  []string
	labels []string
	counts map[string]map[string]int
}

// newBySite has a column for each site, in their order; others are added
// as they come.
func newBySite(sites []string) *bySite {
	return &bySite{sites: slices.Clone(sites), counts: map[string]map[string]int{}}
}

func (m *bySite) add(label, at string) {
	if at == "" {
		at = nowhere
	}
	row, seen := m.counts[label]
	if !seen {
		row = map[string]int{}
		m.counts[label] = row
		m.labels = append(m.labels, label)
	}
	if !slices.Contains(m.sites, at) {
		m.sites = append(m.sites, at)
	}
	row[at]++
}

// write writes the counts: a column per site, and the total.
func (m *bySite) write(tw io.Writer, corner string) {
	head := corner
	for _, s := range m.sites {
		head += "\t" + strings.ToUpper(s)
	}
	lines := []string{head + "\tTOTAL"}
	for _, l := range m.labels {
		line, total := l, 0
		for _, s := range m.sites {
			line += "\t" + strconv.Itoa(m.counts[l][s])
			total += m.counts[l][s]
		}
		lines = append(lines, line+"\t"+strconv.Itoa(total))
	}
	writeTable(tw, lines)
}

// sortLabels puts first the label of the items that are as they should be,
// then the others by name.
func (m *bySite) sortLabels(first string) {
	slices.SortStableFunc(m.labels, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == first:
			return -1
		case b == first:
			return 1
		}
		return strings.Compare(a, b)
	})
}

// summaryHeading is the first line of a summarised section.
func summaryHeading(count int, what, narrow string) string {
	return fmt.Sprintf("%s: %d, summarised (--all lists each; %s)", what, count, narrow)
}

// writeAlarmsSummary writes one line per severity, kind and site of alarm,
// in the alarms' order (the critical ones first): how many, a few of their
// subjects, and the first one's message.
func writeAlarmsSummary(tw io.Writer, alarms []site.Alarm) {
	type group struct {
		site.Alarm
		subjects []string
	}
	var groups []*group
	byKey := map[[3]string]*group{}
	for _, a := range alarms {
		key := [3]string{string(a.Severity), string(a.Kind), a.Site}
		g := byKey[key]
		if g == nil {
			g = &group{Alarm: a}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.subjects = append(g.subjects, a.Subject)
	}
	fmt.Fprintln(tw, summaryHeading(len(alarms), "ALARMS", "-o json"))
	fmt.Fprintln(tw, "ALARM\tKIND\tSITE\tCOUNT\tSUBJECTS\tTHE FIRST")
	for _, g := range groups {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", strings.ToUpper(string(g.Severity)), g.Kind, orDash(g.Site), len(g.subjects), site.Few(g.subjects, ", "), g.Message)
	}
}

// writeServicesSummary counts the services by active site and by problem,
// naming a few of each.
func writeServicesSummary(tw io.Writer, services []site.ServiceStatus, ix *statusIndex) {
	fmt.Fprintln(tw, summaryHeading(len(services), "SERVICES", "--service NAME, --problems"))
	at := newBySite(ix.sites)
	states := newTally()
	for _, svc := range services {
		at.add("services", svc.Active)
		problems := ix.serviceProblems(svc)
		if len(problems) == 0 {
			states.add("active at an up site, not moving", "")
		}
		for _, p := range problems {
			states.add(p, svc.Name)
		}
	}
	at.write(tw, "ACTIVE AT")
	states.write(tw, "SERVICES\tSTATE\tEXAMPLES")
}

// writePrefixesSummary counts each site's announcements (for services
// active there or as a standby, and where the upstream's best path leads)
// and the prefixes by problem.
func writePrefixesSummary(tw io.Writer, st site.Status, rows []prefixRow, ix *statusIndex) {
	fmt.Fprintln(tw, summaryHeading(len(rows), "PREFIXES", "--service NAME, --site NAME, --problems"))
	if ix.staleUpstream {
		fmt.Fprintln(tw, "THE ROUTE OBSERVER IS NOT RUNNING (no beat in etcd): UPSTREAM BEST below is its last view, stale")
	}
	active := make(map[string]string, len(st.Services))
	for _, svc := range st.Services {
		active[svc.Name] = svc.Active
	}
	announcements := newBySite(ix.sites)
	for _, a := range st.Announcements {
		role := "announced as standby"
		if active[a.Service] == a.Site {
			role = "announced as active"
		}
		announcements.add(role, a.Site)
	}
	for _, u := range st.Upstream {
		announcements.add("upstream best path", u.BestSite)
	}
	announcements.sortLabels("announced as active")
	announcements.write(tw, "PREFIXES")
	states := newTally()
	for _, r := range rows {
		if len(r.problems) == 0 {
			states.add("announced as expected", "")
		}
		for _, p := range r.problems {
			states.add(p, r.prefix+" ("+r.service+")")
		}
	}
	states.write(tw, "PREFIXES\tSTATE\tEXAMPLES")
}

// writeGuestsSummary counts the guests by state and site, and lists the
// Gold guests that do not run, the first summaryLimit of them.
func writeGuestsSummary(tw io.Writer, guests []site.GuestStatus, ix *statusIndex) {
	fmt.Fprintln(tw, summaryHeading(len(guests), "GUESTS", "--service NAME, --site NAME, --problems"))
	states := newBySite(ix.sites)
	var gold []site.GuestStatus
	for _, g := range guests {
		states.add(g.State, g.Site)
		if g.Tier == "gold" && g.State != string(site.GuestRunning) {
			gold = append(gold, g)
		}
	}
	states.sortLabels(string(site.GuestRunning))
	states.write(tw, "GUEST STATE")
	if len(gold) == 0 {
		fmt.Fprintln(tw, "every Gold guest runs")
		return
	}
	shown := gold[:min(len(gold), summaryLimit)]
	if len(shown) < len(gold) {
		fmt.Fprintf(tw, "GOLD GUESTS NOT RUNNING: %d, the first %d (--problems lists all)\n", len(gold), len(shown))
	} else {
		fmt.Fprintf(tw, "GOLD GUESTS NOT RUNNING: %d\n", len(gold))
	}
	writeGuestRows(tw, shown)
}

// writeReplicationSummary counts the members by role (and health) and
// site, and the groups by problem.
func writeReplicationSummary(tw io.Writer, groups []site.GroupStatus, ix *statusIndex) {
	fmt.Fprintln(tw, summaryHeading(len(groups), "REPLICATION GROUPS", "--service NAME, --site NAME, --problems"))
	roles := newBySite(ix.sites)
	states := newTally()
	for _, g := range groups {
		for _, m := range g.Members {
			role := m.Role
			if !m.Healthy {
				role += " (not healthy)"
			}
			roles.add(role, m.Site)
		}
		if p := ix.groupProblem[g.Group]; p != "" {
			states.add(p, g.Group)
		} else {
			states.add("one healthy writable primary", "")
		}
	}
	roles.sortLabels("primary")
	roles.write(tw, "MEMBERS")
	states.write(tw, "GROUPS\tSTATE\tEXAMPLES")
}

// writePeersSummary counts the BGP sessions by state and site.
func writePeersSummary(tw io.Writer, peers []site.PeerStatus, ix *statusIndex) {
	fmt.Fprintln(tw, summaryHeading(len(peers), "BGP PEERS", "--site NAME, --problems"))
	states := newBySite(ix.sites)
	for _, p := range peers {
		states.add(p.State, p.Site)
	}
	states.sortLabels("established")
	states.write(tw, "BGP PEER STATE")
}
