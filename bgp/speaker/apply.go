package speaker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/anypb"
)

// MaxPrepends is the largest Route.Prepends: GoBGP keeps an AS_PATH segment
// to 255 ASNs, and it adds one more copy of the local AS on export.
const MaxPrepends = 254

var (
	// ErrInvalidRoute is wrapped by Apply's errors for bad input; nothing
	// was changed.
	ErrInvalidRoute = errors.New("invalid route")
	// ErrBusy is returned by Apply while a route change it gave up waiting
	// for earlier has still not returned from GoBGP; nothing was changed.
	ErrBusy = errors.New("previous GoBGP route change still pending")
)

// Route is a prefix this speaker originates.
type Route struct {
	Prefix netip.Prefix
	// Prepends is the number of copies of the local AS put in the AS_PATH;
	// the upstream sees Prepends+1 (GoBGP adds one on eBGP export).
	Prepends int
}

func (r Route) String() string { return fmt.Sprintf("%v+%d", r.Prefix, r.Prepends) }

// Diff counts what one Apply changed.
type Diff struct{ Announced, Replaced, Withdrawn int }

// Apply makes the announced routes exactly routes, the full desired set:
// it announces new prefixes, replaces in place those whose prepends changed
// and withdraws those no longer listed, in prefix order, announcements and
// replacements before withdrawals. A second identical Apply makes no GoBGP
// call.
//
// Invalid input (an invalid or unmasked prefix, a duplicate prefix,
// prepends outside 0..MaxPrepends) is rejected with ErrInvalidRoute before
// anything changes. On an error part way, the Diff counts the changes made
// and Routes tells exactly what GoBGP has accepted; calling Apply again
// converges from there.
func (s *Speaker) Apply(ctx context.Context, routes []Route) (Diff, error) {
	want, err := validateRoutes(routes)
	if err != nil {
		return Diff{}, err
	}

	s.applyMu.Lock()
	defer s.applyMu.Unlock()

	if err := s.waitPending(ctx); err != nil {
		return Diff{}, err
	}

	s.mu.Lock()
	var put, del []Route
	var replaced map[netip.Prefix]bool
	for p, r := range want {
		if old, ok := s.announced[p]; !ok {
			put = append(put, r)
		} else if old.Prepends != r.Prepends {
			put = append(put, r)
			if replaced == nil {
				replaced = make(map[netip.Prefix]bool)
			}
			replaced[p] = true
		}
	}
	for p, r := range s.announced {
		if _, ok := want[p]; !ok {
			del = append(del, r)
		}
	}
	s.mu.Unlock()

	byPrefix := func(a, b Route) int { return comparePrefix(a.Prefix, b.Prefix) }
	slices.SortFunc(put, byPrefix)
	slices.SortFunc(del, byPrefix)

	var d Diff
	for _, r := range put {
		if err := s.announce(ctx, r); err != nil {
			return d, s.applyErr(d, err)
		}
		if replaced[r.Prefix] {
			d.Replaced++
		} else {
			d.Announced++
		}
	}
	for _, r := range del {
		if err := s.withdraw(ctx, r); err != nil {
			return d, s.applyErr(d, err)
		}
		d.Withdrawn++
	}
	if d != (Diff{}) {
		s.log.Debug("routes applied", zap.String("op", "apply"), zap.Int("announced", d.Announced),
			zap.Int("replaced", d.Replaced), zap.Int("withdrawn", d.Withdrawn), zap.Int("routes", len(want)))
	}
	return d, nil
}

func (s *Speaker) applyErr(d Diff, err error) error {
	return fmt.Errorf("apply routes (after %d announced, %d replaced, %d withdrawn): %w",
		d.Announced, d.Replaced, d.Withdrawn, err)
}

// waitPending waits for a route change an earlier Apply gave up on.
func (s *Speaker) waitPending(ctx context.Context) error {
	s.mu.Lock()
	pending, closed := s.pending, s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if pending == nil {
		return nil
	}
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	select {
	case <-pending:
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrBusy, ctx.Err())
	case <-timer.C:
		return fmt.Errorf("%w after waiting %v", ErrBusy, s.timeout)
	}
	s.mu.Lock()
	s.pending = nil
	s.mu.Unlock()
	return nil
}

// announce adds (or replaces in place) the path for r and records it once
// GoBGP has accepted it, even if that is after the call timed out.
func (s *Speaker) announce(ctx context.Context, r Route) error {
	path, err := s.path(r)
	if err != nil {
		return err
	}
	return s.change(ctx, "AddPath "+r.String(), func() error {
		_, err := s.bgp.AddPath(context.Background(), &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path})
		if err != nil {
			return err
		}
		s.record(r, true)
		return nil
	})
}

// withdraw deletes the path for r: the exact path with its next hop, never an
// empty request (which would delete every local path).
func (s *Speaker) withdraw(ctx context.Context, r Route) error {
	path, err := s.path(r)
	if err != nil {
		return err
	}
	return s.change(ctx, "DeletePath "+r.String(), func() error {
		if err := s.bgp.DeletePath(context.Background(), &api.DeletePathRequest{
			TableType: api.TableType_GLOBAL, Family: path.Family, Path: path,
		}); err != nil {
			return err
		}
		s.record(r, false)
		return nil
	})
}

// change runs one route change; if it gives up waiting, the change is left
// pending for the next Apply.
func (s *Speaker) change(ctx context.Context, op string, f func() error) error {
	if s.isClosed() {
		return ErrClosed
	}
	s.routeCalls.Add(1)
	finished, err := call(ctx, s.timeout, op, f)
	if err != nil {
		select {
		case <-finished:
		default:
			s.mu.Lock()
			s.pending = finished
			s.mu.Unlock()
		}
	}
	return err
}

func (s *Speaker) record(r Route, announced bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if announced {
		s.announced[r.Prefix] = r
	} else {
		delete(s.announced, r.Prefix)
	}
}

// Routes returns what is announced now (what GoBGP has accepted), sorted by
// prefix.
func (s *Speaker) Routes() []Route {
	s.mu.Lock()
	out := make([]Route, 0, len(s.announced))
	for _, r := range s.announced {
		out = append(out, r)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Route) int { return comparePrefix(a.Prefix, b.Prefix) })
	return out
}

func validateRoutes(routes []Route) (map[netip.Prefix]Route, error) {
	want := make(map[netip.Prefix]Route, len(routes))
	var errs []error
	for i, r := range routes {
		switch {
		case !r.Prefix.IsValid():
			errs = append(errs, fmt.Errorf("routes[%d]: invalid prefix %v", i, r.Prefix))
			continue
		case r.Prefix.Addr().Is4In6():
			errs = append(errs, fmt.Errorf("routes[%d] %v: IPv4-mapped IPv6 prefix; use the IPv4 form", i, r.Prefix))
			continue
		case r.Prefix != r.Prefix.Masked():
			errs = append(errs, fmt.Errorf("routes[%d] %v: host bits set; did you mean %v?", i, r.Prefix, r.Prefix.Masked()))
			continue
		}
		if r.Prepends < 0 || r.Prepends > MaxPrepends {
			errs = append(errs, fmt.Errorf("routes[%d] %v: prepends %d outside 0..%d", i, r.Prefix, r.Prepends, MaxPrepends))
		}
		if _, dup := want[r.Prefix]; dup {
			errs = append(errs, fmt.Errorf("routes[%d]: prefix %v listed twice", i, r.Prefix))
		}
		want[r.Prefix] = r
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRoute, errors.Join(errs...))
	}
	return want, nil
}

// path builds the GoBGP path for r: ORIGIN IGP, an AS_PATH of r.Prepends
// copies of the local AS (empty for 0) and the unspecified next hop, which
// GoBGP replaces with the session's local address on export.
func (s *Speaker) path(r Route) (*api.Path, error) {
	fam := familyOf(r.Prefix.Addr())
	nlri, err := anypb.New(&api.IPAddressPrefix{Prefix: r.Prefix.Addr().String(), PrefixLen: uint32(r.Prefix.Bits())})
	if err != nil {
		return nil, err
	}
	origin, err := anypb.New(&api.OriginAttribute{Origin: 0})
	if err != nil {
		return nil, err
	}
	var segs []*api.AsSegment
	if r.Prepends > 0 {
		asns := make([]uint32, r.Prepends)
		for i := range asns {
			asns[i] = s.asn
		}
		segs = []*api.AsSegment{{Type: api.AsSegment_AS_SEQUENCE, Numbers: asns}}
	}
	asPath, err := anypb.New(&api.AsPathAttribute{Segments: segs})
	if err != nil {
		return nil, err
	}
	var nextHop *anypb.Any
	if r.Prefix.Addr().Is4() {
		nextHop, err = anypb.New(&api.NextHopAttribute{NextHop: "0.0.0.0"})
	} else {
		nextHop, err = anypb.New(&api.MpReachNLRIAttribute{Family: fam, NextHops: []string{"::"}, Nlris: []*anypb.Any{nlri}})
	}
	if err != nil {
		return nil, err
	}
	return &api.Path{Family: fam, Nlri: nlri, Pattrs: []*anypb.Any{origin, asPath, nextHop}}, nil
}

// comparePrefix orders IPv4 before IPv6, then by address, then by length.
func comparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}
