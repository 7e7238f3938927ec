// Package rank holds the benchmark's one percentile rule, shared by the
// HTTP/3 load generator and the report that reads other tools' latency
// logs, so that every p50 and p99 in the table is computed the same way.
package rank

// Percentile is the nearest-rank p-th percentile (0..100) of sorted
// values, or -1 when there are none.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return -1
	}
	i := int(p/100*float64(len(sorted))+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}
