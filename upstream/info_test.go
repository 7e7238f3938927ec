package upstream

import (
	"net/http"
	"reflect"
	"testing"
)

// TestHeaderListMap: the map form holds every field, repeated names
// merged without writing into the first one's slice (it belongs to the
// caller); Order is the map's keys in the fields' order; Reset empties
// all forms, and the next Map is built afresh.
func TestHeaderListMap(t *testing.T) {
	var l HeaderList
	a := make([]string, 1, 4) // room to append to: Map must not
	a[0] = "1"
	l.Add("X-A", a)
	l.Add("X-B", []string{"b"})
	l.Add("X-A", []string{"2"})
	m := l.Map()
	if want := (http.Header{"X-A": {"1", "2"}, "X-B": {"b"}}); !reflect.DeepEqual(m, want) {
		t.Fatalf("Map %v, want %v", m, want)
	}
	if o := l.Order(); !reflect.DeepEqual(o, []string{"X-A", "X-B"}) {
		t.Fatalf("Order %q, want [X-A X-B]", o)
	}
	if a[:2][1] != "" {
		t.Fatalf("Map wrote into the caller's slice: %q", a[:2])
	}
	if m2 := l.Map(); !reflect.DeepEqual(m2, m) {
		t.Fatalf("second Map %v, want %v", m2, m)
	}
	storage := l.Fields[:cap(l.Fields)]
	l.Reset()
	if len(l.Fields) != 0 {
		t.Fatalf("%d fields after Reset", len(l.Fields))
	}
	for i, f := range storage {
		if f.Name != "" || f.Values != nil {
			t.Fatalf("field %d still set after Reset: %v", i, f)
		}
	}
	l.Add("X-C", []string{"c"})
	if o := l.Order(); !reflect.DeepEqual(o, []string{"X-C"}) {
		t.Fatalf("Order after Reset %q, want [X-C]", o)
	}
	if want := (http.Header{"X-C": {"c"}}); !reflect.DeepEqual(l.Map(), want) {
		t.Fatalf("Map after Reset %v, want %v", l.Map(), want)
	}
}
