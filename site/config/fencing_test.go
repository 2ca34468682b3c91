package config

import (
	"testing"
	"time"
)

// withFencing appends a fencing section to baseYAML: fencing on line 50,
// its fields from line 51.
func withFencing(fields string) []string {
	last := "        - {site: c, conn: host=127.0.0.13 user=zdt, replication_conn: host=127.0.0.13 user=replicator}\n"
	return []string{last, last + "fencing:\n" + fields}
}

// fenceMsg is the middle of every problem with a fencing.timeout that is
// too long for lease_ttl.
const fenceMsg = `: the outside fence runs before every promotion of a failover, inside a coordinator pass that lease_ttl bounds: ` +
	`a fence that waits longer on a site that does not answer leaves too little of the pass to record its outcome ` +
	`(the pass is cut off and the failover retries it without end) and adds more than half of lease_ttl to the RTO; `

func TestFenceTimeout(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edits []string
		want  []string
	}{
		{"longer than half of lease_ttl", withFencing("  timeout: 2s\n"), []string{
			`zdt.yaml:51: fencing.timeout: 2s is longer than half of lease_ttl (3s / 2 = 1.5s)` + fenceMsg +
				`lower fencing.timeout to at most 1.5s or raise lease_ttl to at least 4s`}},
		{"as long as lease_ttl", withFencing("  timeout: 3s\n"), []string{
			`zdt.yaml:51: fencing.timeout: 3s is longer than half of lease_ttl (3s / 2 = 1.5s)` + fenceMsg +
				`lower fencing.timeout to at most 1.5s or raise lease_ttl to at least 6s`}},
		{"longer than half of the default lease_ttl", append(withFencing("  timeout: 3500ms\n"), "  lease_ttl: 3s\n", ""), []string{
			`zdt.yaml:50: fencing.timeout: 3.5s is longer than half of lease_ttl (6s (the default) / 2 = 3s)` + fenceMsg +
				`lower fencing.timeout to at most 3s or raise lease_ttl to at least 7s`}},
		{"zero", withFencing("  timeout: 0s\n"), []string{
			`zdt.yaml:51: fencing.timeout: must be greater than 0, not 0s`}},
		{"negative", withFencing("  timeout: -1s\n"), []string{
			`zdt.yaml:51: fencing.timeout: must be greater than 0, not -1s`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, edit(t, tc.edits...), tc.want...)
		})
	}
}

func TestFenceTimeoutAccepted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edits []string
		want  Fencing
	}{
		{"half of lease_ttl", withFencing("  timeout: 1500ms\n  require_confirmation: true\n"), Fencing{Timeout: 1500 * time.Millisecond, RequireConfirmation: true}},
		{"by default a third of lease_ttl", withFencing("  require_confirmation: false\n"), Fencing{Timeout: time.Second}},
		{"by default a third of the default lease_ttl", append(withFencing("  require_confirmation: true\n"), "  lease_ttl: 3s\n", ""),
			Fencing{Timeout: 2 * time.Second, RequireConfirmation: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := mustLoad(t, edit(t, tc.edits...))
			if c.Fencing != tc.want {
				t.Errorf("Fencing = %+v, want %+v", c.Fencing, tc.want)
			}
		})
	}
}
