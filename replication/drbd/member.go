package drbd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/zdt-project/zdt/replication"
)

// ErrHeldOpen says a DRBD device could not be demoted because something
// still has it open.
var ErrHeldOpen = errors.New("the DRBD device is held open")

// ErrNoSuchResource says drbdsetup reported no state for the resource.
var ErrNoSuchResource = errors.New("no such DRBD resource on this node")

// Config describes the DRBD resource a Member drives.
type Config struct {
	// Resource is the resource's name as drbdadm knows it.
	Resource string
	// Protocol is the resource's replication protocol as configured: "A",
	// "B", "C", or "" when unknown. drbdsetup's status output does not carry
	// it, and Observe reports a member as synchronous only under protocol C.
	Protocol string
	// Runner runs the drbd-utils commands; nil means ExecRunner{}.
	Runner Runner
	// Now is the clock for Status.ObservedAt; nil means time.Now.
	Now func() time.Time
}

// Member is one DRBD resource on this node as a member of its replication
// group. It implements replication.Member with drbdadm and drbdsetup. It
// keeps no state between calls; serialising role changes of one resource is
// the caller's business.
type Member struct {
	resource string
	protocol string
	runner   Runner
	now      func() time.Time
}

// NewMember returns the Member for cfg, or an error saying what is wrong
// with cfg.
func NewMember(cfg Config) (*Member, error) {
	if err := checkResourceName(cfg.Resource); err != nil {
		return nil, err
	}
	switch cfg.Protocol {
	case "", "A", "B", "C":
	default:
		return nil, fmt.Errorf("DRBD resource %s: protocol %q is not A, B or C (or empty when unknown)", cfg.Resource, cfg.Protocol)
	}
	m := &Member{resource: cfg.Resource, protocol: cfg.Protocol, runner: cfg.Runner, now: cfg.Now}
	if m.runner == nil {
		m.runner = ExecRunner{}
	}
	if m.now == nil {
		m.now = time.Now
	}
	return m, nil
}

// checkResourceName refuses names that drbdadm would read as something else:
// "all" (every resource on the node), options, several words.
func checkResourceName(name string) error {
	switch {
	case name == "":
		return errors.New("DRBD resource name is empty")
	case name == "all":
		return errors.New(`DRBD resource name "all" would act on every resource of the node`)
	case strings.HasPrefix(name, "-"):
		return fmt.Errorf("DRBD resource name %q starts with '-' and would be read as an option", name)
	case strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return fmt.Errorf("DRBD resource name %q contains white space or control characters", name)
	}
	return nil
}

// Resource is the name of the DRBD resource.
func (m *Member) Resource() string { return m.resource }

// run runs one command and names it in the error.
func (m *Member) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := m.runner.Run(ctx, name, args...)
	if err != nil {
		return out, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return out, nil
}

// Observe runs `drbdsetup events2 --now --statistics RES` and maps the
// resource's state onto replication.Status (see ToStatus).
func (m *Member) Observe(ctx context.Context) (replication.Status, error) {
	rs, err := m.resourceStatus(ctx)
	if err != nil {
		return replication.Status{}, fmt.Errorf("observe DRBD resource %s: %w", m.resource, err)
	}
	return ToStatus(rs, m.protocol, m.now()), nil
}

// resourceStatus observes the resource's typed state.
func (m *Member) resourceStatus(ctx context.Context) (ResourceStatus, error) {
	out, err := m.run(ctx, "drbdsetup", "events2", "--now", "--statistics", m.resource)
	if err != nil {
		return ResourceStatus{}, err
	}
	all, err := ParseEvents2(out)
	if err != nil {
		return ResourceStatus{}, err
	}
	for _, rs := range all {
		if rs.Name == m.resource {
			return rs, nil
		}
	}
	return ResourceStatus{}, fmt.Errorf("%w: drbdsetup printed nothing for it; is it up (drbdadm up %s)?", ErrNoSuchResource, m.resource)
}

// Promote runs `drbdadm primary RES`. DRBD refuses while another member is
// primary (unless the resource allows two primaries), without UpToDate data
// or without quorum; its message is in the error.
func (m *Member) Promote(ctx context.Context) error {
	if _, err := m.run(ctx, "drbdadm", "primary", m.resource); err != nil {
		return fmt.Errorf("promote DRBD resource %s: %w", m.resource, err)
	}
	return nil
}

// Fence runs `drbdadm secondary RES`.
//
// Demoting is how a DRBD primary stops taking writes: only a Primary's
// device can be written, so from the moment the command succeeds this member
// accepts no write, while it keeps replicating from whichever member becomes
// primary. (With DRBD 9's auto-promote, opening the device for writing
// promotes it again if DRBD allows: resources driven by zdt should set
// auto-promote no, or a quorum policy that refuses an isolated member.)
// DRBD demotes only a device nobody has open: when a file
// system is still mounted on it or a guest or database still holds it,
// drbdadm fails with "State change failed: (-12) Device is held open by
// someone" and the member is still primary and still writable. The error
// then wraps ErrHeldOpen and tells the operator to stop what uses the device
// (unmount it, stop the guest or service; `lsof` or `fuser` on /dev/drbdN
// names the holder) and to fence again.
func (m *Member) Fence(ctx context.Context) error {
	if err := m.demote(ctx); err != nil {
		return fmt.Errorf("fence DRBD resource %s: %w", m.resource, err)
	}
	return nil
}

// demote runs `drbdadm secondary RES`, recognising a device held open.
func (m *Member) demote(ctx context.Context) error {
	_, err := m.run(ctx, "drbdadm", "secondary", m.resource)
	var ce *CommandError
	if errors.As(err, &ce) && strings.Contains(ce.Stderr, "held open") {
		return fmt.Errorf("%w; %w: it is still mounted or used by a guest or process and keeps accepting writes: "+
			"stop what uses it (lsof or fuser on its /dev/drbdN names it), then try again", err, ErrHeldOpen)
	}
	return err
}

// Follow makes this member follow the current primary: it demotes the
// member with `drbdadm secondary RES` (a no-op on a secondary; a former
// primary must stop taking writes before it can follow), observes the
// resource and, when a connection is StandAlone, runs `drbdadm connect RES`.
//
// A DRBD secondary replicates from whichever peer is primary, so there is
// no primary to point it at: primary is the DRBD peer's connection name (the
// host name in the resource's configuration) and Follow only checks that the
// resource has such a peer. DRBD reconnects by itself from every connection
// state but StandAlone, which it enters after a split brain, a failed
// handshake or a disconnect by hand; only then does the member need an
// explicit connect. If the connect ends in StandAlone again, the two sides
// have diverged (split brain): resolving it discards one side's writes
// (`drbdadm connect --discard-my-data RES` on the member whose writes go), a
// decision for an operator that zdt never takes silently.
func (m *Member) Follow(ctx context.Context, primary string) error {
	if err := m.follow(ctx, primary); err != nil {
		return fmt.Errorf("follow %s with DRBD resource %s: %w", primary, m.resource, err)
	}
	return nil
}

func (m *Member) follow(ctx context.Context, primary string) error {
	if err := m.demote(ctx); err != nil {
		return err
	}
	rs, err := m.resourceStatus(ctx)
	if err != nil {
		return err
	}
	var peers []string
	standAlone, known := false, primary == ""
	for _, c := range rs.Connections {
		peers = append(peers, c.Name)
		known = known || c.Name == primary
		standAlone = standAlone || c.State == connStandAlone
	}
	if !known {
		return fmt.Errorf("the resource has no peer named %q (its peers: %s)", primary, strings.Join(peers, ", "))
	}
	if standAlone {
		if _, err := m.run(ctx, "drbdadm", "connect", m.resource); err != nil {
			return err
		}
	}
	return nil
}
