package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// ErrInput is wrapped by the errors of Decide for inputs that contradict
// each other: check with errors.Is. Such an input is a bug of the caller;
// the reconciler keeps what it announces and reports it.
var ErrInput = errors.New("inconsistent BGP announcement policy input")

// Input is one service's state as one site sees it: everything Decide
// needs, and nothing it has to look up or wait for.
type Input struct {
	// Site is the site whose announcements are decided.
	Site string
	// Service names the service, for reasons and errors only.
	Service string
	// Prefixes are the service's prefixes, IPv4 and IPv6 alike; Decide
	// returns one Decision for each, in this order.
	Prefixes []netip.Prefix
	// Order is the service's sites, most preferred first.
	Order []string

	// Active is the assignment's site: the site that must serve the
	// service, and during a planned move the site it moves to. "" when the
	// service was never assigned: no site announces it then.
	Active string
	// Epoch is the assignment's epoch, quoted in reasons.
	Epoch int64
	// Fenced holds the sites that are fenced. A fenced site withdraws and
	// is no standby.
	Fenced map[string]bool
	// SelfFenced is true while this site's controller is not up: it
	// self-fenced, or is joining or stopping. The site withdraws.
	SelfFenced bool

	// Takeover is set during an unplanned takeover of the service by
	// Active, after the site that held it went dark. At most one of
	// Takeover and Move.
	Takeover *Takeover
	// Move is set during a planned move of the service to Active.
	Move *Move

	// Current is what this site announces now for each prefix and since
	// when; a prefix that is missing was never announced by this run of the
	// site's speaker (no flap guard applies to it).
	Current map[netip.Prefix]Applied
	// Now is the time of the decision.
	Now time.Time
}

// Takeover describes an unplanned takeover: Active takes the service over
// from From, which went dark and may have left its last path at the
// upstream, held there until the upstream's BGP session to From times out.
// Until that stale path is gone, Active announces 0 prepends to beat it.
type Takeover struct {
	// From is the dark site that held the service.
	From string
	// Started is when the takeover started: when the coordinator assigned
	// the service to Active.
	Started time.Time
	// HoldTime is the BGP hold time of From's sessions at the upstream: by
	// Started+HoldTime the upstream has dropped From's paths.
	HoldTime time.Duration
	// PathGone is true once the upstream observer reports that no path from
	// From remains.
	PathGone bool
}

// staleUntil is the latest time From's stale path can be held.
func (t *Takeover) staleUntil() time.Time { return t.Started.Add(t.HoldTime) }

// stale reports whether From's stale path may still be held at now.
func (t *Takeover) stale(now time.Time) bool {
	return !t.PathGone && now.Before(t.staleUntil())
}

// Move describes a planned move (switchover) of the service from From to
// Active, make-before-break. The switchover op advances Phase on what it
// observes and ends the move (Input.Move = nil) once From's raise is in
// place at the upstream; the policy never advances it on its own.
type Move struct {
	// From is the site that held the service before the move.
	From string
	// Phase is how far the move has come.
	Phase MovePhase
}

// MovePhase is a phase of a planned move from site X (Move.From) to site Y
// (Input.Active).
type MovePhase int

// The phases of a planned move, in order.
const (
	// MovePrepare: Y is being made ready (replicas promoted, guests
	// started). Nothing moves: X keeps the headroom, Y its standby rank
	// behind X.
	MovePrepare MovePhase = iota + 1
	// MoveAnnounce: Y is ready. Y announces at headroom-1 and beats X,
	// which keeps the headroom until Y's path is in place. The op moves on
	// when Y's path is observed at the upstream (or Y confirms it
	// announced it).
	MoveAnnounce
	// MoveRelease: Y's path is in place at the upstream. X goes up to its
	// standby rank behind Y; Y stays at headroom-1 until the move ends, so
	// it beats X even while X's raise is on its way. The op ends the move
	// once X's raise is in place; Y then returns to the headroom.
	MoveRelease
)

func (p MovePhase) String() string {
	switch p {
	case MovePrepare:
		return "prepare"
	case MoveAnnounce:
		return "announce"
	case MoveRelease:
		return "release"
	}
	return "MovePhase(" + strconv.Itoa(int(p)) + ")"
}

// Announcement is what a site announces for one prefix: a path with
// Prepends copies of the local AS added by zdt (the upstream sees one more,
// added by GoBGP), or nothing (Announce false). The zero Announcement is a
// withdrawal.
type Announcement struct {
	Announce bool
	Prepends int // 0 when not announced
}

// Announced returns an announcement with n prepends.
func Announced(n int) Announcement { return Announcement{Announce: true, Prepends: n} }

// withdrawn is no announcement: the zero Announcement.
var withdrawn = Announcement{}

func (a Announcement) String() string {
	switch {
	case !a.Announce:
		return "withdrawn"
	case a.Prepends == 1:
		return "1 prepend"
	}
	return strconv.Itoa(a.Prepends) + " prepends"
}

// Applied is what a site announces now for one prefix, and since when.
type Applied struct {
	Announcement
	// Since is when the announcement last changed; zero if unknown (no
	// flap guard applies then).
	Since time.Time
}

// validate checks that the input is consistent.
func (in Input) validate() error {
	if err := in.check(); err != nil {
		svc := in.Service
		if svc == "" {
			svc = "?"
		}
		return fmt.Errorf("%w: service %s at site %s: %s", ErrInput, svc, in.Site, err)
	}
	return nil
}

func (in Input) check() error {
	switch {
	case in.Site == "":
		return errors.New("no site given")
	case len(in.Order) == 0:
		return errors.New("the service has no sites")
	case in.Now.IsZero():
		return errors.New("no time given (Now)")
	}
	for i, s := range in.Order {
		if s == "" || slices.Contains(in.Order[:i], s) {
			return fmt.Errorf("site order %v lists an empty or a repeated site", in.Order)
		}
	}
	if in.Active != "" && !slices.Contains(in.Order, in.Active) {
		return fmt.Errorf("assigned site %s is not among the service's sites %v", in.Active, in.Order)
	}
	if err := in.checkTakeoverAndMove(); err != nil {
		return err
	}
	for i, p := range in.Prefixes {
		if !p.IsValid() {
			return fmt.Errorf("prefix %d is not valid", i)
		}
		if slices.Contains(in.Prefixes[:i], p) {
			return fmt.Errorf("prefix %s is listed twice", p)
		}
	}
	// Current may hold every prefix of the site (the announcer passes
	// its whole table); only this service's are read.
	for _, p := range in.Prefixes {
		if a, ok := in.Current[p]; ok && a.Prepends < 0 {
			return fmt.Errorf("current announcement of %s has %d prepends", p, a.Prepends)
		}
	}
	return nil
}

func (in Input) checkTakeoverAndMove() error {
	t, m := in.Takeover, in.Move
	switch {
	case t != nil && m != nil:
		return fmt.Errorf("a takeover from %s and a planned move from %s at once: end the move before taking over", t.From, m.From)
	case (t != nil || m != nil) && in.Active == "":
		return errors.New("a takeover or a planned move of a service without an assignment")
	}
	if t != nil {
		switch {
		case t.From == "" || t.From == in.Active:
			return fmt.Errorf("takeover by %s from %q: it must come from another site", in.Active, t.From)
		case t.HoldTime < 0:
			return fmt.Errorf("takeover from %s with a negative hold time %s", t.From, t.HoldTime)
		}
	}
	if m != nil {
		switch {
		case m.From == in.Active:
			return fmt.Errorf("planned move from %s to itself", m.From)
		case !slices.Contains(in.Order, m.From):
			return fmt.Errorf("planned move from %q, which is not among the service's sites %v", m.From, in.Order)
		case m.Phase < MovePrepare || m.Phase > MoveRelease:
			return fmt.Errorf("planned move from %s in unknown phase %s", m.From, m.Phase)
		}
	}
	return nil
}
