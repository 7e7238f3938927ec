// Package h1 is Sluice's HTTP/1.1 request parser: the request head
// (RFC 9112 sections 2 to 5) and chunked bodies (section 7.1), strictly,
// so that the parser that decides a request's framing is the one that
// checks it.
//
// It holds no sockets and starts no goroutines. Whoever calls it owns both
// sides of the connection: the read side (the smuggling guard in package
// gateway today, which reads the socket and hands each complete head to
// ParseHead and each body byte to a ChunkDecoder), and the write side (the
// server answering the requests, which alone writes status lines and
// responses). Parsed fields are slices of the caller's read buffer: they
// stay valid only while the caller keeps that buffer unchanged.
package h1
