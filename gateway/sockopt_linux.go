//go:build linux

package gateway

import (
	"net"
	"os"
	"syscall"
	"time"

	"github.com/sluice-gw/sluice/gateway/rawsock"
)

// listenKeepAlive is net.ListenConfig.KeepAlive for client listeners: -1,
// Go sets nothing on an accepted connection, which inherits the
// listener's TCP keep-alive (setListenerOpts) from the kernel instead:
// four setsockopt calls fewer per connection.
const listenKeepAlive = -1

// Client connections' TCP keep-alive: Go's defaults for an accepted
// connection (net.KeepAliveConfig).
const (
	keepAliveIdle     = 15 * time.Second
	keepAliveInterval = 15 * time.Second
	keepAliveCount    = 9
)

// deferAcceptSeconds is the listener's TCP_DEFER_ACCEPT: the kernel hands
// a connection to accept(2) once its first bytes came (every client
// protocol served here speaks first), or, for one that stays silent,
// after the first SYN-ACK retransmission, about a second. So accept finds
// the request there, and the first read needs no wait on the poller.
const deferAcceptSeconds = 1

// setListenerOpts sets what accepted connections inherit: TCP keep-alive,
// TCP_NODELAY (Go sets it on each connection it accepts; rawsock does not)
// and deferred accept.
func setListenerOpts(fd int) error {
	for _, o := range []struct {
		level, opt, v int
		name          string
	}{
		{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1, "SO_KEEPALIVE"},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, int(keepAliveIdle / time.Second), "TCP_KEEPIDLE"},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, int(keepAliveInterval / time.Second), "TCP_KEEPINTVL"},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, keepAliveCount, "TCP_KEEPCNT"},
		{syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1, "TCP_NODELAY"},
		{syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, deferAcceptSeconds, "TCP_DEFER_ACCEPT"},
	} {
		if err := syscall.SetsockoptInt(fd, o.level, o.opt, o.v); err != nil {
			return os.NewSyscallError("setsockopt "+o.name, err)
		}
	}
	return nil
}

// rawListener has ln's connections accepted and served by rawsock: no
// poller registration, getsockname or setsockopt for one that never waits.
func rawListener(ln *net.TCPListener) (net.Listener, error) {
	rl, err := rawsock.NewListener(ln)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return rl, nil
}
