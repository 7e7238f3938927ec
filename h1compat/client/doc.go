// Package client is Sluice's HTTP/1.1 upstream connection: one keep-alive
// connection to a server that does not speak h2c, carrying one request at
// a time, for the pool in package upstream (which bounds the connections,
// reuses idle ones most recently used first and closes them after the
// idle timeout). It writes each request head in one write, with a small
// body of known length in the same write, and parses answers with the
// front end's strict parser (gateway/h1: ParseResponseHead and the
// ChunkDecoder), so that framing has one implementation.
//
// Who owns a connection's two sides:
//   - While the connection is idle, nobody reads or writes it, no
//     goroutine waits on it and it holds no buffer. Reserve, before a
//     request, peeks at the socket without blocking (MSG_PEEK), so that a
//     connection the server closed while it idled is dropped before a
//     request is written to it. ReserveUnchecked skips the peek, for a
//     request its caller sends again if the connection turns out closed
//     (ErrReusedClosed).
//   - The write side belongs to the goroutine in RoundTrip, which writes
//     the head (and a body of at most a buffer's size) itself. A longer or
//     streamed body is written by one goroutine per such request, started
//     by RoundTrip and owned by the exchange: it ends when the body does,
//     or when the connection is closed (a server answering early, a
//     failure, the request's context); the connection is reused only if
//     it finished cleanly before the answer ended.
//   - The read side belongs to RoundTrip until the response head is in,
//     then to the response body (Body.Read, on whatever goroutine reads
//     it) until the body ends; the read buffer, taken from a pool when the
//     response starts, goes back when it ends.
//   - A 101 Switching Protocols answer hands both sides, and what was read
//     ahead, to the caller through the response body (an
//     io.ReadWriteCloser); the Conn then reports ErrSwitched.
//
// The request's context interrupts the exchange (a deadline set in the
// past, from a context.AfterFunc, or from the context's own notification
// when it is a CancelNotifier, as upstream's attempt context is) and the
// connection is then closed.
//
// Both the pool's connections and the tunnels of upgrade requests
// (upstream/tunnel.go, a connection of their own per tunnel, handed over
// by the 101) use this package; net/http's HTTP/1.1 transport is left only
// in this package's differential test, as the reference.
package client
