package drbd

import (
	"reflect"
	"testing"
)

func TestParseStatusJSONCaptured(t *testing.T) {
	primaryWithPeer := func(name string, minor int, dev Device, peerID int, peer string, pd PeerDevice) []ResourceStatus {
		dev.Volume, dev.Minor, dev.Disk, dev.Quorum = 0, minor, "UpToDate", true
		return []ResourceStatus{{
			Name: name, Role: "Primary", Suspended: "no", WriteOrdering: "flush",
			Devices: []Device{dev},
			Connections: []Connection{{
				PeerNodeID: peerID, Name: peer, State: "Connected", PeerRole: "Secondary",
				PeerDevices: []PeerDevice{pd},
			}},
		}}
	}
	tests := []struct {
		file string
		want []ResourceStatus
	}{
		{
			file: "status-json/ha-cluster-exporter-issue25-primary.json",
			want: primaryWithPeer("1-single-0", 2,
				Device{Size: 409600, Read: 8457, Written: 536513, ALWrites: 4},
				2, "SLE15-sp1-gm-drbd1145296-node2",
				PeerDevice{Replication: "Established", PeerDisk: "UpToDate", ResyncSuspended: "no", Received: 8202, Sent: 534390}),
		},
		{
			file: "status-json/salt-shaptools-beijing-primary.json",
			want: primaryWithPeer("beijing", 5, Device{Size: 307152}, 2, "salt-node3",
				PeerDevice{Replication: "Established", PeerDisk: "UpToDate", ResyncSuspended: "no"}),
		},
		{
			file: "status-json/salt-shaptools-shanghai-secondary.json",
			want: []ResourceStatus{{
				Name: "shanghai", Role: "Secondary", Suspended: "no", WriteOrdering: "flush",
				Devices: []Device{{Volume: 0, Minor: 2, Disk: "UpToDate", Quorum: true, Size: 699332}},
				Connections: []Connection{{
					PeerNodeID: 2, Name: "dummytest-drbd02", State: "Connected", PeerRole: "Secondary",
					PeerDevices: []PeerDevice{{Replication: "Established", PeerDisk: "UpToDate", ResyncSuspended: "no"}},
				}},
			}},
		},
		{
			file: "status-json/salt-shaptools-shanghai-syncsource-nan.json",
			want: primaryWithPeer("shanghai", 2, Device{Size: 409600, LowerPending: 3}, 2, "SLE12-sp4-node2",
				PeerDevice{Replication: "SyncSource", PeerDisk: "Inconsistent", ResyncSuspended: "no", OutOfSync: 409600}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseStatusJSON(readTestdata(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseStatusJSON =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
	for _, f := range testdataFiles(t, "status-json") {
		if _, err := ParseStatusJSON(readTestdata(t, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestParseStatusJSONSynthetic(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []ResourceStatus
	}{
		{"synthetic: no resources", "[]", []ResourceStatus{}},
		{"synthetic: null", "null", []ResourceStatus{}},
		{
			name: "synthetic: suspended as a string, no quorum field, no peer-node-id, resync progress, -nan and inf",
			in: `[{"name":"r0","role":"Secondary","suspended":"user","devices":[{"volume":1,"disk-state":"Outdated"}],
				"connections":[{"name":"b","connection-state":"Connecting","peer-role":"Unknown","x":-inf,
				"peer_devices":[{"volume":1,"replication-state":"SyncTarget","resync-suspended":true,
				"percent-resync-done":42.5,"estimated-seconds-to-finish":-nan,"rate":Infinity}]}]}]`,
			want: []ResourceStatus{{
				Name: "r0", Role: "Secondary", Suspended: "user",
				Devices: []Device{{Volume: 1, Disk: "Outdated", Quorum: true}},
				Connections: []Connection{{
					PeerNodeID: -1, Name: "b", State: "Connecting", PeerRole: "Unknown",
					PeerDevices: []PeerDevice{{Volume: 1, Replication: "SyncTarget", ResyncSuspended: "yes", Done: 42.5}},
				}},
			}},
		},
		{
			name: "synthetic: nan inside strings is kept",
			in:   `[{"name":"nan","role":"inf \"nan\" -nan","devices":[{"volume":0,"quorum":false}]}]`,
			want: []ResourceStatus{{Name: "nan", Role: `inf "nan" -nan`, Devices: []Device{{Quorum: false}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatusJSON([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseStatusJSON =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseStatusJSONErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{``, "drbdsetup status --json: unexpected end of JSON input"},
		{`{"name":"r0"}`, "drbdsetup status --json: json: cannot unmarshal object into Go value of type []drbd.jsonResource"},
		{`[{"name":"r0","suspended":3}]`, "drbdsetup status --json: want a string or a boolean, got 3"},
		{`[{"name":"r0","devices":[{"volume":-1}]}]`, `drbdsetup status --json: resource 0 ("r0"): volume -1: negative number -1`},
		{`[{"name":"r0","devices":[{"volume":0,"size":-2}]}]`, `drbdsetup status --json: resource 0 ("r0"): volume 0: negative number -2`},
		{`[{"name":"r0","connections":[{"name":"b","peer-node-id":-3}]}]`, `drbdsetup status --json: resource 0 ("r0"): connection "b": negative number -3`},
		{`[{"name":"r0","connections":[{"name":"b","rs-in-flight":-1}]}]`, `drbdsetup status --json: resource 0 ("r0"): connection "b": negative number -1`},
		{`[{"name":"r0","connections":[{"name":"b","peer_devices":[{"volume":0,"out-of-sync":-8}]}]}]`, `drbdsetup status --json: resource 0 ("r0"): connection "b" volume 0: negative number -8`},
		{`[{"name":"r0","connections":[{"name":"b","peer_devices":[{"volume":0,"percent-resync-done":101}]}]}]`, `drbdsetup status --json: resource 0 ("r0"): connection "b" volume 0: resync done 101% is not a percentage`},
		{`[{"name":"r0","devices":[{"volume":0,"size":1e30}]}]`, "drbdsetup status --json: json: cannot unmarshal number 1e30 into Go struct field jsonDevice.devices.size of type int64"},
	}
	for _, tt := range tests {
		_, err := ParseStatusJSON([]byte(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseStatusJSON(%s) error = %v\nwant %s", tt.in, err, tt.want)
		}
	}
}

func TestNonFiniteToNull(t *testing.T) {
	tests := []struct{ in, want string }{
		{`nan`, `null`},
		{`[nan,-nan,+nan,NaN,inf,-inf,INF,Infinity,-infinity]`, `[null,null,null,null,null,null,null,null,null]`},
		{`{"a": nan, "b":1e-5, "c":-2.5E+3, "d":true, "e":null}`, `{"a": null, "b":1e-5, "c":-2.5E+3, "d":true, "e":null}`},
		{`{"nan":"nan","s":"a\"nan\\"}`, `{"nan":"nan","s":"a\"nan\\"}`},
		{`["\\", nan]`, `["\\", null]`},
		{`nano infinite`, `nano infinite`},
		{`"unterminated nan`, `"unterminated nan`},
	}
	for _, tt := range tests {
		if got := string(nonFiniteToNull([]byte(tt.in))); got != tt.want {
			t.Errorf("nonFiniteToNull(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
