package runbooks

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

// shipped holds the runbooks that come with zdt.
//
//go:embed *.yaml
var shipped embed.FS

// Shipped lists the runbooks that come with zdt, by name.
func Shipped() ([]*Runbook, error) {
	entries, err := fs.ReadDir(shipped, ".")
	if err != nil {
		return nil, fmt.Errorf("read the shipped runbooks: %w", err)
	}
	var out []*Runbook
	for _, e := range entries {
		rb, err := shippedRunbook(strings.TrimSuffix(e.Name(), ".yaml"))
		if err != nil {
			return nil, err
		}
		out = append(out, rb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func shippedRunbook(name string) (*Runbook, error) {
	data, err := shipped.ReadFile(name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no shipped runbook %q: %w", name, err)
	}
	return Parse("shipped:"+name, data)
}

// Find loads a runbook by file path, or, when ref names no file and has no
// slash or .yaml suffix, the shipped runbook of that name.
func Find(ref string) (*Runbook, error) {
	if _, err := os.Stat(ref); err == nil || strings.Contains(ref, "/") || path.Ext(ref) != "" {
		return Load(ref)
	}
	rb, err := shippedRunbook(ref)
	if err != nil {
		var names []string
		all, _ := Shipped()
		for _, s := range all {
			names = append(names, s.Name)
		}
		return nil, fmt.Errorf("%q is neither a runbook file nor a shipped runbook (shipped: %s)", ref, strings.Join(names, ", "))
	}
	return rb, nil
}
