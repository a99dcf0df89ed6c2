package report

import (
	"cmp"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Sources: where a tag's numbers come from.
const (
	MetricAddresses = "ipacct_ip"  // the sum of its addresses
	MetricTag       = "ipacct_tag" // the tag's own counters
)

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
	// MaxGap is the longest time between two samples of a series (or its
	// birth and its sample) for the second to count an increment.
	MaxGap time.Duration
	// Chunk is the length of time one query reads.
	Chunk time.Duration
	// Step, when positive, also counts the traffic of each step of this
	// length from the start of the period (see StepBounds).
	Step time.Duration
	// Rates keeps each tag's 5-minute rates in Tag.Rates, for a chart.
	Rates bool
	// Now is the present: a period that has not ended is counted up to it,
	// and no data is looked for after it. Zero: time.Now().
	Now time.Time
}

// Report is a period's usage.
type Report struct {
	Period Period
	// End is where counting ended: Period.To, or the time the report was
	// made when the period had not ended then.
	End time.Time
	// Buckets is the number of BucketWidth buckets that have passed, and
	// Rank the nearest rank of the Percentile among them.
	Buckets, Rank int
	// Steps are the boundaries of the steps, from Period.From to End; nil
	// without Options.Step.
	Steps []time.Time
	Tags  []Tag
	// Warnings are those Prometheus sent with its answers, and what the
	// report skipped of them.
	Warnings []string
}

// Complete reports whether the period had ended when the report was made.
func (r *Report) Complete() bool { return !r.End.Before(r.Period.To) }

// Tag is the usage of one tag.
type Tag struct {
	Name string
	// Metric is SourceAddresses or SourceTag.
	Metric        string
	In, Out, None Usage
	// Addresses, by total bytes, largest first; nil for SourceTag.
	Addresses []Address
	// Steps is the traffic of each step, with Options.Step.
	Steps []Traffic
	// Rates are the bits per second of each BucketWidth bucket that has
	// passed, with Options.Rates.
	Rates Rates
}

// Usage is a tag's traffic in one direction.
type Usage struct {
	Bytes, Packets uint64
	// P95 is the Percentile of the BucketWidth rates, in bits per second.
	P95 float64
}

// Counts returns the bytes and packets of u.
func (u Usage) Counts() Counts { return Counts{Bytes: u.Bytes, Packets: u.Packets} }

// Rates are bits per second, per BucketWidth bucket, in each direction.
type Rates struct {
	In, Out, None []float64
}

// Address is the traffic of one address of a tag.
type Address struct {
	IP            string
	In, Out, None Counts
	// Steps is the traffic of each step, with Options.Step.
	Steps []Traffic
}

// Traffic is bytes and packets in each direction.
type Traffic struct {
	In, Out, None Counts
}

// Counts is bytes and packets.
type Counts struct {
	Bytes, Packets uint64
}

// Traffic is the tag's bytes and packets in each direction.
func (t Tag) Traffic() Traffic {
	return Traffic{In: t.In.Counts(), Out: t.Out.Counts(), None: t.None.Counts()}
}

// Traffic is the address' bytes and packets in each direction.
func (a Address) Traffic() Traffic { return Traffic{In: a.In, Out: a.Out, None: a.None} }

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

// pick returns the one of in, out and none that is direction d's.
func pick[T any](d direction, in, out, none *T) *T {
	switch d {
	case dirIn:
		return in
	case dirOut:
		return out
	}
	return none
}

func (t *Traffic) counts(d direction) *Counts { return pick(d, &t.In, &t.Out, &t.None) }
func (t *Tag) usage(d direction) *Usage       { return pick(d, &t.In, &t.Out, &t.None) }
func (r *Rates) of(d direction) *[]float64    { return pick(d, &r.In, &r.Out, &r.None) }
func (a *Address) counts(d direction) *Counts { return pick(d, &a.In, &a.Out, &a.None) }

// errOverflow is the error of a total that no 64-bit counter holds: the
// samples were no counters'.
func errOverflow(what string) error {
	return fmt.Errorf("the total of %s is 2^64 or more: the samples Prometheus answered are not those of counters", what)
}

// add adds c to *sum, failing on an overflow.
func add(sum *Counts, c Counts, what string) error {
	var carry1, carry2 uint64
	sum.Bytes, carry1 = bits.Add64(sum.Bytes, c.Bytes, 0)
	sum.Packets, carry2 = bits.Add64(sum.Packets, c.Packets, 0)
	if carry1+carry2 > 0 {
		return errOverflow(what)
	}
	return nil
}

// toCounts rounds sums of increments, whole numbers unless a counter held a
// fraction, to counts.
func toCounts(v [2]float64, what string) (Counts, error) {
	if v[kindBytes] >= maxCounter || v[kindPackets] >= maxCounter {
		return Counts{}, errOverflow(what)
	}
	round := func(x float64) uint64 {
		if x <= 0 {
			return 0
		}
		return uint64(x + 0.5)
	}
	return Counts{Bytes: round(v[kindBytes]), Packets: round(v[kindPackets])}, nil
}

func (e *engine) report(o Options, end time.Time) (*Report, error) {
	// A tag is reported from its addresses when it has any in the period.
	metric := map[string]string{}
	for _, s := range e.series {
		if s.inside > 0 && (s.key.metric == MetricAddresses || metric[s.key.tag] == "") {
			metric[s.key.tag] = s.key.metric
		}
	}
	var missing []string
	for _, t := range o.Tags {
		if metric[t] == "" && !slices.Contains(missing, t) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w for tag %s from %s", ErrNoData, strings.Join(missing, ", "), o.Period)
	}

	r := &Report{Period: o.Period, End: end}
	r.Buckets = passedBuckets(e.from, e.end, BucketWidth.Milliseconds(), r.Complete())
	r.Rank = nearestRank(r.Buckets, Percentile)
	for _, b := range e.steps {
		r.Steps = append(r.Steps, time.UnixMilli(b).In(end.Location()))
	}
	tags := map[string]*Tag{}
	addrs := map[string]map[string]*Address{}
	for k, acc := range e.accumulators {
		if !acc.seen || metric[k.tag] != k.metric {
			continue
		}
		t := tags[k.tag]
		if t == nil {
			t = &Tag{Name: k.tag, Metric: k.metric}
			if e.steps != nil {
				t.Steps = make([]Traffic, len(e.steps)-1)
			}
			tags[k.tag] = t
			addrs[k.tag] = map[string]*Address{}
		}
		what := "tag " + k.tag
		if k.ip != "" {
			what += " address " + k.ip
		}
		c, err := toCounts(acc.total, what)
		if err != nil {
			return nil, err
		}
		u := t.usage(k.dir)
		sum := u.Counts()
		if err := add(&sum, c, "tag "+k.tag); err != nil {
			return nil, err
		}
		u.Bytes, u.Packets = sum.Bytes, sum.Packets
		var a *Address
		if k.metric == MetricAddresses {
			if a = addrs[k.tag][k.ip]; a == nil {
				a = &Address{IP: k.ip}
				if e.steps != nil {
					a.Steps = make([]Traffic, len(e.steps)-1)
				}
				addrs[k.tag][k.ip] = a
			}
			*a.counts(k.dir) = c
		}
		for i, st := range acc.steps {
			c, err := toCounts(st, what)
			if err != nil {
				return nil, err
			}
			if err := add(t.Steps[i].counts(k.dir), c, "tag "+k.tag); err != nil {
				return nil, err
			}
			if a != nil {
				*a.Steps[i].counts(k.dir) = c
			}
		}
	}
	for _, t := range tags {
		for d := range numDirs {
			b := e.buckets[key{metric: t.Metric, tag: t.Name, dir: d}]
			if b == nil {
				continue
			}
			rates := b.rates()[:r.Buckets]
			if o.Rates {
				*t.Rates.of(d) = slices.Clone(rates)
			}
			t.usage(d).P95 = percentile(rates, Percentile)
		}
		var all Counts
		for _, u := range []*Usage{&t.In, &t.Out, &t.None} {
			if err := add(&all, u.Counts(), "tag "+t.Name); err != nil {
				return nil, err
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
	r.Warnings = e.warnings.result()
	return r, nil
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
