package site_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/zdt-project/zdt/site"
)

func TestStepLabel(t *testing.T) {
	many := make([]string, 334)
	for i := range many {
		many[i] = fmt.Sprintf("svc-%04d", i)
	}
	for _, tc := range []struct {
		name string
		step site.Step
		want string
	}{
		{"no params", site.Step{Name: "fence"}, "fence"},
		{"params sorted", site.Step{Name: "assign", Params: map[string]string{"service": "web", "from": "c"}}, "assign from=c service=web"},
		{"the planned kind left out", site.Step{Name: "switchover", Params: map[string]string{"kind": "switchover", "site": "b"}}, "switchover site=b"},
		{"a short list whole", site.Step{Name: "await-primary", Params: map[string]string{"services": "a,b,c,d"}}, "await-primary services=a,b,c,d"},
		{"a long list shortened", site.Step{Name: "await-primary", Params: map[string]string{"group": "pg", "services": strings.Join(many, ",")}},
			"await-primary group=pg services=svc-0000,svc-0001,svc-0002,… (334 in all)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := site.StepLabel(tc.step); got != tc.want {
				t.Errorf("StepLabel = %q, want %q", got, tc.want)
			}
		})
	}
	// The step itself keeps every item.
	st := site.Step{Name: "await-prefixes", Params: map[string]string{"services": strings.Join(many, ",")}}
	site.StepLabel(st)
	if got := strings.Count(st.Params["services"], ",") + 1; got != 334 {
		t.Fatalf("StepLabel changed the step's params: %d services left", got)
	}
}
