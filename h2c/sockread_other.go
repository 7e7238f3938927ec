//go:build !linux

package h2c

import (
	"io"
	"net"
)

// SockReader returns nc: the raw reads are Linux only.
func SockReader(nc net.Conn) io.Reader { return nc }
