//go:build race

package sockio

// raceEnabled: the binary is built with -race (see the package doc).
const raceEnabled = true
