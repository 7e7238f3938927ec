//go:build race

package h1

// raceEnabled: the race detector enlarges frames and stacks.
const raceEnabled = true
