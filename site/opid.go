package site

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// OpIDError says why an op ID named no op (ResolveOpID).
type OpIDError struct {
	Arg string
	// Matches are the IDs that begin with Arg, newest first, when more
	// than one does.
	Matches []string
	// Closest are the IDs that share the longest prefix with Arg, newest
	// first, when none begins with it.
	Closest []string
}

func (e *OpIDError) Error() string {
	switch {
	case len(e.Matches) > 1:
		return fmt.Sprintf("op ID %q is ambiguous: %d ops begin with it, the newest %s; give more of the ID", e.Arg, len(e.Matches), joinIDs(e.Matches))
	case len(e.Closest) == 0:
		return fmt.Sprintf("no op %q: the journal has no ops", e.Arg)
	}
	return fmt.Sprintf("no op %q in the journal; the closest: %s", e.Arg, joinIDs(e.Closest))
}

// ResolveOpID returns the ID of ids (oldest first) that arg names: the ID
// itself or a prefix that only it has. Otherwise an *OpIDError says which
// IDs it begins, or which come closest.
func ResolveOpID(ids []string, arg string) (string, error) {
	var matches []string
	for _, id := range slices.Backward(ids) {
		if id == arg {
			return id, nil
		}
		if strings.HasPrefix(id, arg) {
			matches = append(matches, id)
		}
	}
	switch {
	case len(matches) == 1:
		return matches[0], nil
	case len(matches) > 1:
		return "", &OpIDError{Arg: arg, Matches: matches}
	}
	closest := slices.Clone(ids)
	slices.Reverse(closest)
	sort.SliceStable(closest, func(i, j int) bool {
		return commonPrefix(closest[i], arg) > commonPrefix(closest[j], arg)
	})
	return "", &OpIDError{Arg: arg, Closest: closest}
}

// joinIDs lists up to 5 IDs.
func joinIDs(ids []string) string {
	const most = 5
	if len(ids) > most {
		return strings.Join(ids[:most], ", ") + ", ..."
	}
	return strings.Join(ids, ", ")
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
