package runtime

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/config"
	"github.com/sluice-gw/sluice/upstream"
)

// BenchmarkHistorySample is one sample of a live gateway with four
// servers: the sampler's cost every 2 s.
func BenchmarkHistorySample(b *testing.B) {
	lv := newLive(prometheus.NewRegistry(), slog.New(slog.DiscardHandler), nil)
	cfg, err := config.Quick("127.0.0.1:0", "127.0.0.1:0", upstream.H2C,
		[]string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"}, 2)
	if err != nil {
		b.Fatal(err)
	}
	if err := lv.start(cfg, ""); err != nil {
		b.Fatal(err)
	}
	defer lv.close()
	h := newHistory(historyEvery, historyLen, newSampler(lv).fill)
	for b.Loop() {
		h.ring.put(h.fill)
	}
}

// BenchmarkHistoryJSON is the history part of one /stats.json with a full
// ring of four servers: what an open stats page costs every 2 s.
func BenchmarkHistoryJSON(b *testing.B) {
	h := newHistory(historyEvery, historyLen, nil)
	for i := range historyLen {
		h.ring.put(func(s *sample) {
			s.t = int64(i) * 2000
			s.requests = uint64(i) * 20000
			s.latency.n = 15
			for j := range 15 {
				s.latency.bounds[j] = float64(j + 1)
				s.latency.counts[j] = uint64(i * (j + 1) * 1000)
			}
			s.latency.count = uint64(i * 16 * 1000)
			for _, a := range []string{"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080", "10.0.0.4:8080"} {
				s.servers = append(s.servers, serverSample{backend: "app", addr: a, state: "up", active: 50, limit: 200})
			}
		})
	}
	for b.Loop() {
		json.NewEncoder(io.Discard).Encode(h.doc())
	}
}
