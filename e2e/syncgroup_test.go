package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/e2e/lab"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// TestLabSyncGroupSiteLoss is the acceptance of a synchronous group: site
// loss, then failback, then --switch-back, back to the original layout;
// every acknowledged write is present; the fenced site serves nothing
// before the failback.
//
//  1. A lab made with `zdt lab --synchronous`: db's primary, at b, waits
//     for a synchronous standby (synchronous_standby_names set, one standby
//     in state sync or quorum).
//  2. A prober writes to every member every 10 ms and records each write
//     acknowledged (only the writable member takes them); a sampler lists
//     every hypervisor's domains every 20 ms. b goes down whole (`zdt lab
//     site b down`). The failover op succeeds, db moves on, the writes
//     resume at its new site, and that site's server holds every write
//     acknowledged so far: none lost. Never two writable members, never a
//     guest at two sites.
//  3. b comes back (`zdt lab site b up`) fenced and serves nothing until
//     its failback: from its return until `zdt failback` is run, the
//     prober's writes there are refused and the sampler sees no guest
//     running there; the cluster's etcd history from its return until its
//     fence is lifted (replayed afterwards) holds no report of b with a
//     writable member, an announced prefix or a running guest, and no path
//     of the route observer from b.
//  4. `zdt failback --site b --switch-back --wait`: the fence is lifted and
//     db switched back. The layout is the original one: every service
//     active where it was (db at b), b's member the writable primary again,
//     waiting for a synchronous standby, the others its standbys, every
//     prefix leading to its service's site. b holds every acknowledged
//     write, before and after.
//
// It logs a line of figures: the write outage of the failover and of the
// switch-back, the writes acknowledged, and how many were lost.
func TestLabSyncGroupSiteLoss(t *testing.T) {
	zdt, l := startSyncLab(t, "127.0.10.0")
	guests := followGuests(t, zdt, l)
	pg := followPostgres(t, zdt, l)
	if guests.cfg == nil || pg.group == "" {
		t.Skip("needs libvirtd and PostgreSQL (installed by make test)")
	}
	cfg := guests.cfg
	if i := slices.IndexFunc(cfg.Replication, func(g config.ReplicationGroup) bool { return g.Name == pg.group }); i < 0 || !cfg.Replication[i].Synchronous {
		t.Fatalf("zdt lab --synchronous: group %s is not synchronous:\n%s", pg.group, readFile(l.ConfigPath()))
	}
	db, ok := cfg.Service("db")
	if !ok || db.ReplicationGroup != pg.group {
		t.Fatalf("the lab has no service db on group %s: %+v", pg.group, db)
	}
	dark := l.PostgresPrimarySite() // db's preferred site, its first primary
	var stay []string
	for _, s := range l.SiteNames() {
		if s != dark {
			stay = append(stay, s)
		}
	}
	keys := site.NewKeys(l.Cluster())
	cli := etcdClient(t, l, stay...)
	conns := postgresConns(t, l)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Second)
	defer cancel()

	// 1. The original layout, synchronous.
	original := map[string]string{}
	for _, s := range l.SiteNames() {
		original[s] = "standby"
	}
	original[dark] = "primary"
	waitKey(ctx, t, cli, keys.Assignment("db"), func(int64) bool { return true })
	guests.waitAllRunning(ctx, t, cli)
	pg.waitRoles(ctx, t, cli, original)
	layout := map[string]string{} // service -> its active site
	waitStatus(ctx, t, cli, zdt, l, "db at "+dark+", every prefix leading to its service's site", func(st labStatus) []string {
		wrong := append(upstreamAtActive(st), st.activeAt("db", dark)...)
		for _, svc := range st.Services {
			if layout[svc.Name] = svc.Active; svc.Active == "" {
				wrong = append(wrong, "service "+svc.Name+" is not active anywhere")
			}
		}
		return wrong
	})
	syncBefore := waitSyncPrimary(ctx, t, conns[dark])
	pg.write(ctx, t, dark, "before")
	for _, s := range stay {
		pg.waitRow(ctx, t, s, "before")
	}
	gold := goldAt(ctx, t, guests, cli, dark)

	// 2. The prober and the sampler record from outside; dark goes down.
	h := newHistory()
	hctx, stopRecording := context.WithCancel(ctx)
	writers := probeWrites(hctx, h, conns, 10*time.Millisecond)
	sampler := sampleGuests(hctx, t, h, cfg, 20*time.Millisecond)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopRecording()
			writers.Wait()
			sampler.Wait()
		}
	}
	defer stop()
	waitWritesSince(ctx, t, h, dark, time.Time{}, 50)

	faultAt := time.Now()
	run(t, zdt, "lab", "site", dark, "down", "--dir", l.Dir())
	op := waitFailoverOp(ctx, t, cli, keys, dark)
	to := assignedSite(ctx, t, cli, keys, "db")
	if to == dark || !slices.Contains(stay, to) {
		t.Fatalf("after the failover of %s, db is assigned to %q", dark, to)
	}
	waitWritesSince(ctx, t, h, to, faultAt, 50)
	guests.waitGoldElsewhere(ctx, t, cli, dark)
	acked := h.keys("writes", time.Time{})
	lostFailover := missingWrites(ctx, t, pg, to, acked)
	if len(lostFailover) > 0 {
		t.Errorf("%d of %d acknowledged writes are missing at the new primary %s after the failover of %s: %s",
			len(lostFailover), len(acked), to, dark, describeWrites(h, lostFailover, faultAt))
	}

	// 3. dark comes back, fenced: it serves nothing until its failback.
	upRev, err := revision(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	upAt := time.Now()
	refusedBefore := failures(h, "write at "+dark)
	run(t, zdt, "lab", "site", dark, "up", "--dir", l.Dir())
	back := maps.Clone(original)
	back[dark], back[to] = "standby", "primary"
	pg.waitRoles(ctx, t, cli, back)
	pg.waitRow(ctx, t, dark, "before")
	waitStreaming(ctx, t, conns[dark])
	guests.waitNoneAt(ctx, t, cli, dark, upRev) // its report, zdt status and its libvirtd: no guest; fenced
	waitAnnouncesNothing(ctx, t, cli, keys, dark, upRev)
	waitUntil(ctx, t, cli, keys, "the prober's writes at "+dark+" are refused", func() ([]string, error) {
		if failures(h, "write at "+dark) < refusedBefore+20 {
			return []string{"fewer than 20 writes refused by " + dark + "'s server since it came back"}, nil
		}
		return nil, nil
	})
	h.waitRounds(ctx, t, 25) // and it stays so for a while
	waitUntil(ctx, t, cli, keys, "site "+dark+" may fail back", func() ([]string, error) {
		out, err := exec.CommandContext(ctx, zdt, "failback", "--site", dark, "--dry-run", "--config", l.ConfigPath()).CombinedOutput()
		if err != nil {
			return []string{fmt.Sprintf("zdt failback --site %s --dry-run: %v\n%s", dark, err, out)}, nil
		}
		return nil, nil
	})
	st := status(t, zdt, l)
	st.wantSite(t, dark, "fenced")
	st.wantService(t, "db", to)

	// 4. Failback and switch-back.
	askedAt := time.Now()
	out := run(t, zdt, "failback", "--site", dark, "--switch-back", "--wait", "--timeout", "80s", "--config", l.ConfigPath())
	switchedIn := time.Since(askedAt)
	if !strings.Contains(out, "switchover") || !strings.Contains(out, "succeeded") {
		t.Errorf("zdt failback --site %s --switch-back did not say it switched db back:\n%s", dark, out)
	}
	pg.waitRoles(ctx, t, cli, original)
	waitStatus(ctx, t, cli, zdt, l, fmt.Sprintf("the services at %v again, every prefix leading to its service's site", layout), func(st labStatus) []string {
		wrong := upstreamAtActive(st)
		for svc, at := range layout {
			wrong = append(wrong, st.activeAt(svc, at)...)
		}
		return wrong
	})
	syncAgain := waitSyncPrimary(ctx, t, conns[dark])
	waitWritesSince(ctx, t, h, dark, askedAt, 50)
	stop()

	// What dark did from its return until its fence was lifted.
	for _, w := range servedWhileFenced(ctx, t, cli, keys, dark, upRev) {
		t.Errorf("site %s served while fenced: %s", dark, w)
	}
	for _, w := range seenAt(h, dark, upAt, askedAt) {
		t.Errorf("site %s served while fenced: %s", dark, w)
	}

	// Never two writable members, never a guest at two sites: in the
	// failover, then in the switch-back.
	failover, switchBack := historyBetween(h, time.Time{}, askedAt), historyBetween(h, askedAt, time.Time{})
	for _, ph := range []struct {
		name  string
		h     *history
		sites []string
	}{
		{"failover", failover, []string{dark, to}},
		{"switch-back", switchBack, []string{to, dark}},
	} {
		if got := ph.h.sites("writes"); !slices.Equal(got, ph.sites) {
			t.Errorf("in the %s, writes were acknowledged at %v; want at %v in turn", ph.name, got, ph.sites)
		}
		problems, _ := ph.h.overlaps("writes")
		for _, p := range problems {
			t.Errorf("in the %s, two writable members: a write %s", ph.name, p)
		}
	}
	for _, g := range cfg.Guests() {
		problems, _ := failover.overlaps("guest " + g.Name)
		for _, p := range problems {
			t.Errorf("in the failover, a guest at two sites: %s", p)
		}
	}
	for _, g := range gold {
		if failover.firstAway("guest "+g, dark, faultAt).IsZero() {
			t.Errorf("gold guest %s was not seen running away from %s", g, dark)
		}
	}

	// Every write acknowledged, before and after, is at the primary.
	all := h.keys("writes", time.Time{})
	lost := missingWrites(ctx, t, pg, dark, all)
	if len(lost) > 0 {
		t.Errorf("%d of %d acknowledged writes are missing at %s after the switch-back: %s",
			len(lost), len(all), dark, describeWrites(h, lost, faultAt))
	}
	h.mu.Lock()
	t.Logf("history: %d sampler rounds, %d acknowledged writes; failures %v", h.rounds, len(h.seen["writes"]), h.errs)
	h.mu.Unlock()
	// From the fault: the failover op's end, its new primary reported
	// writable (await-primary), the first write acknowledged there. From
	// the failback command: the switchover's new primary reported
	// writable, the first write acknowledged at dark.
	ms := func(from, at time.Time) int64 {
		if at.IsZero() {
			return -1
		}
		return at.Sub(from).Milliseconds()
	}
	switchover := opSince(ctx, t, cli, keys, "switchover", askedAt)
	t.Logf("figures: synchronous group %s (standbys %v, after the switch-back %v), site %s down: failover_ms=%d promoted_ms=%d first_write_ms=%d write_outage_ms=%d acked=%d lost=%d; "+
		"failback --switch-back to %s: command_ms=%d promoted_ms=%d first_write_ms=%d write_outage_ms=%d acked_total=%d lost_total=%d",
		pg.group, syncBefore, syncAgain, dark,
		ms(faultAt, op.Ended), ms(faultAt, stepEnded(op, "await-primary")), ms(faultAt, h.firstAt("writes", to, faultAt)),
		failover.gap("writes").Milliseconds(), len(acked), len(lostFailover),
		dark, switchedIn.Milliseconds(), ms(askedAt, stepEnded(switchover, "await-primary")), ms(askedAt, h.firstAt("writes", dark, askedAt)),
		switchBack.gap("writes").Milliseconds(), len(all), len(lost))
}

// opSince is the first op of the kind created since a time, nil if none.
func opSince(ctx context.Context, t *testing.T, cli *clientv3.Client, keys site.Keys, kind string, since time.Time) *site.Op {
	t.Helper()
	resp, err := cli.Get(ctx, keys.Ops(), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var found *site.Op
	for _, kv := range resp.Kvs {
		var op site.Op
		if err := json.Unmarshal(kv.Value, &op); err != nil {
			t.Fatalf("op %s: %v", kv.Key, err)
		}
		if op.Kind == kind && !op.Created.Before(since) && (found == nil || op.Created.Before(found.Created)) {
			found = &op
		}
	}
	return found
}

// stepEnded is when the op's first step of that name ended; zero if there
// is none.
func stepEnded(op *site.Op, name string) time.Time {
	if op == nil {
		return time.Time{}
	}
	if st := stepNamed(op, name); st != nil {
		return st.Ended
	}
	return time.Time{}
}

// startSyncLab is startLab with `zdt lab --synchronous`.
func startSyncLab(t *testing.T, network string) (zdt string, l *lab.Lab) {
	t.Helper()
	zdt, l, out := startLabSaying(t, network, "--synchronous")
	if l.HasPostgres() && !strings.Contains(out, "replicates synchronously") {
		t.Errorf("zdt lab --synchronous does not say the group replicates synchronously:\n%s", out)
	}
	return zdt, l
}

// goldAt lists the gold guests placed at the site; there must be one.
func goldAt(ctx context.Context, t *testing.T, g *labGuests, cli *clientv3.Client, siteName string) []string {
	t.Helper()
	var gold []string
	for _, name := range guestsPlacedAt(ctx, t, g, cli, siteName) {
		if guest, ok := g.guest(name); ok && guest.Tier == config.TierGold {
			gold = append(gold, name)
		}
	}
	if len(gold) == 0 {
		t.Fatalf("no gold guest runs at %s: the test would not see guests move", siteName)
	}
	return gold
}

// waitSyncPrimary waits until the server is a primary that waits for a
// synchronous standby before it acknowledges a commit: its
// synchronous_standby_names is set and a standby streams in state sync or
// quorum. It returns those standbys.
func waitSyncPrimary(ctx context.Context, t *testing.T, conn string) []string {
	t.Helper()
	var standbys []string
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		wrong := func() string {
			qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			c, err := pgx.Connect(qctx, conn)
			if err != nil {
				return err.Error()
			}
			defer c.Close(context.WithoutCancel(ctx))
			var names string
			var recovery bool
			err = c.QueryRow(qctx, `SELECT current_setting('synchronous_standby_names'), pg_is_in_recovery(),
				ARRAY(SELECT application_name FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum') ORDER BY 1)`).
				Scan(&names, &recovery, &standbys)
			switch {
			case err != nil:
				return err.Error()
			case recovery:
				return "it is a standby"
			case names == "":
				return "synchronous_standby_names is empty: it replicates asynchronously"
			case len(standbys) == 0:
				return fmt.Sprintf("synchronous_standby_names is %q, and no standby streams synchronously", names)
			}
			return ""
		}()
		if wrong == "" {
			return standbys
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for a synchronous primary: %s", wrong)
		case <-tick.C:
		}
	}
}

// writesAt counts the writes acknowledged at the site that began since a
// time.
func writesAt(h *history, siteName string, since time.Time) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, s := range h.seen["writes"] {
		if s.site == siteName && !s.start.Before(since) {
			n++
		}
	}
	return n
}

// waitWritesSince waits, through the sampler's rounds, until n writes
// begun since a time were acknowledged at the site.
func waitWritesSince(ctx context.Context, t *testing.T, h *history, siteName string, since time.Time, n int) {
	t.Helper()
	for writesAt(h, siteName, since) < n {
		if ctx.Err() != nil {
			t.Fatalf("fewer than %d writes acknowledged at %s since %s: %v", n, siteName, since.Format("15:04:05.000"), ctx.Err())
		}
		h.waitRounds(ctx, t, 1)
	}
}

// failures is how often the prober's or sampler's attempt failed.
func failures(h *history, what string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.errs[what]
}

// historyBetween is the part of the history whose sightings began in
// [from, to); a zero to has no end.
func historyBetween(h *history, from, to time.Time) *history {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := newHistory()
	for subject, ss := range h.seen {
		for _, s := range ss {
			if !s.start.Before(from) && (to.IsZero() || s.start.Before(to)) {
				out.seen[subject] = append(out.seen[subject], s)
			}
		}
	}
	return out
}

// seenAt lists what the prober and the sampler saw the site do in
// [from, to]: a write acknowledged, a guest running.
func seenAt(h *history, siteName string, from, to time.Time) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for subject, ss := range h.seen {
		for _, s := range ss {
			if s.site == siteName && !s.end.Before(from) && !s.start.After(to) {
				out = append(out, fmt.Sprintf("%s seen at %s during [%s, %s]", subject, siteName,
					s.start.Format("15:04:05.000"), s.end.Format("15:04:05.000")))
			}
		}
	}
	slices.Sort(out)
	return out
}

// assignedSite is the site a service is assigned to now.
func assignedSite(ctx context.Context, t *testing.T, cli *clientv3.Client, keys site.Keys, service string) string {
	t.Helper()
	resp, err := cli.Get(ctx, keys.Assignment(service))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		t.Fatalf("service %s has no assignment", service)
	}
	var a site.Assignment
	if err := json.Unmarshal(resp.Kvs[0].Value, &a); err != nil {
		t.Fatal(err)
	}
	return a.Site
}

// missingWrites lists the writes the site's server does not hold.
func missingWrites(ctx context.Context, t *testing.T, p *labPostgres, siteName string, values []string) []string {
	t.Helper()
	c := p.connect(ctx, t, siteName)
	defer c.Close(context.WithoutCancel(ctx))
	rows, err := c.Query(ctx, `SELECT a.v FROM unnest($1::text[]) AS a(v)
		WHERE NOT EXISTS (SELECT 1 FROM lab_probe p WHERE p.value = a.v) ORDER BY 1`, values)
	if err != nil {
		t.Fatalf("site %s's PostgreSQL: %v", siteName, err)
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("site %s's PostgreSQL: %v", siteName, err)
	}
	return missing
}

// describeWrites says, for up to 10 writes, where and when (relative to a
// time) each was acknowledged.
func describeWrites(h *history, values []string, since time.Time) string {
	want := map[string]bool{}
	for _, v := range values {
		want[v] = true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, s := range h.seen["writes"] {
		if want[s.key] && len(out) < 10 {
			out = append(out, fmt.Sprintf("%s at %s acknowledged %dms after the fault", s.key, s.site, s.end.Sub(since).Milliseconds()))
		}
	}
	return strings.Join(out, "; ")
}

// waitAnnouncesNothing waits until the site's BGP report, written since
// revision since, shows its session with the route observer established
// and no prefix announced, and the observer holds no path from the site.
func waitAnnouncesNothing(ctx context.Context, t *testing.T, cli *clientv3.Client, keys site.Keys, name string, since int64) {
	t.Helper()
	waitUntil(ctx, t, cli, keys, "site "+name+" has its BGP session up and announces nothing", func() ([]string, error) {
		resp, err := cli.Get(ctx, keys.SiteBGP(name))
		if err != nil {
			return nil, err
		}
		if len(resp.Kvs) == 0 || resp.Kvs[0].ModRevision <= since {
			return []string{fmt.Sprintf("no BGP report of site %s since revision %d", name, since)}, nil
		}
		var r site.BGPReport
		if err := json.Unmarshal(resp.Kvs[0].Value, &r); err != nil {
			return nil, err
		}
		var wrong []string
		if !slices.ContainsFunc(r.Peers, func(p site.BGPPeer) bool { return p.State == "established" }) {
			wrong = append(wrong, fmt.Sprintf("site %s has no established session: %+v", name, r.Peers))
		}
		announced, err := cli.Get(ctx, keys.SiteAnnouncedPrefix(name), clientv3.WithPrefix())
		if err != nil {
			return nil, err
		}
		for _, kv := range announced.Kvs {
			var r site.ServiceAnnouncements
			if err := json.Unmarshal(kv.Value, &r); err != nil {
				return nil, err
			}
			for _, a := range r.Announcements {
				wrong = append(wrong, fmt.Sprintf("site %s announces %s of %s", name, a.Prefix, a.Service))
			}
		}
		routes, err := cli.Get(ctx, keys.Upstream(), clientv3.WithPrefix())
		if err != nil {
			return nil, err
		}
		for _, kv := range routes.Kvs {
			var u site.UpstreamRoute
			if err := json.Unmarshal(kv.Value, &u); err != nil {
				return nil, err
			}
			for _, p := range u.Paths {
				if p.Site == name {
					wrong = append(wrong, fmt.Sprintf("the route observer holds a path to %s from site %s", u.Prefix, name))
				}
			}
		}
		return wrong, nil
	})
}

// servedWhileFenced replays the cluster's history in etcd from revision
// since+1 until the fence of the site is deleted (its failback), and lists
// every record there that shows the site serving: its replication report
// with a writable member, its BGP report with a prefix announced, its
// hosts' report with a guest running, a path of the route observer
// leading to it. The history is compacted only after an hour.
func servedWhileFenced(ctx context.Context, t *testing.T, cli *clientv3.Client, keys site.Keys, name string, since int64) []string {
	t.Helper()
	var wrong []string
	reports := map[string]int{}
	note := func(rev int64, format string, args ...any) {
		if len(wrong) < 20 {
			wrong = append(wrong, fmt.Sprintf("revision %d: ", rev)+fmt.Sprintf(format, args...))
		}
	}
	next := since + 1
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for wctx.Err() == nil {
		for resp := range cli.Watch(clientv3.WithRequireLeader(wctx), keys.Root(), clientv3.WithPrefix(), clientv3.WithRev(next)) {
			if err := resp.Err(); err != nil {
				t.Logf("watch %s from revision %d: %v", keys.Root(), next, err)
				break
			}
			for _, ev := range resp.Events {
				next = ev.Kv.ModRevision + 1
				key, rev := string(ev.Kv.Key), ev.Kv.ModRevision
				if ev.Type == clientv3.EventTypeDelete {
					if key == keys.Fence(name) {
						t.Logf("site %s's fence was lifted at revision %d; its reports meanwhile: %v", name, rev, reports)
						return wrong
					}
					continue
				}
				var err error
				switch {
				case key == keys.SiteReplication(name):
					reports["replication"]++
					var r site.ReplicationReport
					if err = json.Unmarshal(ev.Kv.Value, &r); err == nil {
						for _, m := range r.Members {
							if m.Writable {
								note(rev, "its member of group %s is a writable %s (%s)", m.Group, m.Role, m.Detail)
							}
						}
					}
				case key == keys.SiteBGP(name):
					reports["bgp"]++
				case strings.HasPrefix(key, keys.SiteAnnouncedPrefix(name)):
					reports["bgp"]++
					var r site.ServiceAnnouncements
					if err = json.Unmarshal(ev.Kv.Value, &r); err == nil {
						for _, a := range r.Announcements {
							note(rev, "it announces %s of %s (%d prepends)", a.Prefix, a.Service, a.Prepends)
						}
					}
				case key == keys.Hosts(name):
					reports["hosts"]++
				case strings.HasPrefix(key, keys.SiteHostPrefix(name)):
					reports["hosts"]++
					var h site.HostReport
					if err = json.Unmarshal(ev.Kv.Value, &h); err == nil {
						for _, g := range h.Running {
							note(rev, "its host %s runs guest %s", h.Name, g.Name)
						}
					}
				case strings.HasPrefix(key, keys.Upstream()):
					var u site.UpstreamRoute
					if err = json.Unmarshal(ev.Kv.Value, &u); err == nil {
						for _, p := range u.Paths {
							if p.Site == name {
								note(rev, "the route observer holds a path to %s from it (best %t)", u.Prefix, p.Best)
							}
						}
					}
				}
				if err != nil {
					t.Errorf("revision %d: %s: %v", rev, key, err)
				}
			}
		}
	}
	t.Fatalf("replaying etcd from revision %d: no deletion of %s's fence: %v", since+1, name, ctx.Err())
	return wrong
}
