package drill

import (
	"fmt"
	"time"

	"github.com/anishathalye/porcupine"
)

// checkTimeout bounds the search for a linearization.
const checkTimeout = 30 * time.Second

// sequenceModel is the database's id sequence as its clients see it: every
// acknowledged write got an id larger than any id handed out before it (in
// the linearization). Two writable primaries hand out ids from sequences of
// their own, which overlap: a client that reaches both sees an id go back.
var sequenceModel = porcupine.Model{
	Init: func() any { return int64(0) },
	Step: func(state, _, output any) (bool, any) {
		id := output.(int64)
		if id <= state.(int64) {
			return false, state
		}
		return true, id
	},
	Equal: func(a, b any) bool { return a.(int64) == b.(int64) },
	DescribeOperation: func(input, output any) string {
		return fmt.Sprintf("write %v -> id %v", input, output)
	},
}

// CheckSequence checks, with porcupine, that the ids the service's
// database gave the acknowledged writes of one or more clients (each a
// history) are linearizable as a sequence that only grows: there is an
// order of the writes, consistent with real time (a write that was
// acknowledged before another began comes first), in which every id is
// larger than the ones before it. It says what is wrong, nothing when the
// histories pass. Writes without an id (a service that does not say) and
// failed requests (unknown outcome, no id) are left out.
func CheckSequence(histories ...[]Request) []string {
	var ops []porcupine.Operation
	var origin time.Time
	for _, h := range histories {
		for _, r := range h {
			if origin.IsZero() || r.Start.Before(origin) {
				origin = r.Start
			}
		}
	}
	for client, h := range histories {
		for _, r := range h {
			if r.Err != nil || r.ID == 0 {
				continue
			}
			ops = append(ops, porcupine.Operation{ClientId: client, Input: r.Seq, Output: r.ID,
				Call: r.Start.Sub(origin).Nanoseconds(), Return: r.End.Sub(origin).Nanoseconds()})
		}
	}
	switch porcupine.CheckOperationsTimeout(sequenceModel, ops, checkTimeout) {
	case porcupine.Ok:
		return nil
	case porcupine.Illegal:
		return []string{fmt.Sprintf("the ids of %d acknowledged writes are not linearizable: an id went back (two writable primaries, or a sequence reset)", len(ops))}
	}
	return []string{fmt.Sprintf("no answer on the ids of %d acknowledged writes within %s", len(ops), checkTimeout)}
}
