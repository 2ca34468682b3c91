package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"github.com/zdt-project/zdt/e2e/delayline"
)

// SiteDelay is the one-way delay, Delay ± Jitter, of the links between the
// lab's sites.
type SiteDelay struct {
	Delay, Jitter time.Duration
}

func (d SiteDelay) String() string {
	if d.Jitter == 0 {
		return d.Delay.String()
	}
	return d.Delay.String() + " ± " + d.Jitter.String()
}

// DelayLines are the delay lines between a lab's sites: one in front of
// each site's etcd peer listener, so every raft message and forwarded lease
// renewal between two sites crosses one line each way. Close them after the
// sites have stopped.
type DelayLines struct {
	delay    SiteDelay
	lines    map[string]*delayline.Line // by site
	redirect *connectRedirect
}

// StartDelayLines puts a delay line in front of every site's etcd peer
// listener: it listens on the site's address, on a port of its own, and
// passes what it gets to the member after the delay. The members dial each
// other's peer URLs as before; a cgroup BPF program (cgroup/connect4) steers
// those connects to the delay lines, for the processes of this process's
// cgroup, which is where the lab's controllers run. TLS is end to end: the
// line passes the bytes, the member sees the certificate its peer presents,
// and the line dials from the address its peer dialled from.
//
// Start them before the sites: a connection made before is not steered.
// They need Linux, root and cgroup v2, and they last as long as this
// process: once it ends, the members' connections go direct again.
func (l *Lab) StartDelayLines(d SiteDelay) (*DelayLines, error) {
	if d.Delay < 0 || d.Jitter < 0 || d.Jitter > d.Delay {
		return nil, fmt.Errorf("site delay %s: want a delay of at least 0 and a jitter of at most the delay", d)
	}
	dl := &DelayLines{delay: d, lines: map[string]*delayline.Line{}}
	routes := map[netip.AddrPort]netip.AddrPort{}
	for _, s := range l.sites {
		peer, err := peerAddr(s)
		if err != nil {
			dl.closeLines()
			return nil, err
		}
		ln, err := net.Listen("tcp", netip.AddrPortFrom(peer.Addr(), 0).String())
		if err != nil {
			dl.closeLines()
			return nil, fmt.Errorf("delay line of site %s: %w", s.Name, err)
		}
		dl.lines[s.Name] = delayline.Serve(ln, delayline.Config{
			Target: peer.String(),
			Delay:  d.Delay,
			Jitter: d.Jitter,
			Dial:   dialMarked(peer),
		})
		routes[peer] = netip.MustParseAddrPort(ln.Addr().String())
	}
	r, err := redirectConnects(routes)
	if err != nil {
		dl.closeLines()
		return nil, fmt.Errorf("steer the etcd peer connections to the delay lines: %w", err)
	}
	dl.redirect = r
	return dl, nil
}

// peerAddr is the address and port of the site's etcd peer listener.
func peerAddr(s SiteAddrs) (netip.AddrPort, error) {
	u, err := url.Parse(s.EtcdPeerURL)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("site %s: etcd peer URL: %w", s.Name, err)
	}
	ap, err := netip.ParseAddrPort(u.Host)
	if err != nil || !ap.Addr().Is4() {
		return netip.AddrPort{}, fmt.Errorf("site %s: etcd peer URL %q: the delay lines want an IPv4 address and a port", s.Name, s.EtcdPeerURL)
	}
	return ap, nil
}

// dialMarked dials the member from the address its peer dialled from (an
// etcd member checks that its peer's certificate names the address the
// connection comes from), on a marked socket the redirect lets through.
func dialMarked(peer netip.AddrPort) func(context.Context, net.Conn) (net.Conn, error) {
	return func(ctx context.Context, accepted net.Conn) (net.Conn, error) {
		d := net.Dialer{
			Timeout: 5 * time.Second,
			Control: func(_, _ string, c syscall.RawConn) error {
				var err error
				if cerr := c.Control(func(fd uintptr) { err = markSocket(fd) }); cerr != nil {
					return cerr
				}
				return err
			},
		}
		if from, ok := accepted.RemoteAddr().(*net.TCPAddr); ok {
			d.LocalAddr = &net.TCPAddr{IP: from.IP}
		}
		return d.DialContext(ctx, "tcp", peer.String())
	}
}

// Delay is the lines' delay.
func (dl *DelayLines) Delay() SiteDelay { return dl.delay }

// Stats adds up the counts of every line (the maxima are the largest).
func (dl *DelayLines) Stats() delayline.Stats {
	var sum delayline.Stats
	for _, l := range dl.lines {
		s := l.Stats()
		sum.Conns += s.Conns
		sum.DialErrors += s.DialErrors
		sum.Chunks += s.Chunks
		sum.Bytes += s.Bytes
		sum.MaxHeld = max(sum.MaxHeld, s.MaxHeld)
		sum.TotalLate += s.TotalLate
		sum.MaxLate = max(sum.MaxLate, s.MaxLate)
		sum.Over10ms += s.Over10ms
		sum.Over50ms += s.Over50ms
	}
	return sum
}

// Summary says in one line what the lines did.
func (dl *DelayLines) Summary() string {
	s := dl.Stats()
	return fmt.Sprintf("delay lines (%s one way): %d connections, %d chunks, %d bytes; lateness mean %s, max %s, %d chunks over 10ms, %d over 50ms",
		dl.delay, s.Conns, s.Chunks, s.Bytes, s.MeanLate().Round(time.Microsecond), s.MaxLate.Round(time.Microsecond), s.Over10ms, s.Over50ms)
}

// Close stops steering connects and closes the lines: the members'
// connections break and they dial each other directly.
func (dl *DelayLines) Close() error {
	var errs []error
	if dl.redirect != nil {
		errs = append(errs, dl.redirect.Close())
	}
	errs = append(errs, dl.closeLines())
	return errors.Join(errs...)
}

func (dl *DelayLines) closeLines() error {
	var errs []error
	for _, l := range dl.lines {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
