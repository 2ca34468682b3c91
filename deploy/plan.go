package deploy

import (
	"fmt"
	"strconv"
)

// State is what a Decision asks of a guest.
type State int

const (
	// Running: the guest runs on Decision.Host.
	Running State = iota + 1
	// Preempted: the guest is stopped to make room for guests of a higher
	// tier. The caller remembers it (Problem.Preempted) so that it comes back
	// when capacity returns.
	Preempted
	// Unplaced: no host can take the guest now; Decision.Reason says why.
	Unplaced
)

func (s State) String() string {
	switch s {
	case Running:
		return "running"
	case Preempted:
		return "preempted"
	case Unplaced:
		return "unplaced"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText writes the state's name, so plans print as words in JSON.
func (s State) MarshalText() ([]byte, error) {
	if s < Running || s > Unplaced {
		return nil, fmt.Errorf("marshal %s: not a state", s)
	}
	return []byte(s.String()), nil
}

// Decision is the solver's verdict on one guest.
type Decision struct {
	Guest string
	Tier  Tier
	State State
	// Host and Site say where the guest runs, when State is Running.
	Host string
	Site string
	// From is the host the guest runs on now (Problem.Current), or empty.
	From   string
	Reason string
}

// Moved reports whether the guest runs now and is to run on another host.
func (d Decision) Moved() bool {
	return d.State == Running && d.From != "" && d.From != d.Host
}

// Plan is the solver's output: one Decision for every guest, ordered by tier
// (gold first), then by name.
type Plan struct {
	Decisions []Decision
	index     map[string]int
}

// Decision returns the decision for the named guest.
func (p Plan) Decision(guest string) (Decision, bool) {
	if p.index != nil {
		i, ok := p.index[guest]
		if !ok {
			return Decision{}, false
		}
		return p.Decisions[i], true
	}
	for _, d := range p.Decisions {
		if d.Guest == guest {
			return d, true
		}
	}
	return Decision{}, false
}

// Moves counts the running guests that the plan moves to another host,
// those of failed hosts included.
func (p Plan) Moves() int {
	n := 0
	for _, d := range p.Decisions {
		if d.Moved() {
			n++
		}
	}
	return n
}

// Preemptions counts the guests that run now and that the plan stops to make
// room for guests of a higher tier.
func (p Plan) Preemptions() int {
	n := 0
	for _, d := range p.Decisions {
		if d.State == Preempted && d.From != "" {
			n++
		}
	}
	return n
}
