package site_test

import (
	"errors"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/zdt-project/zdt/site"
)

func count(t *testing.T, s *site.Store, key string) int64 {
	t.Helper()
	resp, err := s.Client().Get(t.Context(), key, clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// TestEndMembershipComparesTheBeat: a sweep judged on an older beat ends
// nothing; one on the newest ends the membership (alive key, beat and the
// site's election key gone, other sites' untouched), after which the site's
// beats fail and so none of its renewals counts.
func TestEndMembershipComparesTheBeat(t *testing.T) {
	s, _, ctx := setup(t)
	elect(t, ctx, s, "a")
	sess, err := concurrency.NewSession(s.Client(), concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	bElected := make(chan error, 1)
	go func() { // waits behind a's key: its campaign ends when a's key goes
		el := concurrency.NewElection(sess, strings.TrimSuffix(s.Keys().Election(), "/"))
		bElected <- el.Campaign(ctx, "b")
	}()
	leaseA := join(t, ctx, s, "a")
	join(t, ctx, s, "b")
	beats, _, err := s.Beats(ctx)
	if err != nil || beats["a"] == 0 || beats["b"] == 0 {
		t.Fatalf("beats after two joins: %v, %v", beats, err)
	}
	old := beats["a"]
	if err := s.Beat(ctx, "a", "i1", leaseA); err != nil {
		t.Fatalf("beat of a member: %v", err)
	}
	if ended, err := s.EndMembership(ctx, "a", old); err != nil || ended {
		t.Fatalf("sweep on a beat a has renewed since: ended %t, %v; want nothing ended", ended, err)
	}
	if n := count(t, s, s.Keys().Alive("a")); n != 1 {
		t.Fatalf("a's alive key gone after a sweep that lost (%d keys)", n)
	}
	beats, _, err = s.Beats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ended, err := s.EndMembership(ctx, "a", beats["a"]); err != nil || !ended {
		t.Fatalf("sweep on a's newest beat: ended %t, %v", ended, err)
	}
	for _, key := range []string{s.Keys().Alive("a"), s.Keys().Beat("a")} {
		if n := count(t, s, key); n != 0 {
			t.Errorf("%s still there after the sweep", key)
		}
	}
	if n := count(t, s, s.Keys().Alive("b")); n != 1 {
		t.Errorf("b's alive key gone with a's membership")
	}
	if err := <-bElected; err != nil {
		t.Fatalf("b's campaign did not end after the sweep removed a's election key: %v", err)
	}
	if err := s.Beat(ctx, "a", "i1", leaseA); !errors.Is(err, site.ErrNotMember) {
		t.Errorf("beat after the sweep: %v, want ErrNotMember", err)
	}
	if _, err := s.EndMembership(ctx, "a", 0); err == nil {
		t.Errorf("a sweep without a beat revision did not fail")
	}
}
