//go:build !linux

package client

// peekDone is a no-op off Linux: a connection the server closed while it
// idled is found when the request written to it gets no answer
// (ErrServerClosed).
func (c *Conn) peekDone(uintptr) bool {
	c.peekDead = false
	return true
}
