package drill

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckTakeover(t *testing.T) {
	t0 := time.Now()
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	req := func(i int, site string, err error) Request {
		return Request{Seq: i, Start: at(i), End: at(i).Add(time.Millisecond), Answer: Answer{Site: site}, Err: err}
	}
	down := errors.New("refused")
	for _, tc := range []struct {
		name  string
		h     []Request
		until time.Time
		want  []string
	}{
		{"clean", []Request{req(0, "a", nil), req(2, "", down), req(3, "b", nil), req(4, "b", nil)}, time.Time{}, nil},
		{"dark site answers", []Request{req(0, "a", nil), req(2, "a", nil), req(3, "b", nil)}, time.Time{}, []string{"answered by the dark site a"}},
		{"split brain", []Request{req(2, "b", nil), req(3, "c", nil), req(4, "b", nil)}, time.Time{}, []string{"answered by c after b had taken over"}},
		{"outage never ends", []Request{req(0, "a", nil), req(2, "", down)}, time.Time{}, []string{"did not end"}},
		{"back after the window", []Request{req(2, "b", nil), req(5, "a", nil)}, at(5), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := CheckTakeover(tc.h, "a", at(1), tc.until)
			if len(got) != len(tc.want) {
				t.Fatalf("CheckTakeover = %q; want %d problems like %q", got, len(tc.want), tc.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Errorf("problem %d = %q; want it to say %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}
