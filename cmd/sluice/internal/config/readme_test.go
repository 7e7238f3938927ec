package config

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// readmeTable returns the README's configuration key table: each key in
// the first column (a cell may name several) with the default column.
func readmeTable(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(data), "\n| key | default | meaning |\n|---|---|---|\n")
	if !ok {
		t.Fatal("README.md has no key table")
	}
	code := regexp.MustCompile("`([^`]*)`")
	rows := map[string]string{}
	for line := range strings.Lines(table) {
		cells := strings.Split(line, " | ")
		if !strings.HasPrefix(line, "| `") || len(cells) < 3 {
			break
		}
		for _, m := range code.FindAllStringSubmatch(cells[0], -1) {
			if _, dup := rows[m[1]]; dup {
				t.Errorf("README lists %s twice", m[1])
			}
			rows[m[1]] = strings.Trim(cells[1], "`")
		}
	}
	return rows
}

// TestReadmeKeysMatchSchema compares the README's key table with the
// schema both ways, and each documented default with the one in effect.
func TestReadmeKeysMatchSchema(t *testing.T) {
	rows := readmeTable(t)
	keys := schemaKeys()
	for _, k := range keys {
		if _, ok := rows[k]; !ok {
			t.Errorf("key %s is not in the README's table", k)
		}
	}
	for k := range rows {
		if !slices.Contains(keys, k) {
			t.Errorf("README's table lists %s, which is not a key", k)
		}
	}

	c, err := Parse([]byte(valid), "sluice.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var tree map[string]any
	if err := yaml.Unmarshal(out, &tree); err != nil {
		t.Fatal(err)
	}
	for k, doc := range rows {
		if doc == "—" {
			continue // no default: required, or an entry of a mapping
		}
		v, ok := lookup(tree, k)
		if !ok {
			t.Errorf("%s: no value in the effective config", k)
			continue
		}
		if got := show(v); got != doc && !sameDuration(got, doc) {
			t.Errorf("%s: README says the default is %s, the schema %s", k, doc, got)
		}
	}
}

// lookup finds key in the printed defaults: backend NAME is the test
// file's "tomcat", list elements are the first.
func lookup(tree map[string]any, key string) (any, bool) {
	var v any = tree
	for _, p := range strings.Split(strings.ReplaceAll(key, "[]", ".[]"), ".") {
		switch x := v.(type) {
		case map[string]any:
			if p == "NAME" {
				p = "tomcat"
			}
			var ok bool
			if v, ok = x[p]; !ok {
				return nil, false
			}
		case []any:
			if len(x) == 0 {
				return nil, false
			}
			v = x[0]
		default:
			return nil, false
		}
	}
	return v, true
}

// show prints a decoded YAML value as the README's default column does.
func show(v any) string {
	switch x := v.(type) {
	case string:
		if x == "" {
			return `""`
		}
		return x
	case []any:
		if len(x) == 0 {
			return "[]"
		}
	}
	return fmt.Sprint(v)
}

func sameDuration(a, b string) bool {
	da, errA := time.ParseDuration(a)
	db, errB := time.ParseDuration(b)
	return errA == nil && errB == nil && da == db
}
