package hypervisor

import (
	"strings"
	"testing"
)

func TestReadDomainHead(t *testing.T) {
	tests := []struct {
		name, doc string
		want      domainHead
		err       string
	}{
		{name: "name and uuid",
			doc:  `<domain type='test'><name>g1</name><uuid>6695EB01-F6A4-8304-79AA-97F2502E193F</uuid></domain>`,
			want: domainHead{Name: "g1", UUID: "6695eb01-f6a4-8304-79aa-97f2502e193f", body: 20}},
		{name: "uuid without dashes",
			doc:  "<?xml version='1.0'?>\n<domain type='kvm'>\n  <name> g2 </name>\n  <uuid>6695eb01f6a4830479aa97f2502e193f</uuid>\n</domain>",
			want: domainHead{Name: "g2", UUID: "6695eb01-f6a4-8304-79aa-97f2502e193f", body: 41}},
		{name: "no uuid",
			doc:  `<!-- from the template --><domain type="test"><name>g3</name><memory>1</memory></domain>`,
			want: domainHead{Name: "g3", body: 46}},
		{name: "not a domain", doc: `<network><name>n</name></network>`, err: "root element is <network>"},
		{name: "no name", doc: `<domain type='test'><uuid>6695eb01f6a4830479aa97f2502e193f</uuid></domain>`, err: "no <name>"},
		{name: "bad uuid", doc: `<domain><name>g</name><uuid>nope</uuid></domain>`, err: `"nope" is not a UUID`},
		{name: "short uuid", doc: `<domain><name>g</name><uuid>6695eb01</uuid></domain>`, err: "not a UUID"},
		{name: "empty", doc: ``, err: "empty document"},
		{name: "broken", doc: `<domain><name>g</name>`, err: "domain XML"},
		{name: "self-closing", doc: `<domain/>`, err: "no <name>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readDomainHead(tt.doc)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("readDomainHead: error %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("readDomainHead: %v", err)
			}
			if got != tt.want {
				t.Fatalf("readDomainHead = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestWithUUID(t *testing.T) {
	doc := "<domain type='test'>\n  <name>g</name>\n</domain>"
	head, err := readDomainHead(doc)
	if err != nil {
		t.Fatal(err)
	}
	const u = "6695eb01-f6a4-8304-79aa-97f2502e193f"
	got := head.withUUID(doc, u)
	want := "<domain type='test'><uuid>" + u + "</uuid>\n  <name>g</name>\n</domain>"
	if got != want {
		t.Fatalf("withUUID = %q, want %q", got, want)
	}
	again, err := readDomainHead(got)
	if err != nil || again.UUID != u || again.Name != "g" {
		t.Fatalf("read back %+v, %v", again, err)
	}
}

func FuzzReadDomainHead(f *testing.F) {
	f.Add(`<domain type='test'><name>g1</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid></domain>`)
	f.Add(`<domain><name>g</name></domain>`)
	f.Add(`<?xml version="1.0"?><domain/>`)
	f.Fuzz(func(t *testing.T, doc string) {
		head, err := readDomainHead(doc)
		if err != nil {
			return
		}
		if head.Name == "" || head.body < 0 || head.body > len(doc) {
			t.Fatalf("readDomainHead(%q) = %+v", doc, head)
		}
		if !strings.Contains(doc, "uuid") {
			// A uuid put in must be read back.
			const u = "6695eb01-f6a4-8304-79aa-97f2502e193f"
			again, err := readDomainHead(head.withUUID(doc, u))
			if err != nil || again.UUID != u {
				t.Fatalf("withUUID(%q): read back %+v, %v", doc, again, err)
			}
		}
	})
}
