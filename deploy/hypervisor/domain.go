package hypervisor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site/ctxsleep"
)

// State is a domain's run state, as the placement needs it.
type State string

const (
	StateRunning State = "running" // running, or blocked on a resource
	StatePaused  State = "paused"
	StateShutoff State = "shutoff"
	StateOther   State = "other" // shutting down, crashed, suspended, unknown
)

func stateOf(s libvirt.DomainState) State {
	switch s {
	case libvirt.DomainRunning, libvirt.DomainBlocked:
		return StateRunning
	case libvirt.DomainPaused:
		return StatePaused
	case libvirt.DomainShutoff:
		return StateShutoff
	}
	return StateOther
}

// Domain is a defined domain at a host.
type Domain struct {
	Name      string
	UUID      string // 8-4-4-4-12 lower-case hex
	State     State
	VCPUs     int   // current virtual CPUs
	MemoryMiB int64 // maximum memory
}

// Define defines the domain of a libvirt domain XML and returns its name.
// When a domain of that name exists with the same UUID, or the XML has no
// UUID, its definition is replaced by this one (libvirt keeps an identical
// definition as it is), so Define may be repeated. A domain of that name
// with another UUID, or of that UUID with another name, is ErrConflict.
func (h *Host) Define(ctx context.Context, domainXML string) (string, error) {
	head, err := readDomainHead(domainXML)
	if err != nil {
		return "", fmt.Errorf("define domain at host %s: %w", h.name, err)
	}
	if err := h.define(ctx, head, domainXML); err != nil {
		return "", h.opErr("define", head.Name, err)
	}
	return head.Name, nil
}

func (h *Host) define(ctx context.Context, head domainHead, doc string) error {
	d, err := h.lookup(ctx, head.Name)
	switch {
	case errors.Is(err, ErrNoDomain):
	case err != nil:
		return err
	case head.UUID == "":
		doc = head.withUUID(doc, formatUUID(d.UUID))
	case head.UUID != formatUUID(d.UUID):
		return fmt.Errorf("%w: the host has it with UUID %s, the XML gives %s", ErrConflict, formatUUID(d.UUID), head.UUID)
	}
	defined, err := call(ctx, h, func(lv *libvirt.Libvirt) (libvirt.Domain, error) { return lv.DomainDefineXML(doc) })
	if err == nil {
		h.forgetSize(defined.UUID) // its size may have changed
	}
	if err != nil && head.UUID != "" && hasCode(err, libvirt.ErrOperationFailed, libvirt.ErrDomExist) {
		u, _ := parseUUID(head.UUID) // normalised by readDomainHead
		other, lerr := call(ctx, h, func(lv *libvirt.Libvirt) (libvirt.Domain, error) { return lv.DomainLookupByUUID(u) })
		if lerr == nil && other.Name != head.Name {
			return fmt.Errorf("%w: UUID %s belongs to domain %s: %w", ErrConflict, head.UUID, other.Name, err)
		}
	}
	return err
}

// Start starts a defined domain, or resumes a paused one. A running domain
// is left as it is.
func (h *Host) Start(ctx context.Context, name string) error {
	if err := h.start(ctx, name); err != nil {
		return h.opErr("start", name, err)
	}
	return nil
}

func (h *Host) start(ctx context.Context, name string) error {
	d, err := h.lookup(ctx, name)
	if err != nil {
		return err
	}
	st, err := h.state(ctx, d)
	if err != nil {
		return err
	}
	switch st {
	case StateRunning:
		return nil
	case StatePaused:
		_, err = call(ctx, h, func(lv *libvirt.Libvirt) (struct{}, error) { return struct{}{}, lv.DomainResume(d) })
	default:
		_, err = call(ctx, h, func(lv *libvirt.Libvirt) (struct{}, error) { return struct{}{}, lv.DomainCreate(d) })
	}
	if hasCode(err, libvirt.ErrOperationInvalid) { // someone else started it meanwhile?
		if st, serr := h.state(ctx, d); serr == nil && st == StateRunning {
			return nil
		}
	}
	return err
}

// Suspend pauses a running domain: it keeps its memory but runs no more
// until Resume (or Start). A paused or inactive domain is left as it is.
func (h *Host) Suspend(ctx context.Context, name string) error {
	if err := h.suspend(ctx, name); err != nil {
		return h.opErr("suspend", name, err)
	}
	return nil
}

func (h *Host) suspend(ctx context.Context, name string) error {
	d, err := h.lookup(ctx, name)
	if err != nil {
		return err
	}
	st, err := h.state(ctx, d)
	if err != nil || st == StatePaused || st == StateShutoff {
		return err
	}
	_, err = call(ctx, h, func(lv *libvirt.Libvirt) (struct{}, error) { return struct{}{}, lv.DomainSuspend(d) })
	if hasCode(err, libvirt.ErrOperationInvalid) { // it paused or stopped meanwhile?
		if st, serr := h.state(ctx, d); serr == nil && (st == StatePaused || st == StateShutoff) {
			return nil
		}
	}
	return err
}

// Resume lets a paused domain run again. A running domain is left as it is;
// an inactive one is an error (Start it).
func (h *Host) Resume(ctx context.Context, name string) error {
	if err := h.resume(ctx, name); err != nil {
		return h.opErr("resume", name, err)
	}
	return nil
}

func (h *Host) resume(ctx context.Context, name string) error {
	d, err := h.lookup(ctx, name)
	if err != nil {
		return err
	}
	st, err := h.state(ctx, d)
	if err != nil || st == StateRunning {
		return err
	}
	_, err = call(ctx, h, func(lv *libvirt.Libvirt) (struct{}, error) { return struct{}{}, lv.DomainResume(d) })
	if hasCode(err, libvirt.ErrOperationInvalid) { // resumed meanwhile?
		if st, serr := h.state(ctx, d); serr == nil && st == StateRunning {
			return nil
		}
	}
	return err
}

// Shutdown asks a domain to power off (ACPI), waits up to timeout for it to
// stop, and then destroys it; a paused domain, which cannot act on the
// request, may be destroyed at once. A domain that is not active is left as
// it is.
func (h *Host) Shutdown(ctx context.Context, name string, timeout time.Duration) error {
	if err := h.shutdown(ctx, name, timeout); err != nil {
		return h.opErr("shut down", name, err)
	}
	return nil
}

func (h *Host) shutdown(ctx context.Context, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	d, err := h.lookup(ctx, name)
	if err != nil {
		return err
	}
	active, err := h.active(ctx, d)
	if err != nil || !active {
		return err
	}
	_, err = call(ctx, h, func(lv *libvirt.Libvirt) (struct{}, error) {
		return struct{}{}, lv.DomainShutdownFlags(d, libvirt.DomainShutdownAcpiPowerBtn)
	})
	if hasCode(err, libvirt.ErrInvalidArg, libvirt.ErrNoSupport, libvirt.ErrArgumentUnsupported) {
		// The driver has no ACPI mode (the test driver): its own way.
		_, err = call(ctx, h, func(lv *libvirt.Libvirt) (struct{}, error) { return struct{}{}, lv.DomainShutdown(d) })
	}
	switch {
	case hasCode(err, libvirt.ErrOperationInvalid):
		// Not running: it stopped meanwhile, or it is paused and cannot
		// be asked.
		active, aerr := h.active(ctx, d)
		if aerr != nil || !active {
			return aerr
		}
		h.log.Warn("guest cannot be asked to shut down; destroying it", zap.String("guest", name), zap.Error(err))
		return h.destroy(ctx, name)
	case err != nil:
		return err
	}
	stopped, err := h.awaitInactive(ctx, d, deadline)
	if err != nil || stopped {
		return err
	}
	h.log.Warn("guest did not shut down in time; destroying it", zap.String("guest", name), zap.Duration("timeout", timeout))
	return h.destroy(ctx, name)
}

// awaitInactive asks whether d is still active, at growing intervals, until
// it is not (true) or the deadline passes (false).
func (h *Host) awaitInactive(ctx context.Context, d libvirt.Domain, deadline time.Time) (bool, error) {
	wait := 10 * time.Millisecond
	for {
		active, err := h.active(ctx, d)
		if err != nil || !active {
			return err == nil, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		if err := ctxsleep.For(ctx, min(wait, left)); err != nil {
			return false, err
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// Destroy stops a domain at once, as pulling its power. A domain that is
// not active is left as it is.
func (h *Host) Destroy(ctx context.Context, name string) error {
	if err := h.destroy(ctx, name); err != nil {
		return h.opErr("destroy", name, err)
	}
	return nil
}

func (h *Host) destroy(ctx context.Context, name string) error {
	d, err := h.lookup(ctx, name)
	if err != nil {
		return err
	}
	active, err := h.active(ctx, d)
	if err != nil || !active {
		return err
	}
	_, err = call(ctx, h, func(lv *libvirt.Libvirt) (struct{}, error) { return struct{}{}, lv.DomainDestroy(d) })
	if hasCode(err, libvirt.ErrOperationInvalid) { // it stopped meanwhile?
		if active, aerr := h.active(ctx, d); aerr == nil && !active {
			return nil
		}
	}
	return err
}

// Undefine removes a domain's definition, with its managed save image,
// snapshot and checkpoint metadata and NVRAM. A domain that is not defined
// is fine; an active one is ErrConflict: stop it first.
func (h *Host) Undefine(ctx context.Context, name string) error {
	if err := h.undefine(ctx, name); err != nil {
		return h.opErr("undefine", name, err)
	}
	return nil
}

func (h *Host) undefine(ctx context.Context, name string) error {
	d, err := h.lookup(ctx, name)
	if errors.Is(err, ErrNoDomain) {
		return nil
	}
	if err != nil {
		return err
	}
	active, err := h.active(ctx, d)
	if err != nil {
		return err
	}
	if active {
		return fmt.Errorf("%w: the domain is active; shut it down or destroy it first", ErrConflict)
	}
	undefine := func(flags libvirt.DomainUndefineFlagsValues) error {
		_, err := call(ctx, h, func(lv *libvirt.Libvirt) (struct{}, error) {
			return struct{}{}, lv.DomainUndefineFlags(d, flags)
		})
		return err
	}
	err = undefine(libvirt.DomainUndefineManagedSave | libvirt.DomainUndefineSnapshotsMetadata |
		libvirt.DomainUndefineCheckpointsMetadata | libvirt.DomainUndefineNvram)
	if hasCode(err, libvirt.ErrInvalidArg, libvirt.ErrNoSupport, libvirt.ErrArgumentUnsupported) {
		// Drivers without checkpoints or NVRAM (the test driver) refuse
		// those flags.
		err = undefine(libvirt.DomainUndefineManagedSave | libvirt.DomainUndefineSnapshotsMetadata)
	}
	if errors.Is(err, ErrNoDomain) {
		return nil
	}
	return err
}

// List returns every domain defined at the host, running or not, by name.
//
// It asks the host for every domain's state in one call (libvirt's
// domain stats) and asks a domain for its size only when it is new to
// this Host or its state changed since the last List: a resync of a host
// with hundreds of guests costs one round trip, not one per guest. A
// driver without domain stats is asked domain by domain.
func (h *Host) List(ctx context.Context) ([]Domain, error) {
	recs, err := call(ctx, h, func(lv *libvirt.Libvirt) ([]libvirt.DomainStatsRecord, error) {
		return lv.ConnectGetAllDomainStats(nil, uint32(libvirt.DomainStatsState), 0)
	})
	if hasCode(err, libvirt.ErrNoSupport, libvirt.ErrArgumentUnsupported, libvirt.ErrInvalidArg) {
		return h.listEach(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("list domains at host %s: %w", h.name, err)
	}
	out := make([]Domain, 0, len(recs))
	seen := make(map[libvirt.UUID]bool, len(recs))
	for _, rec := range recs {
		st, ok := statsState(rec.Params)
		if !ok {
			return h.listEach(ctx) // a driver that left the state out
		}
		seen[rec.Dom.UUID] = true
		sz, cached := h.sizeOf(rec.Dom.UUID, st)
		if !cached {
			in, err := h.info(ctx, rec.Dom)
			if errors.Is(err, ErrNoDomain) { // undefined meanwhile
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("list domains at host %s: domain %s: %w", h.name, rec.Dom.Name, err)
			}
			st, sz = in.state, in.size
			h.keepSize(rec.Dom.UUID, st, sz)
		}
		out = append(out, Domain{
			Name: rec.Dom.Name, UUID: formatUUID(rec.Dom.UUID), State: stateOf(st),
			VCPUs: sz.vcpus, MemoryMiB: sz.memoryMiB,
		})
	}
	h.forgetSizes(seen)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// listEach lists the domains and asks each for its state and size.
func (h *Host) listEach(ctx context.Context) ([]Domain, error) {
	doms, err := call(ctx, h, func(lv *libvirt.Libvirt) ([]libvirt.Domain, error) {
		doms, _, err := lv.ConnectListAllDomains(1, 0)
		return doms, err
	})
	if err != nil {
		return nil, fmt.Errorf("list domains at host %s: %w", h.name, err)
	}
	out := make([]Domain, 0, len(doms))
	for _, d := range doms {
		in, err := h.info(ctx, d)
		if errors.Is(err, ErrNoDomain) { // undefined meanwhile
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list domains at host %s: domain %s: %w", h.name, d.Name, err)
		}
		out = append(out, Domain{
			Name: d.Name, UUID: formatUUID(d.UUID), State: stateOf(in.state),
			VCPUs: in.size.vcpus, MemoryMiB: in.size.memoryMiB,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// domainSize is what List reports of a domain besides its state.
type domainSize struct {
	vcpus     int
	memoryMiB int64
}

// domainInfo is a domain's state and size as read from the host.
type domainInfo struct {
	state libvirt.DomainState
	size  domainSize
}

// info asks the host for one domain's state and size.
func (h *Host) info(ctx context.Context, d libvirt.Domain) (domainInfo, error) {
	return call(ctx, h, func(lv *libvirt.Libvirt) (domainInfo, error) {
		state, maxMem, _, vcpus, _, err := lv.DomainGetInfo(d)
		return domainInfo{libvirt.DomainState(state), domainSize{int(vcpus), int64(maxMem / 1024)}}, err
	})
}

// sizeOf returns the size last read for the domain, if it was read while
// the domain was in the same state. A domain's size changes only when it
// is defined again, and takes effect when it starts: a state that changed
// is a reason to read the size again.
func (h *Host) sizeOf(id libvirt.UUID, st libvirt.DomainState) (domainSize, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.sizes[id]
	if !ok || e.state != st {
		return domainSize{}, false
	}
	return e.size, true
}

func (h *Host) keepSize(id libvirt.UUID, st libvirt.DomainState, sz domainSize) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sizes == nil {
		h.sizes = map[libvirt.UUID]domainInfo{}
	}
	h.sizes[id] = domainInfo{st, sz}
}

// forgetSizes drops the sizes of domains that are no longer defined, and
// forgetSize one domain's (which this Host defines again).
func (h *Host) forgetSizes(keep map[libvirt.UUID]bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id := range h.sizes {
		if !keep[id] {
			delete(h.sizes, id)
		}
	}
}

func (h *Host) forgetSize(id libvirt.UUID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.sizes, id)
}

// statsState finds the domain's state among its stats.
func statsState(params []libvirt.TypedParam) (libvirt.DomainState, bool) {
	for _, p := range params {
		if p.Field != "state.state" {
			continue
		}
		switch v := p.Value.I.(type) {
		case int32:
			return libvirt.DomainState(v), true
		case uint32:
			return libvirt.DomainState(v), true
		}
	}
	return 0, false
}

// Capacity is the host's size: its logical CPUs and memory.
func (h *Host) Capacity(ctx context.Context) (vcpus int, memoryMiB int64, err error) {
	type node struct {
		cpus   int32
		memKiB uint64
	}
	n, err := call(ctx, h, func(lv *libvirt.Libvirt) (node, error) {
		_, mem, cpus, _, _, _, _, _, err := lv.NodeGetInfo()
		return node{cpus, mem}, err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("capacity of host %s: %w", h.name, err)
	}
	return int(n.cpus), int64(n.memKiB / 1024), nil
}

func (h *Host) lookup(ctx context.Context, name string) (libvirt.Domain, error) {
	return call(ctx, h, func(lv *libvirt.Libvirt) (libvirt.Domain, error) { return lv.DomainLookupByName(name) })
}

func (h *Host) state(ctx context.Context, d libvirt.Domain) (State, error) {
	st, err := call(ctx, h, func(lv *libvirt.Libvirt) (int32, error) {
		st, _, err := lv.DomainGetState(d, 0)
		return st, err
	})
	return stateOf(libvirt.DomainState(st)), err
}

func (h *Host) active(ctx context.Context, d libvirt.Domain) (bool, error) {
	a, err := call(ctx, h, func(lv *libvirt.Libvirt) (int32, error) { return lv.DomainIsActive(d) })
	return a != 0, err
}

func (h *Host) opErr(op, name string, err error) error {
	return fmt.Errorf("%s domain %s at host %s: %w", op, name, h.name, err)
}
