package config

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"
)

// The schema is the Go types themselves: Config here, upstream.Config for
// a backend, gateway.Route and gateway.CertPair. A field's `yaml` tag names
// its key, "-" leaves it out, and a dot nests it under a section that has
// no struct of its own ("timeouts.connect"). Its `check` tag says what
// values are valid; see checkField. Decoding, printing, validation and the
// README's key table all walk these declarations, so a key is declared
// once.

// field is one key of a mapping.
type field struct {
	name  string
	index int    // of the struct field; -1 for a section made of dotted names
	check string // the `check` tag
	sub   []*field
}

// fieldsOf returns the keys of struct type t in declaration order, dotted
// names grouped into sections.
func fieldsOf(t reflect.Type) []*field {
	var out []*field
	for i := range t.NumField() {
		sf := t.Field(i)
		name := sf.Tag.Get("yaml")
		if name == "" || name == "-" {
			continue
		}
		list := &out
		for {
			sec, rest, nested := strings.Cut(name, ".")
			if !nested {
				break
			}
			j := slices.IndexFunc(*list, func(f *field) bool { return f.name == sec })
			if j < 0 {
				*list = append(*list, &field{name: sec, index: -1})
				j = len(*list) - 1
			}
			list, name = &(*list)[j].sub, rest
		}
		*list = append(*list, &field{name: name, index: i, check: sf.Tag.Get("check")})
	}
	return out
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	prefixesType = reflect.TypeFor[[]netip.Prefix]()
	pagesType    = reflect.TypeFor[map[int]ErrorPage]()
)

// isSection reports whether values of t are mappings of known keys: a
// struct with tagged fields (netip.Prefix, also a struct, is a scalar).
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && len(fieldsOf(t)) > 0
}

// sectionList reports whether t is a list or a named set of sections.
func sectionList(t reflect.Type) bool {
	return (t.Kind() == reflect.Slice || t.Kind() == reflect.Map) && isSection(t.Elem())
}

// elemKey is how a key shows an element of t in the README's table.
func elemKey(t reflect.Type) string {
	if t.Kind() == reflect.Slice {
		return "[]"
	}
	if t == pagesType {
		return ".CODE"
	}
	return ".NAME"
}

// schemaKeys lists every key of the schema as the README's table writes it:
// backends.NAME.h2c.conns_per_server, routes[].host, error_pages.CODE.
func schemaKeys() []string {
	var out []string
	var walk func(prefix string, t reflect.Type, fields []*field)
	walk = func(prefix string, t reflect.Type, fields []*field) {
		for _, f := range fields {
			key := prefix + f.name
			if f.sub != nil {
				walk(key+".", t, f.sub)
				continue
			}
			ft := t.Field(f.index).Type
			switch {
			case isSection(ft):
				walk(key+".", ft, fieldsOf(ft))
			case sectionList(ft):
				walk(key+elemKey(ft)+".", ft.Elem(), fieldsOf(ft.Elem()))
			case ft == pagesType:
				out = append(out, key+elemKey(ft))
			default:
				out = append(out, key)
			}
		}
	}
	t := reflect.TypeFor[Config]()
	walk("", t, fieldsOf(t))
	return out
}

// leafNames lists the keys of a section relative to it, nested sections
// flattened: the candidates for "did you mean".
func leafNames(t reflect.Type, fields []*field, prefix string) []string {
	var out []string
	for _, f := range fields {
		switch {
		case f.sub != nil:
			out = append(out, leafNames(t, f.sub, prefix+f.name+".")...)
		case isSection(t.Field(f.index).Type):
			ft := t.Field(f.index).Type
			out = append(out, leafNames(ft, fieldsOf(ft), prefix+f.name+".")...)
		default:
			out = append(out, prefix+f.name)
		}
	}
	return out
}

// visit calls fn for every key below v (a struct with the given fields)
// that has a check, and for every element of a list or named set of
// sections, with its full key.
func visit(key string, v reflect.Value, fields []*field, fn func(key string, f *field, v reflect.Value)) {
	for _, f := range fields {
		k := joinKey(key, f.name)
		if f.sub != nil {
			visit(k, v, f.sub, fn)
			continue
		}
		fv := v.Field(f.index)
		switch t := fv.Type(); {
		case isSection(t):
			visit(k, fv, fieldsOf(t), fn)
		case t.Kind() == reflect.Slice && isSection(t.Elem()):
			for i := range fv.Len() {
				visit(fmt.Sprintf("%s[%d]", k, i), fv.Index(i), fieldsOf(t.Elem()), fn)
			}
		case t.Kind() == reflect.Map && isSection(t.Elem()):
			for _, name := range sortedKeys(fv) {
				visit(k+"."+name, fv.MapIndex(reflect.ValueOf(name)), fieldsOf(t.Elem()), fn)
			}
		default:
			if f.check != "" {
				fn(k, f, fv)
			}
		}
	}
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func sortedKeys(m reflect.Value) []string {
	names := make([]string, 0, m.Len())
	for _, k := range m.MapKeys() {
		names = append(names, k.String())
	}
	slices.Sort(names)
	return names
}
