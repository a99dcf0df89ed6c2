// Package exporter gathers the counters of ipacct_exporter: on each scrape
// it reads every collector, tracks the tagged counters per tag, direction and
// table family and per address, and writes them straight into the exposition
// (exposition.go): the series, which can number millions, are never built
// as metric objects, nor sorted and checked again by a registry.
package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/tag"
)

// maxLoggedComments bounds the memory spent remembering which invalid
// comments were already logged.
const maxLoggedComments = 4096

// Collector is a collector under the name of its collector.
type Collector struct {
	Name string
	// NetNS is the value of the netns label for what the collector reads. Only
	// an exporter made by NewForNamespaces shows it.
	NetNS     string
	Collector collector.Collector
	// Feeds tells which series the collector can add to: until it has read
	// once, those are not served. The zero value: every series.
	Feeds Feeds
}

// Feeds tells which series a collector can add to.
type Feeds struct {
	// TagFamilies are the table families of its tagged rules; nil means
	// any.
	TagFamilies []family.Table
	// NoSets tells that it reads no per-address sets.
	NoSets bool
}

func (f Feeds) tag(t family.Table) bool {
	return f.TagFamilies == nil || slices.Contains(f.TagFamilies, t)
}

func (f Feeds) sets() bool { return !f.NoSets }

// ErrCollectorGone is what a collector's Read wraps when what it reads vanished
// during the scrape, such as a network namespace deleted between listing and
// reading: the collector is left out of that scrape, unlogged, as if it had not
// been listed.
var ErrCollectorGone = errors.New("collector is gone")

// collectorKey names a collector among those of every scrape.
type collectorKey struct{ name, netns string }

// Exporter collects from its collectors on every scrape.
type Exporter struct {
	list    func() []Collector
	withNS  bool
	logger  *slog.Logger
	timeout time.Duration
	now     func() time.Time

	// flight is the scrape in progress: concurrent scrapes share its
	// read of the kernel and its answer, so N scrapers cost one read.
	flightMu sync.Mutex
	flight   *flight

	mu sync.Mutex // guards the fields below
	// srcIDs numbers the collectors, for the parts of tracked series.
	srcIDs  map[collectorKey]int
	nextSrc int
	// readOnce holds the collectors that have read successfully at least
	// once: until all of a namespace's have, its series are not served,
	// since a sum missing a collector would drop when it comes.
	readOnce map[collectorKey]bool
	// complete is, per namespace, the time of the last read in which all
	// of its collectors succeeded: a series that appears after it was zero
	// then. Absent until the namespace's first complete read.
	complete map[string]time.Time
	// reads numbers the reads, for the state that remembers which last
	// saw it.
	reads uint64
	tags  map[seriesKey]*tagTrack
	// tagOrder is tags in the exposition's order; nil when a series came
	// or went since it was sorted.
	tagOrder  []*tagTrack
	tagStates map[tagKey]*tagState
	// infoOrder is tagStates in the order of the info series; nil when
	// a tag came or went.
	infoOrder []*tagState
	addrs     addrTracks
	overflows map[setGroup]*track
	lastErr   map[collectorKey]string
	logged    map[string]struct{}
	// dirty tells that tracked state changed since it was last saved.
	dirty bool
	// carriedChanged receives when a read changed what a series carries.
	carriedChanged chan struct{}
}

// New returns an Exporter over the collectors, in the order that decides which
// description a tag shows. timeout bounds each scrape's reads (0: none).
func New(logger *slog.Logger, timeout time.Duration, collectors ...Collector) *Exporter {
	return newExporter(logger, timeout, false, func() []Collector { return collectors })
}

// NewForNamespaces returns an Exporter that calls list on every scrape and
// labels each collector's series with its NetNS, for reading several network
// namespaces: namespaces that appear or vanish between scrapes come and go
// with their series, without a restart.
func NewForNamespaces(logger *slog.Logger, timeout time.Duration, list func() []Collector) *Exporter {
	return newExporter(logger, timeout, true, list)
}

func newExporter(logger *slog.Logger, timeout time.Duration, withNS bool, list func() []Collector) *Exporter {
	return &Exporter{
		list:      list,
		withNS:    withNS,
		logger:    logger,
		timeout:   timeout,
		now:       time.Now,
		srcIDs:    make(map[collectorKey]int),
		readOnce:  make(map[collectorKey]bool),
		complete:  make(map[string]time.Time),
		tags:      make(map[seriesKey]*tagTrack),
		tagStates: make(map[tagKey]*tagState),
		addrs:     newAddrTracks(),
		overflows: make(map[setGroup]*track),
		lastErr:   make(map[collectorKey]string),
		logged:    make(map[string]struct{}),

		carriedChanged: make(chan struct{}, 1),
	}
}

type flight struct {
	done chan struct{}
	ans  *answer
	err  error
}

// Gather implements prometheus.Gatherer: it reads every collector once and
// returns the exporter's families, sorted by name. The HTTP handler
// (Handler) writes the same families without building them as
// client_model's type.
func (e *Exporter) Gather() ([]*dto.MetricFamily, error) {
	ans, err := e.answer()
	if ans == nil {
		return nil, err
	}
	fams := make([]*dto.MetricFamily, len(ans.fams))
	for i, f := range ans.fams {
		fams[i] = f.toDTO()
	}
	return fams, err
}

// answer reads every collector once and returns the families to serve. A
// scrape that arrives while another reads waits for that read and gets its
// answer.
func (e *Exporter) answer() (*answer, error) {
	e.flightMu.Lock()
	if f := e.flight; f != nil {
		e.flightMu.Unlock()
		<-f.done
		return f.ans, f.err
	}
	f := &flight{done: make(chan struct{})}
	e.flight = f
	e.flightMu.Unlock()
	defer func() {
		e.flightMu.Lock()
		e.flight = nil
		e.flightMu.Unlock()
		close(f.done)
	}()
	f.ans, f.err = e.collect()
	return f.ans, f.err
}

// seriesKey is a tag series: ipacct_tag_*'s labels.
type seriesKey struct {
	netns       string
	tag         string
	direction   tag.Direction
	tableFamily family.Table
}

type result struct {
	reading  collector.Reading
	err      error
	duration time.Duration
}

// tagKey is a tag in one namespace.
type tagKey struct{ netns, tag string }

// collect reads every collector, applies the read to the tracked series
// (aggregate), logs what the read says about the collectors, and builds the
// answer (emit). A panic on the way, a bug, fails this scrape alone.
func (e *Exporter) collect() (ans *answer, err error) {
	defer func() {
		if p := recover(); p != nil {
			e.logger.Error("scrape failed", "panic", p)
			ans, err = nil, fmt.Errorf("scrape failed: %v", p)
		}
	}()
	collectors := e.list()
	for _, s := range collectors {
		// The registry refused such label values; so does the exposition.
		if !utf8.ValidString(s.NetNS) {
			return nil, fmt.Errorf("scrape failed: the namespace name %q is not valid UTF-8", s.NetNS)
		}
	}
	results := e.readAll(collectors)
	now := e.now()

	e.mu.Lock()
	defer e.mu.Unlock()
	agg := e.aggregate(collectors, results, now)
	e.logRead(collectors, results, agg.waiting)
	if agg.carriedChanged {
		// A counter vanished or was zeroed: what it counted is only in
		// the state now, which a crash before the next save would lose.
		select {
		case e.carriedChanged <- struct{}{}:
		default:
		}
	}
	return e.emit(collectors, results, agg.sets), nil
}

// readAll reads every collector at once.
func (e *Exporter) readAll(collectors []Collector) []result {
	ctx := context.Background()
	if e.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.timeout)
		defer cancel()
	}
	results := make([]result, len(collectors))
	var wg sync.WaitGroup
	for i, s := range collectors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = read(ctx, s.Collector)
		}()
	}
	wg.Wait()
	return results
}

// read runs one collector, turning a panic on odd kernel data into an error:
// one broken collector must not take the others' metrics down with it.
func read(ctx context.Context, b collector.Collector) (r result) {
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
