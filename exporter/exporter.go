// Package exporter is the one prometheus.Collector of ipacct_exporter: on
// each scrape it reads every backend, sums the tagged counters per tag,
// direction and family, and sends them as const metrics.
package exporter

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ipacct/ipacct_exporter/backends"
	"github.com/ipacct/ipacct_exporter/tag"
)

// maxLoggedComments bounds the memory spent remembering which invalid
// comments were already logged.
const maxLoggedComments = 4096

// Source is a backend under the name of its collector.
type Source struct {
	Name    string
	Backend backends.Backend
}

// Exporter collects from its sources on every scrape.
type Exporter struct {
	sources []Source
	logger  *slog.Logger
	timeout time.Duration

	mu sync.Mutex // guards the fields below, which only steer logs and gaps
	// contributed holds, per source, the series it added to in its last
	// successful read. While the source fails those series are left out:
	// a sum that silently lost a part would look like a counter reset and
	// make rate() and increase() invent traffic.
	contributed map[string]map[seriesKey]struct{}
	lastErr     map[string]string
	logged      map[string]struct{}
}

// New returns an Exporter over the sources, in the order that decides which
// description a tag shows. timeout bounds each scrape's reads (0: none).
func New(logger *slog.Logger, timeout time.Duration, sources ...Source) *Exporter {
	return &Exporter{
		sources:     sources,
		logger:      logger,
		timeout:     timeout,
		contributed: make(map[string]map[seriesKey]struct{}),
		lastErr:     make(map[string]string),
		logged:      make(map[string]struct{}),
	}
}

// Describe implements prometheus.Collector.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{tagBytesDesc, tagPacketsDesc, tagRulesDesc, tagInfoDesc, invalidCommentsDesc,
		ipBytesDesc, ipPacketsDesc, ipAddressesDesc, ipCapacityDesc, ipOverflowBytesDesc, ipOverflowPacketsDesc, successDesc, durationDesc} {
		ch <- d
	}
}

type seriesKey struct {
	tag       string
	direction tag.Direction
	family    string
}

type series struct {
	packets, bytes float64
	rules          int
}

type result struct {
	reading  backends.Reading
	err      error
	duration time.Duration
}

// Collect implements prometheus.Collector.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	ctx := context.Background()
	if e.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.timeout)
		defer cancel()
	}
	results := make([]result, len(e.sources))
	var wg sync.WaitGroup
	for i, s := range e.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = read(ctx, s.Backend)
		}()
	}
	wg.Wait()

	sums := make(map[seriesKey]*series)
	var order []seriesKey
	descriptions := make(map[string]string)
	var tags []string
	withheld := make(map[seriesKey]struct{})
	var sets []backends.AddressSet

	e.mu.Lock()
	for i, s := range e.sources {
		r := results[i]
		ch <- prometheus.MustNewConstMetric(durationDesc, prometheus.GaugeValue, r.duration.Seconds(), s.Name)
		if r.err != nil {
			ch <- prometheus.MustNewConstMetric(successDesc, prometheus.GaugeValue, 0, s.Name)
			e.logFailure(s.Name, r.err)
			for k := range e.contributed[s.Name] {
				withheld[k] = struct{}{}
			}
			continue
		}
		ch <- prometheus.MustNewConstMetric(successDesc, prometheus.GaugeValue, 1, s.Name)
		ch <- prometheus.MustNewConstMetric(invalidCommentsDesc, prometheus.GaugeValue, float64(len(r.reading.Invalid)), s.Name)
		e.logRecovery(s.Name)
		e.logInvalid(s.Name, r.reading.Invalid)

		sets = append(sets, r.reading.Sets...)
		contributed := make(map[seriesKey]struct{})
		for _, rec := range r.reading.Records {
			k := seriesKey{rec.Tag, rec.Direction, rec.Family}
			sum, ok := sums[k]
			if !ok {
				sum = &series{}
				sums[k] = sum
				order = append(order, k)
			}
			sum.packets += float64(rec.Packets)
			sum.bytes += float64(rec.Bytes)
			sum.rules++
			contributed[k] = struct{}{}
			if d, seen := descriptions[rec.Tag]; !seen {
				descriptions[rec.Tag] = rec.Description
				tags = append(tags, rec.Tag)
			} else if d == "" {
				descriptions[rec.Tag] = rec.Description
			}
		}
		e.contributed[s.Name] = contributed
	}
	e.mu.Unlock()

	shown := make(map[string]bool)
	for _, set := range sets {
		if d, seen := descriptions[set.Tag]; !seen {
			descriptions[set.Tag] = set.Description
			tags = append(tags, set.Tag)
		} else if d == "" {
			descriptions[set.Tag] = set.Description
		}
		shown[set.Tag] = true
	}
	collectSets(ch, sets)
	for _, k := range order {
		if _, ok := withheld[k]; ok {
			continue
		}
		sum := sums[k]
		labels := []string{k.tag, string(k.direction), k.family}
		ch <- prometheus.MustNewConstMetric(tagBytesDesc, prometheus.CounterValue, sum.bytes, labels...)
		ch <- prometheus.MustNewConstMetric(tagPacketsDesc, prometheus.CounterValue, sum.packets, labels...)
		ch <- prometheus.MustNewConstMetric(tagRulesDesc, prometheus.GaugeValue, float64(sum.rules), labels...)
		shown[k.tag] = true
	}
	for _, t := range tags {
		if shown[t] {
			ch <- prometheus.MustNewConstMetric(tagInfoDesc, prometheus.GaugeValue, 1, t, descriptions[t])
		}
	}
}

// read runs one backend, turning a panic on odd kernel data into an error:
// one broken source must not take the others' metrics down with it.
func read(ctx context.Context, b backends.Backend) (r result) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			r = result{err: fmt.Errorf("panic while reading: %v", p)}
		}
		r.duration = time.Since(start)
	}()
	reading, err := b.Read(ctx)
	return result{reading: reading, err: err}
}

// logFailure logs a collector's error when it is new, and at debug level
// while it repeats, so that a scrape every 15 s does not flood the journal.
func (e *Exporter) logFailure(name string, err error) {
	msg := err.Error()
	if e.lastErr[name] == msg {
		e.logger.Debug("collector still failing", "collector", name, "err", err)
		return
	}
	e.lastErr[name] = msg
	e.logger.Error("collector failed", "collector", name, "err", err)
}

func (e *Exporter) logRecovery(name string) {
	if _, failed := e.lastErr[name]; failed {
		delete(e.lastErr, name)
		e.logger.Info("collector recovered", "collector", name)
	}
}

// logInvalid logs each distinct invalid comment once.
func (e *Exporter) logInvalid(name string, invalid []backends.InvalidComment) {
	for _, ic := range invalid {
		key := name + "\x00" + ic.Comment
		if _, ok := e.logged[key]; ok {
			continue
		}
		if len(e.logged) >= maxLoggedComments {
			return
		}
		e.logged[key] = struct{}{}
		e.logger.Warn("rule not counted: its tag comment does not parse", "collector", name, "rule", ic.Where, "comment", ic.Comment, "err", ic.Err)
	}
}
