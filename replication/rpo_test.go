package replication

import (
	"maps"
	"math"
	"testing"
)

// standby is a healthy asynchronous standby with the given lag.
func standby(lagBytes int64, lagSeconds float64) Status {
	return Status{Role: RoleStandby, Healthy: true, LagBytes: lagBytes, LagSeconds: lagSeconds}
}

func TestEligible(t *testing.T) {
	const MiB = 1 << 20
	async := RPOPolicy{MaxLagBytes: 8 * MiB, MaxLagSeconds: 30}
	tests := []struct {
		name   string
		policy RPOPolicy
		status Status
		ok     bool
		why    string
	}{
		{
			name:   "unhealthy with detail",
			policy: async,
			status: Status{Role: RoleStandby, Detail: "disk Outdated"},
			why:    "member is unhealthy: disk Outdated",
		},
		{
			name:   "unhealthy without detail",
			policy: async,
			status: Status{Role: RoleStandby},
			why:    "member is unhealthy",
		},
		{
			name:   "unhealthy primary is refused too",
			policy: async,
			status: Status{Role: RolePrimary, Detail: "disk Failed"},
			why:    "member is unhealthy: disk Failed",
		},
		{
			name:   "already primary",
			policy: RPOPolicy{RequireSync: true},
			status: Status{Role: RolePrimary, Healthy: true},
			ok:     true,
			why:    "member is already primary",
		},
		{
			name:   "unknown role",
			policy: async,
			status: Status{Role: RoleUnknown, Healthy: true},
			why:    "the driver cannot tell the member's role (unknown)",
		},
		{
			name:   "empty role",
			policy: async,
			status: Status{Healthy: true},
			why:    "the driver cannot tell the member's role ()",
		},
		{
			name:   "synchronous ignores lag",
			policy: RPOPolicy{RequireSync: true},
			status: Status{Role: RoleStandby, Healthy: true, Sync: true, LagBytes: 64 * MiB, LagSeconds: 9},
			ok:     true,
			why:    "member replicates synchronously: no acknowledged write can be lost",
		},
		{
			name:   "sync required but asynchronous",
			policy: RPOPolicy{RequireSync: true, MaxLagBytes: -1, MaxLagSeconds: -1},
			status: standby(0, 0),
			why:    "replication is asynchronous but the service requires synchronous replication",
		},
		{
			name:   "lag bytes over the limit",
			policy: async,
			status: standby(12*MiB, 2),
			why:    "lag 12 MiB exceeds the limit of 8 MiB",
		},
		{
			name:   "lag bytes just over the limit shows exact bytes",
			policy: async,
			status: standby(8*MiB+1, 0),
			why:    "lag 8 MiB (8388609 B) exceeds the limit of 8 MiB (8388608 B)",
		},
		{
			name:   "lag seconds over the limit",
			policy: async,
			status: standby(1024, 42.5),
			why:    "lag 42.5s exceeds the limit of 30s",
		},
		{
			name:   "both over the limit",
			policy: async,
			status: standby(1<<30, 90),
			why:    "lag 1 GiB exceeds the limit of 8 MiB; lag 1m30s exceeds the limit of 30s",
		},
		{
			name:   "within both limits",
			policy: async,
			status: standby(2*MiB, 3),
			ok:     true,
			why:    "asynchronous replication, lag 2 MiB within the limit of 8 MiB, lag 3s within the limit of 30s",
		},
		{
			name:   "exactly at the limits",
			policy: async,
			status: standby(8*MiB, 30),
			ok:     true,
			why:    "asynchronous replication, lag 8 MiB within the limit of 8 MiB, lag 30s within the limit of 30s",
		},
		{
			name:   "zero policy allows no lag",
			policy: RPOPolicy{},
			status: standby(1, 0),
			why:    "lag 1 B exceeds the limit of 0 B",
		},
		{
			name:   "zero policy accepts a caught-up standby",
			policy: RPOPolicy{},
			status: standby(0, 0),
			ok:     true,
			why:    "asynchronous replication, lag 0 B within the limit of 0 B, lag 0s within the limit of 0s",
		},
		{
			name:   "no limits",
			policy: RPOPolicy{MaxLagBytes: -1, MaxLagSeconds: -1},
			status: standby(5<<40, 3600),
			ok:     true,
			why:    "asynchronous replication, lag 5 TiB (no limit), lag 1h0m0s (no limit)",
		},
		{
			name:   "negative lag from the driver",
			policy: async,
			status: standby(-4096, 0),
			why:    "the driver reported a negative lag of -4 KiB",
		},
		{
			name:   "NaN lag seconds from the driver",
			policy: async,
			status: standby(0, math.NaN()),
			why:    "the driver reported an invalid lag in seconds",
		},
		{
			name:   "infinite lag seconds from the driver",
			policy: RPOPolicy{MaxLagBytes: -1, MaxLagSeconds: -1},
			status: standby(0, math.Inf(1)),
			why:    "the driver reported an invalid lag in seconds",
		},
		{
			name:   "NaN limit in the policy",
			policy: RPOPolicy{MaxLagBytes: -1, MaxLagSeconds: math.NaN()},
			status: standby(0, 0),
			why:    "the service's lag limit in seconds is not a number",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, why := Eligible(tt.policy, tt.status)
			if ok != tt.ok || why != tt.why {
				t.Errorf("Eligible = %v, %q\nwant       %v, %q", ok, why, tt.ok, tt.why)
			}
		})
	}
}

func TestChoose(t *testing.T) {
	const MiB = 1 << 20
	policy := RPOPolicy{MaxLagBytes: 8 * MiB, MaxLagSeconds: -1}
	outdated := Status{Role: RoleStandby, Detail: "disk Outdated"}
	tests := []struct {
		name       string
		candidates map[string]Status
		order      []string
		site       string
		why        map[string]string
	}{
		{
			name:       "first in order wins",
			candidates: map[string]Status{"a": standby(0, 0), "b": standby(0, 0)},
			order:      []string{"a", "b"},
			site:       "a",
			why: map[string]string{
				"a": "asynchronous replication, lag 0 B within the limit of 8 MiB, lag 0s (no limit)",
				"b": "eligible (asynchronous replication, lag 0 B within the limit of 8 MiB, lag 0s (no limit)), but site a comes first in the service's order",
			},
		},
		{
			name: "refusals are explained and the next eligible site wins",
			candidates: map[string]Status{
				"a": outdated,
				"b": standby(12*MiB, 0),
				"c": {Role: RoleStandby, Healthy: true, Sync: true},
			},
			order: []string{"a", "b", "c"},
			site:  "c",
			why: map[string]string{
				"a": "member is unhealthy: disk Outdated",
				"b": "lag 12 MiB exceeds the limit of 8 MiB",
				"c": "member replicates synchronously: no acknowledged write can be lost",
			},
		},
		{
			name:       "nobody eligible",
			candidates: map[string]Status{"a": outdated, "b": standby(1<<30, 0)},
			order:      []string{"b", "a"},
			site:       "",
			why: map[string]string{
				"a": "member is unhealthy: disk Outdated",
				"b": "lag 1 GiB exceeds the limit of 8 MiB",
			},
		},
		{
			name:       "site in order without status, candidate outside the order, duplicates",
			candidates: map[string]Status{"b": standby(0, 0), "x": standby(0, 0)},
			order:      []string{"a", "b", "a", "b"},
			site:       "b",
			why: map[string]string{
				"a": "no status observed for this site",
				"b": "asynchronous replication, lag 0 B within the limit of 8 MiB, lag 0s (no limit)",
				"x": "site is not in the service's site order",
			},
		},
		{
			name:       "already primary is chosen when first",
			candidates: map[string]Status{"a": {Role: RolePrimary, Healthy: true}, "b": standby(0, 0)},
			order:      []string{"a", "b"},
			site:       "a",
			why: map[string]string{
				"a": "member is already primary",
				"b": "eligible (asynchronous replication, lag 0 B within the limit of 8 MiB, lag 0s (no limit)), but site a comes first in the service's order",
			},
		},
		{
			name:  "nothing at all",
			order: nil,
			site:  "",
			why:   map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			site, why := Choose(policy, tt.candidates, tt.order)
			if site != tt.site {
				t.Errorf("Choose site = %q, want %q", site, tt.site)
			}
			if !maps.Equal(why, tt.why) {
				t.Errorf("Choose why =\n%q\nwant\n%q", why, tt.why)
			}
		})
	}
}
