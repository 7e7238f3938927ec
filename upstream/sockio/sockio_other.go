//go:build !linux

package sockio

import (
	"io"
	"net"
)

// Reader returns nc: the raw calls are Linux only.
func Reader(nc net.Conn) io.Reader { return nc }

// Writer returns nc.
func Writer(nc net.Conn) io.Writer { return nc }

// Conn returns nc.
func Conn(nc net.Conn) net.Conn { return nc }
