package drbd

import (
	"encoding/json"
	"strconv"
	"strings"
)

// formatEvents2 prints resources as `drbdsetup events2 --now --statistics`
// would, one exists line per object, so that ParseEvents2 reads them back.
// Only the fuzz tests need it.
func formatEvents2(res []ResourceStatus) string {
	var b strings.Builder
	line := func(object, name string, kv ...string) {
		b.WriteString("exists " + object + " name:" + name)
		for i := 0; i+1 < len(kv); i += 2 {
			b.WriteString(" " + kv[i] + ":" + kv[i+1])
		}
		b.WriteString("\n")
	}
	yesNo := func(v bool) string {
		if v {
			return "yes"
		}
		return "no"
	}
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	peerIDs := func(c Connection) []string {
		kv := []string{"conn-name", c.Name}
		if c.PeerNodeID >= 0 {
			kv = append([]string{"peer-node-id", strconv.Itoa(c.PeerNodeID)}, kv...)
		}
		return kv
	}
	for _, rs := range res {
		line("resource", rs.Name, "role", rs.Role, "suspended", rs.Suspended, "write-ordering", rs.WriteOrdering)
		for _, c := range rs.Connections {
			line("connection", rs.Name, append(peerIDs(c),
				"connection", c.State, "role", c.PeerRole, "congested", yesNo(c.Congested),
				"ap-in-flight", num(c.APInFlight), "rs-in-flight", num(c.RSInFlight))...)
		}
		for _, d := range rs.Devices {
			line("device", rs.Name, "volume", strconv.Itoa(d.Volume), "minor", strconv.Itoa(d.Minor),
				"disk", d.Disk, "client", yesNo(d.Client), "quorum", yesNo(d.Quorum), "current-uuid", d.CurrentUUID,
				"size", num(d.Size), "read", num(d.Read), "written", num(d.Written),
				"al-writes", num(d.ALWrites), "bm-writes", num(d.BMWrites),
				"upper-pending", num(d.UpperPending), "lower-pending", num(d.LowerPending))
		}
		for _, c := range rs.Connections {
			for _, pd := range c.PeerDevices {
				line("peer-device", rs.Name, append(peerIDs(c),
					"volume", strconv.Itoa(pd.Volume), "replication", pd.Replication, "peer-disk", pd.PeerDisk,
					"peer-client", yesNo(pd.PeerClient), "resync-suspended", pd.ResyncSuspended,
					"done", strconv.FormatFloat(pd.Done, 'f', -1, 64),
					"received", num(pd.Received), "sent", num(pd.Sent), "out-of-sync", num(pd.OutOfSync),
					"pending", num(pd.Pending), "unacked", num(pd.Unacked))...)
			}
		}
	}
	b.WriteString("exists -\n")
	return b.String()
}

// formatStatusJSON prints resources as `drbdsetup status --json` would.
func formatStatusJSON(res []ResourceStatus) ([]byte, error) {
	wire := make([]jsonResource, 0, len(res))
	for _, rs := range res {
		w := jsonResource{Name: rs.Name, Role: rs.Role, Suspended: flexString(rs.Suspended), WriteOrdering: rs.WriteOrdering}
		for _, d := range rs.Devices {
			quorum := d.Quorum
			w.Devices = append(w.Devices, jsonDevice{
				Volume: d.Volume, Minor: d.Minor, DiskState: d.Disk, Client: d.Client, Quorum: &quorum,
				CurrentUUID: d.CurrentUUID, Size: d.Size, Read: d.Read, Written: d.Written,
				ALWrites: d.ALWrites, BMWrites: d.BMWrites, UpperPending: d.UpperPending, LowerPending: d.LowerPending,
			})
		}
		for _, c := range rs.Connections {
			wc := jsonConnection{Name: c.Name, ConnectionState: c.State, Congested: c.Congested,
				PeerRole: c.PeerRole, APInFlight: c.APInFlight, RSInFlight: c.RSInFlight}
			if c.PeerNodeID >= 0 {
				id := c.PeerNodeID
				wc.PeerNodeID = &id
			}
			for _, pd := range c.PeerDevices {
				done := pd.Done
				wc.PeerDevices = append(wc.PeerDevices, jsonPeerDevice{
					Volume: pd.Volume, ReplicationState: pd.Replication, PeerDiskState: pd.PeerDisk,
					PeerClient: pd.PeerClient, ResyncSuspended: flexString(pd.ResyncSuspended),
					Received: pd.Received, Sent: pd.Sent, OutOfSync: pd.OutOfSync, Pending: pd.Pending,
					Unacked: pd.Unacked, PercentResyncDone: &done,
				})
			}
			w.Connections = append(w.Connections, wc)
		}
		wire = append(wire, w)
	}
	return json.MarshalIndent(wire, "", "  ")
}
