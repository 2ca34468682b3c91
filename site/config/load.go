package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// Load reads the config file at path and parses it (see Parse).
func Load(path string) (*Cluster, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load cluster config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a config file's contents. path names the
// file in problems and in Cluster.Path, and its directory is where
// relative paths in the file are resolved from ("" means the working
// directory).
//
// If anything is wrong, Parse returns a nil Cluster and an error of type
// Problems that lists every problem found, sorted by line.
func Parse(path string, data []byte) (*Cluster, error) {
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("resolve the directory of %s: %w", path, err)
	}
	c := &checker{file: path, dir: dir, lines: newLineIndex(), broken: map[string]bool{}, reported: map[Problem]bool{}}
	var cl *Cluster
	if f := decode(c, data); f != nil {
		cl = f.build(c)
		cl.Path = path
		c.checkDomains()
	}
	if len(c.problems) > 0 {
		sortProblems(c.problems)
		return nil, c.problems
	}
	return cl, nil
}

const emptyMsg = "the file is empty; it must describe the cluster: cluster, etcd, timings, sites and services"

// decode decodes data strictly into the file types, reporting what it
// cannot decode. It returns nil if nothing can be validated.
func decode(c *checker, data []byte) *fileCluster {
	if len(bytes.TrimSpace(data)) == 0 {
		c.addAt(1, "", emptyMsg)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) { // only comments
			c.addAt(1, "", emptyMsg)
		} else {
			c.syntaxProblem(data, err)
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		c.syntaxProblem(data, err)
		return nil
	default:
		c.addAt(next.Line, "", "a second YAML document starts here; the whole cluster belongs in one document")
	}

	if len(doc.Content) == 0 {
		c.addAt(1, "", emptyMsg)
		return nil
	}
	root := doc.Content[0]
	switch {
	case root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null":
		c.addAt(1, "", emptyMsg)
		return nil
	case root.Kind != yaml.MappingNode:
		c.addAt(root.Line, "", fmt.Sprintf("expected a mapping with the fields cluster, etcd, timings, sites and services, found %s", describeFound(root)))
		return nil
	}
	c.lines = indexLines(&doc)

	var f fileCluster
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(&f); err != nil {
		c.decodeProblems(data, err)
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil
		}
	}
	return &f
}
