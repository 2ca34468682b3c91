package drbd

// ResourceStatus is the state of one DRBD resource as this node sees it:
// the local role, one Device per volume and one Connection per peer.
//
// State names are kept as DRBD prints them ("UpToDate", "StandAlone",
// "SyncTarget"), so a state that a newer DRBD adds is kept, not lost.
type ResourceStatus struct {
	Name string
	Role string // local role: Primary, Secondary or Unknown
	// Suspended is "no" while I/O runs; otherwise why it is suspended as
	// events2 prints it (user, no-data, fencing, quorum) or "yes".
	Suspended     string
	WriteOrdering string // flush, drain, none
	Devices       []Device
	Connections   []Connection
}

// Device is one local volume of the resource.
type Device struct {
	Volume int
	Minor  int
	Disk   string // local disk state: UpToDate, Outdated, Inconsistent, Diskless, ...
	Client bool   // intentionally diskless
	// Quorum: the node has quorum for this volume. Without a quorum policy
	// DRBD always reports yes.
	Quorum bool
	// CurrentUUID is the volume's current data generation when the output
	// has a current-uuid field; `events2 --now --statistics` has none.
	CurrentUUID string
	// Statistics: Size, Read and Written in KiB; the rest are counts.
	Size         int64
	Read         int64
	Written      int64
	ALWrites     int64
	BMWrites     int64
	UpperPending int64 // application requests not yet completed by DRBD
	LowerPending int64 // requests DRBD has sent to the backing device
}

// Connection is the connection to one peer node.
type Connection struct {
	PeerNodeID int    // -1 when the output does not name it (early DRBD 9)
	Name       string // the peer's connection name (its host name)
	State      string // Connected, Connecting, StandAlone, ...
	PeerRole   string // Primary, Secondary or Unknown
	Congested  bool
	// APInFlight and RSInFlight are application and resync data sent to the
	// peer and not yet acknowledged as written, in 512-byte sectors.
	APInFlight  int64
	RSInFlight  int64
	PeerDevices []PeerDevice
}

// PeerDevice is one volume as replicated to one peer.
type PeerDevice struct {
	Volume          int
	Replication     string // Established, SyncSource, SyncTarget, Off, Ahead, Behind, ...
	PeerDisk        string // the peer's disk state as this node knows it
	PeerClient      bool
	ResyncSuspended string // "no" or why resync is suspended
	// Received, Sent and OutOfSync are in KiB; OutOfSync is the data known
	// to differ between this node and the peer.
	Received  int64
	Sent      int64
	OutOfSync int64
	Pending   int64   // requests sent to the peer and not yet answered
	Unacked   int64   // requests received from the peer and not yet answered
	Done      float64 // resync progress in percent, while resyncing
}

// DRBD state names the driver acts on.
const (
	rolePrimary   = "Primary"
	roleSecondary = "Secondary"
	roleUnknown   = "Unknown"

	diskUpToDate = "UpToDate"

	connConnected  = "Connected"
	connStandAlone = "StandAlone"

	replEstablished = "Established"
)

// device returns the device of the given volume, or nil.
func (rs *ResourceStatus) device(volume int) *Device {
	for i := range rs.Devices {
		if rs.Devices[i].Volume == volume {
			return &rs.Devices[i]
		}
	}
	return nil
}

// connection returns the connection to the peer with the given node id, or,
// when id < 0 (output that names no node ids), the connection without an id
// of the given name; nil when there is none. The two kinds never match each
// other, so every connection has one identity.
func (rs *ResourceStatus) connection(id int, name string) *Connection {
	for i := range rs.Connections {
		c := &rs.Connections[i]
		if id >= 0 && c.PeerNodeID == id || id < 0 && c.PeerNodeID < 0 && c.Name == name {
			return c
		}
	}
	return nil
}

// peerDevice returns the connection's peer device of the given volume, or nil.
func (c *Connection) peerDevice(volume int) *PeerDevice {
	for i := range c.PeerDevices {
		if c.PeerDevices[i].Volume == volume {
			return &c.PeerDevices[i]
		}
	}
	return nil
}
