package drbd

import (
	"math"
	"strings"
	"time"

	"github.com/zdt-project/zdt/replication"
)

// ToStatus maps the state of a resource onto replication.Status, as
// observed at the given time. protocol is the resource's replication
// protocol as configured ("A", "B" or "C"), or "" when unknown: neither
// output of drbdsetup this package parses carries it.
//
//   - Role comes from the local role: Primary is the primary, Secondary a
//     standby, anything else unknown.
//   - Healthy: the resource has volumes, every local disk is UpToDate and has
//     quorum, I/O is not suspended, no connection is StandAlone and, on a
//     primary, no peer is Primary too. StandAlone is the one connection state
//     DRBD does not leave by itself (after a split brain or a disconnect by
//     hand); the others (Connecting, NetworkFailure, Timeout, ...) are
//     passages DRBD retries out of, and a standby whose primary's site went
//     dark shows Connecting by design: counting them would make every
//     survivor unhealthy exactly when a failover needs one.
//   - LagBytes is 0 on the primary; on a standby it is the out-of-sync data
//     (KiB × 1024, summed over the volumes) towards the peer that is Primary,
//     or, when no peer is known to be Primary, the largest towards a peer of
//     unknown role (the lost primary is among those: DRBD marks the writes not
//     yet peer-acknowledged as out of sync when the connection to the primary
//     breaks, as LINBIT's drbd9-tests peer-ack test checks). DRBD
//     can leave a few out-of-sync blocks on an Established peer (LINBIT/drbd
//     issue 128), so read it as an upper bound.
//   - LagSeconds is 0: DRBD does not measure lag in time.
//   - Sync needs a healthy member (so every local disk is UpToDate with
//     quorum) and protocol C; a primary also needs a Connected peer that is
//     Established and UpToDate on every volume, a standby needs each
//     connection to a peer that is Primary to be Connected and Established.
//     A standby whose primary is unreachable stays Sync: with protocol C a
//     write is acknowledged only once every connected peer has it, and
//     DRBD's own disk state (UpToDate, with quorum) says this member was
//     current when the primary went away.
//   - Writable: Primary, I/O not suspended, quorum on every volume.
//   - Position is the current data generation (UUID) when drbdsetup printed
//     it, per volume when there are several.
//   - Detail names the problems when unhealthy (disk Outdated; connection to
//     b is StandAlone), else the disk and replication states.
func ToStatus(rs ResourceStatus, protocol string, at time.Time) replication.Status {
	st := replication.Status{
		Role:       role(rs.Role),
		Position:   position(rs),
		ObservedAt: at,
	}
	problems := healthProblems(rs)
	st.Healthy = len(problems) == 0
	if st.Role != replication.RolePrimary {
		st.LagBytes = lagBytes(rs)
	}
	st.Sync = st.Healthy && protocol == "C" && replicating(rs, st.Role)
	st.Writable = st.Role == replication.RolePrimary && !suspended(rs) && len(rs.Devices) > 0 && quorate(rs)
	if st.Healthy {
		st.Detail = summary(rs, protocol)
	} else {
		st.Detail = strings.Join(problems, "; ")
	}
	return st
}

func role(r string) replication.Role {
	switch r {
	case rolePrimary:
		return replication.RolePrimary
	case roleSecondary:
		return replication.RoleStandby
	}
	return replication.RoleUnknown
}

func suspended(rs ResourceStatus) bool { return rs.Suspended != "" && rs.Suspended != "no" }

func quorate(rs ResourceStatus) bool {
	for _, d := range rs.Devices {
		if !d.Quorum {
			return false
		}
	}
	return true
}

// outOfSyncBytes sums a connection's out-of-sync data over its volumes, in
// bytes, saturating instead of overflowing.
func outOfSyncBytes(c Connection) int64 {
	var kib int64
	for _, pd := range c.PeerDevices {
		if kib > math.MaxInt64-pd.OutOfSync {
			return math.MaxInt64
		}
		kib += pd.OutOfSync
	}
	if kib > math.MaxInt64/1024 {
		return math.MaxInt64
	}
	return kib * 1024
}

// lagBytes is a standby's out-of-sync data towards its primary; see ToStatus.
func lagBytes(rs ResourceStatus) int64 {
	towards := func(peerRole ...string) (lag int64, found bool) {
		for _, c := range rs.Connections {
			for _, r := range peerRole {
				if c.PeerRole == r {
					lag, found = max(lag, outOfSyncBytes(c)), true
				}
			}
		}
		return lag, found
	}
	if lag, found := towards(rolePrimary); found {
		return lag
	}
	lag, _ := towards(roleUnknown, "")
	return lag
}

// replicating: the primary has a peer that is current on every volume; a
// standby is Established with each peer that is Primary.
func replicating(rs ResourceStatus, r replication.Role) bool {
	established := func(c Connection) bool {
		if c.State != connConnected || len(c.PeerDevices) == 0 {
			return false
		}
		for _, pd := range c.PeerDevices {
			if pd.Replication != replEstablished {
				return false
			}
		}
		return true
	}
	switch r {
	case replication.RolePrimary:
		for _, c := range rs.Connections {
			if established(c) && peerCurrent(rs, c) {
				return true
			}
		}
		return false
	case replication.RoleStandby:
		for _, c := range rs.Connections {
			if c.PeerRole == rolePrimary && !established(c) {
				return false
			}
		}
		return true
	}
	return false
}

// peerCurrent: the peer is UpToDate on every local volume.
func peerCurrent(rs ResourceStatus, c Connection) bool {
	for _, d := range rs.Devices {
		pd := c.peerDevice(d.Volume)
		if pd == nil || pd.PeerDisk != diskUpToDate {
			return false
		}
	}
	return true
}
