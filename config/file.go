package config

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// parseYAML flattens a YAML document into settings with dotted keys, in
// the document's order. Sections are mappings, values are scalars; a null
// value counts as not set.
func parseYAML(data []byte) ([]Setting, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{Reason: "invalid YAML: " + oneLine(strings.TrimPrefix(err.Error(), "yaml: "))}
	}
	if root.Kind == 0 {
		return nil, nil
	}
	doc := root.Content[0]
	if doc.Kind == yaml.ScalarNode && doc.Tag == "!!null" {
		return nil, nil
	}
	if doc.Kind != yaml.MappingNode {
		return nil, &Error{Reason: fmt.Sprintf("line %d: the file must be a mapping of keys, such as broker: redis",
			doc.Line)}
	}

	var settings []Setting
	if err := flatten(doc, "", &settings); err != nil {
		return nil, err
	}
	return settings, nil
}

func flatten(mapping *yaml.Node, prefix string, out *[]Setting) error {
	seen := map[string]bool{}
	for i := 0; i+1 < len(mapping.Content); i += 2 {
		keyNode, value := mapping.Content[i], resolveAlias(mapping.Content[i+1])
		if keyNode.Kind != yaml.ScalarNode {
			return &Error{Origin: strings.TrimSuffix(prefix, "."),
				Reason: fmt.Sprintf("line %d: keys must be plain names", keyNode.Line)}
		}
		name := prefix + keyNode.Value
		if seen[keyNode.Value] {
			return &Error{Origin: name, Reason: fmt.Sprintf("line %d: the key appears twice", keyNode.Line)}
		}
		seen[keyNode.Value] = true

		if err := flattenValue(name, value, out); err != nil {
			return err
		}
	}
	return nil
}

func flattenValue(name string, value *yaml.Node, out *[]Setting) error {
	switch value.Kind {
	case yaml.MappingNode:
		if !isSection(name) {
			if _, err := lookupKey(name); err != nil {
				return &Error{Origin: name, Reason: err.Error()}
			}
			return &Error{Origin: name, Reason: fmt.Sprintf("line %d: expected a value, not a mapping", value.Line)}
		}
		return flatten(value, name+".", out)
	case yaml.SequenceNode:
		return &Error{Origin: name, Reason: fmt.Sprintf(
			"line %d: expected one value, not a list (separate several NATS servers with commas)", value.Line)}
	case yaml.ScalarNode:
		if isSection(name) {
			if value.Tag == "!!null" {
				return nil
			}
			return &Error{Origin: name, Reason: fmt.Sprintf("line %d: expected a mapping of keys, not a value",
				value.Line)}
		}
		if value.Tag == "!!null" {
			// The key must still exist, so that a typo with no value fails.
			if _, err := lookupKey(name); err != nil {
				return &Error{Origin: name, Reason: err.Error()}
			}
			return nil
		}
		*out = append(*out, Setting{Key: name, Value: value.Value})
		return nil
	}
	return &Error{Origin: name, Reason: fmt.Sprintf("line %d: unsupported YAML value", value.Line)}
}

// resolveAlias follows an alias such as *defaults to its anchored node.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
