package report

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// The counters the report reads, and the series in which a Prometheus that
// scraped OpenMetrics keeps their created timestamps (seconds since the
// epoch): the time at which the exporter knew the counter was zero.
const (
	ipBytes    = "ipacct_ip_bytes_total"
	ipPackets  = "ipacct_ip_packets_total"
	tagBytes   = "ipacct_tag_bytes_total"
	tagPackets = "ipacct_tag_packets_total"

	totalSuffix   = "_total"
	createdSuffix = "_created"
)

// firstWindow is the first, short, window read before and after the period to
// find the samples next to it; the windows then double up to Options.Chunk.
const firstWindow = 15 * time.Minute

// parallelQueries is how many chunks of the period are fetched at once.
const parallelQueries = 4

// maxCounter is the largest value a kernel counter (64 bits) can hold; a
// larger sample is no counter's.
const maxCounter = 1 << 64

// key is what totals are summed by: every label but these is summed away.
type key struct {
	metric string
	tag    string
	ip     string // "" for SourceTag
	dir    direction
}

const (
	kindBytes = iota
	kindPackets
)

// accumulator holds the increments counted for one key: in the period and
// per step.
type accumulator struct {
	total [2]float64   // bytes, packets
	steps [][2]float64 // nil without steps
	seen  bool         // a sample of the key is in the period
}

// series is the state of one raw series.
type series struct {
	key    key
	kind   int
	acc    *accumulator
	b      *buckets // of its tag and direction; nil for packets
	first  sample   // its first sample in the period
	last   sample   // its latest sample read so far
	inside int      // samples in the period
}

// sample is one raw sample: milliseconds since the epoch, the value, and the
// created timestamp the store kept beside it, in milliseconds (0: none). A
// store may keep the created timestamp (a float of seconds) less exactly than
// to the millisecond: VictoriaMetrics answers 1796557222.8739998 for
// 1796557222.874, so they are compared as milliseconds.
type sample struct {
	t       int64
	v       float64
	created int64
}

type engine struct {
	q             Querier
	from, end     int64 // milliseconds: the period, up to now
	now           int64
	maxGap, chunk int64
	tags          map[string]bool // nil: all
	series        map[string]*series
	accumulators  map[key]*accumulator
	buckets       map[key]*buckets
	steps         []int64 // step boundaries, from to end; nil: no steps
	warnings      warnings
	unlabelled    map[string]bool // series already warned about
}

// Build reads the period's samples from Prometheus and works out the report.
func Build(ctx context.Context, q Querier, o Options) (*Report, error) {
	if err := o.Period.Validate(); err != nil {
		return nil, err
	}
	if o.MaxGap <= 0 || o.Chunk < time.Second {
		return nil, fmt.Errorf("the maximum gap (%s) must be positive and the chunk (%s) at least 1s", o.MaxGap, o.Chunk)
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	end, err := o.Period.End(now)
	if err != nil {
		return nil, err
	}
	if end.Before(o.Period.To) {
		now = end // nothing after the end: the period runs on
	}
	e := &engine{
		q:            q,
		from:         o.Period.From.UnixMilli(),
		end:          end.UnixMilli(),
		now:          now.UnixMilli(),
		maxGap:       o.MaxGap.Milliseconds(),
		chunk:        o.Chunk.Milliseconds(),
		series:       map[string]*series{},
		accumulators: map[key]*accumulator{},
		buckets:      map[key]*buckets{},
		unlabelled:   map[string]bool{},
	}
	if o.Step > 0 {
		bounds, err := StepBounds(o.Period.From, end, o.Step)
		if err != nil {
			return nil, err
		}
		for _, b := range bounds {
			e.steps = append(e.steps, b.UnixMilli())
		}
	}
	if len(o.Tags) > 0 {
		e.tags = map[string]bool{}
		for _, t := range o.Tags {
			e.tags[t] = true
		}
	}
	counters := []string{ipBytes, ipPackets, tagBytes, tagPackets}
	var all []string
	for _, c := range counters {
		all = append(all, c, createdName(c))
	}
	sel := selector(strings.Join(all, "|"), o.Tags, o.Matchers)
	bytesOnly := selector(strings.Join([]string{ipBytes, createdName(ipBytes), tagBytes, createdName(tagBytes)}, "|"), o.Tags, o.Matchers)
	if err := e.readPeriod(ctx, sel); err != nil {
		return nil, err
	}
	if len(e.series) == 0 && len(o.Tags) == 0 { // report() names the tags asked for
		return nil, fmt.Errorf("%w: no ipacct_ip_* or ipacct_tag_* samples from %s", ErrNoData, o.Period)
	}
	if err := e.readBefore(ctx, sel); err != nil {
		return nil, err
	}
	if err := e.readAfter(ctx, bytesOnly); err != nil {
		return nil, err
	}
	return e.report(o, end)
}

// createdName is the name of the series that holds the created timestamps of
// counter, such as ipacct_ip_bytes_created for ipacct_ip_bytes_total.
func createdName(counter string) string {
	return strings.TrimSuffix(counter, totalSuffix) + createdSuffix
}

// selector is a PromQL series selector for the metric names (a regular
// expression), the tags and the extra matchers.
func selector(names string, tags, matchers []string) string {
	parts := []string{"__name__=~" + strconv.Quote(names)}
	if len(tags) > 0 {
		quoted := make([]string, len(tags))
		for i, t := range tags {
			quoted[i] = regexp.QuoteMeta(t)
		}
		parts = append(parts, "tag=~"+strconv.Quote(strings.Join(quoted, "|")))
	}
	parts = append(parts, matchers...)
	return "{" + strings.Join(parts, ",") + "}"
}

// window returns the samples of each series sel selects with a timestamp in
// (a, b], in milliseconds, checked: see checkAnswer.
func (e *engine) window(ctx context.Context, sel string, a, b int64) (map[string]*rawSeries, error) {
	m, warnings, err := fetch(ctx, e.q, sel, a, b)
	e.warnings.addAll(warnings)
	if err != nil {
		return nil, err
	}
	return e.checkAnswer(m), nil
}

// fetch returns every raw sample of the series sel selects with a timestamp
// in (a, b], in milliseconds: the samples that hold the traffic up to b since
// a. A range selector's range is closed at its start in Prometheus 2 and open
// in Prometheus 3: the query covers both, and the samples outside are
// dropped.
func fetch(ctx context.Context, q Querier, sel string, a, b int64) (model.Matrix, []string, error) {
	query := fmt.Sprintf("%s[%dms]", sel, b-a)
	at := time.UnixMilli(b)
	v, warnings, err := q.Query(ctx, query, at)
	if err != nil {
		return nil, warnings, fmt.Errorf("query %s at %s: %w", query, at.UTC().Format(time.RFC3339Nano), err)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, warnings, fmt.Errorf("query %s: Prometheus answered a %s, not a range vector", query, v.Type())
	}
	for _, s := range m {
		s.Values = slices.DeleteFunc(s.Values, func(p model.SamplePair) bool {
			return int64(p.Timestamp) <= a || int64(p.Timestamp) > b
		})
	}
	return m, warnings, nil
}

// lookup returns the state of the counter series with id and labels m, made
// on first sight; nil when the series is none of the report's.
func (e *engine) lookup(id string, m model.Metric) *series {
	if s, ok := e.series[id]; ok {
		return s
	}
	tag := string(m["tag"])
	if e.tags != nil && !e.tags[tag] {
		return nil
	}
	k := key{tag: tag, dir: parseDirection(string(m["direction"]))}
	kind := kindBytes
	switch m[model.MetricNameLabel] {
	case ipBytes:
		k.metric, k.ip = MetricAddresses, string(m["ip"])
	case ipPackets:
		k.metric, k.ip, kind = MetricAddresses, string(m["ip"]), kindPackets
	case tagBytes:
		k.metric = MetricTag
	case tagPackets:
		k.metric, kind = MetricTag, kindPackets
	default:
		return nil
	}
	s := &series{key: k, kind: kind}
	if s.acc = e.accumulators[k]; s.acc == nil {
		s.acc = &accumulator{}
		if e.steps != nil {
			s.acc.steps = make([][2]float64, len(e.steps)-1)
		}
		e.accumulators[k] = s.acc
	}
	if kind == kindBytes {
		bk := key{metric: k.metric, tag: k.tag, dir: k.dir}
		if s.b = e.buckets[bk]; s.b == nil {
			s.b = newBuckets(e.from, e.end, BucketWidth.Milliseconds())
			e.buckets[bk] = s.b
		}
	}
	e.series[id] = s
	return s
}

// count adds the increment of cur, a sample of s whose previous one is prev
// (hasPrev false: none known), to the buckets, and to the totals when cur is
// in the period.
func (e *engine) count(s *series, prev sample, hasPrev bool, cur sample, inPeriod bool) {
	d, since, ok := increment(prev, hasPrev, cur, e.maxGap)
	if !ok {
		return
	}
	if inPeriod {
		s.acc.total[s.kind] += d
		if e.steps != nil {
			s.acc.steps[stepIndex(e.steps, cur.t)][s.kind] += d
		}
	}
	if s.b != nil {
		s.b.spread(since, cur.t, d)
	}
}

// stepIndex is the step (bounds[k], bounds[k+1]] that holds t.
func stepIndex(bounds []int64, t int64) int {
	k, _ := slices.BinarySearch(bounds[1:], t)
	return min(k, len(bounds)-2)
}

// readPeriod reads the period chunk by chunk and counts the increments of
// every sample but each series' first in the period, whose previous sample
// readBefore finds. Up to parallelQueries chunks are fetched at once; they
// are counted in order.
func (e *engine) readPeriod(ctx context.Context, sel string) error {
	var starts []int64
	for a := e.from; a < e.end; a += e.chunk {
		starts = append(starts, a)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // on an error, the fetches still running give up
	// The fetches return their answers and warnings; the loop below checks
	// and counts them in order.
	type fetched struct {
		m        model.Matrix
		warnings []string
		err      error
	}
	raw := make([]chan fetched, len(starts))
	for i := range raw {
		raw[i] = make(chan fetched, 1)
	}
	slots := make(chan struct{}, parallelQueries) // taken by a fetch until its answer is counted
	go func() {
		for i, a := range starts {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				raw[i] <- fetched{err: ctx.Err()}
				continue
			}
			go func() {
				m, warnings, err := fetch(ctx, e.q, sel, a, min(a+e.chunk, e.end))
				raw[i] <- fetched{m, warnings, err}
			}()
		}
	}()
	for i := range starts {
		f := <-raw[i]
		<-slots
		e.warnings.addAll(f.warnings)
		if f.err != nil {
			return f.err
		}
		e.countPeriod(e.checkAnswer(f.m))
	}
	return nil
}

// countPeriod counts the samples of one chunk of the period.
func (e *engine) countPeriod(m map[string]*rawSeries) {
	for id, rs := range m {
		if len(rs.samples) == 0 {
			continue
		}
		s := e.lookup(id, rs.metric)
		if s == nil {
			continue
		}
		for _, cur := range rs.samples {
			switch {
			case s.inside > 0 && cur.t <= s.last.t:
				continue // not after the last one: already seen
			case s.inside == 0:
				s.first = cur
				s.acc.seen = true
			default:
				e.count(s, s.last, true, cur, true)
			}
			s.last = cur
			s.inside++
		}
	}
}

// readBefore finds, for each series, its last sample before the period, no
// further back than MaxGap, and counts the increment of the series' first
// sample in the period over it, or over nothing.
func (e *engine) readBefore(ctx context.Context, sel string) error {
	need := map[string]*series{}
	for id, s := range e.series {
		if s.inside > 0 {
			need[id] = s
		}
	}
	err := e.nearest(ctx, sel, need, e.from, e.from-e.maxGap, func(s *series, samples []sample) {
		e.count(s, samples[len(samples)-1], true, s.first, true)
	})
	if err != nil {
		return err
	}
	for _, s := range need { // nothing before: counted only when born
		e.count(s, sample{}, false, s.first, true)
	}
	return nil
}

// readAfter finds, for each bytes series, its first sample after the period,
// no further than MaxGap from its end (nor than now), and spreads that
// increment's share in the period into the buckets.
func (e *engine) readAfter(ctx context.Context, sel string) error {
	need := map[string]*series{}
	for id, s := range e.series {
		if s.b != nil && s.inside > 0 {
			need[id] = s
		}
	}
	return e.nearest(ctx, sel, need, e.end, min(e.end+e.maxGap, e.now), func(s *series, samples []sample) {
		e.count(s, s.last, true, samples[0], false)
	})
}

// nearest reads from at towards stop (back in time when stop is before at)
// in windows that grow from firstWindow to the chunk, and hands each series
// of need the samples of the first window that has any of it, taking it out
// of need. It stops when need is empty.
func (e *engine) nearest(ctx context.Context, sel string, need map[string]*series, at, stop int64, found func(*series, []sample)) error {
	back := stop < at
	for w := min(firstWindow.Milliseconds(), e.chunk); len(need) > 0 && at != stop; w = min(2*w, e.chunk) {
		a, b := at, min(at+w, stop)
		if back {
			a, b = max(at-w, stop), at
		}
		m, err := e.window(ctx, sel, a, b)
		if err != nil {
			return err
		}
		for id, rs := range m {
			if s, ok := need[id]; ok && len(rs.samples) > 0 {
				delete(need, id)
				found(s, rs.samples)
			}
		}
		if back {
			at = a
		} else {
			at = b
		}
	}
	return nil
}
