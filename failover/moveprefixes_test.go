package failover

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// TestNextMovePhase: a planned move of db (203.0.113.64/26) from b to c,
// headroom 2, goes prepare → announce at once, announce → release when the
// new path leads, release → done when the old path is seen behind it.
func TestNextMovePhase(t *testing.T) {
	const db = "203.0.113.64/26"
	asPath := func(n int) []uint32 { return make([]uint32, n) }
	tests := []struct {
		name     string
		phase    site.MovePhase
		noBGP    bool // c has no BGP speaker
		bgp      map[site.SiteService][]site.Announcement
		upstream map[string]site.UpstreamRoute // nil: no observer
		want     site.MovePhase
		why      string // substring of what it waits for
	}{
		{name: "prepare: the new site's member is promoted (the step runs after await-primary)", phase: site.MovePrepare, want: site.MoveAnnounce},
		{name: "announce: the observer still leads to the old site", phase: site.MoveAnnounce,
			upstream: map[string]site.UpstreamRoute{db: {BestSite: "b"}}, want: site.MoveAnnounce,
			why: `waiting for the new path: ` + db + `: the observer's best path leads to "b"`},
		{name: "announce: the observer leads to the new site", phase: site.MoveAnnounce,
			upstream: map[string]site.UpstreamRoute{db: {BestSite: "c"}}, want: site.MoveRelease},
		{name: "announce: the new site's path beats the old one's", phase: site.MoveAnnounce,
			upstream: map[string]site.UpstreamRoute{db: {BestSite: "c", Paths: []site.UpstreamPath{{Site: "b", ASPath: asPath(3)}, {Site: "c", ASPath: asPath(2)}}}},
			want:     site.MoveRelease},
		{name: "announce: the best path from the new site only ties (a stale one from before a failover)", phase: site.MoveAnnounce,
			upstream: map[string]site.UpstreamRoute{db: {BestSite: "c", Paths: []site.UpstreamPath{{Site: "b", ASPath: asPath(3)}, {Site: "c", ASPath: asPath(3)}}}},
			want:     site.MoveAnnounce, why: "the observer's path from site c (3 AS hops) is not shorter than site b's (3)"},
		{name: "announce: a stale path and the new one from the new site", phase: site.MoveAnnounce,
			upstream: map[string]site.UpstreamRoute{db: {BestSite: "c", Paths: []site.UpstreamPath{{Site: "c", ASPath: asPath(3)}, {Site: "b", ASPath: asPath(3)}, {Site: "c", ASPath: asPath(2)}}}},
			want:     site.MoveRelease},
		{name: "announce without an observer: the new site announces below the headroom", phase: site.MoveAnnounce,
			bgp: map[site.SiteService][]site.Announcement{{Site: "c", Service: "db"}: {{Service: "db", Prefix: db, Prepends: 1}}}, want: site.MoveRelease},
		{name: "announce without an observer: still a standby", phase: site.MoveAnnounce,
			bgp: map[site.SiteService][]site.Announcement{{Site: "c", Service: "db"}: {{Service: "db", Prefix: db, Prepends: 3}}}, want: site.MoveAnnounce,
			why: "site c announces it with 3 prepends, as a standby"},
		{name: "release: the old path is still at the headroom", phase: site.MoveRelease,
			upstream: map[string]site.UpstreamRoute{db: {BestSite: "c", Paths: []site.UpstreamPath{{Site: "b", ASPath: asPath(3)}, {Site: "c", ASPath: asPath(2)}}}},
			want:     site.MoveRelease, why: "waiting for the old site to step back: " + db + ": the observer sees site b's path at 3 AS hops"},
		{name: "release: the old path is at its standby rank", phase: site.MoveRelease,
			upstream: map[string]site.UpstreamRoute{db: {BestSite: "c", Paths: []site.UpstreamPath{{Site: "b", ASPath: asPath(4)}, {Site: "c", ASPath: asPath(2)}}}},
			want:     site.MoveDone},
		{name: "release: the old path is gone", phase: site.MoveRelease,
			upstream: map[string]site.UpstreamRoute{db: {BestSite: "c", Paths: []site.UpstreamPath{{Site: "c", ASPath: asPath(2)}}}},
			want:     site.MoveDone},
		{name: "release without an observer: the old site still announces at the headroom", phase: site.MoveRelease,
			bgp:  map[site.SiteService][]site.Announcement{{Site: "b", Service: "db"}: {{Service: "db", Prefix: db, Prepends: 2}}},
			want: site.MoveRelease, why: "site b announces it with 2 prepends"},
		{name: "release without an observer: the old site stepped back", phase: site.MoveRelease,
			bgp:  map[site.SiteService][]site.Announcement{{Site: "b", Service: "db"}: {{Service: "db", Prefix: db, Prepends: 3}}},
			want: site.MoveDone},
		{name: "a new site without a BGP speaker has nothing to move", phase: site.MovePrepare, noBGP: true, want: site.MoveDone},
		{name: "done stays done", phase: site.MoveDone, want: site.MoveDone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, snap := movedState()
			cfg.BGP.Headroom = 2
			for i := range cfg.Sites {
				if !(tt.noBGP && cfg.Sites[i].Name == "c") {
					cfg.Sites[i].BGP = &config.SiteBGP{}
				}
			}
			svc := config.Service{Name: "db", Prefixes: []netip.Prefix{netip.MustParsePrefix(db)}}
			snap.Announced = tt.bgp
			mv := site.Move{Service: "db", Op: "op-1", From: "b", To: "c", Phase: tt.phase}
			got, why := nextMovePhase(cfg, snap, tt.upstream, svc, mv)
			if got != tt.want || !strings.Contains(why, tt.why) || (tt.why == "") != (why == "") {
				t.Errorf("nextMovePhase = %s, %q; want %s, %q", got, why, tt.want, tt.why)
			}
		})
	}
}

func TestMoveOf(t *testing.T) {
	a := site.Assignment{Service: "db", Site: "c", From: "b", Op: "op-1"}
	mv := site.Move{Service: "db", Op: "op-1", From: "b", To: "c"}
	if !mv.Of(a) {
		t.Errorf("the move of op-1 b>c does not belong to its assignment")
	}
	back := site.Assignment{Service: "db", Site: "b", From: "c", Op: "op-1"} // the rollback
	if mv.Of(back) {
		t.Errorf("the move belongs to the rollback's assignment")
	}
	if (site.Move{}).Of(site.Assignment{}) {
		t.Errorf("no move belongs to no assignment")
	}
}
