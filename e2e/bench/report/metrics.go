package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// CounterSum sums every series of the counter name in a Prometheus text
// exposition (all label sets). A counter that is absent counts 0: a
// labelled counter has no series until its first increment.
func CounterSum(text, name string) (float64, error) {
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		switch {
		case strings.HasPrefix(rest, "{"):
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				return 0, fmt.Errorf("%s: unterminated labels in %q", name, line)
			}
			rest = rest[end+1:]
		case strings.HasPrefix(rest, " "):
		default:
			continue // another metric with this prefix (name_created, ...)
		}
		fields := strings.Fields(rest) // value [timestamp]
		if len(fields) == 0 {
			return 0, fmt.Errorf("%s: no value in %q", name, line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil || math.IsNaN(v) {
			return 0, fmt.Errorf("%s: bad value in %q", name, line)
		}
		sum += v
	}
	return sum, sc.Err()
}

// cmdCounter: report counter BEFORE AFTER NAME prints how much the counter
// NAME (summed over its label sets) grew between two /metrics scrapes.
func cmdCounter(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("usage: report counter BEFORE AFTER NAME")
	}
	var v [2]float64
	for i, path := range args[:2] {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if len(b) == 0 {
			return fmt.Errorf("%s: empty scrape", path)
		}
		if v[i], err = CounterSum(string(b), args[2]); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	fmt.Println(strconv.FormatFloat(v[1]-v[0], 'f', -1, 64))
	return nil
}
