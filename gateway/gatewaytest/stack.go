package gatewaytest

import (
	"runtime/metrics"
	"unsafe"
)

// StartingStack is the stack, in bytes, new goroutines start with: the
// runtime's adaptive /gc/stack/starting-size:bytes.
func StartingStack() int {
	s := []metrics.Sample{{Name: "/gc/stack/starting-size:bytes"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// GrowsStack calls f on the current goroutine, which has just started
// with a stack of start bytes, leaving it avail bytes of them (counted
// from the goroutine's top), and reports whether the stack had to grow.
func GrowsStack(start, avail int, f func()) bool {
	var top byte
	before := uintptr(unsafe.Pointer(&top))
	PadTo(&top, start-avail, f)
	// A grown stack is a copy: top has moved.
	return uintptr(unsafe.Pointer(&top)) != before
}

// PadTo calls f once the stack is at least n bytes deeper than top, a
// variable of a caller (a pointer, so that it moves with the stack).
//
//go:noinline
func PadTo(top *byte, n int, f func()) {
	var pad [32]byte
	if uintptr(unsafe.Pointer(top))-uintptr(unsafe.Pointer(&pad[0])) < uintptr(n) {
		PadTo(top, n, f)
		return
	}
	f()
}
