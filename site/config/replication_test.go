package config

import "testing"

// withRPO gives service web (which has a replication group) the rpo on
// line 39.
func withRPO(rpo string) []string {
	return []string{"    replication_group: pg-web\n", "    replication_group: pg-web\n    rpo: " + rpo + "\n"}
}

const (
	lagBytesMsg = `is negative: give the most bytes a standby may be behind and still be promoted, 0 or more (0: no lag at all); ` +
		`leave it out for the default, 16777216 (16 MiB), or write a large limit such as 1073741824 (1 GiB)`
	lagSecondsMsg = `give the most seconds a standby may be behind and still be promoted, 0 or more (0: no lag at all); ` +
		`leave it out for the default, 30, or write a large limit such as 3600`
)

// TestNegativeRPO: a negative RPO limit would mean no limit at all; the
// config refuses it.
func TestNegativeRPO(t *testing.T) {
	for _, tc := range []struct {
		name, rpo string
		want      []string
	}{
		{"max_lag_bytes", "{max_lag_bytes: -1}", []string{
			`zdt.yaml:39: services[0].rpo.max_lag_bytes: -1 ` + lagBytesMsg}},
		{"max_lag_seconds", "{max_lag_seconds: -5}", []string{
			`zdt.yaml:39: services[0].rpo.max_lag_seconds: -5 is negative: ` + lagSecondsMsg}},
		{"a fraction below 0", "{max_lag_seconds: -0.5}", []string{
			`zdt.yaml:39: services[0].rpo.max_lag_seconds: -0.5 is negative: ` + lagSecondsMsg}},
		{"both", "{max_lag_bytes: -16777216, max_lag_seconds: -30, require_sync: false}", []string{
			`zdt.yaml:39: services[0].rpo.max_lag_bytes: -16777216 ` + lagBytesMsg,
			`zdt.yaml:39: services[0].rpo.max_lag_seconds: -30 is negative: ` + lagSecondsMsg}},
		{"infinite seconds", "{max_lag_seconds: .inf}", []string{
			`zdt.yaml:39: services[0].rpo.max_lag_seconds: +Inf is not a number of seconds: ` + lagSecondsMsg}},
		{"not a number of seconds", "{max_lag_seconds: .nan}", []string{
			`zdt.yaml:39: services[0].rpo.max_lag_seconds: NaN is not a number of seconds: ` + lagSecondsMsg}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, edit(t, withRPO(tc.rpo)...), tc.want...)
		})
	}
}

func TestRPOAccepted(t *testing.T) {
	for _, tc := range []struct {
		name, rpo string
		want      RPO
	}{
		{"no lag at all", "{max_lag_bytes: 0, max_lag_seconds: 0}", RPO{}},
		{"defaults", "{require_sync: false}", RPO{MaxLagBytes: DefaultMaxLagBytes, MaxLagSeconds: DefaultMaxLagSeconds}},
		{"large", "{max_lag_bytes: 1073741824, max_lag_seconds: 3600}", RPO{MaxLagBytes: 1 << 30, MaxLagSeconds: 3600}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := mustLoad(t, edit(t, withRPO(tc.rpo)...))
			if s, _ := c.Service("web"); s.RPO != tc.want {
				t.Errorf("RPO = %+v, want %+v", s.RPO, tc.want)
			}
		})
	}
}
