package failstatic

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Member says what a site's etcd member sees, read from the member itself
// (not through a client, which may be connected to another member).
type Member string

const (
	// MemberLeader: the member follows (or is) a leader; a majority may be
	// at work.
	MemberLeader Member = "leader"
	// MemberNoLeader: the member is running and knows no leader.
	MemberNoLeader Member = "no-leader"
	// MemberStopped: the member is not running; it is in no majority.
	MemberStopped Member = "stopped"
	// MemberUnknown: the controller cannot tell (no embedded member).
	MemberUnknown Member = "unknown"
)

// MemberStatus is what the controller reads from its embedded member.
type MemberStatus struct {
	State Member
	// Self is the member's own ID (also once stopped, when known).
	Self uint64
	// Leader is the leader's member ID, 0 without one.
	Leader uint64
	// NoSpace: the member holds etcd's NOSPACE alarm, so the cluster
	// refuses every write that stores data (see Decide).
	NoSpace bool
}

// View is one controller's answer: what it and its etcd member see.
type View struct {
	Site   string `json:"site"`
	Member Member `json:"member"`
	// Self is the member's own ID; Leader the ID of the leader it
	// follows (itself when it leads).
	Self   uint64 `json:"self,omitempty"`
	Leader uint64 `json:"leader,omitempty"`
	// NoSpace: etcd refuses writes, its database at the quota.
	NoSpace bool `json:"no_space,omitempty"`
	// OpRunning names an op this controller is carrying out as the
	// coordinator, "" when none.
	OpRunning string `json:"op_running,omitempty"`
	// Pledged: the controller has paused its sweeper: it ends no site's
	// membership until its own site beats again and a whole lease TTL has
	// passed after that (membership.Sweeper.Pause).
	Pledged bool `json:"pledged,omitempty"`
	// State is the controller's membership state, for people.
	State string `json:"state,omitempty"`
}

// Verdict is the outcome of one check.
type Verdict struct {
	// Hold: keep serving (fail static). False: self-fence as usual.
	Hold bool
	// NoSpace: held because etcd refuses writes at its quota, not
	// because it has no leader; a leader then still expires leases, so
	// the site may serve only while its keep-alives succeed.
	NoSpace bool
	// AskPledges: a first round found nothing against holding; the
	// pledges decide.
	AskPledges bool
	// Why says, in words, what decided.
	Why string
	// Sent is when the pledges were asked for: a verdict that holds is
	// safe from then for a while (membership).
	Sent time.Time
}

// Answer is one site's reply to a check, or why there was none.
type Answer struct {
	View View
	Err  error
}

// Decide decides over the answers of every site (sites: all of them,
// including me, whose own view is in answers too). pledged says whether
// the answers are the pledges (the second round); only those can hold.
// It is pure: the rules, and only them.
//
// Every site runs one etcd member, so the answers are the views of every
// member. A working majority needs more than half of them to follow one
// leader; a member's claim alone is not enough, because a member goes on
// naming a leader that died or lost its quorum until its own election
// timeout runs out (a leader that lost its quorum steps down only then).
// Counting is on the safe side: a new leader's followers may not know it
// yet, but one elected after the pledges cannot take anything over for a
// lease TTL (docs/design.md, "Fail static").
func Decide(me string, sites []string, answers map[string]Answer, pledged bool) Verdict {
	for _, s := range sorted(sites) {
		a, ok := answers[s]
		who := who(me, s)
		switch {
		case !ok:
			return Verdict{Why: fmt.Sprintf("%s was not asked", who)}
		case a.Err != nil:
			return Verdict{Why: fmt.Sprintf("%s did not answer (%v): it may be cut off with a working majority", who, a.Err)}
		case a.View.Site != s:
			return Verdict{Why: fmt.Sprintf("%s answered as site %q", who, a.View.Site)}
		case a.View.Member != MemberLeader && a.View.Member != MemberNoLeader && a.View.Member != MemberStopped:
			return Verdict{Why: fmt.Sprintf("%s cannot tell what its etcd member sees (%s)", who, describe(a.View))}
		}
	}
	// The members that follow each leader, and whether all of them hold
	// the NOSPACE alarm (a majority that refuses writes).
	followers := map[uint64][]string{}
	refusing := map[uint64]bool{}
	for _, s := range sorted(sites) {
		if v := answers[s].View; v.Member == MemberLeader {
			all, seen := refusing[v.Leader]
			refusing[v.Leader] = (all || !seen) && v.NoSpace
			followers[v.Leader] = append(followers[v.Leader], s)
		}
	}
	quorum := len(sites)/2 + 1
	noSpace := false
	for leader, fs := range followers {
		if len(fs) < quorum {
			continue
		}
		if !refusing[leader] {
			return Verdict{Why: fmt.Sprintf("a working etcd majority may fence this site: the members of %s follow leader %x",
				strings.Join(fs, ", "), leader)}
		}
		noSpace = true
	}
	for _, s := range sorted(sites) {
		who := who(me, s)
		switch v := answers[s].View; {
		case v.OpRunning != "":
			return Verdict{Why: fmt.Sprintf("%s is carrying out op %s: the cluster's state was moving when etcd failed", who, v.OpRunning)}
		case pledged && s != me && !v.Pledged:
			return Verdict{Why: fmt.Sprintf("%s did not pause its sweeper", who)}
		}
	}
	if !pledged {
		return Verdict{AskPledges: true, Why: askingWhy}
	}
	if noSpace {
		return Verdict{Hold: true, NoSpace: true, Why: "etcd refuses writes (its database is at the quota): no fence or move can be committed, every site answered and paused its sweeper"}
	}
	return Verdict{Hold: true, Why: "etcd has no working majority: no leader is followed by a majority of the members, every site answered and paused its sweeper"}
}

// who names site s in a verdict's reason, as seen from me.
func who(me, s string) string {
	if s == me {
		return "this site"
	}
	return "site " + s
}

func describe(v View) string {
	switch {
	case v.Member == MemberLeader && v.Leader == v.Self && v.Self != 0:
		return "leading"
	case v.Member == MemberLeader:
		return fmt.Sprintf("following leader %x", v.Leader)
	case v.Member == "":
		return "not said"
	}
	return string(v.Member)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// Summary lists the answers in one line, for logs and events.
func Summary(answers map[string]Answer) string {
	var parts []string
	for _, s := range sorted(keys(answers)) {
		a := answers[s]
		if a.Err != nil {
			parts = append(parts, s+": no answer")
			continue
		}
		p := s + ": " + describe(a.View)
		if a.View.NoSpace {
			p += ", no space"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
