package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// editFull applies pairs of (old, new) replacements to fullYAML; each old
// must occur exactly once.
func editFull(t *testing.T, edits ...string) string {
	t.Helper()
	data := fullYAML
	for i := 0; i+1 < len(edits); i += 2 {
		if n := strings.Count(data, edits[i]); n != 1 {
			t.Fatalf("edit %q occurs %d times, want once", edits[i], n)
		}
		data = strings.Replace(data, edits[i], edits[i+1], 1)
	}
	return data
}

// TestSyntaxErrorLine: a YAML syntax error deep in a long file is reported
// at the line that is wrong. The YAML library names the line where the
// enclosing list or mapping starts (for the first case, line 96), or none.
func TestSyntaxErrorLine(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edits []string
		want  string
	}{
		{"key of a list item indented too little",
			[]string{"          data_dir: pg/a", "         data_dir: pg/a"},
			`zdt.yaml:100: invalid YAML: did not find expected '-' indicator`},
		{"list item indented too little",
			[]string{"        - {site: b, conn: host=127.0.0.12", "       - {site: b, conn: host=127.0.0.12"},
			`zdt.yaml:103: invalid YAML: did not find expected key`},
		{"key of a BGP peer indented too little",
			[]string{"          asn: 64500\n", "         asn: 64500\n"},
			`zdt.yaml:38: invalid YAML: did not find expected '-' indicator`},
		{"key of a service indented too little",
			[]string{"    sites: [c]", "   sites: [c]"},
			`zdt.yaml:75: invalid YAML: did not find expected '-' indicator`},
		{"key indented too much",
			[]string{"    bgp: {asn: 64602", "     bgp: {asn: 64602"},
			`zdt.yaml:56: invalid YAML: did not find expected key`},
		{"tab",
			[]string{"      driver: drbd", "\tdriver: drbd"},
			`zdt.yaml:106: invalid YAML: found a tab character that violates indentation`},
		{"unknown anchor",
			[]string{"    sites: [c]", "    sites: *c"},
			`zdt.yaml:75: invalid YAML: unknown anchor 'c' referenced`},
		{"unclosed list: where it starts",
			[]string{"    sites: [c]", "    sites: [c"},
			`zdt.yaml:75: invalid YAML: did not find expected ',' or ']'`},
		{"without a newline at the end",
			[]string{"  require_confirmation: true\n", "   require_confirmation: true"},
			`zdt.yaml:110: invalid YAML: mapping values are not allowed in this context`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("zdt.yaml", []byte(editFull(t, tc.edits...)))
			var problems Problems
			if !errors.As(err, &problems) || c != nil {
				t.Fatalf("Parse = %v, %v; want problems", c, err)
			}
			var got []string
			for _, p := range problems {
				got = append(got, p.Error())
			}
			if want := []string{tc.want}; !slices.Equal(got, want) {
				t.Errorf("problems:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
			}
		})
	}
}

func TestLineEnds(t *testing.T) {
	for _, tc := range []struct {
		data string
		want []int
	}{
		{"", nil},
		{"a", []int{1}},
		{"a\n", []int{2}},
		{"a\nbc", []int{2, 4}},
		{"a\r\n\nb\n", []int{3, 4, 6}},
	} {
		if got := lineEnds([]byte(tc.data)); !slices.Equal(got, tc.want) {
			t.Errorf("lineEnds(%q) = %v, want %v", tc.data, got, tc.want)
		}
	}
}
