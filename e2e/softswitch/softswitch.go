// Package softswitch is an Ethernet switch in userspace whose links between
// ports can be delayed, given jitter, or cut one pair at a time: the
// test-bed's network between sites, on kernels that have neither netem nor
// a packet filter to do it in the kernel.
//
// Each port is a network interface (one end of a veth pair, say), read and
// written through a packet socket. A frame that arrives on a port goes out
// of the port that its destination MAC address was last seen on, or out of
// every other port when that is not known (broadcast, multicast, a new
// address), as a learning bridge does. Between two ports a Link says what
// the frames meet: nothing, a one-way delay with jitter, or a cut that
// drops them. Frames from one port to another leave in the order they came,
// jitter or not: a frame is never released before the one before it, so a
// TCP stream sees its delay vary without being reordered.
//
// The sockets pass the kernel's offload metadata (virtio-net headers) with
// every frame, so large TCP segments cross the switch whole and frames whose
// checksum the sender left to the hardware keep it that way.
//
// It is for tests and the lab.
package softswitch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Link is what frames between two ports meet.
type Link struct {
	// Delay is the one-way delay of every frame; Jitter spreads it
	// uniformly over Delay ± Jitter, in order (see the package doc).
	Delay, Jitter time.Duration
	// Cut drops every frame.
	Cut bool
	// BlockTCPPort, if not 0, drops every TCP segment from or to this
	// port (over IPv4 or IPv6): one service cut off, the rest of the link
	// up.
	BlockTCPPort uint16
}

func (l Link) String() string {
	var s string
	switch {
	case l.Cut:
		return "cut"
	case l.Delay == 0 && l.Jitter == 0:
		s = "direct"
	case l.Jitter == 0:
		s = l.Delay.String()
	default:
		s = l.Delay.String() + " ± " + l.Jitter.String()
	}
	if l.BlockTCPPort != 0 {
		s += fmt.Sprintf(", TCP port %d blocked", l.BlockTCPPort)
	}
	return s
}

// Validate reports what is wrong with l.
func (l Link) Validate() error {
	if l.Delay < 0 || l.Jitter < 0 || l.Jitter > l.Delay {
		return fmt.Errorf("link %s: want a delay of at least 0 and a jitter of at most the delay", l)
	}
	return nil
}

const (
	// vnetHdrLen is the size of struct virtio_net_hdr, which every frame
	// read from or written to a port's socket starts with.
	vnetHdrLen = 10
	ethHdrLen  = 14
	// maxFrame holds the largest segment a veth passes whole (64 KiB of
	// GSO, or BIG TCP's more), with its headers.
	maxFrame = 256 << 10
)

// maxQueued is the most frames one direction between two ports holds
// while delaying them; more are dropped, as a router's full queue does.
const maxQueued = 4096

// Stats count what a switch has done since it started.
type Stats struct {
	Frames     int64 // frames received
	Sent       int64 // frames sent (a flooded frame counts once per port)
	CutDrops   int64 // frames dropped by a cut or a blocked port
	QueueDrops int64 // frames dropped because a delay's queue was full
	SendErrors int64 // frames the kernel refused to send
	ReadErrors int64 // errors reading a port, other than its close
}

// Switch forwards frames between its ports. Make it with New.
type Switch struct {
	ports map[string]*port // by name

	mu    sync.RWMutex
	macs  map[[6]byte]*port
	links map[[2]string]Link  // by the sorted pair of port names
	lines map[[2]string]*line // by from, to

	stats struct {
		frames, sent, cutDrops, queueDrops, sendErrors, readErrors atomic.Int64
	}

	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// port is one interface of the switch.
type port struct {
	name string
	f    *os.File // the packet socket
}

// Port names an interface of the calling thread's network namespace as a
// port of a switch.
type Port struct {
	Name      string // what links refer to it by
	Interface string
}

// New opens a packet socket on every port's interface, in the network
// namespace of the calling thread (lock the thread to a namespace first to
// switch another's), and starts forwarding between them. Close stops it.
func New(ports []Port) (*Switch, error) {
	s := &Switch{
		ports: make(map[string]*port),
		macs:  make(map[[6]byte]*port),
		links: make(map[[2]string]Link),
		lines: make(map[[2]string]*line),
		done:  make(chan struct{}),
	}
	for _, p := range ports {
		if _, dup := s.ports[p.Name]; dup || p.Name == "" {
			s.closePorts()
			return nil, fmt.Errorf("switch port %q: want a unique, non-empty name", p.Name)
		}
		f, err := openPacketSocket(p.Interface)
		if err != nil {
			s.closePorts()
			return nil, fmt.Errorf("switch port %s: %w", p.Name, err)
		}
		s.ports[p.Name] = &port{name: p.Name, f: f}
	}
	for _, p := range s.ports {
		s.wg.Add(1)
		go s.receive(p)
	}
	return s, nil
}

// Ports are the names of the switch's ports, sorted.
func (s *Switch) Ports() []string {
	names := make([]string, 0, len(s.ports))
	for n := range s.ports {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// SetLink sets the link between ports a and b, both ways. Frames already
// delayed keep their times.
func (s *Switch) SetLink(a, b string, l Link) error {
	if err := l.Validate(); err != nil {
		return err
	}
	for _, n := range []string{a, b} {
		if s.ports[n] == nil {
			return fmt.Errorf("link %s-%s: no port %q (have %v)", a, b, n, s.Ports())
		}
	}
	if a == b {
		return fmt.Errorf("link %s-%s: a link joins two ports", a, b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l == (Link{}) {
		delete(s.links, pairOf(a, b))
	} else {
		s.links[pairOf(a, b)] = l
	}
	return nil
}

// Links are the links that are not direct, by the sorted pair of their
// ports' names.
func (s *Switch) Links() map[[2]string]Link {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[[2]string]Link, len(s.links))
	for k, v := range s.links {
		out[k] = v
	}
	return out
}

// Stats are the switch's counters.
func (s *Switch) Stats() Stats {
	return Stats{
		Frames:     s.stats.frames.Load(),
		Sent:       s.stats.sent.Load(),
		CutDrops:   s.stats.cutDrops.Load(),
		QueueDrops: s.stats.queueDrops.Load(),
		SendErrors: s.stats.sendErrors.Load(),
		ReadErrors: s.stats.readErrors.Load(),
	}
}

// Close stops the switch: frames still delayed are dropped.
func (s *Switch) Close() error {
	s.once.Do(func() {
		close(s.done)
		s.closePorts()
	})
	s.wg.Wait()
	return nil
}

func (s *Switch) closePorts() {
	for _, p := range s.ports {
		p.f.Close()
	}
}

func pairOf(a, b string) [2]string {
	if b < a {
		a, b = b, a
	}
	return [2]string{a, b}
}

// receive forwards what arrives on p until the switch closes.
func (s *Switch) receive(p *port) {
	defer s.wg.Done()
	buf := make([]byte, maxFrame)
	for {
		n, err := p.f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			// The interface went down or away: wait for it, or for Close.
			s.stats.readErrors.Add(1)
			select {
			case <-s.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if n < vnetHdrLen+ethHdrLen {
			continue
		}
		s.stats.frames.Add(1)
		s.forward(p, buf[:n])
	}
}

// forward sends frame (a virtio-net header, then the Ethernet frame) from
// port in to where its destination is, through each link.
func (s *Switch) forward(in *port, frame []byte) {
	eth := frame[vnetHdrLen:]
	var dst, src [6]byte
	copy(dst[:], eth[0:6])
	copy(src[:], eth[6:12])

	s.mu.Lock()
	if src[0]&1 == 0 {
		s.macs[src] = in
	}
	out := s.macs[dst]
	s.mu.Unlock()

	if out == in {
		return // both ends on one port: not for us to forward
	}
	if out != nil && dst[0]&1 == 0 {
		s.send(in, out, frame)
		return
	}
	for _, o := range s.ports {
		if o != in {
			s.send(in, o, frame)
		}
	}
}

// send passes frame from in to out through their link. frame is reused
// once send returns.
func (s *Switch) send(in, out *port, frame []byte) {
	s.mu.RLock()
	l := s.links[pairOf(in.name, out.name)]
	s.mu.RUnlock()
	if l.Cut || (l.BlockTCPPort != 0 && hasTCPPort(frame[vnetHdrLen:], l.BlockTCPPort)) {
		s.stats.cutDrops.Add(1)
		return
	}
	if l.Delay == 0 {
		s.write(out, frame)
		return
	}
	s.lineOf(in, out).hold(slices.Clone(frame), l, time.Now())
}

// hasTCPPort reports whether the Ethernet frame carries a TCP segment
// from or to port, over IPv4 or IPv6 (without extension headers).
func hasTCPPort(eth []byte, port uint16) bool {
	var tcp []byte
	switch binary.BigEndian.Uint16(eth[12:14]) {
	case 0x0800: // IPv4
		ip := eth[ethHdrLen:]
		if len(ip) < 20 {
			return false
		}
		ihl := int(ip[0]&0x0f) * 4
		if ip[9] != 6 || ihl < 20 || ihl > len(ip) {
			return false
		}
		tcp = ip[ihl:]
	case 0x86dd: // IPv6
		ip := eth[ethHdrLen:]
		if len(ip) < 40 || ip[6] != 6 {
			return false
		}
		tcp = ip[40:]
	default:
		return false
	}
	if len(tcp) < 4 {
		return false
	}
	return binary.BigEndian.Uint16(tcp[0:2]) == port || binary.BigEndian.Uint16(tcp[2:4]) == port
}

func (s *Switch) write(out *port, frame []byte) {
	if _, err := out.f.Write(frame); err != nil {
		s.stats.sendErrors.Add(1)
		return
	}
	s.stats.sent.Add(1)
}

// lineOf is the delay line from in to out, started on first use.
func (s *Switch) lineOf(in, out *port) *line {
	key := [2]string{in.name, out.name}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.lines[key]; l != nil {
		return l
	}
	l := &line{queue: make(chan held, maxQueued), s: s, out: out}
	s.lines[key] = l
	s.wg.Add(1)
	go l.run()
	return l
}

// line holds the frames from one port to another for their delay, and
// sends them in order. Only the receiving goroutine of its "from" port
// feeds it.
type line struct {
	s     *Switch
	out   *port
	queue chan held
	last  time.Time // when the last frame held is due
}

type held struct {
	due   time.Time
	frame []byte
}

// hold queues frame, due after the link's delay from now (never before the
// frame before it), or drops it if the queue is full.
func (l *line) hold(frame []byte, link Link, now time.Time) {
	due := dueTime(now, l.last, link, rand.Int64N)
	select {
	case l.queue <- held{due: due, frame: frame}:
		l.last = due
	default:
		l.s.stats.queueDrops.Add(1)
	}
}

// dueTime is when a frame that arrives at now leaves through link, the
// frame before it leaving at last: now plus the delay, give or take up to
// the jitter (randN(n) draws from [0, n)), and never before last.
func dueTime(now, last time.Time, link Link, randN func(int64) int64) time.Time {
	d := link.Delay
	if link.Jitter > 0 {
		d += time.Duration(randN(int64(2*link.Jitter)+1)) - link.Jitter
	}
	return later(now.Add(d), last)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func (l *line) run() {
	defer l.s.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		var h held
		select {
		case <-l.s.done:
			return
		case h = <-l.queue:
		}
		if wait := time.Until(h.due); wait > 0 {
			t.Reset(wait)
			select {
			case <-l.s.done:
				return
			case <-t.C:
			}
		}
		l.s.write(l.out, h.frame)
	}
}
