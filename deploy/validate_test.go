package deploy

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	valid := func() Problem {
		return Problem{
			Hosts:  []Host{hostOf("a1", "a", 8, 16384), hostOf("b1", "b", 16, 8192)},
			Guests: []Guest{guestOf("g1", Gold, ZoneA, 2, 2048), guestOf("b1", Bronze, ZoneNone, 1, 512)},
		}
	}
	tests := []struct {
		name   string
		change func(p *Problem)
		want   []string // lines of the error, after its first
	}{
		{"valid", func(*Problem) {}, nil},
		{"duplicate guest", func(p *Problem) { p.Guests = append(p.Guests, guestOf("g1", Silver, ZoneNone, 1, 1)) },
			[]string{`guest "g1" is listed twice`}},
		{"guest without name", func(p *Problem) { p.Guests[1].Name = "" }, []string{`guest #2 has no name`}},
		{"guest bigger than every host", func(p *Problem) { p.Guests[0].VCPUs, p.Guests[0].MemoryMiB = 20, 20000 },
			[]string{`guest "g1": needs 20 vCPUs / 20000 MiB, more than any host offers: the closest, a1, offers 8 vCPUs / 16384 MiB (12 vCPUs and 3616 MiB short)`}},
		{"guest that fits no host in both sizes at once", func(p *Problem) { p.Guests[0].VCPUs, p.Guests[0].MemoryMiB = 12, 12000 },
			[]string{`guest "g1": needs 12 vCPUs / 12000 MiB, more than any host offers: the closest, b1, offers 16 vCPUs / 8192 MiB (3808 MiB short)`}},
		{"overcommit counts for the size check", func(p *Problem) {
			p.Hosts[0].CPUOvercommit = 4
			p.Guests[0].VCPUs, p.Guests[0].MemoryMiB = 30, 12000
		}, nil},
		{"no tier", func(p *Problem) { p.Guests[0].Tier = 0 }, []string{`guest "g1": no tier: want gold, silver or bronze`}},
		{"unknown tier", func(p *Problem) { p.Guests[0].Tier = 9 }, []string{`guest "g1": unknown tier 9: want gold, silver or bronze`}},
		{"unknown zone", func(p *Problem) { p.Guests[0].Zone = "C" }, []string{`guest "g1": unknown zone "C": want A, B or none`}},
		{"non-positive guest sizes", func(p *Problem) { p.Guests[1].VCPUs, p.Guests[1].MemoryMiB = 0, -5 },
			[]string{`guest "b1": vCPUs must be positive, got 0`, `guest "b1": memory must be positive, got -5 MiB`}},
		{"non-positive host sizes", func(p *Problem) { p.Hosts[1].VCPUs, p.Hosts[1].MemoryMiB = -1, 0 },
			[]string{`host "b1": vCPUs must be positive, got -1`, `host "b1": memory must be positive, got 0 MiB`}},
		{"overcommit below 1", func(p *Problem) { p.Hosts[0].CPUOvercommit, p.Hosts[0].MemoryOvercommit = 0.5, -1 },
			[]string{`host "a1": CPU overcommit 0.5 is below 1 (1 means none)`, `host "a1": memory overcommit -1 is below 1 (1 means none)`}},
		{"overcommit zero means 1", func(p *Problem) { p.Hosts[0].CPUOvercommit, p.Hosts[0].MemoryOvercommit = 0, 0 }, nil},
		{"duplicate host", func(p *Problem) { p.Hosts = append(p.Hosts, hostOf("a1", "c", 1, 1)) }, []string{`host "a1" is listed twice`}},
		{"host without name or site", func(p *Problem) { p.Hosts[0].Name = ""; p.Hosts[1].Site = "" },
			[]string{`host #1 has no name`, `host "b1": no site`}},
		{"current placement on an unknown host", func(p *Problem) { p.Current = map[string]string{"g1": "z9"} },
			[]string{`current placement of guest "g1" names unknown host "z9"`}},
		{"current placement of an unknown guest", func(p *Problem) { p.Current = map[string]string{"gone": "a1"} },
			[]string{`current placement names unknown guest "gone" (on host "a1")`}},
		{"unknown preempted guest", func(p *Problem) { p.Preempted = []string{"gone"} },
			[]string{`preempted guests name unknown guest "gone"`}},
		{"unknown failed host", func(p *Problem) { p.FailedHosts = []string{"z9"} }, []string{`failed hosts name unknown host "z9"`}},
		{"unknown scope", func(p *Problem) { p.Scope = 7 }, []string{`unknown scope(7): want ScopeCluster or ScopeService`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := valid()
			tt.change(&p)
			err := p.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want an ErrInvalid", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if lines[0] != "invalid placement problem:" || strings.Join(lines[1:], "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Validate:\n%v\nwant lines\n%s", err, strings.Join(tt.want, "\n"))
			}
			if _, err := Solve(p); !errors.Is(err, ErrInvalid) {
				t.Errorf("Solve = %v, want an ErrInvalid", err)
			}
		})
	}
}

func TestParseTierAndZone(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Tier
		err  string
	}{
		{"gold", Gold, ""}, {"Silver", Silver, ""}, {"BRONZE", Bronze, ""},
		{"platinum", 0, `unknown tier "platinum": want gold, silver or bronze`},
		{"", 0, `unknown tier "": want gold, silver or bronze`},
	} {
		got, err := ParseTier(tt.in)
		if got != tt.want || errText(err) != tt.err {
			t.Errorf("ParseTier(%q) = %v, %v; want %v, %q", tt.in, got, err, tt.want, tt.err)
		}
		if err == nil && got.String() != strings.ToLower(tt.in) {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	for _, tt := range []struct {
		in   string
		want Zone
		err  string
	}{
		{"A", ZoneA, ""}, {"b", ZoneB, ""}, {"", ZoneNone, ""}, {"none", ZoneNone, ""},
		{"C", "", `unknown zone "C": want A, B or none`},
	} {
		got, err := ParseZone(tt.in)
		if got != tt.want || errText(err) != tt.err {
			t.Errorf("ParseZone(%q) = %q, %v; want %q, %q", tt.in, got, err, tt.want, tt.err)
		}
	}
	if !(Gold > Silver && Silver > Bronze) {
		t.Error("want Gold > Silver > Bronze")
	}
	if got := label(Silver, ZoneB); got != "Silver-Zone-B" {
		t.Errorf("label = %q", got)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
