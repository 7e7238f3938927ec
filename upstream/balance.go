package upstream

// Choosing a server: which servers a request may use (selection), which it
// tries first (the balancer), and slow start's ramp for a returning server.

import (
	"fmt"
	"sync/atomic"
	"time"
)

// balancer chooses which server a request tries first; the others follow
// in index order, so a full server never blocks a request another can take.
type balancer interface {
	first(servers []*Server) int
}

var (
	_ balancer = (*weightedRR)(nil)
	_ balancer = (*leastRequest)(nil)
)

func newBalancer(policy string, servers []*Server) (balancer, error) {
	switch policy {
	case RoundRobin, "":
		return newWeightedRR(servers), nil
	case LeastRequest:
		return &leastRequest{}, nil
	}
	return nil, fmt.Errorf("upstream: unknown balance policy %q", policy)
}

// weightedRR is smooth weighted round robin (nginx's algorithm), precomputed
// into one cycle so that picking is a single atomic add, lock-free.
type weightedRR struct {
	seq  []int
	next atomic.Uint64
}

// maxCycle bounds the precomputed cycle; weights are capped at 1000 by config.
const maxCycle = 1 << 16

func newWeightedRR(servers []*Server) *weightedRR {
	total := 0
	for _, s := range servers {
		total += s.weight()
	}
	if total > maxCycle {
		total = maxCycle
	}
	seq := make([]int, 0, total)
	cur := make([]int, len(servers))
	sum := 0
	for _, s := range servers {
		sum += s.weight()
	}
	for len(seq) < total {
		best := 0
		for i, s := range servers {
			cur[i] += s.weight()
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= sum
		seq = append(seq, best)
	}
	return &weightedRR{seq: seq}
}

func (w *weightedRR) first([]*Server) int {
	n := w.next.Add(1) - 1
	return w.seq[n%uint64(len(w.seq))]
}

// leastRequest picks the server with the fewest in-flight requests per unit
// of weight; a rotating start breaks ties so idle servers share load.
type leastRequest struct {
	next atomic.Uint64
}

func (l *leastRequest) first(servers []*Server) int {
	n := len(servers)
	start := int(l.next.Add(1) % uint64(n))
	best, bestLoad := start, -1.0
	for i := 0; i < n; i++ {
		j := (start + i) % n
		s := servers[j]
		load := float64(s.active.Load()) / float64(s.weight())
		if bestLoad < 0 || load < bestLoad {
			best, bestLoad = j, load
		}
	}
	return best
}

// selection says which servers a request may use right now: servers not
// ejected, primaries before backups, and not the server that just failed
// when another will do.
type selection struct {
	now     int64
	backups bool // no primary is usable: use backups
	avoid   *Server
}

func (sel selection) ok(s *Server) bool {
	return s.backup() == sel.backups && s.inRotation(sel.now) && s != sel.avoid
}

// eligible builds the selection, and reports false when no server at all
// may take the request.
func eligible(servers []*Server, now int64, avoid *Server) (selection, bool) {
	for _, backups := range []bool{false, true} {
		n, onlyAvoid := 0, false
		for _, s := range servers {
			if s.backup() == backups && s.inRotation(now) {
				n++
				onlyAvoid = s == avoid
			}
		}
		if n == 0 {
			continue
		}
		sel := selection{now: now, backups: backups, avoid: avoid}
		if n == 1 && onlyAvoid {
			// The server that failed is the only one left: retry it.
			sel.avoid = nil
		}
		return sel, true
	}
	return selection{}, false
}

// rampedWeight is the weight a server has now, scaled down during its slow
// start after coming back.
func (s *Server) rampedWeight(slowStart time.Duration, now int64) float64 {
	w := float64(s.weight())
	since := s.healthySince.Load()
	if slowStart <= 0 || since == 0 {
		return w
	}
	el := time.Duration(now - since)
	if el >= slowStart {
		return w
	}
	return w * max(float64(el)/float64(slowStart), 0.1)
}

// admits decides, during slow start, whether s takes a request it was
// chosen for first: with probability equal to its ramp, drawing from coin
// (uniform in [0, 1)) only during the ramp.
func (s *Server) admits(slowStart time.Duration, now int64, coin func() float64) bool {
	r := s.rampedWeight(slowStart, now) / float64(s.weight())
	return r >= 1 || coin() < r
}
