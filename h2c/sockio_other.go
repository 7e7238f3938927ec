//go:build !linux

package h2c

import (
	"io"
	"net"
)

// SockReader returns nc: the raw reads are Linux only.
func SockReader(nc net.Conn) io.Reader { return nc }

// sockWriterFor returns nc: the raw writes are Linux only.
func sockWriterFor(nc net.Conn) io.Writer { return nc }
