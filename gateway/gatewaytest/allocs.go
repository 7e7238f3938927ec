package gatewaytest

import (
	"slices"
	"testing"
)

// MedianAllocs is the median of a few testing.AllocsPerRun runs of serve,
// after one call to warm connections and pools: a GC cycle or a
// connection event during one run should not fail an allocation pin.
// It logs the runs under what, and returns the median.
func MedianAllocs(t testing.TB, what string, serve func()) float64 {
	t.Helper()
	serve()
	var runs []float64
	for range 5 {
		runs = append(runs, testing.AllocsPerRun(200, serve))
	}
	slices.Sort(runs)
	got := runs[len(runs)/2]
	t.Logf("allocs per %s: %.1f (runs %v)", what, got, runs)
	return got
}
