package etcdmaint_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap/zaptest"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/etcdmaint"
	"github.com/zdt-project/zdt/site/sitetest"
)

// maintained is a test cluster with the maintainer of one member.
type maintained struct {
	etcd *sitetest.Cluster
	site string
	m    *etcdmaint.Maintainer
	reg  *prometheus.Registry
	// member is a client of the member alone, cluster of every member.
	member, cluster *clientv3.Client
}

// newMaintained builds the maintainer of the member of site (in etcd),
// with cfg's thresholds and a small FreeFloor, LockWait and Interval
// unless cfg sets them.
func newMaintained(t *testing.T, etcd *sitetest.Cluster, siteName string, cfg etcdmaint.Config) *maintained {
	t.Helper()
	x := &maintained{etcd: etcd, site: siteName, reg: prometheus.NewRegistry(),
		member: etcd.Client(etcd.Endpoint(siteName)), cluster: etcd.Client()}
	cfg.Member, cfg.Cluster, cfg.Registry = x.member, x.cluster, x.reg
	cfg.LockKey = site.NewKeys(etcd.Config.Name).DefragLock()
	cfg.ConstLabels = prometheus.Labels{"site": siteName}
	cfg.Log = zaptest.NewLogger(t)
	if cfg.FreeFloor == 0 {
		cfg.FreeFloor = 1 << 20
	}
	if cfg.LockWait == 0 {
		cfg.LockWait = 300 * time.Millisecond
	}
	if cfg.Interval == 0 {
		cfg.Interval = 20 * time.Millisecond
	}
	m, err := etcdmaint.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	x.m = m
	return x
}

// status reads the member's status.
func (x *maintained) status(t *testing.T) *clientv3.StatusResponse {
	t.Helper()
	st, err := x.member.Status(t.Context(), x.etcd.Endpoint(x.site))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// metric is the value of the metric with these labels (besides site).
func (x *maintained) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	fams, err := x.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"site": x.site}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(want) {
				continue
			}
			for _, l := range m.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s %v", name, want)
	return 0
}

// fragment writes n values of size bytes under prefix, deletes them and
// compacts etcd's history, and waits until the space they took shows free
// in every member's database (settle).
func fragment(t *testing.T, etcd *sitetest.Cluster, cl *clientv3.Client, prefix string, n, size int) {
	t.Helper()
	ctx := t.Context()
	val := strings.Repeat("x", size)
	for i := range n {
		if _, err := cl.Put(ctx, fmt.Sprintf("%s%04d", prefix, i), val); err != nil {
			t.Fatal(err)
		}
	}
	freeUp(t, cl, prefix)
	minFree := int64(n*size) * 3 / 4
	settle(t, etcd, cl, func(st *clientv3.StatusResponse) bool { return st.DbSize-st.DbSizeInUse >= minFree },
		func() error { _, err := cl.Put(ctx, "/touch", "x"); return err })
}

// settle makes etcd commit (touch writes) until every member's status
// satisfies done. bbolt frees the pages a commit released only at a later
// commit, which the sites' beats bring in production; a member of a
// test cluster that writes nothing more shows them in use.
func settle(t *testing.T, etcd *sitetest.Cluster, cl *clientv3.Client, done func(*clientv3.StatusResponse) bool, touch func() error) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last []*clientv3.StatusResponse
	for range 250 {
		last = last[:0]
		for _, s := range etcd.Config.Sites {
			st, err := cl.Status(t.Context(), s.Etcd.ClientURL)
			if err != nil {
				t.Fatal(err)
			}
			if !done(st) {
				last = append(last, st)
			}
		}
		if len(last) == 0 {
			return
		}
		if err := touch(); err != nil {
			t.Fatal(err)
		}
		<-tick.C
	}
	t.Fatalf("members not settled in 5s: %+v", last)
}

// freeUp deletes every key under prefix and compacts etcd's history, its
// physical part done.
func freeUp(t *testing.T, cl *clientv3.Client, prefix string) {
	t.Helper()
	del, err := cl.Delete(t.Context(), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Compact(t.Context(), del.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
}

// TestMetricsMatchStatus: a pass exports the sizes the member's status
// gives, the quota etcd applies when none is set (2 GiB), no alarm, and
// defragments nothing when the free space is under the floor.
func TestMetricsMatchStatus(t *testing.T) {
	etcd := sitetest.New(t, sitetest.Options{})
	x := newMaintained(t, etcd, "b", etcdmaint.Config{FreeFloor: 1 << 30})
	// A new member still writes its own records for a moment: compare
	// once its database stood still around a pass.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var st *clientv3.StatusResponse
	for i := 0; ; i++ {
		before := x.status(t)
		if o := x.m.Pass(t.Context()); o.Err != nil || o.Defrag != "" {
			t.Fatalf("pass: %+v", o)
		}
		st = x.status(t)
		if st.DbSize == before.DbSize && st.DbSizeInUse == before.DbSizeInUse {
			break
		}
		if i == 250 {
			t.Fatalf("the member's database did not stand still in 5s: %+v", st)
		}
		<-tick.C
	}
	for _, c := range []struct {
		name string
		want int64
	}{
		{"zdt_etcd_db_size_bytes", st.DbSize},
		{"zdt_etcd_db_size_in_use_bytes", st.DbSizeInUse},
		{"zdt_etcd_quota_bytes", 2 << 30},
	} {
		if got := x.metric(t, c.name); got != float64(c.want) {
			t.Errorf("%s = %v; want %d (status: %+v)", c.name, got, c.want, st)
		}
	}
	if st.DbSizeQuota != 2<<30 || st.DbSize == 0 || st.DbSizeInUse == 0 {
		t.Errorf("status %+v: want a database and the default quota, 2 GiB", st)
	}
	for _, a := range []string{"NOSPACE", "CORRUPT"} {
		if got := x.metric(t, "zdt_etcd_alarm", "alarm", a); got != 0 {
			t.Errorf("zdt_etcd_alarm{alarm=%q} = %v; want 0", a, got)
		}
	}
	for _, r := range []string{"ok", "failed", "no_lock", "too_long"} {
		if got := x.metric(t, "zdt_etcd_defrags_total", "result", r); got != 0 {
			t.Errorf("zdt_etcd_defrags_total{result=%q} = %v; want 0", r, got)
		}
	}
	if got := x.metric(t, "zdt_etcd_maintenance_errors_total"); got != 0 {
		t.Errorf("zdt_etcd_maintenance_errors_total = %v; want 0", got)
	}
}

// TestRunDefragments: once a few MB were written, deleted and compacted
// away, the loop defragments its member: its database shrinks, and the
// metrics say so.
func TestRunDefragments(t *testing.T) {
	etcd := sitetest.New(t, sitetest.Options{})
	passes := make(chan etcdmaint.Outcome, 1000)
	x := newMaintained(t, etcd, "a", etcdmaint.Config{Passed: func(o etcdmaint.Outcome) {
		select {
		case passes <- o:
		default: // the test looks at the first ones only
		}
	}})
	fragment(t, etcd, x.cluster, "/frag/", 32, 128<<10)
	before := x.status(t)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- x.m.Run(ctx) }()
	var o etcdmaint.Outcome
	timeout := time.After(30 * time.Second)
	for o.Defrag != etcdmaint.DefragOK {
		select {
		case o = <-passes:
			if o.Err != nil || (o.Defrag != "" && o.Defrag != etcdmaint.DefragOK) {
				t.Fatalf("pass: %+v", o)
			}
		case <-timeout:
			t.Fatal("no defragmentation in 30s")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}

	after := x.status(t)
	if after.DbSize >= before.DbSize-3<<20 || o.After.DB != after.DbSize {
		t.Errorf("database %d bytes before, %d after (the pass saw %+v); want 3 MiB less", before.DbSize, after.DbSize, o.After)
	}
	if got := x.metric(t, "zdt_etcd_db_size_bytes"); got != float64(after.DbSize) {
		t.Errorf("zdt_etcd_db_size_bytes = %v; want %d", got, after.DbSize)
	}
	if got := x.metric(t, "zdt_etcd_defrags_total", "result", "ok"); got != 1 {
		t.Errorf("zdt_etcd_defrags_total{result=ok} = %v; want 1", got)
	}
}

// TestNoDefragWithoutTheLock: while another holds the lock, a pass does
// not defragment, and leaves no key of its own under the lock; once the
// lock is free, the next one does.
func TestNoDefragWithoutTheLock(t *testing.T) {
	etcd := sitetest.New(t, sitetest.Options{})
	x := newMaintained(t, etcd, "a", etcdmaint.Config{})
	fragment(t, etcd, x.cluster, "/frag/", 32, 128<<10)
	lockKey := site.NewKeys(etcd.Config.Name).DefragLock()
	other, err := concurrency.NewSession(etcd.Client(etcd.Endpoint("c")), concurrency.WithTTL(10))
	if err != nil {
		t.Fatal(err)
	}
	held := concurrency.NewMutex(other, lockKey)
	if err := held.Lock(t.Context()); err != nil {
		t.Fatal(err)
	}

	before := x.status(t)
	o := x.m.Pass(t.Context())
	if o.Defrag != etcdmaint.DefragNoLock || o.Err != nil {
		t.Fatalf("pass with the lock held elsewhere: %+v; want %s", o, etcdmaint.DefragNoLock)
	}
	if st := x.status(t); st.DbSize < before.DbSize {
		t.Errorf("database %d bytes, %d before: defragmented without the lock", st.DbSize, before.DbSize)
	}
	if got := x.metric(t, "zdt_etcd_defrags_total", "result", "no_lock"); got != 1 {
		t.Errorf("zdt_etcd_defrags_total{result=no_lock} = %v; want 1", got)
	}
	keys, err := x.cluster.Get(t.Context(), lockKey, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.Kvs) != 1 || string(keys.Kvs[0].Key) != held.Key() {
		t.Errorf("keys under the lock: %v; want only the holder's %s", keys.Kvs, held.Key())
	}

	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if o := x.m.Pass(t.Context()); o.Defrag != etcdmaint.DefragOK || o.After.DB >= before.DbSize {
		t.Fatalf("pass with the lock free: %+v; want a defragmentation", o)
	}
	keys, err = x.cluster.Get(t.Context(), lockKey, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || keys.Count != 0 {
		t.Errorf("%d keys under the lock after the defragmentation (%v); want it released", keys.Count, err)
	}
}

// TestNoDefragTooLong: a defragmentation that would stop the member
// longer than MaxBlock is not started.
func TestNoDefragTooLong(t *testing.T) {
	etcd := sitetest.New(t, sitetest.Options{})
	x := newMaintained(t, etcd, "a", etcdmaint.Config{MaxBlock: time.Microsecond})
	fragment(t, etcd, x.cluster, "/frag/", 32, 128<<10)
	before := x.status(t)
	for range 2 {
		if o := x.m.Pass(t.Context()); o.Defrag != etcdmaint.DefragTooLong || o.Err != nil {
			t.Fatalf("pass: %+v; want %s", o, etcdmaint.DefragTooLong)
		}
	}
	if st := x.status(t); st.DbSize < before.DbSize {
		t.Errorf("database %d bytes, %d before: defragmented", st.DbSize, before.DbSize)
	}
	if got := x.metric(t, "zdt_etcd_defrags_total", "result", "too_long"); got != 2 {
		t.Errorf("zdt_etcd_defrags_total{result=too_long} = %v; want 2", got)
	}
}

// quota is the test clusters' database quota for NOSPACE.
const quota = 8 << 20

// fillToNoSpace writes under prefix until etcd refuses a write for want
// of space, and waits until it holds the NOSPACE alarm.
func fillToNoSpace(t *testing.T, cl *clientv3.Client, prefix string) {
	t.Helper()
	ctx := t.Context()
	val := strings.Repeat("x", 256<<10)
	for i := 0; ; i++ {
		if i == 4*quota/len(val) {
			t.Fatalf("%d values of %d bytes written, and no NOSPACE", i, len(val))
		}
		_, err := cl.Put(ctx, fmt.Sprintf("%s%04d", prefix, i), val)
		if errors.Is(err, rpctypes.ErrNoSpace) {
			break
		}
		if err != nil {
			t.Fatalf("write %d: %v; want NOSPACE in time", i, err)
		}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for range 250 {
		if len(noSpaceAlarms(t, cl)) > 0 {
			return
		}
		<-tick.C
	}
	t.Fatal("a write was refused for want of space, and no NOSPACE alarm was raised in 5s")
}

// noSpaceAlarms lists the members that hold the NOSPACE alarm.
func noSpaceAlarms(t *testing.T, cl *clientv3.Client) []uint64 {
	t.Helper()
	resp, err := cl.AlarmList(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, a := range resp.Alarms {
		if a.Alarm == etcdserverpb.AlarmType_NOSPACE {
			ids = append(ids, a.MemberID)
		}
	}
	return ids
}

// TestNoSpaceCleared: at its quota, etcd raises NOSPACE and refuses
// writes. Once the data is deleted and compacted away, the members' loops
// defragment them, without the lock (etcd would not grant it), and clear
// the alarm: etcd takes writes again.
func TestNoSpaceCleared(t *testing.T) {
	etcd := sitetest.New(t, sitetest.Options{QuotaBackendBytes: quota})
	var xs []*maintained
	for _, s := range []string{"a", "b", "c"} {
		// Half the quota: at NOSPACE, the data in use may be just
		// under 80%.
		xs = append(xs, newMaintained(t, etcd, s, etcdmaint.Config{NoSpaceTarget: 0.5}))
	}
	cl := xs[0].cluster
	// At NOSPACE, deletes are the writes etcd takes: settle deletes these.
	const spares = 200
	for i := range spares {
		if _, err := cl.Put(t.Context(), fmt.Sprintf("/spare/%03d", i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	fillToNoSpace(t, cl, "/fill/")
	if o := xs[0].m.Pass(t.Context()); o.Disarmed || o.Defrag != "" || len(noSpaceAlarms(t, cl)) == 0 {
		t.Fatalf("pass with the data still there: %+v; want nothing done", o)
	}
	if got := xs[0].metric(t, "zdt_etcd_alarm", "alarm", "NOSPACE"); got != 1 {
		t.Errorf("zdt_etcd_alarm{alarm=NOSPACE} = %v at the quota; want 1", got)
	}
	if got := xs[0].metric(t, "zdt_etcd_quota_bytes"); got != quota {
		t.Errorf("zdt_etcd_quota_bytes = %v; want %d", got, quota)
	}

	freeUp(t, cl, "/fill/")
	spare := 0
	settle(t, etcd, cl, func(st *clientv3.StatusResponse) bool { return st.DbSizeInUse < quota/4 }, func() error {
		if spare == spares {
			return errors.New("no spare key left to delete")
		}
		_, err := cl.Delete(t.Context(), fmt.Sprintf("/spare/%03d", spare))
		spare++
		return err
	})
	var disarmed, defragmented int
	for round := 0; len(noSpaceAlarms(t, cl)) > 0; round++ {
		if round == 3 {
			t.Fatalf("NOSPACE still raised after %d rounds of passes", round)
		}
		for _, x := range xs {
			o := x.m.Pass(t.Context())
			if o.Err != nil {
				t.Fatalf("site %s's pass: %+v", x.site, o)
			}
			if o.Disarmed {
				disarmed++
			}
			if o.Defrag == etcdmaint.DefragOK {
				defragmented++
			}
		}
	}
	if disarmed == 0 || defragmented == 0 {
		t.Errorf("%d alarms cleared, %d members defragmented; want some of each", disarmed, defragmented)
	}
	if _, err := cl.Put(t.Context(), "/after", "ok"); err != nil {
		t.Errorf("write after the alarm was cleared: %v", err)
	}
	for _, x := range xs {
		if st := x.status(t); st.DbSize >= quota/2 {
			t.Errorf("site %s's database is %d bytes, over half the quota %d", x.site, st.DbSize, quota)
		}
		x.m.Pass(t.Context())
		if got := x.metric(t, "zdt_etcd_alarm", "alarm", "NOSPACE"); got != 0 {
			t.Errorf("site %s: zdt_etcd_alarm{alarm=NOSPACE} = %v once cleared; want 0", x.site, got)
		}
	}
}

// TestNewChecksConfig: the member client must have one endpoint.
func TestNewChecksConfig(t *testing.T) {
	cl, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, err = etcdmaint.New(etcdmaint.Config{Member: cl, Cluster: cl, LockKey: "/l", Registry: prometheus.NewRegistry()})
	if err == nil || !strings.Contains(err.Error(), "one endpoint") {
		t.Errorf("New with two endpoints: %v; want refused", err)
	}
}
