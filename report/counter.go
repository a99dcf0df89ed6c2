package report

import (
	"slices"
	"time"
)

// BucketWidth is the width of the buckets the 95th percentile is taken over.
const BucketWidth = 5 * time.Minute

// Percentile is the percentile of the bucket rates that is billed.
const Percentile = 95

// increment is the traffic that the scrape of cur saw, and the time since
// which: prev is the series' sample before it (hasPrev false: none known).
//
//   - When cur has a created timestamp and the counter was born (or born
//     again) after prev, at zero: all of cur. Born after prev: there is no
//     prev; or prev has another created timestamp; or prev has none and the
//     created timestamp is after it (a store may lack a created sample).
//   - Otherwise, over prev: the difference, or all of cur after a reset
//     (cur below prev).
//   - Not ok: no prev and no birth (what a counter held when first seen is
//     history, not traffic of the period), or prev or the birth more than
//     maxGap before cur.
func increment(prev sample, hasPrev bool, cur sample, maxGap int64) (d float64, since int64, ok bool) {
	if cur.created > 0 {
		born := cur.created
		newLife := !hasPrev || (prev.created > 0 && prev.created != cur.created) || (prev.created == 0 && born > prev.t)
		if newLife {
			if hasPrev {
				born = max(born, prev.t)
			}
			born = min(born, cur.t) // the exporter's clock may be ahead of the store's
			return cur.v, born, cur.t-born <= maxGap
		}
	}
	if !hasPrev || cur.t-prev.t > maxGap {
		return 0, 0, false
	}
	if cur.v >= prev.v {
		return cur.v - prev.v, prev.t, true
	}
	return cur.v, prev.t, true
}

// buckets holds the bytes of consecutive BucketWidth buckets from the start
// of a period; the last one ends with the period and may be shorter.
type buckets struct {
	from, to, width int64 // milliseconds
	bytes           []float64
}

// bucketCount is the number of buckets of width w in [from, to).
func bucketCount(from, to, w int64) int {
	return int((to - from + w - 1) / w)
}

// passedBuckets is the number of buckets of width w from from that have
// passed at to: when the period is complete, all of them, the last one maybe
// shorter; otherwise those that have ended.
func passedBuckets(from, to, w int64, complete bool) int {
	if complete {
		return bucketCount(from, to, w)
	}
	return int((to - from) / w)
}

func newBuckets(from, to, width int64) *buckets {
	return &buckets{from: from, to: to, width: width, bytes: make([]float64, bucketCount(from, to, width))}
}

// spread adds d, spread evenly over the time from t0 to t1, to the buckets
// the time overlaps; the share outside the period is dropped.
func (b *buckets) spread(t0, t1 int64, d float64) {
	if d == 0 || t1 <= t0 {
		return
	}
	lo, hi := max(t0, b.from), min(t1, b.to)
	span := float64(t1 - t0)
	for k := (lo - b.from) / b.width; lo < hi; k++ {
		end := min(b.from+(k+1)*b.width, hi)
		b.bytes[k] += d * float64(end-lo) / span
		lo = end
	}
}

// rates returns the bits per second of each bucket.
func (b *buckets) rates() []float64 {
	r := make([]float64, len(b.bytes))
	for k, v := range b.bytes {
		start := b.from + int64(k)*b.width
		seconds := float64(min(start+b.width, b.to)-start) / 1000
		r[k] = v * 8 / seconds
	}
	return r
}

// nearestRank is the 1-based rank of the p-th percentile of n values by the
// nearest-rank definition: ⌈p·n/100⌉, at least 1; 0 for no values.
func nearestRank(n, p int) int {
	if n == 0 {
		return 0
	}
	return max((p*n+99)/100, 1)
}

// percentile returns the p-th percentile of values by the nearest-rank
// definition, 0 for no values. It sorts values.
func percentile(values []float64, p int) float64 {
	if len(values) == 0 {
		return 0
	}
	slices.Sort(values)
	return values[nearestRank(len(values), p)-1]
}
