package bgp

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		sites int
		want  []string // in the error; none: valid
	}{
		{name: "defaults, three sites", cfg: DefaultConfig(), sites: 3},
		{name: "defaults, five sites", cfg: DefaultConfig(), sites: 5},
		{name: "defaults, eleven sites: 1 + 10 × 1 = 11 > 10", cfg: DefaultConfig(), sites: 11,
			want: []string{"11 sites", "headroom 1 + (11-1) × step 1 = 11 prepends", "max prepends 10", "raise max prepends to 11"}},
		{name: "top rung exactly at the cap", cfg: Config{Headroom: 2, Step: 2, MaxPrepends: 10}, sites: 5},
		{name: "cap too small for five sites", cfg: Config{Headroom: 2, Step: 2, MaxPrepends: 9}, sites: 5,
			want: []string{"= 10 prepends", "above max prepends 9"}},
		{name: "cap too small for three sites", cfg: Config{Headroom: 1, Step: 1, MaxPrepends: 2}, sites: 3,
			want: []string{"= 3 prepends", "above max prepends 2"}},
		{name: "negative step", cfg: Config{Headroom: 1, Step: -1, MaxPrepends: 10}, sites: 3,
			want: []string{"prepend step is -1", "at least 1"}},
		{name: "zero step: standbys would tie", cfg: Config{Headroom: 1, Step: 0, MaxPrepends: 10}, sites: 3,
			want: []string{"prepend step is 0", "tie"}},
		{name: "zero headroom: a takeover could not beat the active path", cfg: Config{Headroom: 0, Step: 1, MaxPrepends: 10}, sites: 3,
			want: []string{"headroom is 0", "takeover"}},
		{name: "negative headroom and step: both said", cfg: Config{Headroom: -2, Step: -1, MaxPrepends: 10}, sites: 3,
			want: []string{"headroom is -2", "prepend step is -1"}},
		{name: "negative flap interval", cfg: Config{Headroom: 1, Step: 1, MaxPrepends: 10, MinChangeInterval: -time.Second}, sites: 3,
			want: []string{"min change interval is -1s"}},
		{name: "no sites", cfg: DefaultConfig(), sites: 0, want: []string{"at least 1 site"}},
		{name: "zero config", cfg: Config{}, sites: 3, want: []string{"headroom is 0", "prepend step is 0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate(tc.sites)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate: %v, want an ErrConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestDecideRefusesBadConfig: Decide checks the config against the
// service's sites and decides nothing with a bad one.
func TestDecideRefusesBadConfig(t *testing.T) {
	in := service(five, "a")
	in.Site = "a"
	for _, cfg := range []Config{
		{Headroom: 1, Step: 1, MaxPrepends: 4}, // five sites need 5
		{Headroom: 1, Step: -1, MaxPrepends: 10},
		{Headroom: 0, Step: 1, MaxPrepends: 10},
	} {
		ds, err := Decide(cfg, in)
		if !errors.Is(err, ErrConfig) || ds != nil {
			t.Errorf("Decide with %+v: %v, %v; want an ErrConfig and no decisions", cfg, ds, err)
		}
	}
	if _, err := Decide(Config{Headroom: 1, Step: 1, MaxPrepends: 4}, service(three, "a")); !errors.Is(err, ErrInput) {
		// no site given: the input is checked first
		t.Errorf("Decide without a site: %v, want ErrInput", err)
	}
	three := service(three, "a")
	three.Site = "a"
	if _, err := Decide(Config{Headroom: 1, Step: 1, MaxPrepends: 4}, three); err != nil {
		t.Errorf("the same config for three sites: %v", err)
	}
}
