package drbd

import (
	"reflect"
	"testing"
)

func TestParseEvents2Captured(t *testing.T) {
	tests := []struct {
		file string
		want []ResourceStatus
	}{
		{
			file: "events2/centreon-plugins-3node-secondary.txt",
			want: []ResourceStatus{{
				Name: "drbd1", Role: "Secondary", Suspended: "no", WriteOrdering: "flush",
				Devices: []Device{{
					Volume: 0, Minor: 1, Disk: "UpToDate", Quorum: true,
					Size: 765868, Written: 765868,
				}},
				Connections: []Connection{
					{
						PeerNodeID: 0, Name: "central-2004", State: "Connected", PeerRole: "Primary",
						PeerDevices: []PeerDevice{{
							Volume: 0, Replication: "Established", PeerDisk: "UpToDate",
							ResyncSuspended: "no", Received: 765868,
						}},
					},
					{
						PeerNodeID: 1, Name: "poller-2004-1", State: "Connected", PeerRole: "Secondary",
						PeerDevices: []PeerDevice{{
							Volume: 0, Replication: "Established", PeerDisk: "UpToDate", ResyncSuspended: "no",
						}},
					},
				},
			}},
		},
		{
			file: "events2/drbdtop-syncsource-timestamps.txt",
			want: []ResourceStatus{{
				Name: "test0", Role: "Primary", Suspended: "no", WriteOrdering: "flush",
				Devices: []Device{{
					Volume: 0, Minor: 0, Disk: "UpToDate", Quorum: true,
					Size: 4056, Read: 1340, Written: 16, ALWrites: 1,
				}},
				Connections: []Connection{{
					PeerNodeID: -1, Name: "peer", State: "Connected", PeerRole: "Secondary",
					PeerDevices: []PeerDevice{{
						Volume: 0, Replication: "SyncSource", PeerDisk: "Inconsistent", ResyncSuspended: "no",
						Sent: 2050743348, OutOfSync: 205655500,
					}},
				}},
			}},
		},
		{
			file: "events2/drbd-utils-sync-statistics.txt",
			want: []ResourceStatus{{
				Name: "some-resource", Role: "Secondary", Suspended: "no", WriteOrdering: "none",
				Devices: []Device{{
					Volume: 0, Minor: 1000, Disk: "UpToDate", Quorum: true,
					Size: 5, Read: 10, Written: 15, ALWrites: 40, BMWrites: 50, UpperPending: 60, LowerPending: 70,
				}},
				Connections: []Connection{{
					PeerNodeID: 1, Name: "some-peer", State: "Connected", PeerRole: "Secondary",
					APInFlight: 10, RSInFlight: 20,
					PeerDevices: []PeerDevice{{
						Volume: 0, Replication: "SyncSource", PeerDisk: "Inconsistent", ResyncSuspended: "no",
						Received: 5, Sent: 10, OutOfSync: 2500, Pending: 30, Unacked: 40, Done: 37.5,
					}},
				}},
			}},
		},
		{
			// change lines carry only what changed: the connection's role
			// stays Unknown and the statistics keep their first values.
			file: "events2/drbd-utils-all-create-change-statistics.txt",
			want: []ResourceStatus{{
				Name: "some-resource", Role: "Primary", Suspended: "no", WriteOrdering: "none",
				Devices: []Device{{
					Volume: 0, Minor: 1000, Disk: "UpToDate", Quorum: true,
					Size: 5, Read: 10, Written: 15, ALWrites: 40, BMWrites: 50, UpperPending: 60, LowerPending: 70,
				}},
				Connections: []Connection{{
					PeerNodeID: 1, Name: "some-peer", State: "Connected", PeerRole: "Unknown",
					APInFlight: 10, RSInFlight: 20,
					PeerDevices: []PeerDevice{{
						Volume: 0, Replication: "Established", PeerDisk: "UpToDate", ResyncSuspended: "no",
						Received: 5, Sent: 10, OutOfSync: 25, Pending: 30, Unacked: 40,
					}},
				}},
			}},
		},
		{
			file: "events2/drbd-utils-all-create-destroy.txt",
			want: nil,
		},
		{
			file: "events2/drbd-utils-all-create-helper.txt",
			want: []ResourceStatus{{
				Name: "some-resource", Role: "Secondary", Suspended: "no",
				Devices: []Device{{Volume: 0, Minor: 1000, Disk: "Diskless", Quorum: true}},
				Connections: []Connection{{
					PeerNodeID: 1, Name: "some-peer", State: "StandAlone", PeerRole: "Unknown",
					PeerDevices: []PeerDevice{{
						Volume: 0, Replication: "Off", PeerDisk: "DUnknown", ResyncSuspended: "no",
					}},
				}},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseEvents2(readTestdata(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseEvents2 =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// TestParseEvents2CoversEveryCapture fails when a capture is added to
// testdata/events2 without a test above, and checks that every capture
// parses.
func TestParseEvents2CoversEveryCapture(t *testing.T) {
	for _, f := range testdataFiles(t, "events2") {
		if _, err := ParseEvents2(readTestdata(t, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestParseEvents2Synthetic(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []ResourceStatus
	}{
		{
			name: "synthetic: empty output",
			in:   "",
			want: nil,
		},
		{
			name: "synthetic: only the end marker",
			in:   "exists -\n",
			want: nil,
		},
		{
			name: "synthetic: change before exists creates the object, blank lines and CRLF are ignored",
			in:   "\r\nchange peer-device name:r0 peer-node-id:2 conn-name:c volume:1 out-of-sync:8\r\n\n",
			want: []ResourceStatus{{
				Name:        "r0",
				Connections: []Connection{{PeerNodeID: 2, Name: "c", PeerDevices: []PeerDevice{{Volume: 1, OutOfSync: 8}}}},
			}},
		},
		{
			name: "synthetic: unknown fields and objects are skipped, repeated keys keep the last",
			in: "exists resource name:r0 role:Secondary role:Primary shiny-new-field:42\n" +
				"exists path name:r0 peer-node-id:1 conn-name:b local:ipv4:10.0.0.1:7000\n" +
				"exists quantum-link name:r0\n",
			want: []ResourceStatus{{Name: "r0", Role: "Primary"}},
		},
		{
			name: "synthetic: a device without quorum field has quorum; volume order is kept",
			in: "exists device name:r0 volume:1 disk:UpToDate\n" +
				"exists device name:r0 volume:0 disk:Outdated quorum:no client:yes current-uuid:ABCD\n",
			want: []ResourceStatus{{Name: "r0", Devices: []Device{
				{Volume: 1, Disk: "UpToDate", Quorum: true},
				{Volume: 0, Disk: "Outdated", Quorum: false, Client: true, CurrentUUID: "ABCD"},
			}}},
		},
		{
			name: "synthetic: connections with and without node ids are different connections",
			in: "exists connection name:r0 conn-name:b connection:Connected\n" +
				"exists connection name:r0 peer-node-id:1 conn-name:b connection:Connecting\n" +
				"change connection name:r0 conn-name:b role:Primary\n" +
				"change connection name:r0 peer-node-id:1 conn-name:b2 congested:yes\n",
			want: []ResourceStatus{{Name: "r0", Connections: []Connection{
				{PeerNodeID: -1, Name: "b", State: "Connected", PeerRole: "Primary"},
				{PeerNodeID: 1, Name: "b2", State: "Connecting", Congested: true},
			}}},
		},
		{
			name: "synthetic: destroy of objects that do not exist is a no-op",
			in: "destroy resource name:gone\n" +
				"destroy device name:gone volume:0\n" +
				"destroy connection name:gone peer-node-id:1\n" +
				"destroy peer-device name:gone peer-node-id:1 volume:0\n" +
				"exists resource name:r0 role:Primary\n" +
				"destroy peer-device name:r0 peer-node-id:1 volume:0\n",
			want: []ResourceStatus{{Name: "r0", Role: "Primary"}},
		},
		{
			name: "synthetic: destroy removes only the named object",
			in: "exists resource name:a\nexists resource name:b\nexists resource name:c\n" +
				"exists connection name:b peer-node-id:1\nexists connection name:b peer-node-id:2\n" +
				"exists device name:b volume:0\nexists device name:b volume:1\n" +
				"destroy resource name:a\ndestroy connection name:b peer-node-id:1\ndestroy device name:b volume:0\n",
			want: []ResourceStatus{
				{Name: "b", Connections: []Connection{{PeerNodeID: 2}}, Devices: []Device{{Volume: 1, Quorum: true}}},
				{Name: "c"},
			},
		},
		{
			name: "synthetic: booleans as true and false, time stamps with and without fractions",
			in: "2024-01-02T03:04:05Z exists device name:r0 volume:0 client:true quorum:false\n" +
				"2024-01-02T03:04:05.123+01:00 change device name:r0 volume:0 client:false\n",
			want: []ResourceStatus{{Name: "r0", Devices: []Device{{Volume: 0}}}},
		},
		{
			name: "synthetic: several resources keep their order",
			in:   "exists resource name:z\nexists resource name:a\nchange resource name:z role:Primary\n",
			want: []ResourceStatus{{Name: "z", Role: "Primary"}, {Name: "a"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEvents2([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseEvents2 =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseEvents2Errors(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"exists -\nbogus resource name:r0", `events2 line 2: unknown event "bogus"`},
		{"exists", "events2 line 1: exists event names no object"},
		{"2024-01-02T03:04:05Z", "events2 line 1: a time stamp without an event"},
		{"exists resource name:r0 role", `events2 line 1: exists resource: field "role" is not key:value`},
		{"exists resource name:r0 :x", `events2 line 1: exists resource: field ":x" is not key:value`},
		{"exists resource role:Primary", "events2 line 1: exists resource: no resource name"},
		{"exists resource name:", "events2 line 1: exists resource: no resource name"},
		{"exists device name:r0 disk:UpToDate", "events2 line 1: exists device: no volume"},
		{"exists device name:r0 volume:x", `events2 line 1: exists device: volume "x" is not a volume, minor or node number`},
		{"exists device name:r0 volume:-1", `events2 line 1: exists device: volume "-1" is not a volume, minor or node number`},
		{"exists device name:r0 volume:99999999999", `events2 line 1: exists device: volume "99999999999" is not a volume, minor or node number`},
		{"exists device name:r0 volume:0 size:-5", `events2 line 1: exists device: size "-5" is not a non-negative number`},
		{"exists device name:r0 volume:0 read:1.5", `events2 line 1: exists device: read "1.5" is not a non-negative number`},
		{"exists device name:r0 volume:0 quorum:maybe", `events2 line 1: exists device: quorum "maybe" is not yes or no`},
		{"exists connection name:r0 connection:Connected", "events2 line 1: exists connection: neither peer-node-id nor conn-name"},
		{"exists connection name:r0 peer-node-id:one", `events2 line 1: exists connection: peer-node-id "one" is not a volume, minor or node number`},
		{"exists connection name:r0 conn-name:b ap-in-flight:x", `events2 line 1: exists connection: ap-in-flight "x" is not a non-negative number`},
		{"exists peer-device name:r0 peer-node-id:1", "events2 line 1: exists peer-device: no volume"},
		{"exists peer-device name:r0 volume:0", "events2 line 1: exists peer-device: neither peer-node-id nor conn-name"},
		{"exists peer-device name:r0 volume:0 conn-name:b done:NaN", `events2 line 1: exists peer-device: done "NaN" is not a percentage`},
		{"exists peer-device name:r0 volume:0 conn-name:b done:100.5", `events2 line 1: exists peer-device: done "100.5" is not a percentage`},
		{"exists peer-device name:r0 volume:0 conn-name:b out-of-sync:99999999999999999999", `events2 line 1: exists peer-device: out-of-sync "99999999999999999999" is not a non-negative number`},
	}
	for _, tt := range tests {
		_, err := ParseEvents2([]byte(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseEvents2(%q) error = %v\nwant %s", tt.in, err, tt.want)
		}
	}
}
