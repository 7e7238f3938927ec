//go:build race

package rawsock

// raceEnabled: the binary is built with -race (see Conn.Write).
const raceEnabled = true
