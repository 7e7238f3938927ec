//go:build !race

package sendq

// raceEnabled: the binary is built with -race (see the package doc).
const raceEnabled = false
