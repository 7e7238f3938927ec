package client

// Window arithmetic, apart from I/O (grpc-go's flowcontrol.go, x/net's
// flow.go).

// maxWindow is the largest flow-control window HTTP/2 allows.
const maxWindow = 1<<31 - 1

// inflow is a receive window: how much the server may still send, and
// how much the consumer has freed that has not yet been returned to the
// server with WINDOW_UPDATE.
type inflow struct {
	avail  int32 // what the server may send now
	unsent int32 // consumed, not yet returned
	size   int32 // the window returned to in full
}

func newInflow(size int32) inflow { return inflow{avail: size, size: size} }

// take accounts for n received bytes; false means the server overran the
// window (FLOW_CONTROL_ERROR).
func (f *inflow) take(n uint32) bool {
	if n > uint32(f.avail) {
		return false
	}
	f.avail -= int32(n)
	return true
}

// free accounts for n consumed bytes and returns the WINDOW_UPDATE
// increment to send now, or 0. Updates are batched until a quarter of
// the window is owed, so a stream read in small pieces costs few frames.
func (f *inflow) free(n int) int32 {
	f.unsent += int32(n)
	if f.unsent < f.size/4 && f.avail > 0 {
		return 0
	}
	inc := f.unsent
	f.unsent = 0
	f.avail += inc
	return inc
}

// flush returns everything owed, unbatched.
func (f *inflow) flush() int32 {
	inc := f.unsent
	f.unsent = 0
	f.avail += inc
	return inc
}

// outflow is a send window.
type outflow struct{ n int32 }

// add applies a WINDOW_UPDATE or an INITIAL_WINDOW_SIZE change; false
// means the window would exceed 2^31-1 (FLOW_CONTROL_ERROR).
func (f *outflow) add(d int32) bool {
	sum := int64(f.n) + int64(d)
	if sum > maxWindow {
		return false
	}
	f.n = int32(sum)
	return true
}
