package runbooks

import "testing"

func TestShippedRunbooksParse(t *testing.T) {
	all, err := Shipped()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 7 {
		t.Fatalf("%d shipped runbooks, want at least 7", len(all))
	}
	for _, rb := range all {
		if rb.Description == "" {
			t.Errorf("%s: no description", rb.File)
		}
		if "shipped:"+rb.Name != rb.File {
			t.Errorf("%s is named %q: a shipped runbook's file is its name", rb.File, rb.Name)
		}
	}
}
