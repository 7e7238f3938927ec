package runtime

import (
	"encoding/json"
	"math"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// fillN returns a fill func that records a sample with n servers.
func fillN(n int) func(*sample) {
	return func(s *sample) {
		s.t++
		for range n {
			s.servers = append(s.servers, serverSample{backend: "b", addr: "a", state: "up", active: 1, limit: 100})
		}
	}
}

// Once the ring has wrapped, putting samples allocates nothing and the
// heap does not grow, however many more wraps follow.
func TestRingMemoryFixedAfterWrap(t *testing.T) {
	r := newRing(450)
	fill := fillN(8)
	for range 450 {
		r.put(fill)
	}
	if a := testing.AllocsPerRun(450*10, func() { r.put(fill) }); a != 0 {
		t.Errorf("%v allocations per sample after the ring wrapped, want 0", a)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 450 * 100 {
		r.put(fill)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if after.Mallocs-before.Mallocs > 100 {
		t.Errorf("100 wraps allocated %d objects (%d bytes)", after.Mallocs-before.Mallocs, after.TotalAlloc-before.TotalAlloc)
	}
	n := 0
	r.each(func(*sample) { n++ })
	if n != 450 {
		t.Errorf("ring holds %d samples, want 450", n)
	}
}

// The ring keeps the newest samples, oldest first.
func TestRingOrder(t *testing.T) {
	r := newRing(3)
	for i := range 5 {
		r.put(func(s *sample) { s.t = int64(i) })
	}
	var got []int64
	r.each(func(s *sample) { got = append(got, s.t) })
	if len(got) != 3 || got[0] != 2 || got[2] != 4 {
		t.Errorf("ring holds %v, want [2 3 4]", got)
	}
}

// The sampler samples at start and then every interval, and close stops
// it: no goroutine is left in the bubble.
func TestHistorySamplerTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		h := newHistory(2*time.Second, 10, func(s *sample) { s.t = time.Now().UnixMilli() })
		h.start()
		time.Sleep(7 * time.Second)
		synctest.Wait()
		var ts []int64
		h.ring.each(func(s *sample) { ts = append(ts, s.t-start.UnixMilli()) })
		want := []int64{0, 2000, 4000, 6000}
		if len(ts) != len(want) {
			t.Fatalf("samples at %v ms, want %v", ts, want)
		}
		for i := range want {
			if ts[i] != want[i] {
				t.Fatalf("samples at %v ms, want %v", ts, want)
			}
		}
		h.close()
		h.close() // twice is fine
	})
}

func TestQuantile(t *testing.T) {
	mk := func(total uint64, counts ...uint64) buckets {
		b := buckets{n: len(counts), count: total}
		for i, c := range counts {
			b.bounds[i] = float64(i + 1)
			b.counts[i] = c
		}
		return b
	}
	prev := mk(10, 10, 10, 10)
	for _, tt := range []struct {
		name string
		cur  buckets
		q    float64
		want float64
	}{
		{"all in the first bucket", mk(110, 110, 110, 110), .5, .5},
		{"second bucket", mk(110, 10, 110, 110), .5, 1.5},
		{"beyond the last bound", mk(110, 10, 10, 10), .99, 3},
		{"nothing new", mk(10, 10, 10, 10), .5, math.NaN()},
	} {
		got := quantile(tt.q, &prev, &tt.cur)
		if !(got == tt.want || math.IsNaN(got) && math.IsNaN(tt.want)) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// doc turns counters into rates and marks state changes on the time axis.
func TestHistoryDoc(t *testing.T) {
	h := newHistory(2*time.Second, 5, nil)
	states := []string{"up", "up", "down", "down", "up", "up"}
	for i, st := range states {
		h.ring.put(func(s *sample) {
			s.t = int64(i) * 2000
			s.requests = uint64(i) * 200
			s.err5xx = uint64(i) * 2
			s.err499 = uint64(i)
			s.servers = append(s.servers, serverSample{backend: "b", addr: "x:1", state: st, active: int32(i), limit: 200})
		})
	}
	d := h.doc()
	if len(d.T) != 4 || d.T[0] != 4000 || d.T[3] != 10000 {
		t.Fatalf("t = %v, want 4 points from 4000", d.T)
	}
	if d.RPS[3] != 100 || d.Err5xx[3] != 1 || d.Err499[3] != .5 {
		t.Errorf("rates: rps %v 5xx %v 499 %v", d.RPS, d.Err5xx, d.Err499)
	}
	if len(d.Servers) != 1 || d.Servers[0].Active[3] != 5 || d.Servers[0].Limit[3] != 200 {
		t.Errorf("servers: %+v", d.Servers)
	}
	// The ring held samples 1..5: up at 1, down from 2, up from 4.
	if len(d.Events) != 2 || d.Events[0].T != 4000 || d.Events[0].To != "down" || d.Events[1].T != 8000 || d.Events[1].To != "up" {
		t.Errorf("events: %+v", d.Events)
	}
	b, err := json.Marshal(d)
	if err != nil || !strings.Contains(string(b), `"latency_p50_ms":[null,null,null,null]`) {
		t.Errorf("json: %v %s", err, b)
	}
}
