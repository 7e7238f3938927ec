//go:build !linux

package h1

import "testing"

// deferAccept is nil where listeners cannot defer accept.
var deferAccept func(*testing.T, *Server) string

// quickAccept is nil where the accept loop does not read (serveAccepted).
var quickAccept func(*testing.T, *Server) string
