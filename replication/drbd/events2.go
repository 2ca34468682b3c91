package drbd

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ParseEvents2 parses the output of `drbdsetup events2` into the state of
// every resource it names, in the order they first appear.
//
// `drbdsetup events2 --now --statistics RES` prints one "exists" line per
// object (resource, connection, device, peer-device, path) with key:value
// fields and ends with "exists -". ParseEvents2 also applies "create",
// "change" and "destroy" lines, as the continuous stream prints them: a
// change line carries only the fields that changed and updates the object,
// so the result is the state after the last line. Helper events (call,
// response), path lines and unknown fields are skipped, and a leading
// --timestamps time stamp is ignored. Unknown event kinds, fields that are
// not key:value and malformed numbers are errors naming the line.
func ParseEvents2(out []byte) ([]ResourceStatus, error) {
	var p events2Parser
	for i, line := range strings.Split(string(out), "\n") {
		if err := p.line(line); err != nil {
			return nil, fmt.Errorf("events2 line %d: %w", i+1, err)
		}
	}
	return compact(p.resources), nil
}

// compact makes the empty lists that destroy events leave behind nil, so
// that a state does not depend on how it was reached.
func compact(res []ResourceStatus) []ResourceStatus {
	if len(res) == 0 {
		return nil
	}
	for i := range res {
		rs := &res[i]
		if len(rs.Devices) == 0 {
			rs.Devices = nil
		}
		if len(rs.Connections) == 0 {
			rs.Connections = nil
		}
		for j := range rs.Connections {
			if len(rs.Connections[j].PeerDevices) == 0 {
				rs.Connections[j].PeerDevices = nil
			}
		}
	}
	return res
}

// events2Parser accumulates the state the lines describe.
type events2Parser struct {
	resources []ResourceStatus
}

// event is one parsed line: "<verb> <object> key:value...".
type event struct {
	verb   string // exists, create, change, destroy
	object string // resource, device, connection, peer-device
	fields map[string]string
}

func (p *events2Parser) line(line string) error {
	words := strings.Fields(line)
	if len(words) == 0 {
		return nil
	}
	if !isEventVerb(words[0]) && isTimestamp(words[0]) {
		words = words[1:]
		if len(words) == 0 {
			return errors.New("a time stamp without an event")
		}
	}
	switch words[0] {
	case "exists", "create", "change", "destroy":
	case "call", "response": // helper events: not state
		return nil
	default:
		return fmt.Errorf("unknown event %q", words[0])
	}
	if len(words) < 2 {
		return fmt.Errorf("%s event names no object", words[0])
	}
	ev := event{verb: words[0], object: words[1], fields: make(map[string]string, len(words)-2)}
	for _, w := range words[2:] {
		k, v, ok := strings.Cut(w, ":")
		if !ok || k == "" {
			return fmt.Errorf("%s %s: field %q is not key:value", ev.verb, ev.object, w)
		}
		ev.fields[k] = v
	}
	var err error
	switch ev.object {
	case "resource":
		err = p.resource(ev)
	case "device":
		err = p.device(ev)
	case "connection":
		err = p.connection(ev)
	case "peer-device":
		err = p.peerDevice(ev)
	default: // "-" (end of the initial state), path, helper, newer objects
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", ev.verb, ev.object, err)
	}
	return nil
}

func isEventVerb(w string) bool {
	return slices.Contains([]string{"exists", "create", "change", "destroy", "call", "response"}, w)
}

// isTimestamp reports whether w is a time stamp as `events2 --timestamps`
// prints it (2017-02-15T14:43:16.688437+00:00).
func isTimestamp(w string) bool {
	_, err := time.Parse(time.RFC3339Nano, w)
	return err == nil
}

// findResource returns the named resource; when it does not exist it is
// created unless the event destroys it, and nil is returned for a destroy.
func (p *events2Parser) findResource(ev event) (*ResourceStatus, error) {
	name := ev.fields["name"]
	if name == "" {
		return nil, errors.New("no resource name")
	}
	for i := range p.resources {
		if p.resources[i].Name == name {
			return &p.resources[i], nil
		}
	}
	if ev.verb == "destroy" {
		return nil, nil
	}
	p.resources = append(p.resources, ResourceStatus{Name: name})
	return &p.resources[len(p.resources)-1], nil
}

func (p *events2Parser) resource(ev event) error {
	rs, err := p.findResource(ev)
	if err != nil || rs == nil {
		return err
	}
	if ev.verb == "destroy" {
		p.resources = slices.DeleteFunc(p.resources, func(r ResourceStatus) bool { return r.Name == rs.Name })
		return nil
	}
	f := fields(ev.fields)
	f.str("role", &rs.Role)
	f.str("suspended", &rs.Suspended)
	f.str("write-ordering", &rs.WriteOrdering)
	return f.err
}

func (p *events2Parser) device(ev event) error {
	f := fields(ev.fields)
	volume := f.requiredIndex("volume")
	if f.err != nil {
		return f.err
	}
	rs, err := p.findResource(ev)
	if err != nil || rs == nil {
		return err
	}
	if ev.verb == "destroy" {
		rs.Devices = slices.DeleteFunc(rs.Devices, func(d Device) bool { return d.Volume == volume })
		return nil
	}
	d := rs.device(volume)
	if d == nil {
		// Before DRBD had quorum policies it printed no quorum field; a node
		// without a quorum policy always has quorum.
		rs.Devices = append(rs.Devices, Device{Volume: volume, Quorum: true})
		d = &rs.Devices[len(rs.Devices)-1]
	}
	f.index("minor", &d.Minor)
	f.str("disk", &d.Disk)
	f.boolean("client", &d.Client)
	f.boolean("quorum", &d.Quorum)
	f.str("current-uuid", &d.CurrentUUID)
	f.count("size", &d.Size)
	f.count("read", &d.Read)
	f.count("written", &d.Written)
	f.count("al-writes", &d.ALWrites)
	f.count("bm-writes", &d.BMWrites)
	f.count("upper-pending", &d.UpperPending)
	f.count("lower-pending", &d.LowerPending)
	return f.err
}

// findConnection returns the connection the event names by peer-node-id
// (or, in output without node ids, by conn-name), creating it unless the
// event destroys it.
func (p *events2Parser) findConnection(ev event, f *fieldReader) (*ResourceStatus, *Connection, error) {
	id := -1
	f.index("peer-node-id", &id)
	name := ev.fields["conn-name"]
	if f.err != nil {
		return nil, nil, f.err
	}
	if id < 0 && name == "" {
		return nil, nil, errors.New("neither peer-node-id nor conn-name")
	}
	rs, err := p.findResource(ev)
	if err != nil || rs == nil {
		return nil, nil, err
	}
	c := rs.connection(id, name)
	if c == nil && ev.verb != "destroy" {
		rs.Connections = append(rs.Connections, Connection{PeerNodeID: id, Name: name})
		c = &rs.Connections[len(rs.Connections)-1]
	}
	if c != nil && name != "" {
		c.Name = name
	}
	return rs, c, nil
}

func (p *events2Parser) connection(ev event) error {
	f := fields(ev.fields)
	rs, c, err := p.findConnection(ev, &f)
	if err != nil || c == nil {
		return err
	}
	if ev.verb == "destroy" {
		for i := range rs.Connections {
			if &rs.Connections[i] == c {
				rs.Connections = slices.Delete(rs.Connections, i, i+1)
				break
			}
		}
		return nil
	}
	f.str("connection", &c.State)
	f.str("role", &c.PeerRole)
	f.boolean("congested", &c.Congested)
	f.count("ap-in-flight", &c.APInFlight)
	f.count("rs-in-flight", &c.RSInFlight)
	return f.err
}

func (p *events2Parser) peerDevice(ev event) error {
	f := fields(ev.fields)
	volume := f.requiredIndex("volume")
	if f.err != nil {
		return f.err
	}
	_, c, err := p.findConnection(ev, &f)
	if err != nil || c == nil {
		return err
	}
	if ev.verb == "destroy" {
		c.PeerDevices = slices.DeleteFunc(c.PeerDevices, func(d PeerDevice) bool { return d.Volume == volume })
		return nil
	}
	d := c.peerDevice(volume)
	if d == nil {
		c.PeerDevices = append(c.PeerDevices, PeerDevice{Volume: volume})
		d = &c.PeerDevices[len(c.PeerDevices)-1]
	}
	f.str("replication", &d.Replication)
	f.str("peer-disk", &d.PeerDisk)
	f.boolean("peer-client", &d.PeerClient)
	f.str("resync-suspended", &d.ResyncSuspended)
	f.count("received", &d.Received)
	f.count("sent", &d.Sent)
	f.count("out-of-sync", &d.OutOfSync)
	f.count("pending", &d.Pending)
	f.count("unacked", &d.Unacked)
	f.percent("done", &d.Done)
	return f.err
}
