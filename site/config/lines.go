package config

import (
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// lineIndex maps field paths (sites[2].name) to the lines they are on, and
// remembers every node so that the YAML library's errors, which only say
// "line N", can be tied back to a field.
type lineIndex struct {
	rootLine int
	lines    map[string]int
	nodes    map[int][]indexedNode // by line, in document order
}

type indexedNode struct {
	path string
	key  bool // the node is a mapping key; path is the path of its value
	node *yaml.Node
}

func newLineIndex() *lineIndex {
	return &lineIndex{rootLine: 1, lines: map[string]int{}, nodes: map[int][]indexedNode{}}
}

// indexLines walks the node tree of a document. Aliases are not followed:
// a field that only exists through an alias reports its parent's line.
func indexLines(doc *yaml.Node) *lineIndex {
	idx := newLineIndex()
	root := doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if root.Line > 0 {
		idx.rootLine = root.Line
	}
	idx.walk(root, "")
	return idx
}

func (idx *lineIndex) walk(n *yaml.Node, path string) {
	idx.nodes[n.Line] = append(idx.nodes[n.Line], indexedNode{path: path, node: n})
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			idx.nodes[k.Line] = append(idx.nodes[k.Line], indexedNode{path: p, key: true, node: k})
			idx.set(p, k.Line)
			idx.walk(v, p)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			idx.set(p, item.Line)
			idx.walk(item, p)
		}
	}
}

// set keeps the first line seen for a path, so a key given twice reports
// where it was first set.
func (idx *lineIndex) set(path string, line int) {
	if _, ok := idx.lines[path]; !ok {
		idx.lines[path] = line
	}
}

// line returns the line of path or, if path is not in the file, of its
// nearest parent; the root mapping's line if none is.
func (idx *lineIndex) line(path string) int {
	for path != "" {
		if l, ok := idx.lines[path]; ok {
			return l
		}
		path = parentPath(path)
	}
	return idx.rootLine
}

// parentPath strips the last ".name" or "[i]" from path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}
