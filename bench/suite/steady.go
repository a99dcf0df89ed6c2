package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// steadyResult is what the steady-memory check measured.
type steadyResult struct {
	scrapes            int
	first              int // the scrape of the first reading
	took               time.Duration
	rss1, rss2         float64 // process_resident_memory_bytes
	heap1, heap2       float64 // go_memstats_heap_inuse_bytes
	peakRSS            uint64
	scrapeMedianSample time.Duration
}

// steadyState scrapes until scrape total, and compares the exporter's own
// memory metrics after scrape 100 (or half the total, when smaller) with
// those after the last.
func steadyState(ex *exporterProc, done, total int, check func([]byte) error) (*steadyResult, error) {
	s := &steadyResult{scrapes: total, first: min(100, total/2)}
	if s.first <= done {
		s.first = done + 1
	}
	if s.first >= total {
		return nil, fmt.Errorf("-scrapes-steady %d is too few after %d scrapes", total, done)
	}
	logf("steady state: scrapes %d to %d", done+1, total)
	start := time.Now()
	var durations []time.Duration
	for i := done + 1; i <= total; i++ {
		t := time.Now()
		body, err := ex.scrape()
		durations = append(durations, time.Since(t))
		if err != nil {
			return nil, fmt.Errorf("scrape %d: %w", i, err)
		}
		if i%100 == 0 && i != s.first && i != total {
			logf("steady state: scrape %d/%d: %s", i, total, durations[len(durations)-1].Round(time.Millisecond))
		}
		if i != s.first && i != total {
			continue
		}
		if err := s.reading(i, body, check); err != nil {
			return nil, err
		}
	}
	s.took = time.Since(start)
	s.scrapeMedianSample = (&probe{samples: durations}).median()
	var err error
	s.peakRSS, _, err = procMemory(ex.cmd.Process.Pid)
	return s, err
}

// reading checks the answer to scrape i, the first or the last, and keeps
// the memory it reports.
func (s *steadyResult) reading(i int, body []byte, check func([]byte) error) error {
	if err := check(body); err != nil {
		return err
	}
	text, _ := decode(body)
	rss, err1 := metricValue(text, "process_resident_memory_bytes")
	heap, err2 := metricValue(text, "go_memstats_heap_inuse_bytes")
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if i == s.first {
		s.rss1, s.heap1 = rss, heap
	} else {
		s.rss2, s.heap2 = rss, heap
	}
	logf("steady state: after scrape %d: RSS %s, heap in use %s", i, mib(uint64(rss)), mib(uint64(heap)))
	return nil
}

// metricValue is the value of an unlabelled series in a text exposition.
func metricValue(text []byte, name string) (float64, error) {
	for line := range bytes.Lines(text) {
		if rest, ok := bytes.CutPrefix(line, []byte(name+" ")); ok {
			return strconv.ParseFloat(string(bytes.TrimSpace(rest)), 64)
		}
	}
	return 0, fmt.Errorf("the scrape has no %s", name)
}

// procMemory reads a process's VmHWM (peak resident set) and VmRSS, in
// bytes.
func procMemory(pid int) (peak, rss uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseUint(f[0], 10, 64)
		switch k {
		case "VmHWM":
			peak = n << 10
		case "VmRSS":
			rss = n << 10
		}
	}
	if peak == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
	}
	return peak, rss, nil
}
