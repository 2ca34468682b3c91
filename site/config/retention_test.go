package config

import (
	"testing"
	"time"
)

// withRetention appends a retention section to baseYAML: retention on line
// 50, its fields from line 51.
func withRetention(fields string) []string {
	last := "        - {site: c, conn: host=127.0.0.13 user=zdt, replication_conn: host=127.0.0.13 user=replicator}\n"
	return []string{last, last + "retention:\n" + fields}
}

func TestRetention(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edits []string
		want  []string
	}{
		{"negative age", withRetention("  ops: {max_age: -1h}\n"), []string{
			`zdt.yaml:51: retention.ops.max_age: -1h0m0s is negative: give how long to keep finished ops (default 2160h0m0s, 90 days), or 0 to keep them whatever their age`}},
		{"negative count", withRetention("  events:\n    max_count: -5\n"), []string{
			`zdt.yaml:52: retention.events.max_count: -5 is negative: give how many events to keep (default 100000), or 0 to keep any number`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, edit(t, tc.edits...), tc.want...)
		})
	}
}

func TestRetentionAccepted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edits []string
		want  Retention
	}{
		{"defaults", withRetention("  ops: {}\n"), Retention{OpsMaxAge: DefaultOpsMaxAge, OpsMaxCount: DefaultOpsMaxCount,
			EventsMaxAge: DefaultEventsMaxAge, EventsMaxCount: DefaultEventsMaxCount}},
		{"set, and no limit by count", withRetention("  ops: {max_age: 24h, max_count: 0}\n  events: {max_age: 1h, max_count: 50}\n"),
			Retention{OpsMaxAge: 24 * time.Hour, EventsMaxAge: time.Hour, EventsMaxCount: 50}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := mustLoad(t, edit(t, tc.edits...))
			if c.Retention != tc.want {
				t.Errorf("Retention = %+v, want %+v", c.Retention, tc.want)
			}
		})
	}
}
