// Package h1 is Sluice's HTTP/1.1 front end: a strict request parser
// (RFC 9112: heads in head.go, chunked bodies in chunked.go) and a server
// built on it (server.go), so that the parser that decides a request's
// framing is the one that checks it.
//
// The parser holds no sockets; its fields are slices of the caller's read
// buffer, valid while the caller keeps that buffer unchanged. Today the
// smuggling guard in package gateway calls it on the bytes Go's server
// reads, and the Server here calls it on its own.
//
// Who owns a served connection's two sides:
//   - A connection Server.Serve accepts whose socket is at hand
//     (QuickSocket) is read on the accept loop (conn.serveAccepted),
//     which does only what never waits: a whole last request
//     (Connection: close) goes to the admission from there, unwatched,
//     and nothing else of the connection's runs there; a whole
//     keep-alive request goes to the admission with a watcher started
//     for it, part of a head to a worker, and a connection with nothing
//     to read yet to its watcher, which waits under the head's clock.
//     Any other connection gets its goroutine at once (conn.begin),
//     which goes on as its watcher and does the same from there.
//   - The read side belongs, while the connection is idle, to its watcher
//     goroutine (conn.await), which waits for readability without a
//     buffer and then hands the connection to a worker. When what came
//     is a whole request that needs nothing more from the socket, the
//     watcher reads and parses it itself (takeRequest, Linux) and goes
//     on waiting, watching that request, within the same wait: the
//     worker then reads nothing for it. Else the worker reads and
//     parses each head, and lends the read side to the
//     request's body (body.Read, on whatever goroutine the handler reads
//     it from) until the body ends. Only then does the watcher start
//     waiting on the socket, to notice a client that goes away
//     mid-response (conn.watch); when the request ends, the connection is
//     handed to it (conn.idle), and its wait is the wait for the next
//     request. Having handed that to a worker, it parks until the worker
//     has it watch again: a connection keeps one watcher goroutine.
//   - The write side belongs to the request's response (response.go),
//     serialised by conn.wmu: the handler's writes and the 100 Continue
//     the body reader may send. Requests are served one at a time, so
//     pipelined answers go out in order. A response after which the
//     connection closes ends the write side with its last bytes
//     (conn.writeLast).
//   - Hijack hands both sides, and what was read ahead, to the caller.
//
// Requests are served in turn (workers.go): no more run at once than
// Server.AdmitLimit; a request its watcher read whole while all places
// are taken waits, as its connection, in a FIFO, its watcher still
// watching the socket. A connection whose head is still coming goes to a
// worker at once, holding no place (a slow client holds up no one).
//
// The handler's *http.Request, its URL and header map are not allocated
// per request: they live with the pooled response (reqState in
// request.go) and are cleared and reused once the handler has returned,
// as the http.Handler contract allows; the head's strings are cut from
// one string per request. The body is allocated apart, as a read of it
// may come late from a goroutine the handler started.
package h1
