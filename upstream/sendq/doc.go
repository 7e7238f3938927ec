// Package sendq writes small HTTP/1.1 request heads to upstream sockets
// from one goroutine per queue, so that a request's own goroutine goes
// straight to waiting for the answer.
//
// Why: a request that writes its head itself wakes the backend's reading
// thread for that one request; with thousands of clients, Tomcat's NIO
// poller then wakes about twice per request, which under load costs it
// more CPU per request behind Sluice than behind HAProxy, whose event loop
// writes the requests of one pass together. The queue's goroutine writes
// every head that came while it waited for its turn back to back
// (BENCHMARKS.md, twenty-first session).
//
// What a queue takes: a Job, a head of at most MaxHead bytes with nothing
// after it, for a connection that has no other request in flight (HTTP/1.1
// without pipelining). The queue writes it with one non-blocking send(2)
// and never waits on a socket: a head the send buffer does not take whole
// fails the job, and the queue shuts the socket down so that the request's
// read of the answer ends too. A full queue refuses a job (Send reports
// false) and the caller writes the head itself.
//
// Who owns what: the queue's goroutine owns the write side of a socket
// from Send until it settles the job; the job's owner (the request's
// goroutine) keeps the read side and must call Settle before it writes
// again, reuses the head's buffer or lets the connection go. Close stops
// the goroutine; jobs still queued then fail as not sent.
//
// Under -race the queue writes through the connection itself, as package
// sockio does, so that the race detector sees the write before the
// peer's read.
package sendq
