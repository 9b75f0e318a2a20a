package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// Parse parses a configuration file's contents.
func Parse(data []byte) (*Config, error) {
	root, err := document(data)
	if err != nil {
		return nil, err
	}
	if err := plain(root, false); err != nil {
		return nil, err
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{Line: root.Line, Err: errors.New("the file must be a mapping of pool name to pool")}
	}
	cfg := &Config{Digest: Digest(data)}
	var parsed []*poolParse
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		name, err := poolName(k, seen)
		if err != nil {
			return nil, err
		}
		if err := plain(v, false); err != nil {
			err.Pool = name
			return nil, err
		}
		pp, err := parsePool(name, k, v)
		if err != nil {
			return nil, err
		}
		parsed = append(parsed, pp)
		cfg.Pools = append(cfg.Pools, pp.pool)
	}
	if len(cfg.Pools) == 0 {
		return nil, &Error{Line: root.Line, Err: errors.New("no pools")}
	}
	if err := uniqueListens(parsed); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Digest identifies a configuration file's content: the first 12 hex
// digits of its SHA-256, as Config.Digest and the stats' config_digest.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:6])
}

// document decodes data into a YAML node tree and returns its root node. The
// file must hold exactly one document.
func document(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{Err: errors.New("no pools: the file is empty")}
		}
		return nil, &Error{Err: fmt.Errorf("bad YAML: %w", err)}
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, &Error{Err: fmt.Errorf("bad YAML: %w", err)}
		}
		return nil, &Error{Line: next.Line, Err: errors.New("more than one YAML document")}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &Error{Err: errors.New("no pools: the file is empty")}
	}
	return doc.Content[0], nil
}

// plain rejects YAML features nutcracker rejects: anchors, aliases and
// explicit tags, on n and, when deep, anywhere in the tree under n.
func plain(n *yaml.Node, deep bool) *Error {
	switch {
	case n.Kind == yaml.AliasNode:
		return &Error{Line: n.Line, Err: fmt.Errorf("alias *%s: aliases are not supported", n.Value)}
	case n.Anchor != "":
		return &Error{Line: n.Line, Err: fmt.Errorf("anchor &%s: anchors are not supported", n.Anchor)}
	case n.Style&yaml.TaggedStyle != 0:
		return &Error{Line: n.Line, Err: fmt.Errorf("tag %s: explicit tags are not supported", n.Tag)}
	}
	for _, c := range n.Content {
		if !deep {
			break
		}
		if err := plain(c, true); err != nil {
			return err
		}
	}
	return nil
}

// poolName checks a top-level key and records it in seen.
func poolName(k *yaml.Node, seen map[string]int) (string, error) {
	if err := plain(k, true); err != nil {
		return "", err
	}
	if k.Kind != yaml.ScalarNode {
		return "", &Error{Line: k.Line, Err: errors.New("a pool name must be a plain string")}
	}
	name := k.Value
	if name == "" {
		return "", &Error{Line: k.Line, Err: errors.New("empty pool name")}
	}
	if first, ok := seen[name]; ok {
		return "", &Error{Pool: name, Line: k.Line, Err: fmt.Errorf("duplicate pool name (first at line %d)", first)}
	}
	seen[name] = k.Line
	return name, nil
}

// uniqueListens rejects two pools with the same listen address.
func uniqueListens(parsed []*poolParse) error {
	seen := map[Listen]string{}
	for _, pp := range parsed {
		p := pp.pool
		key := Listen{Network: p.Listen.Network, Addr: p.Listen.Addr}
		if other, ok := seen[key]; ok {
			return &Error{Pool: p.Name, Key: "listen", Value: p.Listen.Addr, Line: pp.keys["listen"],
				Err: fmt.Errorf("listen address %q is also used by pool %q", p.Listen.Addr, other)}
		}
		seen[key] = p.Name
	}
	return nil
}
