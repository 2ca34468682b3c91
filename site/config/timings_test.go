package config

import (
	"testing"
	"time"
)

// electionMsg is the end of every problem with an etcd leader election that
// does not fit in a lease.
const electionMsg = `or losing the site that holds the etcd leader makes the surviving sites self-fence too; `

// TestElectionMustFitTheLease: an etcd leader election (2 x
// etcd_election_timeout) must fit in lease_ttl - self_fence_margin -
// renew_interval (DESIGN.md, "Timing and self-fencing").
func TestElectionMustFitTheLease(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edits []string
		want  []string
	}{
		{"the old defaults", []string{"etcd_election_timeout: 500ms", "etcd_election_timeout: 1s"}, []string{
			`zdt.yaml:9: timings.lease_ttl: 3s leaves too little time for an etcd leader election: ` +
				`lease_ttl - self_fence_margin - renew_interval (3s - 750ms (the default, lease_ttl/4) - 1s (the default, lease_ttl/3) = 1.25s) ` +
				`must be at least 2 x etcd_election_timeout (2 x 1s = 2s), ` + electionMsg +
				`raise lease_ttl to at least 5s or lower etcd_election_timeout to at most 625ms`}},
		{"default election timeout", []string{"  etcd_election_timeout: 500ms\n", ""}, []string{
			`zdt.yaml:9: timings.lease_ttl: 3s leaves too little time for an etcd leader election: ` +
				`lease_ttl - self_fence_margin - renew_interval (3s - 750ms (the default, lease_ttl/4) - 1s (the default, lease_ttl/3) = 1.25s) ` +
				`must be at least 2 x etcd_election_timeout (2 x 1s (the default) = 2s), ` + electionMsg +
				`raise lease_ttl to at least 5s or lower etcd_election_timeout to at most 625ms`}},
		{"default lease_ttl", []string{"  lease_ttl: 3s\n", "", "etcd_election_timeout: 500ms", "etcd_election_timeout: 2s"}, []string{
			`zdt.yaml:8: timings.lease_ttl: 6s (the default) leaves too little time for an etcd leader election: ` +
				`lease_ttl - self_fence_margin - renew_interval (6s - 1.5s (the default, lease_ttl/4) - 2s (the default, lease_ttl/3) = 2.5s) ` +
				`must be at least 2 x etcd_election_timeout (2 x 2s = 4s), ` + electionMsg +
				`raise lease_ttl to at least 10s or lower etcd_election_timeout to at most 1.25s`}},
		{"renew_interval and self_fence_margin set", []string{
			"lease_ttl: 3s", "lease_ttl: 3s\n  renew_interval: 1s\n  self_fence_margin: 1s",
			"etcd_election_timeout: 500ms", "etcd_election_timeout: 600ms"}, []string{
			`zdt.yaml:9: timings.lease_ttl: 3s leaves too little time for an etcd leader election: ` +
				`lease_ttl - self_fence_margin - renew_interval (3s - 1s - 1s = 1s) ` +
				`must be at least 2 x etcd_election_timeout (2 x 600ms = 1.2s), ` + electionMsg +
				`raise lease_ttl to at least 4s or lower etcd_election_timeout to at most 500ms`}},
		{"self_fence_margin set, renew_interval by default", []string{
			"lease_ttl: 3s", "lease_ttl: 3s\n  self_fence_margin: 500ms",
			"etcd_election_timeout: 500ms", "etcd_election_timeout: 1s"}, []string{
			`zdt.yaml:9: timings.lease_ttl: 3s leaves too little time for an etcd leader election: ` +
				`lease_ttl - self_fence_margin - renew_interval (3s - 500ms - 1s (the default, lease_ttl/3) = 1.5s) ` +
				`must be at least 2 x etcd_election_timeout (2 x 1s = 2s), ` + electionMsg +
				`raise lease_ttl to at least 4s or lower etcd_election_timeout to at most 750ms`}},
		{"a shorter election timeout needs a shorter heartbeat", []string{
			"etcd_heartbeat: 100ms", "etcd_heartbeat: 200ms",
			"etcd_election_timeout: 500ms", "etcd_election_timeout: 1s"}, []string{
			`zdt.yaml:9: timings.lease_ttl: 3s leaves too little time for an etcd leader election: ` +
				`lease_ttl - self_fence_margin - renew_interval (3s - 750ms (the default, lease_ttl/4) - 1s (the default, lease_ttl/3) = 1.25s) ` +
				`must be at least 2 x etcd_election_timeout (2 x 1s = 2s), ` + electionMsg +
				`raise lease_ttl to at least 5s or lower etcd_election_timeout to at most 625ms and etcd_heartbeat to at most 125ms`}},
		{"not on top of a lease_ttl below etcd's minimum", []string{
			"lease_ttl: 3s", "lease_ttl: 1s", "etcd_election_timeout: 500ms", "etcd_election_timeout: 1s"}, []string{
			`zdt.yaml:9: timings.lease_ttl: 1s is shorter than etcd's minimum lease TTL of 2s for etcd_election_timeout 1s (1.5 x the election timeout, rounded up to whole seconds): ` +
				`etcd would silently grant 2s and the self-fence timing would be wrong; raise lease_ttl to at least 2s or lower etcd_election_timeout`}},
		{"not on top of a renew_interval too long", []string{
			"lease_ttl: 3s", "lease_ttl: 3s\n  renew_interval: 2500ms"}, []string{
			`zdt.yaml:10: timings.renew_interval: 2.5s must be smaller than lease_ttl - self_fence_margin (3s - 750ms = 2.25s), otherwise the controller self-fences between two renewals`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, edit(t, tc.edits...), tc.want...)
		})
	}
}

// TestElectionFitsTheLease: timings where an election just fits pass.
func TestElectionFitsTheLease(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edits []string
		want  Timings
	}{
		// e2e/lab/topology.go: 2s - 500ms - 500ms = 1s = 2 x 500ms.
		{"the lab's", []string{
			"lease_ttl: 3s", "lease_ttl: 2s\n  renew_interval: 500ms\n  self_fence_margin: 500ms",
			"etcd_heartbeat: 100ms", "etcd_heartbeat: 50ms"}, Timings{
			LeaseTTL: 2 * time.Second, RenewInterval: 500 * time.Millisecond, SelfFenceMargin: 500 * time.Millisecond,
			EtcdHeartbeat: 50 * time.Millisecond, EtcdElectionTimeout: 500 * time.Millisecond,
			BootstrapGrace: 10 * time.Second, HostFailAfter: 10 * time.Second}},
		// 5s - 1.25s - 1.666s = 2.083s >= 2 x 1s.
		{"5s with etcd's election timeout", []string{"lease_ttl: 3s", "lease_ttl: 5s", "etcd_election_timeout: 500ms", "etcd_election_timeout: 1s"}, Timings{
			LeaseTTL: 5 * time.Second, RenewInterval: 5 * time.Second / 3, SelfFenceMargin: 1250 * time.Millisecond,
			EtcdHeartbeat: 100 * time.Millisecond, EtcdElectionTimeout: time.Second,
			BootstrapGrace: 10 * time.Second, HostFailAfter: 10 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := mustLoad(t, edit(t, tc.edits...))
			if c.Timings != tc.want {
				t.Errorf("Timings = %+v, want %+v", c.Timings, tc.want)
			}
		})
	}
}
