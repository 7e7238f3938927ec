// Command report is the benchmark driver's helper (e2e/bench/run.sh):
//
//	report parse wrk OUT                 rps, p50 ms, p99 ms, requests, errors (TSV)
//	report parse h2load OUT [LOG]        the same from h2load (percentiles from --log-file)
//	report parse h3load OUT              the same from e2e/bench/h3load
//	report proc PID...                   cpu seconds, VmHWM KiB, VmRSS KiB summed over PIDs
//	report snap FILE                     snapshot every process's CPU ticks
//	report other BEFORE AFTER PID...     CPU seconds used by processes that are not ours
//	report counter BEFORE AFTER NAME     growth of a Prometheus counter between two scrapes
//	report table DIR                     markdown tables from DIR/raw.tsv and DIR/idle.tsv
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: report parse|proc|snap|other|counter|table ...")
		os.Exit(2)
	}
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "parse":
		err = cmdParse(args)
	case "proc":
		err = cmdProc(args)
	case "snap":
		err = cmdSnap(args)
	case "other":
		err = cmdOther(args)
	case "counter":
		err = cmdCounter(args)
	case "table":
		err = cmdTable(args)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}
