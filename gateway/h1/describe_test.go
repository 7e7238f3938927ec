package h1

import (
	"fmt"
	"strings"
)

// describe renders a Request for comparison in tests.
func describe(r *Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q %q 1.%d host=%q framing=%d cl=%d close=%v upgrade=%v expect=%v te=%v fields:",
		r.Method, r.Target, r.Minor, r.Host, r.Framing, r.ContentLength, r.Close, r.Upgrade, r.Expect100, r.TETrailers)
	for _, f := range r.Fields {
		fmt.Fprintf(&b, " %q=%q", f.Name, f.Value)
	}
	return b.String()
}
