package main

import (
	"strings"
	"testing"

	"github.com/zdt-project/zdt/e2e/lab"
)

// TestLabTopology: zdt lab's flags make the lab they say: the lab's short
// timings by default, the config's with --default-timings, a scale lab's
// services, and --netns refusing --net.
func TestLabTopology(t *testing.T) {
	top, err := (&labOptions{net: defaultLabNet}).topology()
	if err != nil || top.Timings != lab.DefaultTopology().Timings {
		t.Errorf("zdt lab: timings %+v, %v; want the lab's %+v", top.Timings, err, lab.DefaultTopology().Timings)
	}
	top, err = (&labOptions{net: defaultLabNet, defaultTimings: true, requireConfirmation: true, scale: lab.Scale{Services: 3, PrefixesPerService: 1}}).topology()
	if err != nil || top.Timings != lab.ProductionTimings() || !top.RequireConfirmation || len(top.Services) != len(lab.DefaultTopology().Services)+3 {
		t.Errorf("zdt lab --default-timings --require-confirmation --services 3: timings %+v, confirmation %t, %d services, %v; want the config's timings %+v, confirmation, 3 services more",
			top.Timings, top.RequireConfirmation, len(top.Services), err, lab.ProductionTimings())
	}
	if _, err := (&labOptions{net: "127.0.5.0", netns: true}).topology(); err == nil || !strings.Contains(err.Error(), "leave out --net") {
		t.Errorf("zdt lab --netns --net 127.0.5.0: %v; want it refused", err)
	}
}
