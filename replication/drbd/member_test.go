package drbd

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zdt-project/zdt/replication"
)

var _ replication.Member = (*Member)(nil)

// fakeRunner records every command line and answers from a table keyed by
// the command line; unknown commands succeed with no output.
type fakeRunner struct {
	mu      sync.Mutex
	calls   []string
	answers map[string]answer
}

type answer struct {
	out string
	err error
}

func (f *fakeRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, line)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a := f.answers[line]
	return []byte(a.out), a.err
}

func (f *fakeRunner) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

const (
	observeR0 = "drbdsetup events2 --now --statistics r0"
	primaryR0 = "drbdadm primary r0"
	demoteR0  = "drbdadm secondary r0"
	connectR0 = "drbdadm connect r0"
)

// heldOpen is drbdadm's report of a device in use, in the form LINBIT/drbd
// issue 74 shows.
func heldOpen() *CommandError {
	return &CommandError{ExitCode: 11, Stderr: "r0: State change failed: (-12) Device is held open by someone\n" +
		"Command 'drbdsetup secondary r0' terminated with exit code 11"}
}

// synthetic events2 output of r0 with one peer in the given connection state.
func eventsR0(role, peerState, peerRole string) string {
	return "exists resource name:r0 role:" + role + " suspended:no write-ordering:flush\n" +
		"exists connection name:r0 peer-node-id:1 conn-name:b connection:" + peerState + " role:" + peerRole + " congested:no ap-in-flight:0 rs-in-flight:0\n" +
		"exists device name:r0 volume:0 minor:0 disk:UpToDate client:no quorum:yes size:1024 read:0 written:0 al-writes:0 bm-writes:0 upper-pending:0 lower-pending:0 al-suspended:no blocked:no\n" +
		"exists peer-device name:r0 peer-node-id:1 conn-name:b volume:0 replication:Established peer-disk:UpToDate peer-client:no resync-suspended:no received:0 sent:0 out-of-sync:0 pending:0 unacked:0\n" +
		"exists -\n"
}

func newTestMember(t *testing.T, f *fakeRunner, now time.Time) *Member {
	t.Helper()
	m, err := NewMember(Config{Resource: "r0", Protocol: "C", Runner: f, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNewMember(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "DRBD resource name is empty"},
		{Config{Resource: "all"}, `DRBD resource name "all" would act on every resource of the node`},
		{Config{Resource: "--force"}, `DRBD resource name "--force" starts with '-' and would be read as an option`},
		{Config{Resource: "r0 r1"}, `DRBD resource name "r0 r1" contains white space or control characters`},
		{Config{Resource: "r0\x00"}, `DRBD resource name "r0\x00" contains white space or control characters`},
		{Config{Resource: "r0", Protocol: "c"}, `DRBD resource r0: protocol "c" is not A, B or C (or empty when unknown)`},
	}
	for _, tt := range tests {
		_, err := NewMember(tt.cfg)
		if err == nil || err.Error() != tt.want {
			t.Errorf("NewMember(%+v) error = %v, want %s", tt.cfg, err, tt.want)
		}
	}
	m, err := NewMember(Config{Resource: "pvc-1_a.b"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Resource() != "pvc-1_a.b" {
		t.Errorf("Resource() = %q", m.Resource())
	}
	if _, ok := m.runner.(ExecRunner); !ok || m.now == nil {
		t.Errorf("defaults not set: runner %T, now %v", m.runner, m.now != nil)
	}
}

func TestObserve(t *testing.T) {
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	f := &fakeRunner{answers: map[string]answer{observeR0: {out: eventsR0("Secondary", "Connected", "Primary")}}}
	st, err := newTestMember(t, f, at).Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := replication.Status{
		Role: replication.RoleStandby, Healthy: true, Sync: true, ObservedAt: at,
		Detail: "disk UpToDate; b: Connected, role Primary, Established, peer disk UpToDate",
	}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("Observe =\n%+v\nwant\n%+v", st, want)
	}
	if got := f.commands(); !slices.Equal(got, []string{observeR0}) {
		t.Errorf("commands = %q", got)
	}
}

func TestObserveCapturedOutput(t *testing.T) {
	f := &fakeRunner{answers: map[string]answer{
		"drbdsetup events2 --now --statistics drbd1": {out: string(readTestdata(t, "events2/centreon-plugins-3node-secondary.txt"))},
	}}
	m, err := NewMember(Config{Resource: "drbd1", Protocol: "C", Runner: f})
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Role != replication.RoleStandby || !st.Healthy || !st.Sync || st.LagBytes != 0 || st.ObservedAt.IsZero() {
		t.Errorf("Observe = %+v", st)
	}
}

func TestObserveFailures(t *testing.T) {
	noSuch := &CommandError{ExitCode: 10, Stderr: "r0: No such resource"}
	tests := []struct {
		name   string
		answer answer
		want   string
		is     error
	}{
		{
			name:   "drbdsetup fails",
			answer: answer{err: noSuch},
			want:   "observe DRBD resource r0: drbdsetup events2 --now --statistics r0: exit status 10: r0: No such resource",
			is:     noSuch,
		},
		{
			name:   "drbdsetup is missing",
			answer: answer{err: errors.New(`exec: "drbdsetup": executable file not found in $PATH`)},
			want:   `observe DRBD resource r0: drbdsetup events2 --now --statistics r0: exec: "drbdsetup": executable file not found in $PATH`,
		},
		{
			name:   "output is not events2",
			answer: answer{out: "garbage here\n"},
			want:   `observe DRBD resource r0: events2 line 1: unknown event "garbage"`,
		},
		{
			name:   "resource not in the output",
			answer: answer{out: "exists resource name:r1 role:Primary\nexists -\n"},
			want:   "observe DRBD resource r0: no such DRBD resource on this node: drbdsetup printed nothing for it; is it up (drbdadm up r0)?",
			is:     ErrNoSuchResource,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRunner{answers: map[string]answer{observeR0: tt.answer}}
			_, err := newTestMember(t, f, time.Time{}).Observe(context.Background())
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Observe error = %v\nwant %s", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
		})
	}
}

func TestPromote(t *testing.T) {
	f := &fakeRunner{}
	if err := newTestMember(t, f, time.Time{}).Promote(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.commands(); !slices.Equal(got, []string{primaryR0}) {
		t.Errorf("commands = %q", got)
	}

	refused := &CommandError{ExitCode: 11, Stderr: "r0: State change failed: (-2) Need access to UpToDate data"}
	f = &fakeRunner{answers: map[string]answer{primaryR0: {err: refused}}}
	err := newTestMember(t, f, time.Time{}).Promote(context.Background())
	want := "promote DRBD resource r0: drbdadm primary r0: exit status 11: r0: State change failed: (-2) Need access to UpToDate data"
	if err == nil || err.Error() != want {
		t.Fatalf("Promote error = %v\nwant %s", err, want)
	}
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 11 {
		t.Errorf("errors.As CommandError: %v", err)
	}
}

func TestFence(t *testing.T) {
	f := &fakeRunner{}
	if err := newTestMember(t, f, time.Time{}).Fence(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.commands(); !slices.Equal(got, []string{demoteR0}) {
		t.Errorf("commands = %q", got)
	}
}

func TestFenceFailures(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		want     string
		heldOpen bool
	}{
		{
			name: "device held open",
			err:  heldOpen(),
			want: "fence DRBD resource r0: drbdadm secondary r0: exit status 11: r0: State change failed: (-12) Device is held open by someone; " +
				"Command 'drbdsetup secondary r0' terminated with exit code 11; the DRBD device is held open: " +
				"it is still mounted or used by a guest or process and keeps accepting writes: " +
				"stop what uses it (lsof or fuser on its /dev/drbdN names it), then try again",
			heldOpen: true,
		},
		{
			name: "other failure",
			err:  &CommandError{ExitCode: 10, Stderr: "r0: No such resource"},
			want: "fence DRBD resource r0: drbdadm secondary r0: exit status 10: r0: No such resource",
		},
		{
			name: "cancelled",
			err:  context.Canceled,
			want: "fence DRBD resource r0: drbdadm secondary r0: context canceled",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRunner{answers: map[string]answer{demoteR0: {err: tt.err}}}
			err := newTestMember(t, f, time.Time{}).Fence(context.Background())
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Fence error = %v\nwant %s", err, tt.want)
			}
			if errors.Is(err, ErrHeldOpen) != tt.heldOpen {
				t.Errorf("errors.Is(err, ErrHeldOpen) = %v, want %v", !tt.heldOpen, tt.heldOpen)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("the runner's error is not wrapped: %v", err)
			}
		})
	}
}

func TestFollow(t *testing.T) {
	tests := []struct {
		name     string
		events   string
		primary  string
		commands []string
	}{
		{
			name:     "connected: demote and observe",
			events:   eventsR0("Secondary", "Connected", "Primary"),
			primary:  "b",
			commands: []string{demoteR0, observeR0},
		},
		{
			name:     "still connecting: DRBD retries by itself",
			events:   eventsR0("Secondary", "Connecting", "Unknown"),
			primary:  "b",
			commands: []string{demoteR0, observeR0},
		},
		{
			name:     "StandAlone: connect",
			events:   eventsR0("Secondary", "StandAlone", "Unknown"),
			primary:  "b",
			commands: []string{demoteR0, observeR0, connectR0},
		},
		{
			name:     "no primary named",
			events:   eventsR0("Secondary", "StandAlone", "Unknown"),
			primary:  "",
			commands: []string{demoteR0, observeR0, connectR0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRunner{answers: map[string]answer{observeR0: {out: tt.events}}}
			if err := newTestMember(t, f, time.Time{}).Follow(context.Background(), tt.primary); err != nil {
				t.Fatal(err)
			}
			if got := f.commands(); !slices.Equal(got, tt.commands) {
				t.Errorf("commands = %q\nwant       %q", got, tt.commands)
			}
		})
	}
}

func TestFollowFailures(t *testing.T) {
	standAlone := eventsR0("Secondary", "StandAlone", "Unknown")
	tests := []struct {
		name     string
		answers  map[string]answer
		primary  string
		want     string
		is       error
		commands []string
	}{
		{
			name:    "demote fails: device held open",
			answers: map[string]answer{demoteR0: {err: heldOpen()}},
			primary: "b",
			want: "follow b with DRBD resource r0: drbdadm secondary r0: exit status 11: r0: State change failed: (-12) Device is held open by someone; " +
				"Command 'drbdsetup secondary r0' terminated with exit code 11; the DRBD device is held open: " +
				"it is still mounted or used by a guest or process and keeps accepting writes: " +
				"stop what uses it (lsof or fuser on its /dev/drbdN names it), then try again",
			is:       ErrHeldOpen,
			commands: []string{demoteR0},
		},
		{
			name:     "observe fails",
			answers:  map[string]answer{observeR0: {err: &CommandError{ExitCode: 20, Stderr: "Could not connect to 'drbd' generic netlink family"}}},
			primary:  "b",
			want:     "follow b with DRBD resource r0: drbdsetup events2 --now --statistics r0: exit status 20: Could not connect to 'drbd' generic netlink family",
			commands: []string{demoteR0, observeR0},
		},
		{
			name:     "unknown peer",
			answers:  map[string]answer{observeR0: {out: standAlone}},
			primary:  "site-x",
			want:     `follow site-x with DRBD resource r0: the resource has no peer named "site-x" (its peers: b)`,
			commands: []string{demoteR0, observeR0},
		},
		{
			name: "connect fails",
			answers: map[string]answer{
				observeR0: {out: standAlone},
				connectR0: {err: &CommandError{ExitCode: 10, Stderr: "r0: Failure: (162) Invalid configuration request"}},
			},
			primary:  "b",
			want:     "follow b with DRBD resource r0: drbdadm connect r0: exit status 10: r0: Failure: (162) Invalid configuration request",
			commands: []string{demoteR0, observeR0, connectR0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRunner{answers: tt.answers}
			err := newTestMember(t, f, time.Time{}).Follow(context.Background(), tt.primary)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Follow error = %v\nwant %s", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(err, %v) = false", tt.is)
			}
			if got := f.commands(); !slices.Equal(got, tt.commands) {
				t.Errorf("commands = %q\nwant       %q", got, tt.commands)
			}
		})
	}
}

func TestCancelledContextReachesTheRunner(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := &fakeRunner{}
	err := newTestMember(t, f, time.Time{}).Promote(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Promote(cancelled) = %v", err)
	}
}
