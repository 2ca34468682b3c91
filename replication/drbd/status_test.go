package drbd

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/zdt-project/zdt/replication"
)

func TestToStatusCaptured(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		file     string
		protocol string
		want     replication.Status
	}{
		{
			file:     "events2/centreon-plugins-3node-secondary.txt",
			protocol: "C",
			want: replication.Status{
				Role: replication.RoleStandby, Healthy: true, Sync: true,
				Detail: "disk UpToDate; central-2004: Connected, role Primary, Established, peer disk UpToDate; " +
					"poller-2004-1: Connected, role Secondary, Established, peer disk UpToDate",
			},
		},
		{
			file:     "events2/centreon-plugins-3node-secondary.txt",
			protocol: "",
			want: replication.Status{
				Role: replication.RoleStandby, Healthy: true,
				Detail: "disk UpToDate; central-2004: Connected, role Primary, Established, peer disk UpToDate; " +
					"poller-2004-1: Connected, role Secondary, Established, peer disk UpToDate; " +
					"protocol unknown, so not reported as synchronous",
			},
		},
		{
			file:     "events2/drbdtop-syncsource-timestamps.txt",
			protocol: "C",
			want: replication.Status{
				Role: replication.RolePrimary, Healthy: true, Writable: true,
				Detail: "disk UpToDate; peer: Connected, role Secondary, SyncSource, peer disk Inconsistent, out-of-sync 196.1 GiB",
			},
		},
		{
			file:     "events2/drbd-utils-all-create-helper.txt",
			protocol: "C",
			want: replication.Status{
				Role:   replication.RoleStandby,
				Detail: "disk Diskless; connection to some-peer is StandAlone (split brain or disconnected by hand)",
			},
		},
		{
			file:     "status-json/ha-cluster-exporter-issue25-primary.json",
			protocol: "C",
			want: replication.Status{
				Role: replication.RolePrimary, Healthy: true, Sync: true, Writable: true,
				Detail: "disk UpToDate; SLE15-sp1-gm-drbd1145296-node2: Connected, role Secondary, Established, peer disk UpToDate",
			},
		},
		{
			file:     "status-json/salt-shaptools-shanghai-syncsource-nan.json",
			protocol: "A",
			want: replication.Status{
				Role: replication.RolePrimary, Healthy: true, Writable: true,
				Detail: "disk UpToDate; SLE12-sp4-node2: Connected, role Secondary, SyncSource, peer disk Inconsistent, " +
					"out-of-sync 400 MiB; protocol A, so not reported as synchronous",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file+" protocol "+tt.protocol, func(t *testing.T) {
			parse := ParseEvents2
			if len(tt.file) > 5 && tt.file[len(tt.file)-5:] == ".json" {
				parse = ParseStatusJSON
			}
			res, err := parse(readTestdata(t, tt.file))
			if err != nil || len(res) != 1 {
				t.Fatalf("parse: %d resources, %v", len(res), err)
			}
			tt.want.ObservedAt = at
			if got := ToStatus(res[0], tt.protocol, at); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ToStatus =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// Synthetic states a failover meets, built from the model directly.
func TestToStatusSynthetic(t *testing.T) {
	upToDate := []Device{{Volume: 0, Disk: "UpToDate", Quorum: true}}
	peer := func(id int, name, state, role, repl, peerDisk string, oosKiB int64) Connection {
		return Connection{PeerNodeID: id, Name: name, State: state, PeerRole: role,
			PeerDevices: []PeerDevice{{Volume: 0, Replication: repl, PeerDisk: peerDisk, OutOfSync: oosKiB}}}
	}
	tests := []struct {
		name     string
		rs       ResourceStatus
		protocol string
		want     replication.Status
	}{
		{
			name: "synthetic: standby after the primary's site went dark stays healthy and synchronous",
			rs: ResourceStatus{Name: "r0", Role: "Secondary", Suspended: "no", Devices: upToDate, Connections: []Connection{
				peer(0, "a", "Connecting", "Unknown", "Off", "DUnknown", 4096),
				peer(2, "c", "Connected", "Secondary", "Established", "UpToDate", 0),
			}},
			protocol: "C",
			want: replication.Status{
				Role: replication.RoleStandby, Healthy: true, Sync: true, LagBytes: 4 << 20,
				Detail: "disk UpToDate; a: Connecting, role Unknown, Off, peer disk DUnknown, out-of-sync 4 MiB; " +
					"c: Connected, role Secondary, Established, peer disk UpToDate",
			},
		},
		{
			name: "synthetic: asynchronous standby behind its primary is Outdated",
			rs: ResourceStatus{Name: "r0", Role: "Secondary", Devices: []Device{{Disk: "Outdated", Quorum: true}},
				Connections: []Connection{peer(0, "a", "Connected", "Primary", "Behind", "UpToDate", 12<<10)}},
			protocol: "A",
			want: replication.Status{
				Role: replication.RoleStandby, LagBytes: 12 << 20, Detail: "disk Outdated",
			},
		},
		{
			name: "synthetic: standby resyncing from the primary; lag comes from the primary, not from others",
			rs: ResourceStatus{Name: "r0", Role: "Secondary", Devices: []Device{{Disk: "Inconsistent", Quorum: true}},
				Connections: []Connection{
					peer(2, "c", "Connecting", "Unknown", "Off", "DUnknown", 999),
					peer(0, "a", "Connected", "Primary", "SyncTarget", "UpToDate", 2048),
				}},
			protocol: "C",
			want:     replication.Status{Role: replication.RoleStandby, LagBytes: 2 << 20, Detail: "disk Inconsistent"},
		},
		{
			name: "synthetic: standby without a primary takes the largest lag towards a peer of unknown role",
			rs: ResourceStatus{Name: "r0", Role: "Secondary", Devices: upToDate, Connections: []Connection{
				peer(0, "a", "Connecting", "Unknown", "Off", "DUnknown", 1),
				peer(1, "b", "Connecting", "", "Off", "DUnknown", 3),
				peer(2, "c", "Connected", "Secondary", "Established", "UpToDate", 100),
			}},
			protocol: "C",
			want: replication.Status{
				Role: replication.RoleStandby, Healthy: true, Sync: true, LagBytes: 3 << 10,
				Detail: "disk UpToDate; a: Connecting, role Unknown, Off, peer disk DUnknown, out-of-sync 1 KiB; " +
					"b: Connecting, Off, peer disk DUnknown, out-of-sync 3 KiB; " +
					"c: Connected, role Secondary, Established, peer disk UpToDate, out-of-sync 100 KiB",
			},
		},
		{
			name: "synthetic: standby Connected to a primary but not Established is not synchronous",
			rs: ResourceStatus{Name: "r0", Role: "Secondary", Devices: upToDate, Connections: []Connection{
				peer(0, "a", "Connected", "Primary", "WFBitMapT", "UpToDate", 0),
			}},
			protocol: "C",
			want: replication.Status{
				Role: replication.RoleStandby, Healthy: true,
				Detail: "disk UpToDate; a: Connected, role Primary, WFBitMapT, peer disk UpToDate",
			},
		},
		{
			name: "synthetic: split brain on a former primary",
			rs: ResourceStatus{Name: "r0", Role: "Secondary", Devices: upToDate, Connections: []Connection{
				peer(1, "b", "StandAlone", "Unknown", "Off", "DUnknown", 512),
			}},
			protocol: "C",
			want: replication.Status{
				Role: replication.RoleStandby, LagBytes: 512 << 10,
				Detail: "connection to b is StandAlone (split brain or disconnected by hand)",
			},
		},
		{
			name: "synthetic: two volumes, one without quorum, I/O suspended: not writable",
			rs: ResourceStatus{Name: "r0", Role: "Primary", Suspended: "quorum",
				Devices: []Device{{Volume: 0, Disk: "UpToDate", Quorum: true}, {Volume: 1, Disk: "UpToDate"}}},
			protocol: "C",
			want: replication.Status{
				Role:   replication.RolePrimary,
				Detail: "volume 1 has no quorum; I/O suspended (quorum)",
			},
		},
		{
			name: "synthetic: two primaries",
			rs: ResourceStatus{Name: "r0", Role: "Primary", Suspended: "no", Devices: upToDate, Connections: []Connection{
				peer(1, "b", "Connected", "Primary", "Established", "UpToDate", 0),
			}},
			protocol: "C",
			want:     replication.Status{Role: replication.RolePrimary, Writable: true, Detail: "b is Primary too"},
		},
		{
			name:     "synthetic: single volume without quorum",
			rs:       ResourceStatus{Name: "r0", Role: "Secondary", Devices: []Device{{Disk: "UpToDate"}}},
			protocol: "C",
			want:     replication.Status{Role: replication.RoleStandby, Detail: "no quorum"},
		},
		{
			name:     "synthetic: resource without volumes",
			rs:       ResourceStatus{Name: "r0", Role: "Secondary"},
			protocol: "C",
			want: replication.Status{
				Role: replication.RoleStandby, Detail: "the resource has no volumes on this node (is it up?)",
			},
		},
		{
			name:     "synthetic: unknown local role and disk state",
			rs:       ResourceStatus{Name: "r0", Role: "Unknown", Devices: []Device{{Quorum: true}}},
			protocol: "C",
			want:     replication.Status{Role: replication.RoleUnknown, Detail: "disk state unknown"},
		},
		{
			name: "synthetic: primary with two volumes and generations; the peer is Outdated on volume 1",
			rs: ResourceStatus{Name: "r0", Role: "Primary", Suspended: "no",
				Devices: []Device{
					{Volume: 0, Disk: "UpToDate", Quorum: true, CurrentUUID: "AB12"},
					{Volume: 1, Disk: "UpToDate", Quorum: true, CurrentUUID: "CD34"},
				},
				Connections: []Connection{{PeerNodeID: 1, Name: "b", State: "Connected", PeerRole: "Secondary",
					PeerDevices: []PeerDevice{
						{Volume: 0, Replication: "Established", PeerDisk: "UpToDate"},
						{Volume: 1, Replication: "Established", PeerDisk: "Outdated"},
					}}}},
			protocol: "C",
			want: replication.Status{
				Role: replication.RolePrimary, Healthy: true, Writable: true,
				Position: "volume 0 generation AB12, volume 1 generation CD34",
				Detail: "volume 0 disk UpToDate; volume 1 disk UpToDate; b: Connected, role Secondary, " +
					"volume 0 Established, peer disk UpToDate, volume 1 Established, peer disk Outdated",
			},
		},
		{
			name: "synthetic: primary with a current peer on its only volume, generation known",
			rs: ResourceStatus{Name: "r0", Role: "Primary",
				Devices:     []Device{{Disk: "UpToDate", Quorum: true, CurrentUUID: "AB12"}},
				Connections: []Connection{peer(1, "", "Connected", "Secondary", "Established", "UpToDate", 0)}},
			protocol: "C",
			want: replication.Status{
				Role: replication.RolePrimary, Healthy: true, Sync: true, Writable: true,
				Position: "generation AB12",
				Detail:   "disk UpToDate; node 1: Connected, role Secondary, Established, peer disk UpToDate",
			},
		},
		{
			name: "synthetic: primary whose peer is Connected without peer devices is not synchronous",
			rs: ResourceStatus{Name: "r0", Role: "Primary", Devices: upToDate,
				Connections: []Connection{{PeerNodeID: 1, Name: "b", State: "Connected"}}},
			protocol: "C",
			want: replication.Status{
				Role: replication.RolePrimary, Healthy: true, Writable: true, Detail: "disk UpToDate; b: Connected",
			},
		},
		{
			name: "synthetic: out-of-sync that would overflow saturates",
			rs: ResourceStatus{Name: "r0", Role: "Secondary", Devices: upToDate, Connections: []Connection{{
				PeerNodeID: 0, Name: "a", State: "Connecting", PeerRole: "Unknown",
				PeerDevices: []PeerDevice{{Volume: 0, OutOfSync: math.MaxInt64}, {Volume: 1, OutOfSync: 1}},
			}}},
			protocol: "B",
			want: replication.Status{
				Role: replication.RoleStandby, Healthy: true, LagBytes: math.MaxInt64,
				Detail: "disk UpToDate; a: Connecting, role Unknown, out-of-sync 8 EiB; protocol B, so not reported as synchronous",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ToStatus(tt.rs, tt.protocol, time.Time{}); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ToStatus =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}
