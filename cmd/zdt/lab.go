package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zdt-project/zdt/e2e/lab"
)

// labStopTimeout bounds stopping a lab: the controllers' grace period and
// the SIGKILL after it.
const labStopTimeout = 30 * time.Second

// defaultLabNet is --net's default.
const defaultLabNet = "127.0.0.0"

// labOptions are the flags of `zdt lab` and its subcommands.
type labOptions struct {
	dir     string
	detach  bool
	timeout time.Duration
	net     string
	// synchronous: the lab's replication group replicates synchronously.
	synchronous bool
	// requireConfirmation: the lab's failovers wait for zdt fence confirm
	// when a dark site's resources do not answer.
	requireConfirmation bool
	// delay is the one-way delay of the etcd links between sites.
	delay lab.SiteDelay
	// netns runs the lab in network namespaces.
	netns bool
	// pprof runs the controllers with --enable-pprof.
	pprof bool
	// scale grows the lab: generated services, guests and hosts.
	scale lab.Scale
	// defaultTimings runs the lab with the config's default timings
	// instead of its short ones.
	defaultTimings bool
}

func newLabCommand() *cobra.Command {
	o := &labOptions{}
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run a three-site zdt cluster on this machine",
		Long: `Run a three-site zdt cluster on this machine, to try zdt or to break it.

zdt lab writes a CA and certificates, a commented zdt.yaml (a good example
config) and starts one controller per site (a, b, c on 127.0.0.11-13), each
with an embedded etcd member. It waits until they are healthy, then shows the
cluster's status every second until Ctrl-C, which stops the lab. With
--detach it leaves the lab running; take sites down and up again with
'zdt lab site' and stop it with 'zdt lab stop'.

When libvirtd is installed, each site also gets a hypervisor (a1, b1, c1):
its own libvirtd serving libvirt's test driver, which the site's controller
runs its guests on. The services have gold, silver and bronze guests; when
a site goes dark its guests die with its libvirtd, and the coordinator
starts its gold guests elsewhere, preempting bronze ones. The libvirtds run
as root, and so must the lab for its guests. Without libvirtd the lab runs
without hosts and guests; install it with:

  ` + lab.InstallLibvirtd + `

Every site announces its services' prefixes over BGP to the lab's route
observer (zdt observer, on 127.0.0.10:1179), which stands for the upstream:
zdt status shows, per prefix, what each site announces and which site the
upstream's best path leads to. When PostgreSQL is installed, service db keeps
its data in replication group pg: one PostgreSQL server per site (port 15432
on the site's address), the one at db's active site primary, the others
streaming from it. When that site goes dark, db moves and its new site's
server is promoted; the dark site's server comes back as a standby with
its site. The group replicates asynchronously: a failover may lose the last
commits a standby had not received (within db's RPO). With --synchronous
it replicates synchronously (synchronous: true in zdt.yaml): the primary
acknowledges a commit only once one of the other servers holds it, and
commits wait while none is connected. Without PostgreSQL the lab runs
without the group; install it with:

  ` + lab.InstallPostgres + `

A scale lab measures zdt with as many services, guests and hosts as a
provider has: --services N adds services svc-0001 to svc-N (each with
--prefixes-per-service IPv6 /48s of 2001:db8:1000::/36 onwards, their
preferred sites taking turns), --guests M deals M guests to them (20% gold,
30% silver, 50% bronze, zones A and B paired within a service) and --hosts
H replaces the three hosts with H, spread over the sites and sized so that
every guest runs while all sites are up and every gold guest still does with
one dark. All of a site's hosts share its libvirtd, each a hypervisor of its
own (the test driver on the host's node XML). 0 leaves each as in the
default lab.

The lab's timings are short, so that a failover is quick to watch (lease_ttl
2s, renew_interval 500ms, etcd heartbeat 50ms). --default-timings gives it
those of a config that sets none, which a cluster stretched across sites
runs with (lease_ttl 6s, renew_interval 2s, etcd heartbeat 100ms and
election timeout 1s): to measure what such a cluster costs and how long its
failovers take.`,
		Example: `  zdt lab
  zdt lab --dir /tmp/lab --detach
  zdt lab --dir /tmp/lab --detach --synchronous
  zdt lab site a down --dir /tmp/lab
  zdt lab site a up --dir /tmp/lab
  zdt lab stop --dir /tmp/lab
  sudo zdt lab --netns --dir /tmp/netlab --detach
  sudo zdt lab --dir /tmp/scale --detach --services 200 --guests 2000 --hosts 60`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLab(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	cmd.PersistentFlags().StringVar(&o.dir, "dir", "", "the lab's directory (zdt lab: default a new temporary directory)")
	cmd.PersistentFlags().DurationVar(&o.timeout, "timeout", 60*time.Second, "how long to wait for the controllers to come up")
	cmd.Flags().BoolVar(&o.detach, "detach", false, "return once the lab is healthy and leave it running")
	cmd.Flags().BoolVar(&o.requireConfirmation, "require-confirmation", false, "fencing.require_confirmation: a failover that cannot fence a dark site's resources from outside waits for zdt fence confirm")
	cmd.Flags().BoolVar(&o.synchronous, "synchronous", false, "replicate group pg synchronously: a commit is acknowledged once a standby holds it (default asynchronous)")
	cmd.Flags().StringVar(&o.net, "net", defaultLabNet, "the loopback /24 the lab's sites (.11-.13) and route observer (.10) listen on; another one runs a second lab beside the first")
	cmd.Flags().DurationVar(&o.delay.Delay, "site-delay", 0, "one-way delay between sites: of the etcd links, through userspace delay lines in this process (needs root; not with --detach); with --netns, of every link between two sites, in the fabric's switch")
	cmd.Flags().DurationVar(&o.delay.Jitter, "site-jitter", 0, "jitter of --site-delay: each chunk gets the delay ± up to this much, in order")
	cmd.Flags().IntVar(&o.scale.Services, "services", 0, "a scale lab: add this many generated services, svc-0001 onwards (0: the default lab's two alone)")
	cmd.Flags().IntVar(&o.scale.PrefixesPerService, "prefixes-per-service", lab.DefaultPrefixesPerService, "a scale lab: the IPv6 /48 prefixes of each generated service")
	cmd.Flags().IntVar(&o.scale.Guests, "guests", 0, "a scale lab: add this many guests to the generated services (needs --services and --hosts)")
	cmd.Flags().IntVar(&o.scale.Hosts, "hosts", 0, "a scale lab: this many hosts, spread over the sites, instead of the default lab's one per site")
	cmd.Flags().BoolVar(&o.defaultTimings, "default-timings", false, "the config's default timings (lease_ttl 6s, renew_interval 2s, etcd heartbeat 100ms) instead of the lab's short ones")
	cmd.Flags().BoolVar(&o.pprof, "enable-pprof", false, "run the controllers with --enable-pprof: Go's profiles at /debug/pprof/ on each API address, for the lab's admin certificate")
	cmd.Flags().BoolVar(&o.netns, "netns", false, "run the sites in network namespaces, with FRR as their upstream router, a client namespace and a service responder per site (needs root and FRR; not with --net)")
	cmd.AddCommand(newLabSiteCommand(o), newLabStopCommand(o), newLabLinkCommand(o), newLabResponderCommand(), newLabSwitchCommand())
	return cmd
}

// startSiteDelay starts the delay lines between the lab's sites when
// --site-delay or --site-jitter asks for them, and returns what stops them.
func startSiteDelay(out io.Writer, l *lab.Lab, o *labOptions) (stop func(), err error) {
	if o.delay == (lab.SiteDelay{}) {
		return func() {}, nil
	}
	if l.InNetns() {
		if err := l.SetSiteDelays(o.delay); err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "every link between two sites is delayed %s one way, in the fabric's switch (zdt lab link shows and changes them)\n", o.delay)
		return func() {}, nil
	}
	lines, err := l.StartDelayLines(o.delay)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "the etcd links between the sites go through delay lines of %s one way, in this process\n", o.delay)
	return func() {
		fmt.Fprintln(out, lines.Summary())
		_ = lines.Close()
	}, nil
}

// labTopology is the default lab on the given loopback network.
func labTopology(network string) (lab.Topology, error) {
	top := lab.DefaultTopology()
	addr, err := netip.ParseAddr(network)
	if err != nil {
		return top, fmt.Errorf("--net %q: %w; give an IPv4 loopback address ending in 0, like 127.0.1.0", network, err)
	}
	top, err = top.OnNet(addr)
	if err != nil {
		return top, fmt.Errorf("--net: %w", err)
	}
	return top, nil
}

// topology is the lab the options ask for.
func (o *labOptions) topology() (lab.Topology, error) {
	top, err := labTopology(o.net)
	if err != nil {
		return top, err
	}
	top.RequireConfirmation = o.requireConfirmation
	if o.defaultTimings {
		top.Timings = lab.ProductionTimings()
	}
	if top, err = lab.ScaleTopology(top, o.scale); err != nil {
		return top, err
	}
	if o.netns {
		if o.net != defaultLabNet {
			return top, errors.New("--netns builds its own networks: leave out --net")
		}
		if top, err = top.InNetns(); err != nil {
			return top, err
		}
	}
	return top, nil
}

// runLab creates and starts a lab, then shows it live until ctx ends (or,
// detached, returns once it is healthy).
func runLab(ctx context.Context, out io.Writer, o *labOptions) error {
	dir := o.dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "zdt-lab-"); err != nil {
			return fmt.Errorf("create a directory for the lab (or give one with --dir): %w", err)
		}
	}
	top, err := o.topology()
	if err != nil {
		return err
	}
	if o.detach && !o.netns && o.delay != (lab.SiteDelay{}) {
		return errors.New("--site-delay and --site-jitter need the lab in the foreground: its delay lines live in this process; leave out --detach")
	}
	fmt.Fprintf(out, "zdt lab in %s\n", dir)
	opts := lab.Options{Topology: &top, Synchronous: o.synchronous}
	if o.pprof {
		opts.ControllerArgs = []string{"--enable-pprof"}
	}
	l, err := lab.Create(dir, opts)
	if err != nil {
		return err
	}
	printScale(out, o.scale, top)
	var with []string
	if l.HasHypervisors() {
		with = append(with, "its libvirtd")
	} else {
		printGuestsOff(out)
	}
	if l.HasPostgres() {
		with = append(with, "its PostgreSQL server")
		if o.synchronous {
			fmt.Fprintf(out, "group %s replicates synchronously: a commit is acknowledged once a standby holds it\n", l.PostgresGroup())
		}
	} else if err := l.PostgresOff(); err != nil {
		fmt.Fprintf(out, "the replication part of the lab (group pg of service db) is off: %v\n", err)
		if o.synchronous {
			fmt.Fprintln(out, "--synchronous has nothing to act on without the group")
		}
	}
	each := ""
	if len(with) > 0 {
		each = " (each with " + strings.Join(with, " and ") + ")"
	}
	observer := ""
	if l.HasObserver() {
		observer = ", and the route observer"
	}
	stopDelay, err := startSiteDelay(out, l, o)
	if err != nil {
		return err
	}
	defer stopDelay() // after the sites have stopped
	fmt.Fprintf(out, "starting sites %s%s%s; waiting up to %s for them to be healthy\n",
		strings.Join(l.SiteNames(), ", "), each, observer, o.timeout)
	if err := startLab(ctx, l, o.timeout); err != nil {
		stopErr := stopLab(ctx, l)
		if ctx.Err() != nil && stopErr == nil {
			fmt.Fprintf(out, "interrupted; the lab is stopped, its files stay in %s\n", l.Dir())
			return nil
		}
		return errors.Join(
			fmt.Errorf("the lab did not come up, so it is stopped again (its files stay in %s): %w", l.Dir(), err),
			stopErr)
	}
	printLabUsage(out, l)
	if o.detach {
		return nil
	}
	showLab(ctx, out, l)
	fmt.Fprintln(out, "stopping the lab ...")
	if err := stopLab(ctx, l); err != nil {
		return err
	}
	fmt.Fprintf(out, "the lab is stopped; its files stay in %s (start it afresh with `zdt lab --dir %s`)\n", l.Dir(), l.Dir())
	return nil
}

// printScale says what a scale lab adds to the default one.
func printScale(out io.Writer, s lab.Scale, top lab.Topology) {
	if s.IsZero() {
		return
	}
	hosts := 0
	for _, site := range top.Sites {
		hosts += len(site.Hosts)
	}
	fmt.Fprintf(out, "a scale lab: %d services (%d generated), %d guests on %d hosts\n",
		len(top.Services), s.Services, len(top.Guests()), hosts)
}

// printGuestsOff says why the lab has no hypervisors and guests, and what
// to do about it.
func printGuestsOff(out io.Writer) {
	_, err := lab.FindLibvirtd()
	switch {
	case errors.Is(err, lab.ErrNoLibvirtd):
		fmt.Fprintf(out, "libvirtd is not installed, so the guests part of the lab is off until you install it:\n  %s\n", lab.InstallLibvirtd)
	case errors.Is(err, lab.ErrLibvirtdNeedsRoot):
		fmt.Fprintf(out, "the guests part of the lab is off: %v\n", err)
	}
}

func startLab(ctx context.Context, l *lab.Lab, timeout time.Duration) error {
	if err := l.StartAll(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return l.WaitHealthy(ctx)
}

// stopLab stops the lab even when ctx has already ended (Ctrl-C).
func stopLab(ctx context.Context, l *lab.Lab) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), labStopTimeout)
	defer cancel()
	return l.Stop(ctx)
}

func printLabUsage(out io.Writer, l *lab.Lab) {
	first := l.SiteNames()[0]
	fmt.Fprintf(out, `
The lab is up. From another terminal:
  the cluster's state:        zdt status --config %[1]s
  site %[2]s goes dark (SIGKILL): zdt lab site %[2]s down --dir %[3]s
  site %[2]s comes back:          zdt lab site %[2]s up --dir %[3]s
  stop every site:            zdt lab stop --dir %[3]s
Each site's output is in %[3]s/<site>/controller.log.
The dashboard, at every site (the lab's CA is %[4]s: a browser warns):
  %[5]s/ui/  sign in with the token in %[3]s/tokens/operator (or viewer, admin)
The API as the operator: ZDT_TOKEN=$(cat %[3]s/tokens/operator) zdt status --config %[1]s
`, l.ConfigPath(), first, l.Dir(), l.CAPath(), l.APIURL(first))
	if l.HasHypervisors() {
		fmt.Fprintf(out, "Each site's libvirtd logs to %s/<site>/libvirt/libvirtd.log; zdt status shows where the guests run.\n", l.Dir())
	}
	if l.HasObserver() {
		fmt.Fprintf(out, "The route observer logs to %s; zdt status shows where the upstream's best path of each prefix leads (UPSTREAM BEST).\n",
			l.ObserverLogPath())
	}
	if l.HasPostgres() {
		primary := l.PostgresPrimarySite()
		host, port := l.PostgresAddr(primary)
		fmt.Fprintf(out, `Group %[1]s's PostgreSQL servers log to %[2]s/<site>/postgres/postgresql.log; zdt status shows their roles.
  site %[3]s's server (the first primary): PGPASSWORD=$(cat %[2]s/secrets/pg.pass) psql "host=%[4]s port=%[5]s user=zdt dbname=postgres"
  site %[3]s goes dark, and a standby is promoted: zdt lab site %[3]s down --dir %[2]s
  a planned move of the primary, nothing lost:     zdt switchover --site %[3]s --to <site> --config %[6]s --wait
  site %[3]s emptied for maintenance:               zdt evacuate --site %[3]s --config %[6]s --wait
  a drill, a client writing all along:            zdt drill switchover --site %[3]s --config %[6]s --probe "$(cat %[2]s/pg-client-url)"
`, l.PostgresGroup(), l.Dir(), primary, host, port, l.ConfigPath())
	}
	if l.InNetns() {
		fmt.Fprintf(out, `The sites run in network namespaces; the links between them cross the fabric's switch (%[1]s/fabric/switch.log):
  site a cut off from the other sites:   zdt lab site a isolate --dir %[1]s   (heal: zdt lab site a heal --dir %[1]s)
  one link between two sites cut:        zdt lab link a b --cut --dir %[1]s   (heal: zdt lab link a b --heal --dir %[1]s)
  100 ± 20 ms between two sites:         zdt lab link a b --delay 100ms --jitter 20ms --dir %[1]s
  a site-loss drill with a real client:  zdt drill site-loss --site a --lab %[1]s
`, l.Dir())
	}
}

// showLab redraws the cluster's status every second until ctx ends.
func showLab(ctx context.Context, out io.Writer, l *lab.Lab) {
	clearScreen := isTerminal(out)
	repeat(ctx, time.Second, func() bool {
		renderCtx, cancel := context.WithTimeout(ctx, 900*time.Millisecond)
		table, err := renderStatusTable(renderCtx, l.ConfigPath())
		cancel()
		if ctx.Err() != nil {
			return false
		}
		fmt.Fprint(out, labScreen(l, time.Now(), table, err, clearScreen))
		return true
	})
}

// labScreen is one frame of the live view.
func labScreen(l *lab.Lab, now time.Time, table string, tableErr error, clearScreen bool) string {
	var b strings.Builder
	if clearScreen {
		b.WriteString("\x1b[H\x1b[2J") // home, clear screen
	} else {
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "zdt lab in %s at %s; Ctrl-C stops it\n", l.Dir(), now.Format(time.TimeOnly))
	var procs []string
	for _, name := range l.SiteNames() {
		p := name + " not running"
		if pid, ok := l.Running(name); ok {
			p = fmt.Sprintf("%s pid %d", name, pid)
		}
		var with []string
		if pid, ok := l.LibvirtdRunning(name); ok {
			with = append(with, fmt.Sprintf("libvirtd %d", pid))
		}
		if pid, ok := l.PostgresRunning(name); ok {
			with = append(with, fmt.Sprintf("postgres %d", pid))
		}
		if len(with) > 0 {
			p += " (" + strings.Join(with, ", ") + ")"
		}
		procs = append(procs, p)
	}
	fmt.Fprintf(&b, "controllers: %s\n", strings.Join(procs, ", "))
	if l.HasObserver() {
		observer := "not running"
		if pid, ok := l.ObserverRunning(); ok {
			observer = fmt.Sprintf("pid %d", pid)
		}
		fmt.Fprintf(&b, "route observer: %s\n", observer)
	}
	fmt.Fprintf(&b, "try: zdt lab site %s down --dir %s", l.SiteNames()[0], l.Dir())
	if l.HasPostgres() && l.PostgresPrimarySite() != l.SiteNames()[0] {
		fmt.Fprintf(&b, " (or site %s, where group %s's first primary is)", l.PostgresPrimarySite(), l.PostgresGroup())
	}
	b.WriteString("\n\n")
	if tableErr != nil {
		fmt.Fprintf(&b, "status: %v\n", tableErr)
	} else {
		b.WriteString(table)
	}
	return b.String()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

func newLabSiteCommand(o *labOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "site SITE up|down|crash|freeze|hang|thaw",
		Short: "Take a site of a running lab down (SIGKILL), crash or freeze its controller alone, or bring it back up",
		Long: `Take a site of a running lab down, crash or freeze its controller, or bring it back up.

down kills the site's controller (and its etcd member), its libvirtd and its
PostgreSQL server with SIGKILL: the site goes dark without warning and its
guests die with its hypervisor. The route observer stays: it is the sites'
upstream, and it loses the dark site's paths. up starts the controller again
with the etcd data it had and a fresh libvirtd, and waits until its API and
its libvirtd answer; the controller, fenced, rewinds the site's PostgreSQL
server and starts it as a standby of the group's primary.

crash kills the site's controller alone (SIGKILL, no graceful path), and
freeze stops it alone (SIGSTOP): its PostgreSQL server and libvirtd live on,
as they do on their own hosts, and nothing of the site fences itself. The
coordinator fences them from outside (read-only primary, guests destroyed)
before it takes them over. hang stops the whole site with SIGSTOP
(controller, libvirtd, PostgreSQL): connections are accepted and nothing
answers, as at a site that hangs or blackholes, and the outside fence gives
up on each within fencing.timeout. thaw continues what freeze or hang
stopped (SIGCONT); up starts a crashed controller again.

In a lab in network namespaces (zdt lab --netns) down also cuts the site's
links first, and up heals them; isolate cuts the site off from the other
sites alone (its BGP sessions stay up), and heal sets its links up again.`,
		Example: `  zdt lab site a down --dir /tmp/lab
  zdt lab site a up --dir /tmp/lab
  zdt lab site b crash --dir /tmp/lab
  zdt lab site b freeze --dir /tmp/lab; sleep 5; zdt lab site b thaw --dir /tmp/lab`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 {
				return errors.New("give a site and an action (up, down, crash, freeze, hang or thaw), for example `zdt lab site a down --dir DIR`")
			}
			switch args[1] {
			case "up", "down", "crash", "freeze", "hang", "thaw", "isolate", "heal":
			default:
				return fmt.Errorf("unknown action %q for site %s: use up, down, crash, freeze, hang, thaw, isolate or heal", args[1], args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := openLab(o, "zdt lab site")
			if err != nil {
				return err
			}
			if _, err := l.Site(args[0]); err != nil {
				return err
			}
			switch args[1] {
			case "down":
				return labSiteDown(cmd.OutOrStdout(), l, args[0])
			case "crash", "freeze":
				return labControllerFault(cmd.OutOrStdout(), l, args[0], args[1])
			case "hang", "thaw":
				return labSiteSignal(cmd.OutOrStdout(), l, args[0], args[1])
			case "isolate":
				if err := l.IsolateSite(args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "site %s is cut off from the other sites; its link to the upstream stays up. Heal it with `zdt lab site %s heal --dir %s`\n", args[0], args[0], l.Dir())
				return nil
			case "heal":
				if err := l.HealSite(args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "site %s's links are up\n", args[0])
				printFailbackHint(cmd.OutOrStdout(), l, args[0])
				return nil
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			return labSiteUp(ctx, cmd.OutOrStdout(), l, args[0])
		},
	}
}

// labControllerFault crashes or freezes the site's controller alone.
func labControllerFault(out io.Writer, l *lab.Lab, site, action string) error {
	var (
		pid  int
		err  error
		what string
	)
	switch action {
	case "crash":
		pid, err = l.CrashController(site)
		what = "killed with SIGKILL; its PostgreSQL server and libvirtd run on. Start it again with `zdt lab site " + site + " up --dir " + l.Dir() + "`"
	case "freeze":
		pid, err = l.FreezeController(site)
		what = "stopped with SIGSTOP; its PostgreSQL server and libvirtd run on. Continue it with `zdt lab site " + site + " thaw --dir " + l.Dir() + "`"
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "the controller of site %s (pid %d) %s\n", site, pid, what)
	return nil
}

// labSiteSignal hangs (SIGSTOP) or thaws (SIGCONT) the whole site.
func labSiteSignal(out io.Writer, l *lab.Lab, site, action string) error {
	if action == "hang" {
		pids, err := l.HangSite(site)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "site %s hangs: processes %v stopped with SIGSTOP (they accept connections and answer nothing). Continue them with `zdt lab site %s thaw --dir %s`\n",
			site, pids, site, l.Dir())
		return nil
	}
	pids, err := l.ThawSite(site)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "site %s: processes %v continued with SIGCONT\n", site, pids)
	printFailbackHint(out, l, site)
	return nil
}

func labSiteDown(out io.Writer, l *lab.Lab, site string) error {
	pid, controller := l.Running(site)
	lpid, libvirtd := l.LibvirtdRunning(site)
	ppid, postgres := l.PostgresRunning(site)
	err := l.KillSite(site)
	if errors.Is(err, lab.ErrNotRunning) {
		fmt.Fprintf(out, "site %s is already down\n", site)
		return nil
	}
	if err != nil {
		return err
	}
	var killed []string
	if controller {
		killed = append(killed, fmt.Sprintf("its controller (pid %d) with its etcd member", pid))
	}
	if libvirtd {
		killed = append(killed, fmt.Sprintf("its libvirtd (pid %d) with its guests", lpid))
	}
	if postgres {
		killed = append(killed, fmt.Sprintf("its PostgreSQL server (pid %d)", ppid))
	}
	fmt.Fprintf(out, "site %s is down: %s killed with SIGKILL\n", site, joinAnd(killed))
	fmt.Fprintf(out, "watch its services move: zdt status --config %s (the op: zdt ops list --config %s); bring it back: zdt lab site %s up --dir %s\n",
		l.ConfigPath(), l.ConfigPath(), site, l.Dir())
	return nil
}

func labSiteUp(ctx context.Context, out io.Writer, l *lab.Lab, site string) error {
	err := l.StartSite(site)
	if errors.Is(err, lab.ErrRunning) {
		pid, _ := l.Running(site)
		fmt.Fprintf(out, "site %s is already up (pid %d)\n", site, pid)
		return nil
	}
	if err != nil {
		return err
	}
	if err := l.WaitAnswering(ctx, site); err != nil {
		return fmt.Errorf("site %s was started but %w", site, err)
	}
	s, _ := l.Site(site)
	pid, _ := l.Running(site)
	fmt.Fprintf(out, "site %s is back (pid %d) and answers on https://%s; see its state with `zdt status --config %s`\n",
		site, pid, s.API, l.ConfigPath())
	if _, running := l.PostgresRunning(site); l.HasPostgres() && !running {
		fmt.Fprintf(out, "its controller starts its PostgreSQL server again: as a standby of the primary (rewound where needed), or as it was when its site holds the group\n")
	}
	printFailbackHint(out, l, site)
	return nil
}

// printFailbackHint says how a site that was failed over serves again.
func printFailbackHint(out io.Writer, l *lab.Lab, site string) {
	fmt.Fprintf(out, "if it was failed over, it stays fenced: once it is back clean, fail it back with\n  zdt failback --site %s --config %s --wait\n"+
		"(it says what it still waits for; add --switch-back to move back the services that prefer site %s)\n",
		site, l.ConfigPath(), site)
}

// joinAnd joins "x", "x and y", "x, y and z".
func joinAnd(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

func newLabStopCommand(o *labOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "stop",
		Short:   "Stop every site of a lab",
		Long:    "Stop every site of a lab: the controllers, then the libvirtds, the PostgreSQL servers and the route observer; SIGTERM (a postmaster SIGINT), and SIGKILL to what is left after 10s. The lab's files stay.",
		Example: "  zdt lab stop --dir /tmp/lab",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := openLab(o, "zdt lab stop")
			if err != nil {
				return err
			}
			var running []string
			for _, name := range l.SiteNames() {
				if _, ok := l.Running(name); ok {
					running = append(running, name)
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), labStopTimeout)
			defer cancel()
			if err := l.Stop(ctx); err != nil {
				return err
			}
			if len(running) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "no site of the lab in %s was running\n", l.Dir())
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stopped sites %s; the lab's files stay in %s\n", strings.Join(running, ", "), l.Dir())
			return nil
		},
	}
}

// openLab opens the lab that --dir names; the subcommands need one.
func openLab(o *labOptions, command string) (*lab.Lab, error) {
	if o.dir == "" {
		return nil, fmt.Errorf("--dir is missing: `%s` needs the lab's directory, as `zdt lab` printed it", command)
	}
	return lab.Open(o.dir, lab.Options{})
}
