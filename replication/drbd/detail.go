package drbd

import (
	"fmt"
	"strings"

	"github.com/zdt-project/zdt/replication"
)

// What Status.Detail and Status.Position say, for people.

// volumeLabel is "" for a single-volume resource, else "volume N ".
func volumeLabel(rs ResourceStatus, volume int) string {
	if len(rs.Devices) == 1 {
		return ""
	}
	return fmt.Sprintf("volume %d ", volume)
}

// peerName is how Detail names the peer of a connection.
func peerName(c Connection) string {
	if c.Name != "" {
		return c.Name
	}
	return fmt.Sprintf("node %d", c.PeerNodeID)
}

// healthProblems lists what makes the member unhealthy; see ToStatus.
func healthProblems(rs ResourceStatus) []string {
	var p []string
	if len(rs.Devices) == 0 {
		p = append(p, "the resource has no volumes on this node (is it up?)")
	}
	for _, d := range rs.Devices {
		if d.Disk != diskUpToDate {
			disk := d.Disk
			if disk == "" {
				disk = "state unknown"
			}
			p = append(p, volumeLabel(rs, d.Volume)+"disk "+disk)
		}
		if !d.Quorum {
			if label := volumeLabel(rs, d.Volume); label != "" {
				p = append(p, label+"has no quorum")
			} else {
				p = append(p, "no quorum")
			}
		}
	}
	if suspended(rs) {
		p = append(p, "I/O suspended ("+rs.Suspended+")")
	}
	for _, c := range rs.Connections {
		if c.State == connStandAlone {
			p = append(p, "connection to "+peerName(c)+" is StandAlone (split brain or disconnected by hand)")
		}
		if rs.Role == rolePrimary && c.PeerRole == rolePrimary {
			p = append(p, peerName(c)+" is Primary too")
		}
	}
	return p
}

// position is the current data generation of each volume, when known.
func position(rs ResourceStatus) string {
	var parts []string
	for _, d := range rs.Devices {
		if d.CurrentUUID == "" {
			continue
		}
		if len(rs.Devices) == 1 {
			return "generation " + d.CurrentUUID
		}
		parts = append(parts, fmt.Sprintf("volume %d generation %s", d.Volume, d.CurrentUUID))
	}
	return strings.Join(parts, ", ")
}

// summary describes a healthy resource: its disks, each peer's connection,
// role and replication, and what keeps it from being reported synchronous.
func summary(rs ResourceStatus, protocol string) string {
	var parts []string
	for _, d := range rs.Devices {
		parts = append(parts, volumeLabel(rs, d.Volume)+"disk "+d.Disk)
	}
	for _, c := range rs.Connections {
		s := []string{c.State}
		if c.PeerRole != "" {
			s = append(s, "role "+c.PeerRole)
		}
		for _, pd := range c.PeerDevices {
			var r []string
			if pd.Replication != "" {
				r = append(r, pd.Replication)
			}
			if pd.PeerDisk != "" {
				r = append(r, "peer disk "+pd.PeerDisk)
			}
			if len(r) > 0 {
				s = append(s, volumeLabel(rs, pd.Volume)+strings.Join(r, ", "))
			}
		}
		if oos := outOfSyncBytes(c); oos > 0 {
			s = append(s, "out-of-sync "+replication.FormatBytes(oos))
		}
		parts = append(parts, peerName(c)+": "+strings.Join(s, ", "))
	}
	switch protocol {
	case "C":
	case "":
		parts = append(parts, "protocol unknown, so not reported as synchronous")
	default:
		parts = append(parts, "protocol "+protocol+", so not reported as synchronous")
	}
	return strings.Join(parts, "; ")
}
