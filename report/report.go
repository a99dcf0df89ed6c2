package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// The counters the report reads.
const (
	ipBytes    = "ipacct_ip_bytes_total"
	ipPackets  = "ipacct_ip_packets_total"
	tagBytes   = "ipacct_tag_bytes_total"
	tagPackets = "ipacct_tag_packets_total"
)

// Sources: where a tag's numbers come from.
const (
	SourceAddresses = "ipacct_ip"  // the sum of its addresses
	SourceTag       = "ipacct_tag" // the tag's own counters
)

// firstWindow is the first, short, window read before and after the period to
// find the samples next to it; the windows then double up to Options.Chunk.
const firstWindow = 15 * time.Minute

// parallelQueries is how many chunks of the period are fetched at once.
const parallelQueries = 4

// ErrNoData is returned, wrapped, when the period has no sample of a tag
// asked for, or no sample at all.
var ErrNoData = errors.New("no data")

// Options say what Build reads.
type Options struct {
	Period Period
	// Tags limits the report to these tags; empty: every tag.
	Tags []string
	// Matchers are extra PromQL label matchers, such as job="ipacct", that
	// every series read must satisfy.
	Matchers []string
	// MaxGap is the longest time between two samples of a series for the
	// second to count an increment over the first.
	MaxGap time.Duration
	// Chunk is the length of time one query reads.
	Chunk time.Duration
	// Now is the present: no data is looked for after it. Zero: time.Now().
	Now time.Time
}

// Report is a period's usage.
type Report struct {
	Period Period
	// Buckets is the number of BucketWidth buckets of the period, and Rank the
	// nearest rank of the Percentile among them.
	Buckets, Rank int
	Tags          []Tag
	// Warnings are those Prometheus sent with its answers.
	Warnings []string
}

// Tag is the usage of one tag.
type Tag struct {
	Name string
	// Source is SourceAddresses or SourceTag.
	Source        string
	In, Out, None Usage
	// Addresses, by total bytes, largest first; nil for SourceTag.
	Addresses []Address
}

// Usage is a tag's traffic in one direction.
type Usage struct {
	Bytes, Packets uint64
	// P95 is the Percentile of the BucketWidth rates, in bits per second.
	P95 float64
}

// Address is the traffic of one address of a tag.
type Address struct {
	IP            string
	In, Out, None Counts
}

// Counts is bytes and packets.
type Counts struct {
	Bytes, Packets uint64
}

// TotalBytes is the address' bytes in all directions.
func (a Address) TotalBytes() uint64 { return a.In.Bytes + a.Out.Bytes + a.None.Bytes }

type direction int

const (
	dirIn direction = iota
	dirOut
	dirNone
	numDirs
)

func parseDirection(s string) direction {
	switch s {
	case "in":
		return dirIn
	case "out":
		return dirOut
	}
	return dirNone
}

// key is what totals are summed by: every label but these is summed away.
type key struct {
	source string
	tag    string
	ip     string // "" for SourceTag
	dir    direction
}

const (
	kindBytes = iota
	kindPackets
)

// series is the state of one raw series.
type series struct {
	key    key
	kind   int
	total  *[2]float64 // of its key: bytes, packets
	b      *buckets    // of its tag and direction; nil for packets
	first  sample      // its first sample in the period
	last   sample      // its latest sample read so far
	inside int         // samples in the period
}

type engine struct {
	q                Querier
	from, to, maxGap int64 // milliseconds
	now              int64
	chunk            int64
	tags             map[string]bool // nil: all
	series           map[string]*series
	totals           map[key]*[2]float64
	buckets          map[key]*buckets
	warnings         []string
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
	e := &engine{
		q:       q,
		from:    o.Period.From.UnixMilli(),
		to:      o.Period.To.UnixMilli(),
		maxGap:  o.MaxGap.Milliseconds(),
		now:     now.UnixMilli(),
		chunk:   o.Chunk.Milliseconds(),
		series:  map[string]*series{},
		totals:  map[key]*[2]float64{},
		buckets: map[key]*buckets{},
	}
	if len(o.Tags) > 0 {
		e.tags = map[string]bool{}
		for _, t := range o.Tags {
			e.tags[t] = true
		}
	}
	all := selector(strings.Join([]string{ipBytes, ipPackets, tagBytes, tagPackets}, "|"), o.Tags, o.Matchers)
	bytesOnly := selector(ipBytes+"|"+tagBytes, o.Tags, o.Matchers)
	if err := e.readPeriod(ctx, all); err != nil {
		return nil, err
	}
	if len(e.series) == 0 && len(o.Tags) == 0 { // report() names the tags asked for
		return nil, fmt.Errorf("%w: no ipacct_ip_* or ipacct_tag_* samples from %s", ErrNoData, o.Period)
	}
	if err := e.readBefore(ctx, all); err != nil {
		return nil, err
	}
	if err := e.readAfter(ctx, bytesOnly); err != nil {
		return nil, err
	}
	return e.report(o)
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

// window returns every raw sample with a timestamp in [a, b), in
// milliseconds, and keeps Prometheus' warnings.
func (e *engine) window(ctx context.Context, sel string, a, b int64) (model.Matrix, error) {
	m, warnings, err := fetch(ctx, e.q, sel, a, b)
	e.warn(warnings)
	return m, err
}

func (e *engine) warn(warnings []string) {
	for _, w := range warnings {
		if !slices.Contains(e.warnings, w) {
			e.warnings = append(e.warnings, w)
		}
	}
}

// fetch returns every raw sample of the series sel selects with a timestamp
// in [a, b), in milliseconds. A range selector's range is closed at its start
// in Prometheus 2 and open in Prometheus 3: the query covers both, and the
// samples outside are dropped.
func fetch(ctx context.Context, q Querier, sel string, a, b int64) (model.Matrix, []string, error) {
	query := fmt.Sprintf("%s[%dms]", sel, b-a)
	at := time.UnixMilli(b - 1)
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
			return int64(p.Timestamp) < a || int64(p.Timestamp) >= b
		})
	}
	return m, warnings, nil
}

// lookup returns the state of the raw series m, made on first sight; nil
// when the series is none of the report's.
func (e *engine) lookup(m model.Metric) *series {
	id := m.String()
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
		k.source, k.ip = SourceAddresses, string(m["ip"])
	case ipPackets:
		k.source, k.ip, kind = SourceAddresses, string(m["ip"]), kindPackets
	case tagBytes:
		k.source = SourceTag
	case tagPackets:
		k.source, kind = SourceTag, kindPackets
	default:
		return nil
	}
	s := &series{key: k, kind: kind}
	if s.total = e.totals[k]; s.total == nil {
		s.total = new([2]float64)
		e.totals[k] = s.total
	}
	if kind == kindBytes {
		bk := key{source: k.source, tag: k.tag, dir: k.dir}
		if s.b = e.buckets[bk]; s.b == nil {
			s.b = newBuckets(e.from, e.to, BucketWidth.Milliseconds())
			e.buckets[bk] = s.b
		}
	}
	e.series[id] = s
	return s
}

// count adds the increment of cur over prev, samples of s, to the buckets,
// and to the total when cur is in the period.
func (e *engine) count(s *series, prev, cur sample, inPeriod bool) {
	d := increment(prev, cur)
	if inPeriod {
		s.total[s.kind] += d
	}
	if s.b != nil {
		s.b.spread(prev.t, cur.t, d)
	}
}

// readPeriod reads the period chunk by chunk and counts the increments of
// every sample but each series' first in the period, whose previous sample
// readBefore finds. Up to parallelQueries chunks are fetched at once; they
// are counted in order.
func (e *engine) readPeriod(ctx context.Context, sel string) error {
	type answer struct {
		m        model.Matrix
		warnings []string
		err      error
	}
	var starts []int64
	for a := e.from; a < e.to && a <= e.now; a += e.chunk {
		starts = append(starts, a)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // on an error, the fetches still running give up
	answers := make([]chan answer, len(starts))
	for i := range answers {
		answers[i] = make(chan answer, 1)
	}
	slots := make(chan struct{}, parallelQueries) // taken by a fetch until its answer is counted
	go func() {
		for i, a := range starts {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				answers[i] <- answer{err: ctx.Err()}
				continue
			}
			go func() {
				m, warnings, err := fetch(ctx, e.q, sel, a, min(a+e.chunk, e.to))
				answers[i] <- answer{m, warnings, err}
			}()
		}
	}()
	for i := range starts {
		ans := <-answers[i]
		<-slots
		e.warn(ans.warnings)
		if ans.err != nil {
			return ans.err
		}
		e.countPeriod(ans.m)
	}
	return nil
}

// countPeriod counts the samples of one chunk of the period.
func (e *engine) countPeriod(m model.Matrix) {
	for _, ss := range m {
		if len(ss.Values) == 0 {
			continue
		}
		s := e.lookup(ss.Metric)
		if s == nil {
			continue
		}
		for _, p := range ss.Values {
			cur := sample{t: int64(p.Timestamp), v: float64(p.Value)}
			switch {
			case s.inside > 0 && cur.t <= s.last.t:
				continue // not after the last one: already seen
			case s.inside == 0:
				s.first = cur
			case cur.t-s.last.t <= e.maxGap:
				e.count(s, s.last, cur, true)
			}
			s.last = cur
			s.inside++
		}
	}
}

// readBefore finds, for each series, its last sample before the period, no
// further back than MaxGap, and counts the increment of the series' first
// sample in the period over it. It reads back in windows that grow from
// firstWindow to the chunk, and stops when every series has found one.
func (e *engine) readBefore(ctx context.Context, sel string) error {
	need := map[string]*series{}
	for id, s := range e.series {
		need[id] = s
	}
	end, stop := e.from, e.from-e.maxGap
	for w := min(firstWindow.Milliseconds(), e.chunk); len(need) > 0 && end > stop; w = min(2*w, e.chunk) {
		start := max(end-w, stop)
		m, err := e.window(ctx, sel, start, end)
		if err != nil {
			return err
		}
		for _, ss := range m {
			id := ss.Metric.String()
			s, ok := need[id]
			if !ok || len(ss.Values) == 0 {
				continue
			}
			delete(need, id)
			p := ss.Values[len(ss.Values)-1]
			prev := sample{t: int64(p.Timestamp), v: float64(p.Value)}
			if s.first.t-prev.t <= e.maxGap {
				e.count(s, prev, s.first, true)
			}
		}
		end = start
	}
	return nil
}

// readAfter finds, for each bytes series, its first sample after the period,
// no further than MaxGap from its last in the period, and spreads that
// increment's share in the period into the buckets.
func (e *engine) readAfter(ctx context.Context, sel string) error {
	need := map[string]*series{}
	for id, s := range e.series {
		if s.b != nil {
			need[id] = s
		}
	}
	start, stop := e.to, e.to+e.maxGap
	for w := min(firstWindow.Milliseconds(), e.chunk); len(need) > 0 && start < stop && start <= e.now; w = min(2*w, e.chunk) {
		end := min(start+w, stop)
		m, err := e.window(ctx, sel, start, end)
		if err != nil {
			return err
		}
		for _, ss := range m {
			id := ss.Metric.String()
			s, ok := need[id]
			if !ok || len(ss.Values) == 0 {
				continue
			}
			delete(need, id)
			p := ss.Values[0]
			next := sample{t: int64(p.Timestamp), v: float64(p.Value)}
			if next.t-s.last.t <= e.maxGap {
				e.count(s, s.last, next, false)
			}
		}
		start = end
	}
	return nil
}

func (e *engine) report(o Options) (*Report, error) {
	// A tag is reported from its addresses when it has any in the period.
	source := map[string]string{}
	for _, s := range e.series {
		if s.key.source == SourceAddresses || source[s.key.tag] == "" {
			source[s.key.tag] = s.key.source
		}
	}
	var missing []string
	for _, t := range o.Tags {
		if source[t] == "" && !slices.Contains(missing, t) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w for tag %s from %s", ErrNoData, strings.Join(missing, ", "), o.Period)
	}

	n := bucketCount(e.from, e.to, BucketWidth.Milliseconds())
	r := &Report{Period: o.Period, Buckets: n, Rank: nearestRank(n, Percentile), Warnings: e.warnings}
	tags := map[string]*Tag{}
	addrs := map[string]map[string]*Address{}
	for k, total := range e.totals {
		if source[k.tag] != k.source {
			continue
		}
		t := tags[k.tag]
		if t == nil {
			t = &Tag{Name: k.tag, Source: k.source}
			tags[k.tag] = t
			addrs[k.tag] = map[string]*Address{}
		}
		c := Counts{Bytes: toCount(total[kindBytes]), Packets: toCount(total[kindPackets])}
		u := t.usage(k.dir)
		u.Bytes += c.Bytes
		u.Packets += c.Packets
		if k.source != SourceAddresses {
			continue
		}
		a := addrs[k.tag][k.ip]
		if a == nil {
			a = &Address{IP: k.ip}
			addrs[k.tag][k.ip] = a
		}
		*a.counts(k.dir) = c
	}
	for _, t := range tags {
		for d := range numDirs {
			if b := e.buckets[key{source: t.Source, tag: t.Name, dir: d}]; b != nil {
				t.usage(d).P95 = percentile(b.rates(), Percentile)
			}
		}
		for _, a := range addrs[t.Name] {
			t.Addresses = append(t.Addresses, *a)
		}
		slices.SortFunc(t.Addresses, func(a, b Address) int {
			if c := cmp.Compare(b.TotalBytes(), a.TotalBytes()); c != 0 {
				return c
			}
			return compareIP(a.IP, b.IP)
		})
		r.Tags = append(r.Tags, *t)
	}
	slices.SortFunc(r.Tags, func(a, b Tag) int { return strings.Compare(a.Name, b.Name) })
	return r, nil
}

func (t *Tag) usage(d direction) *Usage {
	switch d {
	case dirIn:
		return &t.In
	case dirOut:
		return &t.Out
	}
	return &t.None
}

func (a *Address) counts(d direction) *Counts {
	switch d {
	case dirIn:
		return &a.In
	case dirOut:
		return &a.Out
	}
	return &a.None
}

// toCount rounds a sum of increments, a whole number unless a counter held a
// fraction, to a count.
func toCount(v float64) uint64 {
	if v <= 0 {
		return 0
	}
	return uint64(math.Round(v))
}

// compareIP orders addresses numerically, IPv4 first, and anything that does
// not parse after them, by text.
func compareIP(a, b string) int {
	x, errX := netip.ParseAddr(a)
	y, errY := netip.ParseAddr(b)
	switch {
	case errX == nil && errY == nil:
		return x.Compare(y)
	case errX == nil:
		return -1
	case errY == nil:
		return 1
	}
	return strings.Compare(a, b)
}
