package api

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/zdt-project/zdt/site"
)

// TestOpenAPIDescribesEveryRoute checks that the document is valid OpenAPI
// and names exactly the routes the server has, with their methods.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI())
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not valid: %v", err)
	}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+Prefix+path)
		}
	}
	served := New(Config{}).Routes()
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Errorf("openapi.yaml documents\n  %s\nthe server serves\n  %s", strings.Join(documented, "\n  "), strings.Join(served, "\n  "))
	}
}

// TestOpenAPIServiceStatus checks a service's status, with and without an
// RPO, against its schema.
func TestOpenAPIServiceStatus(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI())
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	schema := doc.Components.Schemas["ServiceStatus"].Value
	for _, tc := range []struct {
		name string
		svc  site.ServiceStatus
	}{
		{"without rpo", site.ServiceStatus{Name: "web", Active: "a", Epoch: 3, Sites: []string{"a", "b"}, Prefixes: []string{}}},
		{"with rpo", site.ServiceStatus{Name: "db", Active: "b", Epoch: 4, Sites: []string{"b", "a"}, Prefixes: []string{},
			RPO: &site.RPOStatus{MaxLagBytes: 16 << 20, MaxLagSeconds: 2.5, RequireSync: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := json.Marshal(tc.svc)
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatal(err)
			}
			if err := schema.VisitJSON(v); err != nil {
				t.Errorf("%s does not match the schema ServiceStatus: %v", raw, err)
			}
		})
	}
}
