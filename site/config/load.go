package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"

	"gopkg.in/yaml.v3"
)

// Load reads the config file at path and parses it (see Parse).
func Load(path string) (*Cluster, error) {
	return load(path, true)
}

// LoadWithoutDomains reads and checks the config file as Load does, but
// for the guests' domain XML files, which it does not read. It is for the
// commands that read or change the cluster through etcd and the
// controllers, which never define a guest: a person's copy of the config
// needs no domain files, and a provider's 10,000 guests are not read each
// time someone asks for the status. The controllers and `zdt config check`
// use Load.
func LoadWithoutDomains(path string) (*Cluster, error) {
	return load(path, false)
}

func load(path string, domains bool) (*Cluster, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load cluster config: %w", err)
	}
	return parse(path, data, domains)
}

// Parse decodes and validates a config file's contents. path names the
// file in problems and in Cluster.Path, and its directory is where
// relative paths in the file are resolved from ("" means the working
// directory).
//
// If anything is wrong, Parse returns a nil Cluster and an error of type
// Problems that lists every problem found, sorted by line.
func Parse(path string, data []byte) (*Cluster, error) {
	return parse(path, data, true)
}

func parse(path string, data []byte, domains bool) (*Cluster, error) {
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("resolve the directory of %s: %w", path, err)
	}
	c := &checker{file: path, dir: dir, data: data, broken: map[string]bool{}, reported: map[Problem]bool{}}
	var cl *Cluster
	if f := decode(c, data); f != nil {
		cl = f.build(c)
		cl.Path = path
		if domains {
			c.checkDomains()
		}
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
	if f := decodeWhole(data); f != nil {
		return f
	}
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

// decodeWhole decodes, in one pass, a file whose YAML has nothing wrong:
// one document, a mapping at its root, strictly into the file types. It
// returns nil for anything else, which decode parses into a tree first to
// say what is wrong and where. The tree costs a second parse (a fifth of a
// load of a thousand services), which a file without problems does not
// need: the line index is made from it only when a problem is reported
// (checker.lineIndex).
func decodeWhole(data []byte) *fileCluster {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f fileCluster
	if err := dec.Decode(&f); err != nil {
		return nil
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil // a second document, or an error after the first
	}
	if reflect.ValueOf(f).IsZero() {
		return nil // null, or an empty mapping: said as an empty file
	}
	return &f
}
