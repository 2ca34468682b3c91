package fabric

import (
	"errors"

	"github.com/zdt-project/zdt/e2e/softswitch"
)

// The names of a switched fabric's ports that are not sites': the sites'
// ports are named after the sites, whose names cannot start with @.
const (
	SelfPortName     = "@fabric"   // the fabric namespace's own address
	HostPortName     = "@host"     // the host's link, with Options.Host
	UpstreamPortName = "@upstream" // the upstream's link, with Options.UpstreamOnFabric
)

// SwitchPorts are the ports of a switched fabric's switch (Options.Switched),
// interfaces of the fabric namespace: one per site, named after it, and
// those named by the constants above.
func (f *Fabric) SwitchPorts() []softswitch.Port {
	ports := []softswitch.Port{{Name: SelfPortName, Interface: selfPort}}
	for i, s := range f.Sites {
		ports = append(ports, softswitch.Port{Name: s.Name, Interface: sitePort(i)})
	}
	if f.opts.Host {
		ports = append(ports, softswitch.Port{Name: HostPortName, Interface: hostPort})
	}
	if f.opts.UpstreamOnFabric {
		ports = append(ports, softswitch.Port{Name: UpstreamPortName, Interface: upstreamPort})
	}
	return ports
}

// StartSwitch starts a switch for a switched fabric in this process. It
// runs until Close (it does not outlive the process): frames cross the
// fabric only while it runs.
func (f *Fabric) StartSwitch() (*softswitch.Switch, error) {
	if !f.opts.Switched {
		return nil, errors.New("fabric " + f.ID + " has a bridge, not a switch: build it with Options.Switched")
	}
	var sw *softswitch.Switch
	err := f.Fabric.Do(func() error {
		var err error
		sw, err = softswitch.New(f.SwitchPorts())
		return err
	})
	return sw, err
}
