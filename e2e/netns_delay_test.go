package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/e2e/lab"
	"github.com/zdt-project/zdt/e2e/softswitch"
	"github.com/zdt-project/zdt/failover/drill"
	"github.com/zdt-project/zdt/site"
)

// netnsDelayRun is how long the client runs over the delayed links.
const netnsDelayRun = 60 * time.Second

// TestNetnsSitesDelayed delays every link between two sites of a settled
// lab 100 ± 20 ms one way (in order, in the fabric's switch), and has a
// client write through the upstream for a minute: nothing failed, so
// nothing may fail over. No site fences itself or is fenced, no op runs,
// web's active site answers every request the client got an answer to,
// and every write the client got acknowledged is in group pg (synchronous,
// so each commit waits for a standby across a delayed link).
//
// The delay comes once the lab has settled: with the lab's timings (an
// etcd election timeout of 0.5 s, about two round trips at this delay) a
// new cluster can take a minute to elect a leader and let every site join.
func TestNetnsSitesDelayed(t *testing.T) {
	s, ctx := startNetnsLab(t)
	if err := s.l.DelaySiteLinks(ctx, lab.SiteDelay{Delay: 100 * time.Millisecond, Jitter: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	delayed := softswitch.Link{Delay: 100 * time.Millisecond, Jitter: 20 * time.Millisecond}
	links, err := s.l.Links(ctx)
	if err != nil || len(links) != 3 {
		t.Fatalf("the lab's links: %v (%v); want the three between its sites delayed", links, err)
	}
	for _, l := range links {
		if l.Link != delayed {
			t.Errorf("link %s; want %s", l, delayed)
		}
	}
	serviceAnswers(ctx, t, s.l, "web", "a")
	// A write crosses two delayed links and a commit waits for a third
	// round trip: a request takes about 400 ms.
	probe, stop := startClientWith(ctx, t, s.l, "netns-"+t.Name(), 3*time.Second)
	start := time.Now()
	opsBefore := opIDs(ctx, t, s.cli, s.keys)
	waitServedBy(ctx, t, probe, "", 20)
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(netnsDelayRun - time.Since(start)):
	}
	res := stop()
	logClient(t, res)

	for _, r := range probe.History() {
		if r.Site != "" && r.Site != "a" {
			t.Errorf("request #%d answered by site %s; want a, web's active site, all along", r.Seq, r.Site)
			break
		}
	}
	if res.Missing != 0 || res.Acknowledged == 0 {
		t.Errorf("%d of %d acknowledged writes are missing; want none lost with a synchronous group", res.Missing, res.Acknowledged)
	}
	if wrong := drill.CheckSequence(probe.History()); len(wrong) > 0 {
		t.Errorf("the client's writes: %s", strings.Join(wrong, "; "))
	}
	nothingFailedOver(ctx, t, s, opsBefore)
	st := status(t, s.zdt, s.l)
	if wrong := finalStateWrong(s, st); len(wrong) > 0 {
		t.Errorf("the cluster after a minute over delayed links:\n  %s", strings.Join(wrong, "\n  "))
	}
}

// nothingFailedOver checks that no site fenced itself or is fenced, and
// that no op ran but those of opsBefore: what a lab where nothing failed
// must show.
func nothingFailedOver(ctx context.Context, t *testing.T, s *settledLab, opsBefore []string) {
	t.Helper()
	for _, name := range s.l.SiteNames() {
		if at := firstLogLine(t, s.l.LogPath(name), "self-fenced"); !at.IsZero() {
			t.Errorf("site %s fenced itself at %v", name, at)
		}
		resp, err := s.cli.Get(ctx, s.keys.Fence(name))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != 0 {
			t.Errorf("site %s is fenced: %s", name, resp.Kvs[0].Value)
		}
	}
	for _, id := range opIDs(ctx, t, s.cli, s.keys) {
		if !slices.Contains(opsBefore, id) {
			t.Errorf("op %s ran while nothing failed", id)
		}
	}
}

// opIDs are the ids of the ops on record.
func opIDs(ctx context.Context, t *testing.T, cli *clientv3.Client, keys site.Keys) []string {
	t.Helper()
	resp, err := cli.Get(ctx, keys.Ops(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatalf("read the ops: %v", err)
	}
	var ids []string
	for _, kv := range resp.Kvs {
		ids = append(ids, strings.TrimPrefix(string(kv.Key), keys.Ops()))
	}
	return ids
}
