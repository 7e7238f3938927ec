package upstream

import (
	"fmt"
	"sync/atomic"
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
