package upstream

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"
)

// weighted makes servers with the given weights, addressed by index.
func weighted(ws ...int) []*Server {
	out := make([]*Server, len(ws))
	for i, w := range ws {
		out[i] = &Server{addr: fmt.Sprint(i)}
		out[i].conf.Store(&ServerConfig{Weight: w})
	}
	return out
}

// firsts asks bal for n first choices among servers.
func firsts(bal balancer, servers []*Server, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = bal.first(servers)
	}
	return out
}

func TestWeightedRoundRobin(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		cycle   []int // one cycle of first choices, repeated
	}{
		{"equal weights take turns", []int{1, 1, 1}, []int{0, 1, 2}},
		{"two to one", []int{2, 1}, []int{0, 1, 0}},
		{"a heavy server's turns are spread, not bunched", []int{5, 1, 1}, []int{0, 0, 1, 0, 2, 0, 0}},
		{"weight zero counts as one", []int{0, 1}, []int{0, 1}},
		{"one server", []int{3}, []int{0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			servers := weighted(tt.weights...)
			bal, err := newBalancer(RoundRobin, servers)
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Concat(tt.cycle, tt.cycle)
			if got := firsts(bal, servers, len(want)); !slices.Equal(got, want) {
				t.Errorf("first choices %v, want %v", got, want)
			}
		})
	}
	t.Run("cycle capped, shares kept", func(t *testing.T) {
		// 66 servers of weight 1000 would make a cycle of 66,000.
		ws := make([]int, 66)
		for i := range ws {
			ws[i] = 1000
		}
		w := newWeightedRR(weighted(ws...))
		if len(w.seq) != maxCycle {
			t.Fatalf("cycle of %d, want the cap %d", len(w.seq), maxCycle)
		}
		counts := make([]int, len(ws))
		for _, i := range w.seq {
			counts[i]++
		}
		lo, hi := slices.Min(counts), slices.Max(counts)
		if hi-lo > 1 {
			t.Errorf("shares between %d and %d, want within one", lo, hi)
		}
	})
}

func TestLeastRequest(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		active  []int64
		want    int
	}{
		{"fewest in flight", []int{1, 1, 1}, []int64{3, 1, 2}, 1},
		{"in flight per unit of weight", []int{1, 4}, []int64{2, 4}, 1},
		{"weight does not save an overloaded server", []int{1, 4}, []int64{1, 8}, 0},
		{"weight zero counts as one", []int{0, 1}, []int64{1, 2}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			servers := weighted(tt.weights...)
			for i, a := range tt.active {
				servers[i].active.Store(a)
			}
			bal, err := newBalancer(LeastRequest, servers)
			if err != nil {
				t.Fatal(err)
			}
			// Whatever the rotating start, the least loaded wins.
			for _, got := range firsts(bal, servers, 2*len(servers)) {
				if got != tt.want {
					t.Fatalf("chose %d, want %d", got, tt.want)
				}
			}
		})
	}
	t.Run("ties rotate", func(t *testing.T) {
		servers := weighted(1, 1, 1)
		got := firsts(&leastRequest{}, servers, 3)
		slices.Sort(got)
		if !slices.Equal(got, []int{0, 1, 2}) {
			t.Errorf("idle servers chosen %v, want each once", got)
		}
	})
}

func TestNewBalancerRejectsUnknownPolicy(t *testing.T) {
	if _, err := newBalancer("random", weighted(1)); err == nil {
		t.Error("unknown policy accepted")
	}
}

// TestSlowStart: a server back in rotation has its weight ramped up
// linearly over health.slow_start, from 10%, and is admitted as a first
// choice with that probability, drawn from the injected coin only during
// the ramp.
func TestSlowStart(t *testing.T) {
	const slow = 10 * time.Second
	now := time.Unix(1000, 0)
	tests := []struct {
		name      string
		slowStart time.Duration
		back      time.Duration // how long ago the server came back; -1: never left
		coin      float64       // -1: must not be drawn
		weight    float64
		admitted  bool
	}{
		{"no slow start", 0, 0, -1, 4, true},
		{"never out of rotation", slow, -1, -1, 4, true},
		{"just back: 10% floor", slow, 0, 0.09, 0.4, true},
		{"just back: 10% floor, coin above", slow, 0, 0.1, 0.4, false},
		{"half way, coin below", slow, slow / 2, 0.49, 2, true},
		{"half way, coin at the ramp", slow, slow / 2, 0.5, 2, false},
		{"ramp over", slow, slow, -1, 4, true},
		{"long back", slow, time.Hour, -1, 4, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := weighted(4)[0]
			if tt.back >= 0 {
				s.healthySince.Store(now.Add(-tt.back).UnixNano())
			}
			if w := s.rampedWeight(tt.slowStart, now.UnixNano()); math.Abs(w-tt.weight) > 1e-9 {
				t.Errorf("weight %v, want %v", w, tt.weight)
			}
			coin := func() float64 {
				if tt.coin < 0 {
					t.Error("coin drawn outside the ramp")
				}
				return tt.coin
			}
			if got := s.admits(tt.slowStart, now.UnixNano(), coin); got != tt.admitted {
				t.Errorf("admitted %v, want %v", got, tt.admitted)
			}
		})
	}
}

// TestSlowStartFirstChoice: the balancer's first choice, when ramping up,
// takes the request only if the backend's coin says so; otherwise the
// next server does.
func TestSlowStartFirstChoice(t *testing.T) {
	for _, tt := range []struct {
		coin float64
		want int
	}{{0.2, 0}, {0.5, 1}} {
		t.Run(fmt.Sprint("coin ", tt.coin), func(t *testing.T) {
			b := newTestBackend(t, Config{
				Protocol: H2C, Servers: []ServerConfig{{Address: "a:1"}, {Address: "b:1"}},
				Health: HealthConfig{SlowStart: 10 * time.Second},
			})
			b.coin = func() float64 { return tt.coin }
			st := b.cur()
			for _, s := range st.servers {
				installFake(t, s, 200, 10)
			}
			// Server 0, the round robin's first choice, came back 3s ago:
			// its ramp is at 30%.
			st.servers[0].healthySince.Store(time.Now().Add(-3 * time.Second).UnixNano())
			c, err := b.try(st, nil, false)
			if err != nil || c == nil {
				t.Fatalf("try: %v, %v", c, err)
			}
			defer c.release()
			if got := c.server(); got != st.servers[tt.want] {
				t.Errorf("took a slot on %s, want %s", got.addr, st.servers[tt.want].addr)
			}
		})
	}
}
