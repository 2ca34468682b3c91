package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a config file.
type Problem struct {
	File  string // the config file as given to Load or Parse; may be ""
	Line  int    // 1-based; 0 when the YAML library did not say where
	Field string // path such as services[1].prefixes[0]; "" for the whole file
	Msg   string
}

// Error formats the problem as "FILE:LINE: FIELD: MSG". Without a file it
// is "line LINE: FIELD: MSG"; an unknown line (0) and an empty field are
// left out.
func (p Problem) Error() string {
	var b strings.Builder
	switch {
	case p.File != "" && p.Line > 0:
		b.WriteString(p.File + ":" + strconv.Itoa(p.Line) + ": ")
	case p.File != "":
		b.WriteString(p.File + ": ")
	case p.Line > 0:
		b.WriteString("line " + strconv.Itoa(p.Line) + ": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in a config file. Load and Parse return
// it sorted by line, then field.
type Problems []Problem

// Error lists the problems one per line, sorted by line, then field.
func (ps Problems) Error() string {
	sorted := slices.Clone(ps)
	sortProblems(sorted)
	lines := make([]string, len(sorted))
	for i, p := range sorted {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

func sortProblems(ps Problems) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Field, b.Field))
	})
}

// checker collects problems while the file types are validated and turned
// into domain types. It knows the line of every field path and which paths
// could not be decoded, so that it reports no follow-on problems for them.
type checker struct {
	file string
	dir  string // absolute directory that relative paths are resolved against
	data []byte // the file's contents
	// lines is the file's line index, made when a problem first needs
	// it (lineIndex) unless decode made it.
	lines    *lineIndex
	broken   map[string]bool // field paths whose value could not be decoded
	problems Problems
	reported map[Problem]bool
	// domains are the guests' domain XML files, checked together at the
	// end (checkDomains).
	domains []domainFile
}

// add reports a problem with field at the field's line (or the line of its
// nearest parent that is in the file).
func (c *checker) add(field, format string, args ...any) {
	c.addAt(c.line(field), field, fmt.Sprintf(format, args...))
}

func (c *checker) addAt(line int, field, msg string) {
	for b := range c.broken {
		if within(field, b) {
			return
		}
	}
	p := Problem{File: c.file, Line: line, Field: field, Msg: msg}
	if !c.reported[p] {
		c.reported[p] = true
		c.problems = append(c.problems, p)
	}
}

// line returns the line of field, or of its nearest parent in the file.
func (c *checker) line(field string) int {
	return c.lineIndex().line(field)
}

// lineIndex returns the file's line index, making it from the file's node
// tree the first time (an empty one if the file does not parse).
func (c *checker) lineIndex() *lineIndex {
	if c.lines == nil {
		var doc yaml.Node
		if err := yaml.Unmarshal(c.data, &doc); err == nil {
			c.lines = indexLines(&doc)
		} else {
			c.lines = newLineIndex()
		}
	}
	return c.lines
}

// markBroken records that the value at field could not be decoded.
func (c *checker) markBroken(field string) {
	c.broken[field] = true
}

// isBroken reports whether the value at field, one within it or one
// around it could not be decoded, so that checks of field as a whole are
// pointless.
func (c *checker) isBroken(field string) bool {
	for b := range c.broken {
		if within(b, field) || within(field, b) {
			return true
		}
	}
	return false
}

// within reports whether path is parent or one of its descendants.
func within(path, parent string) bool {
	if parent == "" || path == parent {
		return true
	}
	if !strings.HasPrefix(path, parent) {
		return false
	}
	next := path[len(parent)]
	return next == '.' || next == '['
}

// elementPaths returns the paths of the n decoded elements of the list at
// field. The YAML library drops list elements it cannot decode and moves
// the later ones up; the paths skip the dropped ones so that they keep
// pointing at the right lines.
func (c *checker) elementPaths(field string, n int) []string {
	paths := make([]string, 0, n)
	for i := 0; len(paths) < n; i++ {
		p := field + "[" + strconv.Itoa(i) + "]"
		if !c.broken[p] {
			paths = append(paths, p)
		}
	}
	return paths
}

// dropped counts the elements of the list at field that could not be
// decoded.
func (c *checker) dropped(field string) int {
	n := 0
	for b := range c.broken {
		if parentPath(b) == field && strings.HasSuffix(b, "]") {
			n++
		}
	}
	return n
}
