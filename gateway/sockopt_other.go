//go:build !linux

package gateway

import "net"

// listenKeepAlive is net.ListenConfig.KeepAlive for client listeners: 0,
// Go's default keep-alive on each accepted connection.
const listenKeepAlive = 0

// setListenerOpts sets nothing here.
func setListenerOpts(int) error { return nil }

// rawListener is ln itself here.
func rawListener(ln *net.TCPListener) (net.Listener, error) { return ln, nil }
