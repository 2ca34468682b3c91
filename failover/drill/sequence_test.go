package drill

import (
	"strings"
	"testing"
	"time"
)

func TestCheckSequence(t *testing.T) {
	t0 := time.Now()
	w := func(seq int, from, to int, id int64) Request {
		return Request{Seq: seq, Start: t0.Add(time.Duration(from) * time.Millisecond), End: t0.Add(time.Duration(to) * time.Millisecond),
			Answer: Answer{Site: "a", ID: id}}
	}
	for _, tc := range []struct {
		name      string
		histories [][]Request
		ok        bool
	}{
		{"one client, ids grow", [][]Request{{w(1, 0, 1, 1), w(2, 2, 3, 2), w(3, 4, 5, 40)}}, true},
		{"one client, an id goes back", [][]Request{{w(1, 0, 1, 5), w(2, 2, 3, 3)}}, false},
		// Overlapping writes of two clients may take their ids in either order.
		{"two clients overlapping", [][]Request{{w(1, 0, 10, 2)}, {w(1, 5, 15, 1)}}, true},
		// b's write began after a's was acknowledged, yet got a smaller id:
		// the ids came from two sequences.
		{"two clients, two primaries", [][]Request{{w(1, 0, 10, 7), w(2, 20, 30, 8)}, {w(1, 12, 18, 3)}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wrong := CheckSequence(tc.histories...)
			if (len(wrong) == 0) != tc.ok || (!tc.ok && !strings.Contains(wrong[0], "not linearizable")) {
				t.Errorf("CheckSequence = %q; want ok %t", wrong, tc.ok)
			}
		})
	}
}
