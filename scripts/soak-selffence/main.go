// Command soak-selffence checks that healthy sites do not fence themselves
// on a busy machine. It runs the three-site lab (bin/zdt, lab timings) with
// delay lines on the etcd links between the sites and the machine's CPUs
// saturated by other processes (busy loops, one per CPU), for a while, and
// counts what must not happen in a healthy cluster: self-fences and
// failovers. It also records what explains them: the etcd leader changes,
// the members' fsync and peer round-trip times, the etcd warnings, and the
// lease renewals the controllers log.
//
//	make build
//	go run ./scripts/soak-selffence -duration 30m -delay 100ms -jitter 20ms -network-nice -10
//
// The delay lines run in this process and stand for the network between
// the sites: -network-nice keeps the busy loops from starving them (the
// summary says how late they were). The lease renewals' round trips are
// in the summary only when the controllers log them (the member logs each
// at debug level).
//
// With -netns it runs the test bed instead (zdt lab --netns, group pg
// synchronous): once the lab is healthy every link between two sites is
// delayed in the fabric's switch (all traffic, not only etcd's), and a
// client writes to web through the upstream router all along; a request
// that failed or an acknowledged write missing from pg counts as spurious.
//
//	go run ./scripts/soak-selffence -netns -duration 1h -delay 100ms -jitter 20ms -burners 0
//
// It needs root (the lab's delay lines steer connections with cgroup BPF),
// runs its lab on 127.0.78.0/24 unless told otherwise (-net), and stops
// everything it started when it ends, also on Ctrl-C. It exits with status
// 1 when anything spurious happened, 2 when it could not run.
package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/e2e/lab"
	"github.com/zdt-project/zdt/failover/drill"
	"github.com/zdt-project/zdt/site"
)

type options struct {
	zdt, dir, net    string
	duration, settle time.Duration
	delay            lab.SiteDelay
	burners          int
	networkNice      int
	controllerNice   int
	startTimeout     time.Duration
	progressEvery    time.Duration
	netns            bool
}

func main() {
	var o options
	flag.StringVar(&o.zdt, "zdt", "bin/zdt", "the zdt binary the lab runs (make build)")
	flag.StringVar(&o.dir, "dir", "", "the lab's directory (default: a new temporary one)")
	flag.StringVar(&o.net, "net", "127.0.78.0", "the loopback /24 of the lab (sites .11-.13, observer .10)")
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "how long to run with the CPUs saturated")
	flag.DurationVar(&o.settle, "settle", 30*time.Second, "how long to let the lab settle after it is healthy, before counting")
	flag.DurationVar(&o.delay.Delay, "delay", 100*time.Millisecond, "one-way delay between the sites")
	flag.DurationVar(&o.delay.Jitter, "jitter", 20*time.Millisecond, "jitter of the delay")
	flag.IntVar(&o.burners, "burners", runtime.NumCPU(), "busy loops that saturate the CPUs (separate processes)")
	flag.IntVar(&o.networkNice, "network-nice", 0, "nice value of this process (the delay lines: the network) once the lab and the burners run; 0 leaves it")
	flag.IntVar(&o.controllerNice, "controller-nice", 0, "nice value of the controllers once they run (a site's controller given priority over the busy loops); 0 leaves them")
	flag.DurationVar(&o.startTimeout, "start-timeout", 3*time.Minute, "how long to wait for the lab to be healthy")
	flag.DurationVar(&o.progressEvery, "progress", time.Minute, "how often to print progress")
	flag.BoolVar(&o.netns, "netns", false, "run the test bed (zdt lab --netns) instead: every link between two sites delayed in the fabric's switch once the lab is healthy, and a client writing to web through the upstream all along (needs FRR; -net does not apply)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	spurious, err := run(ctx, os.Stdout, o)
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "soak-selffence:", err)
		os.Exit(2)
	case spurious:
		os.Exit(1)
	}
}

// run does the soak and reports whether anything spurious happened.
func run(ctx context.Context, out io.Writer, o options) (spurious bool, err error) {
	zdt, err := filepath.Abs(o.zdt)
	if err != nil {
		return false, err
	}
	if _, err := os.Stat(zdt); err != nil {
		return false, fmt.Errorf("%w: build it with `make build`, or give one with -zdt", err)
	}
	netAddr, err := netip.ParseAddr(o.net)
	if err != nil {
		return false, fmt.Errorf("-net: %w", err)
	}
	top, err := lab.DefaultTopology().OnNet(netAddr)
	if err != nil {
		return false, err
	}
	if o.netns {
		if top, err = lab.DefaultTopology().InNetns(); err != nil {
			return false, err
		}
	}
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "zdt-soak-"); err != nil {
			return false, err
		}
	}
	l, err := lab.Create(dir, lab.Options{Binary: zdt, Topology: &top, Synchronous: o.netns})
	if err != nil {
		return false, err
	}
	where := "on " + o.net
	if o.netns {
		where = "in network namespaces"
	}
	fmt.Fprintf(out, "soak: lab in %s %s, timings: lease_ttl %s, renew_interval %s, self_fence_margin %s, etcd heartbeat %s, election %s\n",
		l.Dir(), where, top.Timings.LeaseTTL, top.Timings.RenewInterval, top.Timings.SelfFenceMargin,
		top.Timings.EtcdHeartbeat, top.Timings.EtcdElectionTimeout)

	var lines *lab.DelayLines
	if o.delay != (lab.SiteDelay{}) && !o.netns {
		if lines, err = l.StartDelayLines(o.delay); err != nil {
			return false, err
		}
		defer lines.Close() // after the lab has stopped: deferred first
	}
	defer func() {
		fmt.Fprintln(out, "soak: stopping the lab")
		stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if serr := l.Stop(stopCtx); serr != nil {
			err = errors.Join(err, fmt.Errorf("stop the lab (stop it with `%s lab stop --dir %s`): %w", zdt, l.Dir(), serr))
		}
	}()
	if err := l.StartAll(); err != nil {
		return false, err
	}
	startCtx, cancel := context.WithTimeout(ctx, o.startTimeout)
	err = l.WaitHealthy(startCtx)
	cancel()
	if err != nil {
		return false, fmt.Errorf("the lab did not come up: %w", err)
	}
	if o.controllerNice != 0 {
		for _, name := range l.SiteNames() {
			pid, ok := l.Running(name)
			if !ok {
				return false, fmt.Errorf("site %s's controller does not run", name)
			}
			if err := renice(pid, o.controllerNice); err != nil {
				return false, fmt.Errorf("renice site %s's controller: %w", name, err)
			}
		}
	}
	if o.netns && o.delay != (lab.SiteDelay{}) {
		if err := l.DelaySiteLinks(ctx, o.delay); err != nil {
			return false, err
		}
		fmt.Fprintf(out, "soak: every link between two sites is delayed %s in the fabric's switch\n", o.delay)
	}
	fmt.Fprintf(out, "soak: the lab is healthy; settling for %s\n", o.settle)
	if !sleep(ctx, o.settle) {
		return false, ctx.Err()
	}

	w, err := newWatcher(l)
	if err != nil {
		return false, err
	}
	defer w.close()
	before, err := w.sample(ctx)
	if err != nil {
		return false, fmt.Errorf("first sample: %w", err)
	}

	burners, err := startBurners(o.burners)
	defer burners.stop()
	if err != nil {
		return false, err
	}
	if o.networkNice != 0 {
		if err := renice(os.Getpid(), o.networkNice); err != nil {
			return false, err
		}
	}
	var client *soakClient
	if o.netns {
		if client, err = startSoakClient(ctx, l); err != nil {
			return false, err
		}
		defer func() { _, _ = client.stop() }()
	}
	start := time.Now()
	fmt.Fprintf(out, "soak: %d busy loops on %d CPUs, %s between the sites; running for %s from %s\n",
		o.burners, runtime.NumCPU(), cmp.Or(o.delay.String(), "no delay"), o.duration, start.Format(time.TimeOnly))

	leaders := w.followLeaders(ctx, o.duration, o.progressEvery, func(elapsed time.Duration) {
		s, err := w.sample(ctx)
		if err != nil {
			fmt.Fprintf(out, "soak: %s: sample failed: %v\n", elapsed.Round(time.Second), err)
			return
		}
		d := s.minus(before)
		fmt.Fprintf(out, "soak: %s: self-fences %d, ops %d, etcd leader changes %d, load %s\n",
			elapsed.Round(time.Second), d.selfFences(), d.ops, d.leaderChanges(), loadavg())
	})
	end := time.Now()
	burners.stop()
	if ctx.Err() != nil {
		fmt.Fprintln(out, "soak: interrupted; the summary covers the run so far")
	}

	after, err := w.sample(context.WithoutCancel(ctx))
	if err != nil {
		return false, fmt.Errorf("last sample: %w", err)
	}
	r := report{
		o: o, start: start, end: end, before: before, after: after, leaders: leaders,
		logs: readLogs(l, start, end), cpu: burners.cpu(),
	}
	if client != nil {
		if r.client, err = client.stop(); err != nil {
			return false, fmt.Errorf("the client's result: %w", err)
		}
	}
	if lines != nil {
		r.lines = lines.Summary()
	}
	r.write(out)
	return r.spurious(), nil
}

// sleep waits d or until ctx ends; false if ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// burners are the busy loops that saturate the CPUs.
type burners struct {
	cmds  []*exec.Cmd
	start time.Time
	used  time.Duration // CPU time they got, once stopped
	wall  time.Duration
}

// startBurners starts n busy loops, each its own process (sh -c 'while :;
// do :; done'), which die with this process.
func startBurners(n int) (*burners, error) {
	b := &burners{start: time.Now()}
	for range n {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return b, fmt.Errorf("start a busy loop: %w", err)
		}
		b.cmds = append(b.cmds, cmd)
	}
	return b, nil
}

// stop kills the busy loops (again: harmless) and adds up their CPU time.
func (b *burners) stop() {
	for _, c := range b.cmds {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		if c.ProcessState == nil {
			_ = c.Wait()
			b.used += c.ProcessState.UserTime() + c.ProcessState.SystemTime()
		}
	}
	if b.wall == 0 {
		b.wall = time.Since(b.start)
	}
}

// cpu is the CPUs the busy loops kept busy, on average.
func (b *burners) cpu() float64 {
	if b.wall == 0 {
		return 0
	}
	return b.used.Seconds() / b.wall.Seconds()
}

// renice sets the nice value of every thread of a process (Linux keeps it
// per thread); the threads and processes it starts later inherit it.
func renice(pid, nice int) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("renice thread %d: %w", tid, err)
		}
	}
	return nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// watcher reads the lab's metrics, its etcd members and its op journal.
type watcher struct {
	l      *lab.Lab
	http   *http.Client // the controllers' APIs and the members' /metrics
	client *clientv3.Client
	store  *site.Store
}

func newWatcher(l *lab.Lab) (*watcher, error) {
	tlsCfg, err := l.ClientTLS()
	if err != nil {
		return nil, err
	}
	var endpoints []string
	for _, s := range l.Sites() {
		endpoints = append(endpoints, s.EtcdClientURL)
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, TLS: tlsCfg, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	return &watcher{
		l:      l,
		http:   &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg.Clone()}},
		client: c,
		store:  site.NewStore(c, l.Cluster()),
	}, nil
}

func (w *watcher) close() { _ = w.client.Close() }

// sample is the lab's counters at one instant.
type sample struct {
	zdt  map[string]metrics // by site: its controller's /metrics
	etcd map[string]metrics // by site: its member's /metrics
	ops  int
	kind map[string]int // ops by kind
}

func (w *watcher) sample(ctx context.Context) (sample, error) {
	s := sample{zdt: map[string]metrics{}, etcd: map[string]metrics{}, kind: map[string]int{}}
	var errs []error
	for _, st := range w.l.Sites() {
		m, err := w.metrics(ctx, "https://"+st.API+"/metrics") // the lab's APIs serve TLS with the etcd CA
		errs = append(errs, err)
		s.zdt[st.Name] = m
		m, err = w.metrics(ctx, st.EtcdClientURL+"/metrics")
		errs = append(errs, err)
		s.etcd[st.Name] = m
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ops, err := w.store.Ops(tctx)
	errs = append(errs, err)
	s.ops = len(ops)
	for _, op := range ops {
		s.kind[op.Kind]++
	}
	return s, errors.Join(errs...)
}

func (w *watcher) metrics(ctx context.Context, url string) (metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := w.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return parseMetrics(resp.Body)
}

// metrics are Prometheus samples by series ("name{labels}").
type metrics map[string]float64

func parseMetrics(r io.Reader) (metrics, error) {
	m := metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// sum adds up every series of the metric name.
func (m metrics) sum(name string) float64 {
	var t float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			t += v
		}
	}
	return t
}

// minus is the change of the counters since an earlier sample.
func (s sample) minus(before sample) sample {
	d := sample{zdt: map[string]metrics{}, etcd: map[string]metrics{}, ops: s.ops - before.ops, kind: map[string]int{}}
	sub := func(a, b metrics) metrics {
		out := metrics{}
		for k, v := range a {
			out[k] = v - b[k]
		}
		return out
	}
	for name := range s.zdt {
		d.zdt[name] = sub(s.zdt[name], before.zdt[name])
		d.etcd[name] = sub(s.etcd[name], before.etcd[name])
	}
	for k, v := range s.kind {
		if n := v - before.kind[k]; n != 0 {
			d.kind[k] = n
		}
	}
	return d
}

func (s sample) selfFences() int {
	var n float64
	for _, m := range s.zdt {
		n += m.sum("zdt_self_fences_total")
	}
	return int(n)
}

// leaderChanges is the most leader changes any member saw.
func (s sample) leaderChanges() int {
	var n float64
	for _, m := range s.etcd {
		n = max(n, m.sum("etcd_server_leader_changes_seen_total"))
	}
	return int(n)
}

// leaderChange is a change of the etcd leader (or of its term) the watcher
// saw.
type leaderChange struct {
	at           time.Time
	leader, term uint64
	site         string // the leader's site
}

// followLeaders polls every member's status each second for d (or until
// ctx ends) and returns every change of leader or term it saw, calling
// progress every progressEvery.
func (w *watcher) followLeaders(ctx context.Context, d, progressEvery time.Duration, progress func(time.Duration)) []leaderChange {
	ids := map[uint64]string{}
	start := time.Now()
	stop := time.NewTimer(d)
	defer stop.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	report := time.NewTicker(progressEvery)
	defer report.Stop()
	var changes []leaderChange
	var last leaderChange
	for {
		for _, s := range w.l.Sites() {
			tctx, cancel := context.WithTimeout(ctx, 900*time.Millisecond)
			st, err := w.client.Status(tctx, s.EtcdClientURL)
			cancel()
			if err != nil {
				continue
			}
			ids[st.Header.MemberId] = s.Name
			if st.RaftTerm > last.term || (st.RaftTerm == last.term && st.Leader != last.leader && st.Leader != 0) {
				last = leaderChange{at: time.Now(), leader: st.Leader, term: st.RaftTerm}
				changes = append(changes, last)
			}
		}
		select {
		case <-ctx.Done():
			return named(changes, ids)
		case <-stop.C:
			return named(changes, ids)
		case <-report.C:
			progress(time.Since(start))
		case <-tick.C:
		}
	}
}

func named(changes []leaderChange, ids map[uint64]string) []leaderChange {
	for i := range changes {
		changes[i].site = cmp.Or(ids[changes[i].leader], "?")
	}
	return changes
}

// logs is what the controllers' logs say about the run.
type logs struct {
	// episodes are the self-fences: site, when, for how long, why.
	episodes []episode
	// etcdWarnings counts the etcd members' warnings by message.
	etcdWarnings map[string]int
	// warnings counts the controllers' own warnings by message.
	warnings map[string]int
	// renewals are the lease renewals the members logged (rtt in
	// seconds), by site.
	renewals map[string][]renewal
	// heartbeatGaps are the gaps (seconds) between the etcd leader's
	// heartbeats that it warned about (longer than two heartbeats).
	heartbeatGaps []float64
}

type episode struct {
	site     string
	at       time.Time
	lasted   time.Duration // 0: not over
	reason   string
	upReason string
}

type renewal struct {
	at       time.Time
	rtt      float64
	ok       bool
	headroom float64
}

// logLine is the part of a zap JSON line the soak reads.
type logLine struct {
	Level    string   `json:"level"`
	TS       string   `json:"ts"`
	Logger   string   `json:"logger"`
	Msg      string   `json:"msg"`
	From     string   `json:"from"`
	To       string   `json:"to"`
	Reason   string   `json:"reason"`
	RTT      *float64 `json:"rtt"`
	OK       *bool    `json:"ok"`
	Headroom *float64 `json:"headroom"`
	// Exceeded is how much later than twice the heartbeat interval the
	// etcd leader sent a heartbeat.
	Exceeded *float64 `json:"exceeded-duration"`
}

func readLogs(l *lab.Lab, start, end time.Time) logs {
	lg := logs{etcdWarnings: map[string]int{}, warnings: map[string]int{}, renewals: map[string][]renewal{}}
	for _, name := range l.SiteNames() {
		f, err := os.Open(l.LogPath(name))
		if err != nil {
			continue
		}
		var open *episode
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ln logLine
			if json.Unmarshal(sc.Bytes(), &ln) != nil {
				continue
			}
			at, err := time.Parse("2006-01-02T15:04:05.000Z0700", ln.TS)
			if err != nil || at.Before(start) || at.After(end) {
				continue
			}
			switch {
			case ln.Msg == "membership state" && ln.To == string(site.ControllerSelfFenced):
				lg.episodes = append(lg.episodes, episode{site: name, at: at, reason: ln.Reason})
				open = &lg.episodes[len(lg.episodes)-1]
			case ln.Msg == "membership state" && ln.From == string(site.ControllerSelfFenced) && open != nil:
				open.lasted, open.upReason = at.Sub(open.at), ln.To+": "+ln.Reason
				open = nil
			case ln.Msg == "lease renewal" && ln.RTT != nil:
				r := renewal{at: at, rtt: *ln.RTT, ok: ln.OK == nil || *ln.OK}
				if ln.Headroom != nil {
					r.headroom = *ln.Headroom
				}
				lg.renewals[name] = append(lg.renewals[name], r)
			case ln.Level == "warn" && ln.Logger == "etcd":
				lg.etcdWarnings[ln.Msg]++
				if ln.Exceeded != nil && strings.HasPrefix(ln.Msg, "leader failed to send out heartbeat") {
					lg.heartbeatGaps = append(lg.heartbeatGaps, *ln.Exceeded+2*lab.DefaultTopology().Timings.EtcdHeartbeat.Seconds())
				}
			case ln.Level == "warn" && ln.Logger == "":
				lg.warnings[ln.Msg]++
			}
		}
		f.Close()
	}
	return lg
}

// report is the soak's summary.
type report struct {
	o             options
	start, end    time.Time
	before, after sample
	leaders       []leaderChange
	logs          logs
	lines         string
	cpu           float64
	client        *drill.ProbeResult // with -netns
}

func (r report) spurious() bool {
	d := r.after.minus(r.before)
	lost := r.client != nil && (r.client.Missing > 0 || r.client.Failed > 0)
	return d.selfFences() > 0 || d.ops > 0 || len(r.logs.episodes) > 0 || lost
}

func (r report) write(out io.Writer) {
	d := r.after.minus(r.before)
	p := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	p("")
	p("=== soak summary: %s with %s between the sites, %d busy loops (they got %.2f CPUs), lab timings; nice: controllers %d, delay lines %d",
		r.end.Sub(r.start).Round(time.Second), cmp.Or(r.o.delay.String(), "no delay"), r.o.burners, r.cpu,
		r.o.controllerNice, r.o.networkNice)
	if c := r.client; c != nil {
		p("client (web through the upstream): %d requests, %d failed, longest outage %s, %d writes acknowledged, %d missing",
			c.Sent, c.Failed, c.LongestOutage().Round(time.Millisecond), c.Acknowledged, c.Missing)
	}
	p("self-fences:       %d (zdt_self_fences_total, all sites)", d.selfFences())
	for _, name := range r.sites() {
		p("  site %s:          %d", name, int(d.zdt[name].sum("zdt_self_fences_total")))
	}
	for _, e := range r.logs.episodes {
		lasted := "not over at the end"
		if e.lasted > 0 {
			lasted = "for " + e.lasted.Round(time.Millisecond).String() + " (" + e.upReason + ")"
		}
		p("  %s site %s self-fenced %s: %s", e.at.Format("15:04:05.000"), e.site, lasted, e.reason)
	}
	p("ops (failovers...): %d new %v", d.ops, d.kind)
	p("etcd leader changes: %d (most any member counted); %d changes of leader or term seen by polling",
		d.leaderChanges(), len(r.leaders))
	for _, c := range r.leaders {
		p("  %s term %d, leader %s", c.at.Format("15:04:05"), c.term, c.site)
	}
	for _, name := range r.sites() {
		e := d.etcd[name]
		p("etcd member %s: leader changes %d, heartbeat send failures %d, slow applies %d, slow read indexes %d, failed proposals %d",
			name, int(e.sum("etcd_server_leader_changes_seen_total")), int(e.sum("etcd_server_heartbeat_send_failures_total")),
			int(e.sum("etcd_server_slow_apply_total")), int(e.sum("etcd_server_slow_read_indexes_total")),
			int(e.sum("etcd_server_proposals_failed_total")))
		p("  wal fsync:      %s", histogram(e, "etcd_disk_wal_fsync_duration_seconds"))
		p("  backend commit: %s", histogram(e, "etcd_disk_backend_commit_duration_seconds"))
		p("  peer rtt:       %s", histogram(e, "etcd_network_peer_round_trip_time_seconds"))
		p("  process:        %.1f CPU-seconds (%.2f CPUs), GC pauses %s",
			e.sum("process_cpu_seconds_total"), e.sum("process_cpu_seconds_total")/r.end.Sub(r.start).Seconds(),
			summaryLine(r.after.etcd[name], "go_gc_duration_seconds"))
	}
	for _, name := range r.sites() {
		if rs := r.logs.renewals[name]; len(rs) > 0 {
			p("lease renewals of site %s (from its log): %s", name, renewalStats(rs))
		}
	}
	if g := slices.Clone(r.logs.heartbeatGaps); len(g) > 0 {
		slices.Sort(g)
		p("etcd leader heartbeat gaps over 2 heartbeats (a starved raft loop): %d, median %s, max %s (election timeout %s)",
			len(g), seconds(g[len(g)/2]), seconds(g[len(g)-1]), lab.DefaultTopology().Timings.EtcdElectionTimeout)
	}
	if len(r.logs.warnings) > 0 {
		p("controller warnings: %s", top(r.logs.warnings, 8))
	}
	if len(r.logs.etcdWarnings) > 0 {
		p("etcd warnings: %s", top(r.logs.etcdWarnings, 8))
	}
	if r.lines != "" {
		p("%s", r.lines)
	}
	verdict := "PASS: no self-fence, no op"
	if r.spurious() {
		verdict = "FAIL: spurious self-fences or ops"
	}
	p("=== %s", verdict)
}

func (r report) sites() []string {
	var names []string
	for name := range r.after.zdt {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// histogram summarises a Prometheus histogram's change: count, mean, and
// the upper bounds that 99% and all of the observations were under.
func histogram(m metrics, name string) string {
	count, sum := m.sum(name+"_count"), m.sum(name+"_sum")
	if count == 0 {
		return "none"
	}
	type bucket struct{ le, n float64 }
	byLE := map[float64]float64{}
	for k, v := range m {
		if !strings.HasPrefix(k, name+"_bucket{") {
			continue
		}
		i := strings.Index(k, `le="`)
		if i < 0 {
			continue
		}
		s := k[i+4:]
		le, err := strconv.ParseFloat(s[:strings.IndexByte(s, '"')], 64)
		if err != nil {
			continue
		}
		byLE[le] += v
	}
	var bs []bucket
	for le, n := range byLE {
		bs = append(bs, bucket{le, n})
	}
	slices.SortFunc(bs, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
	under := func(q float64) string {
		for _, b := range bs {
			if b.n >= q*count {
				if math.IsInf(b.le, 1) {
					return "+Inf"
				}
				return (time.Duration(b.le * float64(time.Second))).String()
			}
		}
		return "?"
	}
	return fmt.Sprintf("%d, mean %s, 99%% ≤ %s, all ≤ %s", int(count),
		time.Duration(sum/count*float64(time.Second)).Round(10*time.Microsecond), under(0.99), under(1))
}

// summaryLine is a Prometheus summary's max and median.
func summaryLine(m metrics, name string) string {
	q := func(v string) string {
		return time.Duration(m[name+`{quantile="`+v+`"}`] * float64(time.Second)).Round(time.Microsecond).String()
	}
	return "median " + q("0.5") + ", max " + q("1")
}

func renewalStats(rs []renewal) string {
	var rtts []float64
	failed := 0
	minHeadroom := math.Inf(1)
	for _, r := range rs {
		if !r.ok {
			failed++
			continue
		}
		rtts = append(rtts, r.rtt)
		minHeadroom = min(minHeadroom, r.headroom)
	}
	if len(rtts) == 0 {
		return fmt.Sprintf("%d logged, all failed", len(rs))
	}
	slices.Sort(rtts)
	q := func(p float64) time.Duration {
		return time.Duration(rtts[min(len(rtts)-1, int(p*float64(len(rtts))))] * float64(time.Second)).Round(time.Millisecond)
	}
	over := func(s float64) int {
		i, _ := slices.BinarySearch(rtts, s)
		return len(rtts) - i
	}
	return fmt.Sprintf("%d ok, %d failed; round trip median %s, 99%% %s, max %s; %d over 0.5s, %d over 1s; least headroom %s",
		len(rtts), failed, q(0.5), q(0.99), q(1), over(0.5), over(1.0),
		time.Duration(minHeadroom*float64(time.Second)).Round(time.Millisecond))
}

// top lists the n most frequent messages with their counts.
func top(counts map[string]int, n int) string {
	type kv struct {
		k string
		v int
	}
	var all []kv
	for k, v := range counts {
		all = append(all, kv{k, v})
	}
	slices.SortFunc(all, func(a, b kv) int { return cmp.Or(b.v-a.v, strings.Compare(a.k, b.k)) })
	var parts []string
	for _, e := range all[:min(n, len(all))] {
		parts = append(parts, fmt.Sprintf("%q ×%d", e.k, e.v))
	}
	return strings.Join(parts, ", ")
}

func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond)
}

// soakClient writes to web's responder every 10 ms from the lab's client
// namespace, through the upstream router, each write checked in group pg.
type soakClient struct {
	probe  *drill.Probe
	cancel context.CancelFunc
	done   chan struct{}
	res    *drill.ProbeResult
	err    error
}

// soakClientTimeout bounds one request: a write crosses two delayed links
// and waits for a synchronous commit across a third.
const soakClientTimeout = 3 * time.Second

func startSoakClient(ctx context.Context, l *lab.Lab) (*soakClient, error) {
	u, err := l.ServiceURL("web", 4)
	if err != nil {
		return nil, err
	}
	opts, err := l.ClientProbeOptions()
	if err != nil {
		return nil, err
	}
	probe, err := drill.NewProbeWith(ctx, u, "soak", 10*time.Millisecond, soakClientTimeout, opts)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	c := &soakClient{probe: probe, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		probe.Run(runCtx)
	}()
	return c, nil
}

// stop ends the client (again: harmless) and returns what it saw.
func (c *soakClient) stop() (*drill.ProbeResult, error) {
	if c.res != nil || c.err != nil {
		return c.res, c.err
	}
	c.cancel()
	<-c.done
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.res, c.err = c.probe.Result(ctx)
	c.probe.Close()
	return c.res, c.err
}
