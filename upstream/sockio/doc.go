// Package sockio reads and writes connected TCP sockets with raw system
// calls: read(2) and sendto(2) made with RawSyscall inside the socket's
// RawConn callbacks. The socket is non-blocking, so such a call never
// waits in the kernel; when it would block, the callback says so and the
// wait is Go's poller's, under the connection's deadlines, as in
// net.Conn's own Read and Write. What it saves is the runtime's syscall
// state around each call: while a goroutine is in it, sysmon hands its P
// (and the goroutines queued on it) to another thread, which it may have
// to wake, whenever the call outlasts a sysmon tick; a P that has just
// woken the requests a batch of answers completes always has such
// goroutines. Measured in BENCHMARKS.md (sixteenth session).
//
// Under -race every call goes through the connection itself: the race
// detector orders a write with the peer's read only through net's own
// calls. Elsewhere than Linux, likewise.
//
// Who owns what: sockio starts no goroutine and owns no socket side; a
// Reader, Writer or Conn is used by the goroutines that would use the
// connection itself, one reader and one writer at a time.
package sockio
