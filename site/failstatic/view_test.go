package failstatic_test

import (
	"errors"
	"github.com/zdt-project/zdt/site/failstatic"
	"strings"
	"testing"
)

func TestDecide(t *testing.T) {
	sites := []string{"a", "b", "c"}
	none := func(s string) failstatic.Answer {
		return failstatic.Answer{View: failstatic.View{Site: s, Member: failstatic.MemberNoLeader, Pledged: true}}
	}
	all := func(change func(map[string]failstatic.Answer)) map[string]failstatic.Answer {
		m := map[string]failstatic.Answer{"a": none("a"), "b": none("b"), "c": none("c")}
		if change != nil {
			change(m)
		}
		return m
	}
	tests := []struct {
		name    string
		answers map[string]failstatic.Answer
		pledged bool
		hold    bool
		noSpace bool
		whyHas  string
	}{
		{"quorum lost, every site answers and pledges", all(nil), true, true, false, "no working majority"},
		{"first round never holds", all(nil), false, false, false, "asking for pledges"},
		{"members stopped count as no majority", all(func(m map[string]failstatic.Answer) {
			m["b"] = failstatic.Answer{View: failstatic.View{Site: "b", Member: failstatic.MemberStopped, Pledged: true}}
			m["c"] = failstatic.Answer{View: failstatic.View{Site: "c", Member: failstatic.MemberStopped, Pledged: true}}
		}), true, true, false, ""},
		{"a silent site", all(func(m map[string]failstatic.Answer) { m["c"] = failstatic.Answer{Err: errors.New("timeout")} }), true, false, false, "site c did not answer"},
		{"a site not asked", all(func(m map[string]failstatic.Answer) { delete(m, "b") }), true, false, false, "site b was not asked"},
		{"a majority that follows a leader", all(func(m map[string]failstatic.Answer) {
			m["b"] = failstatic.Answer{View: failstatic.View{Site: "b", Member: failstatic.MemberLeader, Self: 2, Leader: 7, Pledged: true}}
			m["c"] = failstatic.Answer{View: failstatic.View{Site: "c", Member: failstatic.MemberLeader, Self: 7, Leader: 7, Pledged: true}}
		}), true, false, false, "the members of b, c follow leader 7"},
		{"this site and another follow a leader", all(func(m map[string]failstatic.Answer) {
			m["a"] = failstatic.Answer{View: failstatic.View{Site: "a", Member: failstatic.MemberLeader, Leader: 9}}
			m["c"] = failstatic.Answer{View: failstatic.View{Site: "c", Member: failstatic.MemberLeader, Leader: 9, Pledged: true}}
		}), true, false, false, "the members of a, c follow leader 9"},
		{"a stale claim: one member names a leader that lost its quorum", all(func(m map[string]failstatic.Answer) {
			m["a"] = failstatic.Answer{View: failstatic.View{Site: "a", Member: failstatic.MemberLeader, Self: 1, Leader: 1}}
			m["b"] = failstatic.Answer{View: failstatic.View{Site: "b", Member: failstatic.MemberStopped, Self: 2, Pledged: true}}
			m["c"] = failstatic.Answer{View: failstatic.View{Site: "c", Member: failstatic.MemberStopped, Self: 3, Pledged: true}}
		}), true, true, false, "no working majority"},
		{"two members name different leaders", all(func(m map[string]failstatic.Answer) {
			m["b"] = failstatic.Answer{View: failstatic.View{Site: "b", Member: failstatic.MemberLeader, Leader: 1, Pledged: true}}
			m["c"] = failstatic.Answer{View: failstatic.View{Site: "c", Member: failstatic.MemberLeader, Leader: 3, Pledged: true}}
		}), true, true, false, "no working majority"},
		{"a leader that refuses writes (quota)", all(func(m map[string]failstatic.Answer) {
			for _, s := range sites {
				m[s] = failstatic.Answer{View: failstatic.View{Site: s, Member: failstatic.MemberLeader, Leader: 3, NoSpace: true, Pledged: true}}
			}
		}), true, true, true, "quota"},
		{"a majority of which one member does not hold the alarm", all(func(m map[string]failstatic.Answer) {
			for _, s := range sites {
				m[s] = failstatic.Answer{View: failstatic.View{Site: s, Member: failstatic.MemberLeader, Leader: 3, NoSpace: s != "b", Pledged: true}}
			}
		}), true, false, false, "the members of a, b, c follow leader 3"},
		{"a member that cannot tell", all(func(m map[string]failstatic.Answer) {
			m["c"] = failstatic.Answer{View: failstatic.View{Site: "c", Member: failstatic.MemberUnknown, Pledged: true}}
		}), true, false, false, "cannot tell"},
		{"an op under way", all(func(m map[string]failstatic.Answer) {
			m["b"] = failstatic.Answer{View: failstatic.View{Site: "b", Member: failstatic.MemberNoLeader, OpRunning: "op-42", Pledged: true}}
		}), true, false, false, "op op-42"},
		{"a site that did not pledge", all(func(m map[string]failstatic.Answer) {
			m["c"] = failstatic.Answer{View: failstatic.View{Site: "c", Member: failstatic.MemberNoLeader}}
		}), true, false, false, "did not pause its sweeper"},
		{"a site answering as another", all(func(m map[string]failstatic.Answer) {
			m["c"] = failstatic.Answer{View: failstatic.View{Site: "b", Member: failstatic.MemberNoLeader, Pledged: true}}
		}), true, false, false, `answered as site "b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := failstatic.Decide("a", sites, tt.answers, tt.pledged)
			if v.Hold != tt.hold || v.NoSpace != tt.noSpace {
				t.Errorf("hold %t noSpace %t (%s); want hold %t noSpace %t", v.Hold, v.NoSpace, v.Why, tt.hold, tt.noSpace)
			}
			if !strings.Contains(v.Why, tt.whyHas) {
				t.Errorf("why %q does not say %q", v.Why, tt.whyHas)
			}
		})
	}
}
