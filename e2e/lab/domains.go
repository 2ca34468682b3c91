package lab

import (
	"fmt"
	"os"
	"path/filepath"
)

// domainsDir holds the guests' libvirt domain XML, DIR/domains/NAME.xml:
// the "shared storage" every site of the lab starts its guests from.
const domainsDir = "domains"

// domainPath is relative to the lab directory, as the config names it.
func domainPath(guest string) string { return filepath.Join(domainsDir, guest+".xml") }

// domainXML is the definition of a guest for libvirt's test driver.
// validate has made sure the name needs no escaping.
func domainXML(g GuestSpec) string {
	return fmt.Sprintf("<domain type='test'><name>%s</name><memory unit='MiB'>%d</memory><vcpu>%d</vcpu><os><type>hvm</type></os></domain>\n",
		g.Name, g.MemoryMiB, g.VCPUs)
}

// writeDomains replaces the XML libvirt's test drivers read: DIR/domains
// with the XML of the topology's guests, and the node XML of the hosts
// that are hypervisors of their own (writeNodes).
func writeDomains(dir string, t Topology) error {
	if err := writeNodes(dir, t); err != nil {
		return err
	}
	d := filepath.Join(dir, domainsDir)
	if err := os.RemoveAll(d); err != nil {
		return fmt.Errorf("remove the old domain XML: %w", err)
	}
	guests := t.Guests()
	if len(guests) == 0 {
		return nil
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		return fmt.Errorf("create the domain XML directory: %w", err)
	}
	for _, g := range guests {
		if err := writeFileAtomic(filepath.Join(dir, domainPath(g.Name)), []byte(domainXML(g)), 0o644); err != nil {
			return fmt.Errorf("write the domain XML of guest %s: %w", g.Name, err)
		}
	}
	return nil
}
