package drbd

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/zdt-project/zdt/replication"
)

// checkStatusInvariants checks what ToStatus promises for any parsed state.
func checkStatusInvariants(t *testing.T, res []ResourceStatus) {
	t.Helper()
	for _, rs := range res {
		for _, proto := range []string{"", "A", "C"} {
			st := ToStatus(rs, proto, time.Time{})
			switch {
			case st.LagBytes < 0:
				t.Errorf("%s: negative lag %d", rs.Name, st.LagBytes)
			case st.Role == replication.RolePrimary && st.LagBytes != 0:
				t.Errorf("%s: primary with lag %d", rs.Name, st.LagBytes)
			case st.Writable && st.Role != replication.RolePrimary:
				t.Errorf("%s: writable %s", rs.Name, st.Role)
			case st.Sync && (!st.Healthy || proto != "C"):
				t.Errorf("%s: sync but healthy=%v protocol %q", rs.Name, st.Healthy, proto)
			case st.LagSeconds != 0 || math.IsNaN(st.LagSeconds):
				t.Errorf("%s: lag seconds %v", rs.Name, st.LagSeconds)
			case st.Detail == "" && len(rs.Devices) > 0:
				t.Errorf("%s: no detail", rs.Name)
			}
			if st.Healthy != (len(healthProblems(rs)) == 0) {
				t.Errorf("%s: healthy=%v with problems %q", rs.Name, st.Healthy, healthProblems(rs))
			}
		}
	}
}

// FuzzParseEvents2 checks that ParseEvents2 never panics and that what it
// accepts survives printing and parsing again unchanged.
func FuzzParseEvents2(f *testing.F) {
	for _, name := range testdataFiles(f, "events2") {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte("exists peer-device name:r0 volume:0 conn-name:b out-of-sync:9223372036854775807 done:100\n"))
	f.Add([]byte("exists connection name:r0 conn-name:b\nexists connection name:r0 peer-node-id:3 conn-name:b\n"))
	f.Add([]byte("2017-02-15T14:43:16.688437+00:00 destroy device name:r0 volume:0\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		res, err := ParseEvents2(in)
		if err != nil {
			return
		}
		checkStatusInvariants(t, res)
		text := formatEvents2(res)
		again, err := ParseEvents2([]byte(text))
		if err != nil {
			t.Fatalf("printed state does not parse: %v\n%s", err, text)
		}
		if !reflect.DeepEqual(res, again) {
			t.Fatalf("round trip changed the state:\n%+v\n%+v\nprinted:\n%s", res, again, text)
		}
	})
}

// FuzzParseStatusJSON checks that ParseStatusJSON never panics and that
// what it accepts survives printing and parsing again unchanged.
func FuzzParseStatusJSON(f *testing.F) {
	for _, name := range testdataFiles(f, "status-json") {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte(`[{"name":"r0","suspended":"user","connections":[{"name":"b","peer_devices":[{"volume":0,"percent-resync-done":-nan}]}]}]`))
	f.Add([]byte(`[{"name":"\u00e9\"nan","devices":[{"volume":0,"quorum":false}]}]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		res, err := ParseStatusJSON(in)
		if err != nil {
			return
		}
		checkStatusInvariants(t, res)
		out, err := formatStatusJSON(res)
		if err != nil {
			t.Fatalf("printing: %v", err)
		}
		again, err := ParseStatusJSON(out)
		if err != nil {
			t.Fatalf("printed state does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(res, again) {
			t.Fatalf("round trip changed the state:\n%+v\n%+v\nprinted:\n%s", res, again, out)
		}
	})
}
