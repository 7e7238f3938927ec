// Package rawsock accepts client TCP connections with accept4(2) on the
// listening socket and serves each on its bare descriptor, which is
// registered with Go's poller only when an operation on it must wait.
//
// Go's net.TCPListener registers every accepted socket with the poller
// (epoll_ctl ADD, and DEL when it closes) and asks for its local address
// (getsockname) and TCP_NODELAY (setsockopt), four system calls before the
// first byte is read. A client that sends one request on a fresh
// connection and goes (Connection: close) has its request at hand when
// accept returns (the listener's TCP_DEFER_ACCEPT), its answer fits the
// socket's send buffer, and no operation on it ever waits: so it is read,
// answered and closed on the bare descriptor, with none of the four.
// A connection whose operation would block (a keep-alive client's next
// request, a slow client, a large answer) is registered then, once, and
// waits on the poller like any other: through an os.File over the same
// descriptor, which carries the deadlines set so far. Its writes still try
// the bare descriptor first and go through the file only for what the
// send buffer did not take: a send that never waits, made with
// RawSyscall, keeps the goroutine's P out of the runtime's syscall state
// (which sysmon hands to another thread when the send is slow) and takes
// no file lock (except under -race, whose detector orders a write with
// the peer's read only through the file). The accept4, shutdown and close
// of a bare descriptor are raw calls too: none of them waits.
//
// Who owns what: rawsock starts no goroutine and owns no socket side. A
// Conn's reads and writes belong to its callers, as a net.Conn's do; the
// descriptor belongs to the Conn until it is registered, then to its
// os.File. Operations on the bare descriptor hold a reference, so that
// Close never closes the descriptor under one of them (its number could
// be reused by the next accept): the last one out closes it.
//
// Linux only; elsewhere the gateway serves net.TCPListener's connections.
package rawsock
