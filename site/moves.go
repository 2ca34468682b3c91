package site

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// MovePhase is how far the prefixes of a planned move (a switchover, an
// evacuation) have come, make-before-break. The coordinator's switchover
// op advances it on what the route observer (or, without one, the sites'
// reports) shows; every site's BGP announcer reads it.
type MovePhase string

// The phases, in order.
const (
	// MovePrepare: the new site is made ready (its member promoted); the
	// old site keeps carrying the traffic.
	MovePrepare MovePhase = "prepare"
	// MoveAnnounce: the new site announces to beat the old one, which
	// keeps its path until the new path is in place at the upstream.
	MoveAnnounce MovePhase = "announce"
	// MoveRelease: the new path is in place; the old site steps back to
	// its standby rank.
	MoveRelease MovePhase = "release"
	// MoveDone: the old site's raise is in place; the move is over.
	MoveDone MovePhase = "done"
)

// Move is the record of a planned move of a service's prefixes. It belongs
// to the assignment that Op wrote moving the service from From to To: an
// assignment by another op, or to another site (a rollback), has no move.
type Move struct {
	Service string    `json:"service"`
	Op      string    `json:"op"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Phase   MovePhase `json:"phase"`
	At      time.Time `json:"at"` // when the phase was written
	// Until bounds the move: after it the sites treat it as over whatever
	// its phase, so an op that stopped half-way (aborted, failed) does not
	// hold the old site's path up for ever.
	Until time.Time `json:"until"`

	// Rev is the key's mod revision (not stored).
	Rev int64 `json:"-"`
}

// Of says whether the move belongs to the assignment.
func (m Move) Of(a Assignment) bool {
	return m.Op != "" && m.Op == a.Op && m.To == a.Site && m.From == a.From
}

// AssignMoving is Assign for a planned move: with the assignment, in the
// same transaction, it writes the move record of the service in phase
// MovePrepare, bounded by until.
func (s *Store) AssignMoving(ctx context.Context, g Guard, prev, next Assignment, until time.Time) (Assignment, error) {
	putMove, err := putJSON(s.keys.Move(next.Service), moveOf(next, until))
	if err != nil {
		return Assignment{}, err
	}
	return s.assign(ctx, g, prev, next, putMove)
}

// moveOf is the record of a planned move that assignment next starts,
// in its first phase, to be done by until.
func moveOf(next Assignment, until time.Time) Move {
	return Move{Service: next.Service, Op: next.Op, From: next.From, To: next.Site, Phase: MovePrepare, At: next.At, Until: until}
}

// SetMovePhase writes the move's next phase, guarded by g, if the record has
// not changed since mv.Rev; mv.Rev is advanced.
func (s *Store) SetMovePhase(ctx context.Context, g Guard, mv *Move, phase MovePhase, at time.Time) error {
	key := s.keys.Move(mv.Service)
	next := *mv
	next.Phase, next.At = phase, at
	put, err := putJSON(key, next)
	if err != nil {
		return err
	}
	resp, err := s.commit(ctx, &g, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", mv.Rev)}, []clientv3.Op{put})
	if err != nil {
		return fmt.Errorf("move of service %s to phase %s: %w", mv.Service, phase, err)
	}
	*mv = next
	mv.Rev = resp.Header.Revision
	return nil
}

// readServices decodes the keys under Services(): assignments and moves.
func readServices(k Keys, kvs []*mvccpb.KeyValue, assignments map[string]Assignment, moves map[string]Move) error {
	for _, kv := range kvs {
		_, leaf, _ := k.serviceKey(string(kv.Key))
		switch leaf {
		case "assignment":
			a, err := decode[Assignment](kv)
			if err != nil {
				return err
			}
			a.Epoch = kv.ModRevision
			assignments[a.Service] = a
		case "move":
			m, err := decode[Move](kv)
			if err != nil {
				return err
			}
			m.Rev = kv.ModRevision
			moves[m.Service] = m
		}
	}
	return nil
}

// serviceKey splits a key under Services() into the service and the rest
// ("db", "assignment"); ok is false for any other key.
func (k Keys) serviceKey(key string) (service, leaf string, ok bool) {
	rest, found := strings.CutPrefix(key, k.Services())
	if !found {
		return "", "", false
	}
	return strings.Cut(rest, "/")
}
