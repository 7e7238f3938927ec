//go:build race

package hpack

// raceEnabled: the race detector allocates, so allocation pins do not
// apply.
const raceEnabled = true
