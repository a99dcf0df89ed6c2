// Package exporter gathers the counters of ipacct_exporter: on each scrape
// it reads every backend, sums the tagged counters per tag, direction and
// family, and sends them as const metrics. The per-address series, which
// can number millions, skip the const metrics and the registry's checks:
// they are built straight into the exposition's families (addresses.go).
package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ipacct/ipacct_exporter/backends"
	"github.com/ipacct/ipacct_exporter/tag"
)

// maxLoggedComments bounds the memory spent remembering which invalid
// comments were already logged.
const maxLoggedComments = 4096

// Source is a backend under the name of its collector.
type Source struct {
	Name string
	// NetNS is the value of the netns label for what the backend reads. Only
	// an exporter made by NewForNamespaces shows it.
	NetNS   string
	Backend backends.Backend
}

// ErrSourceGone is what a backend's Read wraps when what it reads vanished
// during the scrape, such as a network namespace deleted between listing and
// reading: the source is left out of that scrape, unlogged, as if it had not
// been listed.
var ErrSourceGone = errors.New("source is gone")

// sourceKey names a source among those of every scrape.
type sourceKey struct{ name, netns string }

// Exporter collects from its sources on every scrape.
type Exporter struct {
	list    func() []Source
	d       *descs
	withNS  bool
	logger  *slog.Logger
	timeout time.Duration

	mu sync.Mutex // guards the fields below, which only steer logs and gaps
	// contributed holds, per source, the series it added to in its last
	// successful read. While the source fails those series are left out:
	// a sum that silently lost a part would look like a counter reset and
	// make rate() and increase() invent traffic.
	contributed map[sourceKey]map[seriesKey]struct{}
	lastErr     map[sourceKey]string
	logged      map[string]struct{}
}

// New returns an Exporter over the sources, in the order that decides which
// description a tag shows. timeout bounds each scrape's reads (0: none).
func New(logger *slog.Logger, timeout time.Duration, sources ...Source) *Exporter {
	return newExporter(logger, timeout, false, func() []Source { return sources })
}

// NewForNamespaces returns an Exporter that calls list on every scrape and
// labels each source's series with its NetNS, for reading several network
// namespaces: namespaces that appear or vanish between scrapes come and go
// with their series, without a restart.
func NewForNamespaces(logger *slog.Logger, timeout time.Duration, list func() []Source) *Exporter {
	return newExporter(logger, timeout, true, list)
}

func newExporter(logger *slog.Logger, timeout time.Duration, withNS bool, list func() []Source) *Exporter {
	return &Exporter{
		list:        list,
		d:           newDescs(withNS),
		withNS:      withNS,
		logger:      logger,
		timeout:     timeout,
		contributed: make(map[sourceKey]map[seriesKey]struct{}),
		lastErr:     make(map[sourceKey]string),
		logged:      make(map[string]struct{}),
	}
}

// Gather implements prometheus.Gatherer: it reads every source once and
// returns the exporter's families, sorted by name.
func (e *Exporter) Gather() ([]*dto.MetricFamily, error) {
	s := &scrape{e: e}
	reg := prometheus.NewRegistry()
	if err := reg.Register(s); err != nil {
		return nil, err
	}
	fams, err := reg.Gather()
	fams = append(fams, s.addresses...)
	slices.SortFunc(fams, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return fams, err
}

// scrape is one Gather's collector: the const metrics go through the
// registry, the per-address families are left in addresses.
type scrape struct {
	e         *Exporter
	addresses []*dto.MetricFamily
}

func (s *scrape) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range s.e.d.all() {
		ch <- d
	}
}

func (s *scrape) Collect(ch chan<- prometheus.Metric) { s.addresses = s.e.collect(ch) }

// labels returns the label values of a series, with the namespace's last
// when the exporter shows it.
func (e *Exporter) labels(netns string, values ...string) []string {
	if e.withNS {
		return append(values, netns)
	}
	return values
}

type seriesKey struct {
	netns     string
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

// tagKey is a tag in one namespace.
type tagKey struct{ netns, tag string }

// collect reads every source, sends the const metrics and returns the
// per-address families.
func (e *Exporter) collect(ch chan<- prometheus.Metric) []*dto.MetricFamily {
	ctx := context.Background()
	if e.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.timeout)
		defer cancel()
	}
	sources := e.list()
	results := make([]result, len(sources))
	var wg sync.WaitGroup
	for i, s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = read(ctx, s.Backend)
		}()
	}
	wg.Wait()

	sums := make(map[seriesKey]*series)
	var order []seriesKey
	descriptions := make(map[tagKey]string)
	var tags []tagKey
	// describe keeps a tag's first non-empty description, and the tags in
	// the order first seen.
	describe := func(tk tagKey, d string) {
		if have, seen := descriptions[tk]; !seen {
			tags = append(tags, tk)
		} else if have != "" {
			return
		}
		descriptions[tk] = d
	}
	withheld := make(map[seriesKey]struct{})
	var sets []namespaceSets
	listed := make(map[sourceKey]bool, len(sources))

	e.mu.Lock()
	for i, s := range sources {
		r := results[i]
		sk := sourceKey{s.Name, s.NetNS}
		if errors.Is(r.err, ErrSourceGone) {
			continue
		}
		listed[sk] = true
		ch <- prometheus.MustNewConstMetric(e.d.duration, prometheus.GaugeValue, r.duration.Seconds(), e.labels(s.NetNS, s.Name)...)
		if r.err != nil {
			ch <- prometheus.MustNewConstMetric(e.d.success, prometheus.GaugeValue, 0, e.labels(s.NetNS, s.Name)...)
			e.logFailure(s, r.err)
			for k := range e.contributed[sk] {
				withheld[k] = struct{}{}
			}
			continue
		}
		ch <- prometheus.MustNewConstMetric(e.d.success, prometheus.GaugeValue, 1, e.labels(s.NetNS, s.Name)...)
		ch <- prometheus.MustNewConstMetric(e.d.invalidComments, prometheus.GaugeValue, float64(len(r.reading.Invalid)), e.labels(s.NetNS, s.Name)...)
		e.logRecovery(s)
		e.logInvalid(s, r.reading.Invalid)

		if len(r.reading.Sets) > 0 {
			sets = append(sets, namespaceSets{s.NetNS, r.reading.Sets})
		}
		contributed := make(map[seriesKey]struct{})
		for _, rec := range r.reading.Records {
			k := seriesKey{s.NetNS, rec.Tag, rec.Direction, rec.Family}
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
			describe(tagKey{s.NetNS, rec.Tag}, rec.Description)
		}
		e.contributed[sk] = contributed
	}
	e.forget(listed)
	e.mu.Unlock()

	shown := make(map[tagKey]bool)
	for _, ns := range sets {
		for _, set := range ns.sets {
			tk := tagKey{ns.netns, set.Tag}
			describe(tk, set.Description)
			shown[tk] = true
		}
	}
	addresses := e.collectSets(ch, sets)
	for _, k := range order {
		if _, ok := withheld[k]; ok {
			continue
		}
		sum := sums[k]
		labels := e.labels(k.netns, k.tag, string(k.direction), k.family)
		ch <- prometheus.MustNewConstMetric(e.d.tagBytes, prometheus.CounterValue, sum.bytes, labels...)
		ch <- prometheus.MustNewConstMetric(e.d.tagPackets, prometheus.CounterValue, sum.packets, labels...)
		ch <- prometheus.MustNewConstMetric(e.d.tagRules, prometheus.GaugeValue, float64(sum.rules), labels...)
		shown[tagKey{k.netns, k.tag}] = true
	}
	for _, t := range tags {
		if shown[t] {
			d := descriptions[t]
			if d == "" {
				d = t.tag // as munin labels a graph whose rules have none
			}
			ch <- prometheus.MustNewConstMetric(e.d.tagInfo, prometheus.GaugeValue, 1, e.labels(t.netns, t.tag, d)...)
		}
	}
	return addresses
}

// forget drops what is remembered of sources that this scrape did not list,
// such as deleted namespaces, so that churn does not grow memory.
func (e *Exporter) forget(listed map[sourceKey]bool) {
	for k := range e.contributed {
		if !listed[k] {
			delete(e.contributed, k)
		}
	}
	for k := range e.lastErr {
		if !listed[k] {
			delete(e.lastErr, k)
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
func (e *Exporter) logFailure(s Source, err error) {
	k, msg := sourceKey{s.Name, s.NetNS}, err.Error()
	if e.lastErr[k] == msg {
		e.logger.Debug("collector still failing", e.logAttrs(s, "err", err)...)
		return
	}
	e.lastErr[k] = msg
	e.logger.Error("collector failed", e.logAttrs(s, "err", err)...)
}

func (e *Exporter) logRecovery(s Source) {
	k := sourceKey{s.Name, s.NetNS}
	if _, failed := e.lastErr[k]; failed {
		delete(e.lastErr, k)
		e.logger.Info("collector recovered", e.logAttrs(s)...)
	}
}

// logAttrs names the source in a log line, and its namespace when the
// exporter reads several.
func (e *Exporter) logAttrs(s Source, attrs ...any) []any {
	head := []any{"collector", s.Name}
	if e.withNS {
		head = append(head, netnsLabel, s.NetNS)
	}
	return append(head, attrs...)
}

// logInvalid logs each distinct invalid comment once.
func (e *Exporter) logInvalid(s Source, invalid []backends.InvalidComment) {
	for _, ic := range invalid {
		key := s.Name + "\x00" + s.NetNS + "\x00" + ic.Comment
		if _, ok := e.logged[key]; ok {
			continue
		}
		if len(e.logged) >= maxLoggedComments {
			return
		}
		e.logged[key] = struct{}{}
		e.logger.Warn("rule not counted: its tag comment does not parse", e.logAttrs(s, "rule", ic.Where, "comment", ic.Comment, "err", ic.Err)...)
	}
}
