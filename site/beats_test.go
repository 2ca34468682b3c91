package site_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
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
	why := site.Event{At: time.Now(), Site: "b", Kind: "site-silent", Subject: "a", Message: "a was silent"}
	if ended, err := s.EndMembership(ctx, "a", old, why); err != nil || ended {
		t.Fatalf("sweep on a beat a has renewed since: ended %t, %v; want nothing ended", ended, err)
	}
	if n := count(t, s, s.Keys().Alive("a")); n != 1 {
		t.Fatalf("a's alive key gone after a sweep that lost (%d keys)", n)
	}
	if n := count(t, s, s.Keys().Events()); n != 0 {
		t.Fatalf("a sweep that lost wrote %d events", n)
	}
	beats, _, err = s.Beats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ended, err := s.EndMembership(ctx, "a", beats["a"], why); err != nil || !ended {
		t.Fatalf("sweep on a's newest beat: ended %t, %v", ended, err)
	}
	if evs, err := s.Events(ctx, 0); err != nil || len(evs) != 1 || evs[0].Kind != "site-silent" || evs[0].Subject != "a" {
		t.Errorf("events after the sweep: %+v, %v; want the one site-silent event of a", evs, err)
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
	if _, err := s.EndMembership(ctx, "a", 0, why); err == nil {
		t.Errorf("a sweep without a beat revision did not fail")
	}
}

// TestEndMembershipRefusedAtTheQuota: while etcd refuses writes (its
// NOSPACE alarm raised) a sweep ends nothing, although deletes alone would
// pass: the silence it measured was etcd's. Beats are refused too, and
// keep-alives are not. Once the alarm is cleared the same sweep works.
func TestEndMembershipRefusedAtTheQuota(t *testing.T) {
	s, cl, ctx := setup(t)
	lease := join(t, ctx, s, "a")
	beats, _, err := s.Beats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.SetNoSpace(ctx, true); err != nil {
		t.Fatal(err)
	}
	why := site.Event{At: time.Now(), Site: "b", Kind: "site-silent", Subject: "a", Message: "a was silent"}
	if ended, err := s.EndMembership(ctx, "a", beats["a"], why); !errors.Is(err, rpctypes.ErrNoSpace) || ended {
		t.Fatalf("sweep at the quota: ended %t, %v; want refused with %v", ended, err, rpctypes.ErrNoSpace)
	}
	if n := count(t, s, s.Keys().Alive("a")); n != 1 {
		t.Fatalf("a's alive key gone after a refused sweep")
	}
	if err := s.Beat(ctx, "a", "i1", lease); !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Errorf("beat at the quota: %v, want %v", err, rpctypes.ErrNoSpace)
	}
	if _, err := s.Client().KeepAliveOnce(ctx, lease); err != nil {
		t.Errorf("keep-alive at the quota: %v", err)
	}
	if err := cl.SetNoSpace(ctx, false); err != nil {
		t.Fatal(err)
	}
	if ended, err := s.EndMembership(ctx, "a", beats["a"], why); err != nil || !ended {
		t.Fatalf("sweep after the alarm was cleared: ended %t, %v", ended, err)
	}
}
