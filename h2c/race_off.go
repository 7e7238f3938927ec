//go:build !race

package h2c

// raceEnabled: the binary is built with -race (see SockReader).
const raceEnabled = false
