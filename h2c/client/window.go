package client

// Noticing a server that keeps the connection send credit of streams that
// have ended (WindowLeak). The check runs as a stream that sent DATA
// leaves the table, under Conn.mu. A suspected leak is confirmed by a
// PING: the server answers it after every frame it sent before, so once
// the ACK is read, credit it was about to return has arrived. A timer of
// the connection's (stopped by closeWith) confirms it if no ACK comes.
// Meanwhile the connection takes no new streams (availableLocked).

import "time"

// leakPing is the payload of the PING that confirms a suspected leak. A
// liveness PING (pingTick) has zeros in its last seven bytes.
var leakPing = [8]byte{'w', 'i', 'n', 'd', 'o', 'w', 'l', 'k'}

// windowLeakedLocked reports the credit the server keeps for ended
// streams, and whether that is over half of what it granted. Credit for
// the open streams' bytes may still be owed, so only bytes beyond what
// they were sent count. Servers that batch their WINDOW_UPDATEs owe less
// than half: Jetty and Netty return credit once half the window is used,
// Go's x/net server once 4 KiB is or half the window.
func (c *Conn) windowLeakedLocked() (int64, bool) {
	leaked := int64(c.sendHigh) - int64(c.sendWin.n) - c.openSent
	return leaked, leaked*2 > int64(c.sendHigh)
}

// checkWindowLocked starts the leak's confirmation when one is suspected.
func (c *Conn) checkWindowLocked() {
	if c.cfg.OnWindowLeak == nil || c.leakSeen || c.leakTimer != nil || c.err != nil {
		return
	}
	if _, ok := c.windowLeakedLocked(); !ok {
		return
	}
	c.leakTimer = time.AfterFunc(windowLeakGrace, c.confirmWindowLeak)
	// The PING is written by a goroutine of the connection's: the
	// caller holds mu, and wmu comes first.
	c.goLocked(func() { c.writeFrame(func() error { return c.fr.WritePing(false, leakPing) }) })
}

// leakPingAcked runs on the reader when the ACK of leakPing arrives: the
// confirmation runs now rather than when the timer fires.
func (c *Conn) leakPingAcked() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leakTimer != nil && c.leakTimer.Stop() {
		// Not on the reader: OnWindowLeak's caller may close the
		// connection.
		c.goLocked(c.confirmWindowLeak)
	}
}

// confirmWindowLeak ends a suspicion: if the credit is still kept,
// OnWindowLeak is told, once per connection; else the connection takes
// streams again.
func (c *Conn) confirmWindowLeak() {
	c.mu.Lock()
	c.leakTimer = nil
	leaked, ok := c.windowLeakedLocked()
	if !ok || c.leakSeen || c.err != nil {
		c.cond.Broadcast()
		c.mu.Unlock()
		c.stateChanged(true)
		return
	}
	c.leakSeen = true
	l := WindowLeak{Leaked: leaked, Granted: c.sendHigh, Window: c.sendWin.n}
	c.mu.Unlock()
	c.cfg.OnWindowLeak(l)
}
