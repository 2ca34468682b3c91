package statustable

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// largeStatus is a cluster of three sites: a (the coordinator) and b up, c
// fenced by the failover op op-7. Service i (svc-0000...) is active at
// site a, b, c in turn, uses replication group pg-i and has prefixes
// prefixes and guests guests, the first of them Gold. The services at c
// are stranded, their guests unknown, their groups without a writable
// primary and their prefixes announced nowhere; the switchover op-8
// moves svc-0003 from a to b.
func largeStatus(services, prefixes, guests int) site.Status {
	fenced := time.Date(2026, 12, 2, 3, 13, 0, 0, time.UTC)
	st := site.Status{
		Cluster: "big", Revision: 4242, Coordinator: "a",
		Sites: []site.SiteStatus{
			{Name: "a", State: site.SiteUp, Controller: site.ControllerUp, LeaseRemainingMS: 2000, Coordinator: true, Joined: true},
			{Name: "b", State: site.SiteUp, Controller: site.ControllerUp, LeaseRemainingMS: 2000, Joined: true},
			{Name: "c", State: site.SiteFenced, LeaseRemainingMS: -1, Joined: true, Fence: &site.Fence{Site: "c", Op: "op-7", At: fenced, Reason: "lease expired"}},
		},
		Services: []site.ServiceStatus{}, Guests: []site.GuestStatus{}, Announcements: []site.AnnouncementStatus{},
		Upstream: []site.UpstreamStatus{}, Replication: []site.GroupStatus{}, Alarms: []site.Alarm{},
		Observer: &site.ObserverStatus{Running: true},
		Ops: []site.OpStatus{
			{ID: "op-7", Kind: "failover", Params: "site=c", Step: "fence-resources", Coordinators: []string{"a"}},
			{ID: "op-8", Kind: "switchover", Params: "from=a services=svc-0003 to=b", Step: "assign svc-0003", Coordinators: []string{"a"}},
		},
	}
	for i := range 6 {
		p := site.PeerStatus{Site: []string{"a", "b", "c"}[i/2], Address: fmt.Sprintf("192.0.2.%d", i+1), ASN: 64600, State: "established"}
		if p.Site == "c" {
			p.State = site.PeerSiteDark
		}
		st.Peers = append(st.Peers, p)
	}
	for i := range services {
		addLargeService(&st, i, prefixes, guests)
	}
	st.Health = st.Judge()
	return st
}

// addLargeService adds service i of largeStatus with its prefixes, guests
// and replication group.
func addLargeService(st *site.Status, i, prefixes, guests int) {
	up := []string{"a", "b"}
	name := fmt.Sprintf("svc-%04d", i)
	active := []string{"a", "b", "c"}[i%3]
	svc := site.ServiceStatus{Name: name, Active: active, Epoch: int64(100 + i), Sites: []string{"a", "b", "c"}, Prefixes: []string{}}
	for j := range prefixes {
		k := i*prefixes + j
		p := fmt.Sprintf("10.%d.%d.0/24", k/256, k%256)
		svc.Prefixes = append(svc.Prefixes, p)
		u := site.UpstreamStatus{Prefix: p, Service: name, Active: active, ASPath: []uint32{}}
		for _, s := range up {
			prepends := 2
			if s == active {
				prepends, u.BestSite, u.ASPath, u.Paths = 0, s, []uint32{64601}, 2
			}
			st.Announcements = append(st.Announcements, site.AnnouncementStatus{Site: s, Service: name, Prefix: p, Prepends: prepends})
		}
		st.Upstream = append(st.Upstream, u)
	}
	st.Services = append(st.Services, svc)
	for j := range guests {
		g := site.GuestStatus{Name: fmt.Sprintf("%s-vm%d", name, j), Service: name, Tier: "bronze", Site: active,
			Host: active + strconv.Itoa(j%4+1), State: "running", RunningOn: []string{}}
		if j == 0 {
			g.Tier = "gold"
		}
		if active == "c" {
			g.State = site.GuestUnknown
		} else {
			g.RunningOn = []string{g.Host}
		}
		st.Guests = append(st.Guests, g)
	}
	group := site.GroupStatus{Group: fmt.Sprintf("pg-%04d", i)}
	for _, s := range []string{"a", "b", "c"} {
		m := site.MemberStatus{Site: s, Role: "standby", Healthy: true, LagBytes: 4096}
		switch {
		case s == "c":
			m = site.MemberStatus{Site: s, Role: "unknown", Detail: "the site holds no lease"}
		case s == active:
			m = site.MemberStatus{Site: s, Role: "primary", Healthy: true, Writable: true}
		}
		group.Members = append(group.Members, m)
	}
	st.Replication = append(st.Replication, group)
}

// largeConfig is the config of largeStatus's cluster, for the filters'
// names.
func largeConfig(services int) *config.Cluster {
	cfg := &config.Cluster{Name: "big", Sites: []config.Site{{Name: "a"}, {Name: "b"}, {Name: "c"}}}
	for i := range services {
		cfg.Services = append(cfg.Services, config.Service{Name: fmt.Sprintf("svc-%04d", i), ReplicationGroup: fmt.Sprintf("pg-%04d", i)})
	}
	return cfg
}

// statusFlags are zdt status's filters and --all, as a test gives them.
type statusFlags struct {
	services, sites []string
	problems, all   bool
}

// view is the View that zdt status makes of the flags.
func (f statusFlags) view(cfg *config.Cluster) (View, error) {
	filter, err := NewFilter(cfg, f.services, f.sites, f.problems)
	return View{Filter: filter, All: f.all}, err
}

// writeStatusTable writes the table of the whole status, as zdt status
// does without flags.
func writeStatusTable(w io.Writer, st site.Status) error {
	return Write(w, st, View{})
}

// statusText is the table zdt status writes with flags for st, whose
// cluster has cfg.
func statusText(t testing.TB, st site.Status, cfg *config.Cluster, flags statusFlags) string {
	t.Helper()
	view, err := flags.view(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := Write(&b, st, view); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// section returns the section of a status table that starts with the line
// starting head, up to the blank line after it.
func section(t *testing.T, table, head string) string {
	t.Helper()
	for part := range strings.SplitSeq(table, "\n\n") {
		if strings.HasPrefix(part, head) {
			return strings.TrimSuffix(part, "\n") + "\n"
		}
	}
	t.Fatalf("no section %q in\n%s", head, table)
	return ""
}

// TestStatusSummary: by default a section of more than summaryLimit lines
// is counted, each problem with a few examples, and the Gold guests that
// do not run are named; the sites, the ops and a short section (the BGP
// sessions) are listed in full.
func TestStatusSummary(t *testing.T) {
	table := statusText(t, largeStatus(30, 1, 2), largeConfig(30), statusFlags{})
	tests := []struct {
		head, want string
	}{
		{"SITE ", `SITE  STATE   CONTROLLER  LEASE  NOTE
a     up      up          2s     coordinator
b     up      up          2s     
c     fenced  -           -      fenced by op op-7 at 2026-12-02T03:13:00Z: lease expired
`},
		{"SERVICES:", `SERVICES: 30, summarised (--all lists each; --service NAME, --problems)
ACTIVE AT  A   B   C   TOTAL
services   10  10  10  30
SERVICES  STATE                                   EXAMPLES
19        active at an up site, not moving        
10        stranded at c (fenced): served nowhere  svc-0002, svc-0005, svc-0008, svc-0011, svc-0014 and 5 more
1         moving (op op-8)                        svc-0003
`},
		{"GUESTS:", `GUESTS: 60, summarised (--all lists each; --service NAME, --site NAME, --problems)
GUEST STATE  A   B   C   TOTAL
running      20  20  0   40
unknown      0   0   20  20
GOLD GUESTS NOT RUNNING: 10
GUEST         SERVICE   TIER  ZONE  STATE    PLACED ON    RUNNING ON
svc-0002-vm0  svc-0002  gold  -     unknown  c1 (site c)  -
svc-0005-vm0  svc-0005  gold  -     unknown  c1 (site c)  -
svc-0008-vm0  svc-0008  gold  -     unknown  c1 (site c)  -
svc-0011-vm0  svc-0011  gold  -     unknown  c1 (site c)  -
svc-0014-vm0  svc-0014  gold  -     unknown  c1 (site c)  -
svc-0017-vm0  svc-0017  gold  -     unknown  c1 (site c)  -
svc-0020-vm0  svc-0020  gold  -     unknown  c1 (site c)  -
svc-0023-vm0  svc-0023  gold  -     unknown  c1 (site c)  -
svc-0026-vm0  svc-0026  gold  -     unknown  c1 (site c)  -
svc-0029-vm0  svc-0029  gold  -     unknown  c1 (site c)  -
`},
		{"PREFIXES:", `PREFIXES: 30, summarised (--all lists each; --service NAME, --site NAME, --problems)
PREFIXES              A   B   C  NOWHERE  TOTAL
announced as active   10  10  0  0        20
announced as standby  20  20  0  0        40
upstream best path    10  10  0  10       30
PREFIXES  STATE                               EXAMPLES
20        announced as expected               
10        not announced by its active site c  10.0.2.0/24 (svc-0002), 10.0.5.0/24 (svc-0005), 10.0.8.0/24 (svc-0008), 10.0.11.0/24 (svc-0011), 10.0.14.0/24 (svc-0014) and 5 more
10        no path at the upstream             10.0.2.0/24 (svc-0002), 10.0.5.0/24 (svc-0005), 10.0.8.0/24 (svc-0008), 10.0.11.0/24 (svc-0011), 10.0.14.0/24 (svc-0014) and 5 more
`},
		{"BGP PEER", `BGP PEER   SITE  ASN    STATE
192.0.2.1  a     64600  established
192.0.2.2  a     64600  established
192.0.2.3  b     64600  established
192.0.2.4  b     64600  established
192.0.2.5  c     64600  down (site holds no lease)
192.0.2.6  c     64600  down (site holds no lease)
`},
		{"REPLICATION GROUPS:", `REPLICATION GROUPS: 30, summarised (--all lists each; --service NAME, --site NAME, --problems)
MEMBERS                A   B   C   TOTAL
primary                10  10  0   20
standby                20  20  0   40
unknown (not healthy)  0   0   30  30
GROUPS  STATE                         EXAMPLES
20      one healthy writable primary  
10      no writable primary           pg-0002, pg-0005, pg-0008, pg-0011, pg-0014 and 5 more
`},
		{"UNFINISHED OP", `UNFINISHED OP  KIND        PARAMS                         STEP             COORDINATORS
op-7           failover    site=c                         fence-resources  a
op-8           switchover  from=a services=svc-0003 to=b  assign svc-0003  a
`},
	}
	for _, tt := range tests {
		t.Run(tt.head, func(t *testing.T) {
			if got := section(t, table, tt.head); got != tt.want {
				t.Errorf("section %q:\n%s\nwant\n%s", tt.head, got, tt.want)
			}
		})
	}
}

// TestStatusAlarmsSummary: more than summaryLimit alarms (a site lost at
// scale leaves one per guest that ran there) make one line per severity,
// kind and site, critical first, with a few subjects and the first
// message, with a filter too (it does not cut the alarms); up to the
// limit, and with --all, each alarm has its line.
func TestStatusAlarmsSummary(t *testing.T) {
	alarms := func(n int) []site.Alarm {
		var out []site.Alarm
		for i := range n {
			g := fmt.Sprintf("svc-%04d-vm0", i)
			out = append(out, site.Alarm{Kind: site.AlarmGuestTwice, Severity: site.AlarmCritical, Subject: g, Site: "c", Stale: true,
				Message: "guest " + g + " runs on host c1 at site c (stale) and also on host a1 at site a"})
		}
		return append(out, site.Alarm{Kind: site.AlarmGuestNotWanted, Severity: site.AlarmWarning, Subject: "db-bronze-1", Site: "c",
			Message: "guest db-bronze-1 runs on host c1 at site c (stale), but its placement says unplaced"})
	}
	st := largeStatus(6, 1, 1)
	st.Alarms = alarms(30)
	if got, want := section(t, statusText(t, st, largeConfig(6), statusFlags{}), "ALARMS:"), `ALARMS: 31, summarised (--all lists each; -o json)
ALARM     KIND              SITE  COUNT  SUBJECTS                                                 THE FIRST
CRITICAL  guest-runs-twice  c     30     svc-0000-vm0, svc-0001-vm0, svc-0002-vm0, … (30 in all)  guest svc-0000-vm0 runs on host c1 at site c (stale) and also on host a1 at site a
WARNING   guest-not-wanted  c     1      db-bronze-1                                              guest db-bronze-1 runs on host c1 at site c (stale), but its placement says unplaced
`; got != want {
		t.Errorf("alarms summarised:\n%s\nwant\n%s", got, want)
	}
	if got := statusText(t, st, largeConfig(6), statusFlags{sites: []string{"c"}, problems: true}); !strings.Contains(got, "ALARMS: 31, summarised") {
		t.Errorf("zdt status --site c --problems with 31 alarms:\n%s\nwant them summarised", got)
	}
	for _, tt := range []struct {
		name  string
		n     int
		flags statusFlags
	}{{"at the limit", summaryLimit - 1, statusFlags{}}, {"--all", 30, statusFlags{all: true}}} {
		t.Run(tt.name, func(t *testing.T) {
			st.Alarms = alarms(tt.n)
			table := statusText(t, st, largeConfig(6), tt.flags)
			if lines := strings.Count(section(t, table, "ALARM "), "\n") - 1; lines != tt.n+1 {
				t.Errorf("%d alarms listed in %d lines, want one each:\n%s", tt.n+1, lines, table)
			}
		})
	}
}

// TestStatusSummaryLimit: a section is listed up to summaryLimit lines and
// summarised beyond; --all lists it whatever its length.
func TestStatusSummaryLimit(t *testing.T) {
	tests := []struct {
		name     string
		services int
		flags    statusFlags
		// listed and summarised are the heads of the sections expected
		// listed and summarised.
		listed, summarised []string
	}{
		{"a small lab", 6, statusFlags{}, []string{"SERVICE ", "GUEST ", "PREFIX ", "GROUP "}, nil},
		{"at the limit", summaryLimit, statusFlags{}, []string{"SERVICE ", "GUEST ", "PREFIX "}, []string{"REPLICATION GROUPS:"}},
		{"one over", summaryLimit + 1, statusFlags{}, nil, []string{"SERVICES:", "GUESTS:", "PREFIXES:", "REPLICATION GROUPS:"}},
		{"--all", 100, statusFlags{all: true}, []string{"SERVICE ", "GUEST ", "PREFIX ", "GROUP "}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := statusText(t, largeStatus(tt.services, 1, 1), largeConfig(tt.services), tt.flags)
			for _, head := range tt.listed {
				if lines := strings.Count(section(t, table, head), "\n") - 1; lines < tt.services {
					t.Errorf("section %q lists %d lines, want %d or more", head, lines, tt.services)
				}
			}
			for _, head := range tt.summarised {
				section(t, table, head)
			}
			if len(tt.summarised) == 0 && strings.Contains(table, "summarised") {
				t.Errorf("a section is summarised:\n%s", table)
			}
		})
	}
}

// TestStatusSmallUnchanged: a status whose sections are all short shows
// the same table by default and with --all.
func TestStatusSmallUnchanged(t *testing.T) {
	st := largeStatus(6, 1, 1)
	def := statusText(t, st, largeConfig(6), statusFlags{})
	if all := statusText(t, st, largeConfig(6), statusFlags{all: true}); def != all {
		t.Errorf("default:\n%s\n--all:\n%s", def, all)
	}
}

// TestStatusFilters: the filters list every item they keep, as --all does,
// with what is wrong with each for --problems; the health line stays the
// whole cluster's.
func TestStatusFilters(t *testing.T) {
	tests := []struct {
		name  string
		flags statusFlags
		want  string
	}{
		{"one service", statusFlags{services: []string{"svc-0003"}}, `SITE  STATE   CONTROLLER  LEASE  NOTE
a     up      up          2s     coordinator
b     up      up          2s     
c     fenced  -           -      fenced by op op-7 at 2026-12-02T03:13:00Z: lease expired

SERVICE   ACTIVE  EPOCH  SITES  PREFIXES
svc-0003  a       103    a,b,c  10.0.3.0/24

GUEST         SERVICE   TIER  ZONE  STATE    PLACED ON    RUNNING ON
svc-0003-vm0  svc-0003  gold  -     running  a1 (site a)  a1

PREFIX       SERVICE   ACTIVE  A  B  C  UPSTREAM BEST  AS PATH
10.0.3.0/24  svc-0003  a       0  2  -  a              64601

GROUP    SITE  ROLE     HEALTHY  LAG    SYNC   NOTE
pg-0003  a     primary  true     -      false  
pg-0003  b     standby  true     4 KiB  false  
pg-0003  c     unknown  false    -      false  the site holds no lease

UNFINISHED OP  KIND        PARAMS                         STEP             COORDINATORS
op-8           switchover  from=a services=svc-0003 to=b  assign svc-0003  a
`},
		{"two services", statusFlags{services: []string{"svc-0000", "svc-0001"}}, `SITE  STATE   CONTROLLER  LEASE  NOTE
a     up      up          2s     coordinator
b     up      up          2s     
c     fenced  -           -      fenced by op op-7 at 2026-12-02T03:13:00Z: lease expired

SERVICE   ACTIVE  EPOCH  SITES  PREFIXES
svc-0000  a       100    a,b,c  10.0.0.0/24
svc-0001  b       101    a,b,c  10.0.1.0/24

GUEST         SERVICE   TIER  ZONE  STATE    PLACED ON    RUNNING ON
svc-0000-vm0  svc-0000  gold  -     running  a1 (site a)  a1
svc-0001-vm0  svc-0001  gold  -     running  b1 (site b)  b1

PREFIX       SERVICE   ACTIVE  A  B  C  UPSTREAM BEST  AS PATH
10.0.0.0/24  svc-0000  a       0  2  -  a              64601
10.0.1.0/24  svc-0001  b       2  0  -  b              64601

GROUP    SITE  ROLE     HEALTHY  LAG    SYNC   NOTE
pg-0000  a     primary  true     -      false  
pg-0000  b     standby  true     4 KiB  false  
pg-0000  c     unknown  false    -      false  the site holds no lease
pg-0001  a     standby  true     4 KiB  false  
pg-0001  b     primary  true     -      false  
pg-0001  c     unknown  false    -      false  the site holds no lease
`},
		{"a site", statusFlags{sites: []string{"c"}}, `SITE  STATE   CONTROLLER  LEASE  NOTE
c     fenced  -           -      fenced by op op-7 at 2026-12-02T03:13:00Z: lease expired

SERVICE   ACTIVE  EPOCH  SITES  PREFIXES
svc-0002  c       102    a,b,c  10.0.2.0/24
svc-0005  c       105    a,b,c  10.0.5.0/24

GUEST         SERVICE   TIER  ZONE  STATE    PLACED ON    RUNNING ON
svc-0002-vm0  svc-0002  gold  -     unknown  c1 (site c)  -
svc-0005-vm0  svc-0005  gold  -     unknown  c1 (site c)  -

PREFIX       SERVICE   ACTIVE  A  B  C  UPSTREAM BEST  AS PATH
10.0.2.0/24  svc-0002  c       2  2  -  -              -
10.0.5.0/24  svc-0005  c       2  2  -  -              -

BGP PEER   SITE  ASN    STATE
192.0.2.5  c     64600  down (site holds no lease)
192.0.2.6  c     64600  down (site holds no lease)

GROUP    SITE  ROLE     HEALTHY  LAG  SYNC   NOTE
pg-0000  c     unknown  false    -    false  the site holds no lease
pg-0001  c     unknown  false    -    false  the site holds no lease
pg-0002  c     unknown  false    -    false  the site holds no lease
pg-0003  c     unknown  false    -    false  the site holds no lease
pg-0004  c     unknown  false    -    false  the site holds no lease
pg-0005  c     unknown  false    -    false  the site holds no lease

UNFINISHED OP  KIND      PARAMS  STEP             COORDINATORS
op-7           failover  site=c  fence-resources  a
`},
		{"a site and services", statusFlags{services: []string{"svc-0003", "svc-0004"}, sites: []string{"b"}}, `SITE  STATE  CONTROLLER  LEASE  NOTE
b     up     up          2s     

SERVICE   ACTIVE  EPOCH  SITES  PREFIXES
svc-0004  b       104    a,b,c  10.0.4.0/24

GUEST         SERVICE   TIER  ZONE  STATE    PLACED ON    RUNNING ON
svc-0004-vm0  svc-0004  gold  -     running  b1 (site b)  b1

PREFIX       SERVICE   ACTIVE  A  B  C  UPSTREAM BEST  AS PATH
10.0.4.0/24  svc-0004  b       2  0  -  b              64601

GROUP    SITE  ROLE     HEALTHY  LAG    SYNC   NOTE
pg-0003  b     standby  true     4 KiB  false  
pg-0004  b     primary  true     -      false  

UNFINISHED OP  KIND        PARAMS                         STEP             COORDINATORS
op-8           switchover  from=a services=svc-0003 to=b  assign svc-0003  a
`},
		{"problems", statusFlags{problems: true}, `SITE  STATE   CONTROLLER  LEASE  NOTE
c     fenced  -           -      fenced by op op-7 at 2026-12-02T03:13:00Z: lease expired

SERVICE   ACTIVE  EPOCH  SITES  PREFIXES     PROBLEM
svc-0002  c       102    a,b,c  10.0.2.0/24  stranded at c (fenced): served nowhere
svc-0003  a       103    a,b,c  10.0.3.0/24  moving (op op-8)
svc-0005  c       105    a,b,c  10.0.5.0/24  stranded at c (fenced): served nowhere

GUEST         SERVICE   TIER  ZONE  STATE    PLACED ON    RUNNING ON
svc-0002-vm0  svc-0002  gold  -     unknown  c1 (site c)  -
svc-0005-vm0  svc-0005  gold  -     unknown  c1 (site c)  -

PREFIX       SERVICE   ACTIVE  A  B  C  UPSTREAM BEST  AS PATH  PROBLEM
10.0.2.0/24  svc-0002  c       2  2  -  -              -        not announced by its active site c; no path at the upstream
10.0.5.0/24  svc-0005  c       2  2  -  -              -        not announced by its active site c; no path at the upstream

BGP PEER   SITE  ASN    STATE
192.0.2.5  c     64600  down (site holds no lease)
192.0.2.6  c     64600  down (site holds no lease)

GROUP    SITE  ROLE     HEALTHY  LAG    SYNC   NOTE                     PROBLEM
pg-0002  a     standby  true     4 KiB  false                           no writable primary
pg-0002  b     standby  true     4 KiB  false                           no writable primary
pg-0002  c     unknown  false    -      false  the site holds no lease  no writable primary
pg-0005  a     standby  true     4 KiB  false                           no writable primary
pg-0005  b     standby  true     4 KiB  false                           no writable primary
pg-0005  c     unknown  false    -      false  the site holds no lease  no writable primary

UNFINISHED OP  KIND        PARAMS                         STEP             COORDINATORS
op-7           failover    site=c                         fence-resources  a
op-8           switchover  from=a services=svc-0003 to=b  assign svc-0003  a
`},
		{"problems at a site", statusFlags{problems: true, sites: []string{"c"}}, `SITE  STATE   CONTROLLER  LEASE  NOTE
c     fenced  -           -      fenced by op op-7 at 2026-12-02T03:13:00Z: lease expired

SERVICE   ACTIVE  EPOCH  SITES  PREFIXES     PROBLEM
svc-0002  c       102    a,b,c  10.0.2.0/24  stranded at c (fenced): served nowhere
svc-0005  c       105    a,b,c  10.0.5.0/24  stranded at c (fenced): served nowhere

GUEST         SERVICE   TIER  ZONE  STATE    PLACED ON    RUNNING ON
svc-0002-vm0  svc-0002  gold  -     unknown  c1 (site c)  -
svc-0005-vm0  svc-0005  gold  -     unknown  c1 (site c)  -

PREFIX       SERVICE   ACTIVE  A  B  C  UPSTREAM BEST  AS PATH  PROBLEM
10.0.2.0/24  svc-0002  c       2  2  -  -              -        not announced by its active site c; no path at the upstream
10.0.5.0/24  svc-0005  c       2  2  -  -              -        not announced by its active site c; no path at the upstream

BGP PEER   SITE  ASN    STATE
192.0.2.5  c     64600  down (site holds no lease)
192.0.2.6  c     64600  down (site holds no lease)

GROUP    SITE  ROLE     HEALTHY  LAG  SYNC   NOTE                     PROBLEM
pg-0002  c     unknown  false    -    false  the site holds no lease  no writable primary
pg-0005  c     unknown  false    -    false  the site holds no lease  no writable primary

UNFINISHED OP  KIND      PARAMS  STEP             COORDINATORS
op-7           failover  site=c  fence-resources  a
`},
		{"nothing", statusFlags{services: []string{"svc-0001"}, sites: []string{"b"}, problems: true}, `nothing matches --service svc-0001 --site b --problems
`},
	}
	st := largeStatus(6, 1, 1)
	whole := statusText(t, st, largeConfig(6), statusFlags{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := statusText(t, st, largeConfig(6), tt.flags)
			head, body, _ := strings.Cut(table, "\n\n")
			if wantHead, _, _ := strings.Cut(whole, "\n\n"); head != wantHead {
				t.Errorf("the health:\n%s\nwant the whole cluster's:\n%s", head, wantHead)
			}
			if body != tt.want {
				t.Errorf("zdt status %s:\n%s\nwant\n%s", tt.flags.filter(), body, tt.want)
			}
		})
	}
}

// filter is the flags' filter, for messages.
func (f statusFlags) filter() Filter {
	return Filter{services: f.services, sites: f.sites, problems: f.problems}
}

// TestStatusFiltersNeverSummarise: a filter lists what it keeps, however
// much.
func TestStatusFiltersNeverSummarise(t *testing.T) {
	table := statusText(t, largeStatus(90, 1, 1), largeConfig(90), statusFlags{sites: []string{"c"}})
	if strings.Contains(table, "summarised") {
		t.Errorf("zdt status --site c summarises:\n%s", table)
	}
	if got := strings.Count(section(t, table, "SERVICE "), "\n") - 1; got != 30 {
		t.Errorf("zdt status --site c lists %d services, want the 30 active at c", got)
	}
}

// TestStatusProblems: what --problems keeps and the summaries count.
func TestStatusProblems(t *testing.T) {
	st := site.Status{
		Sites: []site.SiteStatus{
			{Name: "a", State: site.SiteUp, Controller: site.ControllerUp},
			{Name: "b", State: site.SiteUp, Controller: site.ControllerUp},
			{Name: "c", State: site.SiteDark},
		},
		Ops: []site.OpStatus{{ID: "op-9", Kind: "failover", Params: "site=c", Step: "assign db"}},
		Announcements: []site.AnnouncementStatus{
			{Site: "a", Prefix: "192.0.2.0/24", Prepends: 0}, {Site: "b", Prefix: "192.0.2.0/24", Prepends: 2},
			{Site: "a", Prefix: "198.51.100.0/24", Prepends: 1}, {Site: "b", Prefix: "198.51.100.0/24", Prepends: 1},
			{Site: "b", Prefix: "203.0.113.0/24", Prepends: 2},
		},
		Upstream: []site.UpstreamStatus{{Prefix: "192.0.2.0/24", BestSite: "b"}, {Prefix: "198.51.100.0/24", BestSite: "a"}},
		Observer: &site.ObserverStatus{Running: true},
	}
	ix := newStatusIndex(st)
	services := []struct {
		svc  site.ServiceStatus
		want string
	}{
		{site.ServiceStatus{Name: "ok", Active: "a", Sites: []string{"a", "b"}}, ""},
		{site.ServiceStatus{Name: "none"}, "not assigned to any site"},
		{site.ServiceStatus{Name: "dark", Active: "c"}, "stranded at c (dark): served nowhere"},
		{site.ServiceStatus{Name: "odd", Active: "b", Sites: []string{"a", "c"}}, "active at b, not one of its sites"},
		{site.ServiceStatus{Name: "lost", Active: "x"}, "active at x, not a site of the cluster"},
		{site.ServiceStatus{Name: "db", Active: "c"}, "stranded at c (dark): served nowhere; moving (op op-9)"},
		{site.ServiceStatus{Name: "web", Active: "a", Op: "op-9"}, "moving (op op-9)"},
	}
	ix.moving = movingServices(st.Ops, []site.ServiceStatus{{Name: "db"}, {Name: "web", Op: "op-9"}})
	for _, tt := range services {
		if got := strings.Join(ix.serviceProblems(tt.svc), "; "); got != tt.want {
			t.Errorf("service %s: %q, want %q", tt.svc.Name, got, tt.want)
		}
	}

	prefixes := []struct {
		svc  site.ServiceStatus
		want string
	}{
		{site.ServiceStatus{Name: "best-elsewhere", Active: "a", Prefixes: []string{"192.0.2.0/24"}}, "the upstream's best path leads to b, not to its active site a"},
		{site.ServiceStatus{Name: "tie", Active: "a", Prefixes: []string{"198.51.100.0/24"}}, "announced at b with no more prepends than at its active site a"},
		{site.ServiceStatus{Name: "missing", Active: "a", Prefixes: []string{"203.0.113.0/24"}}, "not announced by its active site a"},
		{site.ServiceStatus{Name: "unassigned", Prefixes: []string{"203.0.113.0/24"}}, "its service is assigned to no site"},
		{site.ServiceStatus{Name: "no-bgp-site", Active: "c", Prefixes: []string{"203.0.113.0/24"}}, ""},
	}
	for _, tt := range prefixes {
		rows := ix.prefixRows([]site.ServiceStatus{tt.svc})
		if got := strings.Join(rows[0].problems, "; "); got != tt.want {
			t.Errorf("prefix of %s: %q, want %q", tt.svc.Name, got, tt.want)
		}
	}
	if rows := newStatusIndex(site.Status{}).prefixRows([]site.ServiceStatus{{Name: "x", Prefixes: []string{"192.0.2.0/24"}}}); len(rows[0].problems) > 0 {
		t.Errorf("a cluster without BGP: prefix problems %q, want none", rows[0].problems)
	}

	guests := []struct {
		g    site.GuestStatus
		want bool
	}{
		{site.GuestStatus{Tier: "gold", State: "running", Host: "a1", RunningOn: []string{"a1"}}, false},
		{site.GuestStatus{Tier: "bronze", State: "preempted"}, false},
		{site.GuestStatus{Tier: "gold", State: "preempted"}, true},
		{site.GuestStatus{Tier: "silver", State: "unplaced"}, true},
		{site.GuestStatus{Tier: "silver", State: site.GuestStarting, Host: "a1"}, true},
		{site.GuestStatus{Tier: "bronze", State: "running", Host: "a1", RunningOn: []string{"a1", "b1"}}, true},
		{site.GuestStatus{Tier: "bronze", State: "preempted", RunningOn: []string{"b1"}}, true},
	}
	for _, tt := range guests {
		if got := guestHasProblem(tt.g); got != tt.want {
			t.Errorf("guest %+v: a problem %t, want %t", tt.g, got, tt.want)
		}
	}

	primary := site.MemberStatus{Site: "a", Role: "primary", Writable: true, Healthy: true}
	standby := site.MemberStatus{Site: "b", Role: "standby", Healthy: true}
	groups := []struct {
		members []site.MemberStatus
		want    string
	}{
		{[]site.MemberStatus{primary, standby}, ""},
		{[]site.MemberStatus{standby}, "no writable primary"},
		{[]site.MemberStatus{primary, {Site: "b", Role: "primary", Writable: true, Healthy: true}}, "2 writable members"},
		{[]site.MemberStatus{{Site: "a", Role: "primary", Writable: true}, standby}, "its writable primary at a is not healthy"},
		{nil, ""},
	}
	for _, tt := range groups {
		if got := groupProblem(site.GroupStatus{Group: "pg", Members: tt.members}); got != tt.want {
			t.Errorf("group %+v: %q, want %q", tt.members, got, tt.want)
		}
	}
}

// TestStatusJSONFilters: -o json is the whole status without a filter, and
// with one the items it keeps, the health and the alarms whole.
func TestStatusJSONFilters(t *testing.T) {
	st := largeStatus(6, 2, 1)
	st.Alarms = []site.Alarm{{Kind: site.AlarmGuestTwice, Severity: site.AlarmCritical, Subject: "svc-0000-vm0", Site: "a"}}
	marshal := func(st site.Status) []byte {
		t.Helper()
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if got := marshal(Filter{}.Cut(st)); !bytes.Equal(got, marshal(st)) {
		t.Errorf("no filter: the JSON differs from the whole status's")
	}
	view, err := (&statusFlags{sites: []string{"c"}}).view(largeConfig(6))
	if err != nil {
		t.Fatal(err)
	}
	var got site.Status
	if err := json.Unmarshal(marshal(view.Filter.Cut(st)), &got); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"sites", len(got.Sites), 1},
		{"services", len(got.Services), 2},
		{"guests", len(got.Guests), 2},
		{"announcements (of 4 prefixes, each at a and b)", len(got.Announcements), 8},
		{"upstream", len(got.Upstream), 4},
		{"replication groups", len(got.Replication), 6},
		{"members of a group", len(got.Replication[0].Members), 1},
		{"BGP sessions", len(got.Peers), 2},
		{"ops", len(got.Ops), 1},
		{"alarms", len(got.Alarms), 1},
		{"health", got.Health.State, st.Health.State},
		{"health reasons", len(got.Health.Reasons), len(st.Health.Reasons)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("-o json --site c: %s %v, want %v", c.what, c.got, c.want)
		}
	}
}

// TestStatusUnknownNames: a name the config does not have is a usage
// error that names it and the names there are, or how to see them.
func TestStatusUnknownNames(t *testing.T) {
	tests := []struct {
		name  string
		cfg   *config.Cluster
		flags statusFlags
		want  string
	}{
		{"a site", largeConfig(2), statusFlags{sites: []string{"a", "d"}}, `--site "d": unknown site (sites are a, b, c)`},
		{"a service", largeConfig(2), statusFlags{services: []string{"db"}}, `--service "db": unknown service (services are svc-0000, svc-0001)`},
		{"among many", largeConfig(1000), statusFlags{services: []string{"svc-0001", "svc-01"}},
			`--service "svc-01": unknown service (the config has 1000 services; zdt status --all lists them; those like it: svc-0100, svc-0101, svc-0102, svc-0103, svc-0104)`},
		{"none like it", largeConfig(1000), statusFlags{services: []string{"db"}}, `--service "db": unknown service (the config has 1000 services; zdt status --all lists them)`},
		{"no service at all", largeConfig(0), statusFlags{services: []string{"db"}}, `--service "db": unknown service (the config has no services)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.flags.view(tt.cfg)
			var nameErr *NameError
			if err == nil || err.Error() != tt.want || !errors.As(err, &nameErr) {
				t.Errorf("%v (%T); want a *NameError %q", err, err, tt.want)
			}
		})
	}
}

// BenchmarkStatusTable formats the table of 1,000 services, 10,000
// prefixes (20,000 announcements), 10,000 guests and 1,000 replication
// groups at three sites: by default (summarised) and with --all.
func BenchmarkStatusTable(b *testing.B) {
	st := largeStatus(1000, 10, 10)
	for _, bench := range []struct {
		name string
		view View
	}{
		{"summary", View{}},
		{"all", View{All: true}},
		{"problems", View{Filter: Filter{problems: true}}},
	} {
		b.Run(bench.name, func(b *testing.B) {
			var out bytes.Buffer
			for b.Loop() {
				out.Reset()
				if err := Write(&out, st, bench.view); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out.Len()), "bytes/table")
		})
	}
}
