//go:build race

package gateway

// raceEnabled: the race detector adds allocations of its own, so the
// allocation pins do not apply.
const raceEnabled = true
