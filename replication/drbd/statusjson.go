package drbd

import (
	"encoding/json"
	"fmt"
)

// ParseStatusJSON parses the output of `drbdsetup status --json [RES]`: a
// JSON array with one object per resource.
//
// drbdsetup prints some floating-point fields with C's printf, so a resync
// that has not started yet prints "estimated-seconds-to-finish": nan, which
// is not JSON; bare nan and inf values are read as null. Unknown fields are
// ignored. Negative counts and volume numbers are errors.
func ParseStatusJSON(out []byte) ([]ResourceStatus, error) {
	var wire []jsonResource
	if err := json.Unmarshal(nonFiniteToNull(out), &wire); err != nil {
		return nil, fmt.Errorf("drbdsetup status --json: %w", err)
	}
	res := make([]ResourceStatus, 0, len(wire))
	for i, w := range wire {
		rs, err := w.status()
		if err != nil {
			return nil, fmt.Errorf("drbdsetup status --json: resource %d (%q): %w", i, w.Name, err)
		}
		res = append(res, rs)
	}
	return res, nil
}

// The wire format of `drbdsetup status --json`, kept apart from the model.

type jsonResource struct {
	Name          string           `json:"name"`
	Role          string           `json:"role"`
	Suspended     flexString       `json:"suspended"`
	WriteOrdering string           `json:"write-ordering"`
	Devices       []jsonDevice     `json:"devices"`
	Connections   []jsonConnection `json:"connections"`
}

type jsonDevice struct {
	Volume       int    `json:"volume"`
	Minor        int    `json:"minor"`
	DiskState    string `json:"disk-state"`
	Client       bool   `json:"client"`
	Quorum       *bool  `json:"quorum"`
	CurrentUUID  string `json:"current-uuid"`
	Size         int64  `json:"size"`
	Read         int64  `json:"read"`
	Written      int64  `json:"written"`
	ALWrites     int64  `json:"al-writes"`
	BMWrites     int64  `json:"bm-writes"`
	UpperPending int64  `json:"upper-pending"`
	LowerPending int64  `json:"lower-pending"`
}

type jsonConnection struct {
	PeerNodeID      *int             `json:"peer-node-id"`
	Name            string           `json:"name"`
	ConnectionState string           `json:"connection-state"`
	Congested       bool             `json:"congested"`
	PeerRole        string           `json:"peer-role"`
	APInFlight      int64            `json:"ap-in-flight"`
	RSInFlight      int64            `json:"rs-in-flight"`
	PeerDevices     []jsonPeerDevice `json:"peer_devices"`
}

type jsonPeerDevice struct {
	Volume            int        `json:"volume"`
	ReplicationState  string     `json:"replication-state"`
	PeerDiskState     string     `json:"peer-disk-state"`
	PeerClient        bool       `json:"peer-client"`
	ResyncSuspended   flexString `json:"resync-suspended"`
	Received          int64      `json:"received"`
	Sent              int64      `json:"sent"`
	OutOfSync         int64      `json:"out-of-sync"`
	Pending           int64      `json:"pending"`
	Unacked           int64      `json:"unacked"`
	PercentResyncDone *float64   `json:"percent-resync-done"`
}

// flexString reads a JSON string, or a boolean as "yes"/"no": drbdsetup
// prints "suspended" as a boolean and "resync-suspended" as a string.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case nil:
	case bool:
		*f = "no"
		if v {
			*f = "yes"
		}
	case string:
		*f = flexString(v)
	default:
		return fmt.Errorf("want a string or a boolean, got %s", b)
	}
	return nil
}

// status converts the wire resource to the model, checking numbers.
func (w jsonResource) status() (ResourceStatus, error) {
	rs := ResourceStatus{
		Name:          w.Name,
		Role:          w.Role,
		Suspended:     string(w.Suspended),
		WriteOrdering: w.WriteOrdering,
	}
	for _, d := range w.Devices {
		dev := Device{
			Volume: d.Volume, Minor: d.Minor, Disk: d.DiskState, Client: d.Client, Quorum: true,
			CurrentUUID: d.CurrentUUID, Size: d.Size, Read: d.Read, Written: d.Written,
			ALWrites: d.ALWrites, BMWrites: d.BMWrites, UpperPending: d.UpperPending, LowerPending: d.LowerPending,
		}
		if d.Quorum != nil {
			dev.Quorum = *d.Quorum
		}
		if err := nonNegative(fmt.Sprintf("volume %d", d.Volume), int64(d.Volume), int64(d.Minor), d.Size, d.Read,
			d.Written, d.ALWrites, d.BMWrites, d.UpperPending, d.LowerPending); err != nil {
			return ResourceStatus{}, err
		}
		rs.Devices = append(rs.Devices, dev)
	}
	for _, c := range w.Connections {
		conn, err := c.connection()
		if err != nil {
			return ResourceStatus{}, err
		}
		rs.Connections = append(rs.Connections, conn)
	}
	return rs, nil
}

func (c jsonConnection) connection() (Connection, error) {
	conn := Connection{
		PeerNodeID: -1, Name: c.Name, State: c.ConnectionState, PeerRole: c.PeerRole,
		Congested: c.Congested, APInFlight: c.APInFlight, RSInFlight: c.RSInFlight,
	}
	what := fmt.Sprintf("connection %q", c.Name)
	if c.PeerNodeID != nil {
		conn.PeerNodeID = *c.PeerNodeID
		if err := nonNegative(what, int64(conn.PeerNodeID)); err != nil {
			return Connection{}, err
		}
	}
	if err := nonNegative(what, c.APInFlight, c.RSInFlight); err != nil {
		return Connection{}, err
	}
	for _, p := range c.PeerDevices {
		pd := PeerDevice{
			Volume: p.Volume, Replication: p.ReplicationState, PeerDisk: p.PeerDiskState,
			PeerClient: p.PeerClient, ResyncSuspended: string(p.ResyncSuspended),
			Received: p.Received, Sent: p.Sent, OutOfSync: p.OutOfSync, Pending: p.Pending, Unacked: p.Unacked,
		}
		if p.PercentResyncDone != nil {
			pd.Done = *p.PercentResyncDone
		}
		pdWhat := fmt.Sprintf("%s volume %d", what, p.Volume)
		if err := nonNegative(pdWhat, int64(p.Volume), p.Received, p.Sent, p.OutOfSync, p.Pending, p.Unacked); err != nil {
			return Connection{}, err
		}
		if pd.Done < 0 || pd.Done > 100 {
			return Connection{}, fmt.Errorf("%s: resync done %v%% is not a percentage", pdWhat, pd.Done)
		}
		conn.PeerDevices = append(conn.PeerDevices, pd)
	}
	return conn, nil
}

// nonNegative reports an error naming what when any number is negative.
func nonNegative(what string, nums ...int64) error {
	for _, n := range nums {
		if n < 0 {
			return fmt.Errorf("%s: negative number %d", what, n)
		}
	}
	return nil
}
