package gateway

import (
	"log/slog"
	"net/http"
	"testing"
)

// slottedRT is a backend that reports its connection slots, as
// upstream.Backend does.
type slottedRT struct {
	http.RoundTripper
	n int
}

func (s *slottedRT) Slots() int { return s.n }

// TestAdmitLimit: the HTTP/1.1 front end's admission limit is the
// routes' backends' slots together, each counted once however many
// routes lead to it; backends that do not tell add nothing, and a reload
// changes the sum.
func TestAdmitLimit(t *testing.T) {
	rt := http.RoundTripper(http.DefaultTransport)
	a, b := &slottedRT{rt, 400}, &slottedRT{rt, 128}
	routes := []Route{
		{Host: "a.example", Backend: "a"},
		{Host: "a2.example", Backend: "a"},
		{Host: "b.example", Backend: "b"},
		{Host: "*", Backend: "plain"},
	}
	backends := map[string]http.RoundTripper{"a": a, "b": b, "plain": rt}
	g, err := New(Config{Routes: routes}, backends, NewMetrics(nil), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if got := g.admitLimit(); got != 528 {
		t.Errorf("admitLimit = %d, want 528", got)
	}
	if err := g.Update(routes[3:], backends, nil); err != nil {
		t.Fatal(err)
	}
	if got := g.admitLimit(); got != 0 {
		t.Errorf("admitLimit with no backend telling its slots = %d, want 0 (no limit)", got)
	}
}
