package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The YAML library reports where and what only in its messages; these pick
// them apart. They are kept in step with gopkg.in/yaml.v3 v3.0.1, and any
// message they do not recognise is still reported as it is.
var (
	yamlLineRe      = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	yamlUnknownRe   = regexp.MustCompile(`^field (.*) not found in type (\S+)$`)
	yamlSetTwiceRe  = regexp.MustCompile(`^field (.*) already set in type (\S+)$`)
	yamlMismatchRe  = regexp.MustCompile("^cannot unmarshal (!!?\\S*)( `.*`)? into (.+)$")
	yamlDupMapKeyRe = regexp.MustCompile(`^mapping key "(.*)" already defined at line (\d+)$`)
	// yaml.v3 reports the lines of parser errors (not scanner errors)
	// 0-based, and none at all for line 0.
	yamlParserErrRe = regexp.MustCompile(`^(did not find expected |found undefined tag handle|found duplicate %|found incompatible YAML document)`)
)

// syntaxProblem turns an error from parsing the YAML text data into a
// problem, at the line that is wrong.
func (c *checker) syntaxProblem(data []byte, err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if yamlParserErrRe.MatchString(msg) {
		line++
	}
	if l := failingLine(data, err); l > 0 {
		line = l
	}
	c.addAt(line, "", "invalid YAML: "+msg)
}

// failingLine returns the line of data at which parsing it fails with err,
// or 0 if it cannot tell. The YAML library's messages name the line of the
// context of an error, such as the start of the list or mapping that an
// item dozens of lines further down is indented wrongly for, and some name
// none. The parser reads the text in order and stops at the first thing
// that is wrong, so the line is that of the shortest run of whole lines
// from the start that fails the same way; the search for it parses the
// text a few times (the logarithm of its number of lines).
func failingLine(data []byte, err error) int {
	ends := lineEnds(data)
	same := func(n int) bool {
		e := parseError(data[:ends[n-1]])
		return e != nil && e.Error() == err.Error()
	}
	if len(ends) == 0 || !same(len(ends)) {
		return 0 // not a parse error, such as one of decoding aliases
	}
	lo, hi := 1, len(ends)
	for lo < hi {
		mid := lo + (hi-lo)/2
		if same(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// lineEnds returns the offset just past each line of data, counting lines
// as editors do: ended by "\n", the last one by the end of data.
func lineEnds(data []byte) []int {
	var ends []int
	for i, b := range data {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		ends = append(ends, len(data))
	}
	return ends
}

// parseError parses data as decode does, the first document and the start
// of a second, and returns the first error other than the end of data.
func parseError(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for range 2 {
		var doc yaml.Node
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
	}
	return nil
}

// decodeProblems turns the error from decoding data into the file types
// into problems, one for each complaint of the YAML library.
func (c *checker) decodeProblems(data []byte, err error) {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		c.syntaxProblem(data, err)
		return
	}
	types := fileTypes(reflect.TypeFor[fileCluster]())
	for _, e := range te.Errors {
		c.typeProblem(e, types)
	}
}

func (c *checker) typeProblem(e string, types map[string]reflect.Type) {
	m := yamlLineRe.FindStringSubmatch(e)
	if m == nil {
		c.addAt(0, "", e)
		return
	}
	line, _ := strconv.Atoi(m[1])
	msg := m[2]
	if m := yamlUnknownRe.FindStringSubmatch(msg); m != nil {
		field := m[1]
		if path, ok := c.keyPath(line, m[1]); ok {
			field = parentPath(path)
		}
		known := ""
		if t, ok := types[m[2]]; ok {
			known = fmt.Sprintf(" (known fields: %s)", strings.Join(yamlFields(t), ", "))
		}
		c.addAt(line, field, fmt.Sprintf("unknown field %q%s", m[1], known))
		return
	}
	if m := yamlSetTwiceRe.FindStringSubmatch(msg); m != nil {
		field, _ := c.keyPath(line, m[1])
		c.addAt(line, field, fmt.Sprintf("given twice (first at line %d); keep one", c.line(field)))
		return
	}
	if m := yamlDupMapKeyRe.FindStringSubmatch(msg); m != nil {
		// yaml.v3 decodes nothing of a mapping with a key given twice.
		field, ok := c.keyPath(line, m[1])
		c.addAt(line, field, fmt.Sprintf("given twice (first at line %s); keep one", m[2]))
		if ok {
			c.markBroken(parentPath(field))
		}
		return
	}
	if m := yamlMismatchRe.FindStringSubmatch(msg); m != nil {
		n := c.mismatchedNode(line, m[1]+m[2], m[3])
		if n == nil {
			c.addAt(line, "", msg)
			return
		}
		c.addAt(line, n.path, mismatchMsg(n.node, types[m[3]]))
		c.markBroken(n.path)
		return
	}
	c.addAt(line, "", msg)
}

// keyPath finds the path of the mapping key name on line; it returns name
// and false if there is none.
func (c *checker) keyPath(line int, name string) (string, bool) {
	for _, n := range c.lineIndex().nodes[line] {
		if n.key && n.node.Value == name {
			return n.path, true
		}
	}
	return name, false
}

// mismatchedNode finds the value node on line that the YAML library
// describes as what (for example "!!str `abc`" or "!!seq") and could not
// decode into the type named into. Several nodes can start on one line
// (a mapping and its first value); the type tells them apart. A value
// reached through an alias has the type of where the alias is, not of the
// anchor that the library names; then the first node that fits is it.
func (c *checker) mismatchedNode(line int, what, into string) *indexedNode {
	var found *indexedNode
	nodes := c.lineIndex().nodes[line]
	for i, n := range nodes {
		// The root is a mapping, checked before decoding.
		if n.key || n.path == "" || describeLikeYAML(n.node) != what {
			continue
		}
		if t := typeAt(reflect.TypeFor[fileCluster](), n.path); t != nil && t.String() == into {
			return &nodes[i]
		}
		if found == nil {
			found = &nodes[i]
		}
	}
	return found
}

// typeAt returns the file type that decodes the value at path, or nil if
// no field has that path.
func typeAt(t reflect.Type, path string) reflect.Type {
	for path != "" {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if strings.HasPrefix(path, "[") {
			end := strings.Index(path, "]")
			if t.Kind() != reflect.Slice || end < 0 {
				return nil
			}
			t, path = t.Elem(), path[end+1:]
			continue
		}
		path = strings.TrimPrefix(path, ".")
		end := strings.IndexAny(path, ".[")
		if end < 0 {
			end = len(path)
		}
		if t.Kind() != reflect.Struct {
			return nil
		}
		f, ok := fieldByYAMLName(t, path[:end])
		if !ok {
			return nil
		}
		t, path = f.Type, path[end:]
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func fieldByYAMLName(t reflect.Type, name string) (reflect.StructField, bool) {
	for f := range t.Fields() {
		if n, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); n == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// describeLikeYAML renders a node the way yaml.v3 does in its type errors.
func describeLikeYAML(n *yaml.Node) string {
	tag := n.ShortTag()
	if n.Kind == yaml.SequenceNode || n.Kind == yaml.MappingNode {
		return tag
	}
	v := n.Value
	if len(v) > 10 {
		v = v[:7] + "..."
	}
	return tag + " `" + v + "`"
}

// mismatchMsg says what was expected where the node was found.
func mismatchMsg(n *yaml.Node, want reflect.Type) string {
	found := describeFound(n)
	if want == reflect.TypeFor[time.Duration]() {
		if n.Kind == yaml.ScalarNode {
			return fmt.Sprintf("%s is not a duration: write a number with a unit, like 3s, 750ms or 1m30s", found)
		}
		return "expected a duration such as 3s or 750ms, found " + found
	}
	return fmt.Sprintf("expected %s, found %s", describeType(want), found)
}

func describeFound(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return strconv.Quote(n.Value)
}

func describeType(t reflect.Type) string {
	if t == nil {
		return "another kind of value"
	}
	switch t.Kind() {
	case reflect.Struct:
		return "a mapping with the fields " + strings.Join(yamlFields(t), ", ")
	case reflect.Slice:
		return "a list"
	case reflect.String:
		return "a single value"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	}
	return "a " + t.String()
}

// fileTypes maps the names yaml.v3 uses for the file types (such as
// config.fileSite) to the types, found by walking from root.
func fileTypes(root reflect.Type) map[string]reflect.Type {
	types := map[string]reflect.Type{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			types[t.String()] = t
			t = t.Elem()
		}
		if _, seen := types[t.String()]; seen {
			return
		}
		types[t.String()] = t
		if t.Kind() == reflect.Struct {
			for f := range t.Fields() {
				walk(f.Type)
			}
		}
	}
	walk(root)
	return types
}

// yamlFields lists the YAML names of a file type's fields.
func yamlFields(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return slices.Clip(names)
}
