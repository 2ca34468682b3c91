package hypervisor

import (
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
)

// domainHead is what Define needs to know of a domain XML: libvirt reads
// the rest.
type domainHead struct {
	Name string
	UUID string // normalised by normUUID; empty when the XML has none
	// body is the byte offset just after the root element's start tag,
	// where a <uuid> can go.
	body int
}

// readDomainHead reads the name and UUID of a libvirt domain XML.
func readDomainHead(doc string) (domainHead, error) {
	dec := xml.NewDecoder(strings.NewReader(doc))
	var start xml.StartElement
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return domainHead{}, errors.New("domain XML: empty document")
		}
		if err != nil {
			return domainHead{}, fmt.Errorf("domain XML: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			start = se
			break
		}
	}
	if start.Name.Local != "domain" {
		return domainHead{}, fmt.Errorf("domain XML: root element is <%s>, want <domain>", start.Name.Local)
	}
	head := domainHead{body: int(dec.InputOffset())}
	var v struct {
		Name string `xml:"name"`
		UUID string `xml:"uuid"`
	}
	if err := dec.DecodeElement(&v, &start); err != nil {
		return domainHead{}, fmt.Errorf("domain XML: %w", err)
	}
	head.Name = strings.TrimSpace(v.Name)
	if head.Name == "" {
		return domainHead{}, errors.New("domain XML: no <name>")
	}
	if u := strings.TrimSpace(v.UUID); u != "" {
		n, err := normUUID(u)
		if err != nil {
			return domainHead{}, fmt.Errorf("domain XML of %s: %w", head.Name, err)
		}
		head.UUID = n
	}
	return head, nil
}

// withUUID returns doc with a <uuid> element first in its root.
func (h domainHead) withUUID(doc, uuid string) string {
	return doc[:h.body] + "<uuid>" + uuid + "</uuid>" + doc[h.body:]
}

// normUUID writes a UUID as libvirt does: lower-case hex in 8-4-4-4-12.
// libvirt also accepts it without dashes.
func normUUID(s string) (string, error) {
	u, err := parseUUID(s)
	if err != nil {
		return "", err
	}
	return formatUUID(u), nil
}

func parseUUID(s string) (libvirt.UUID, error) {
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != libvirt.UUIDBuflen {
		return libvirt.UUID{}, fmt.Errorf("%q is not a UUID", s)
	}
	return libvirt.UUID(b), nil
}

func formatUUID(u libvirt.UUID) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
