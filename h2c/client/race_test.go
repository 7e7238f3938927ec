//go:build race

package client

// raceEnabled: the race detector allocates, so allocation pins do not
// apply.
const raceEnabled = true
