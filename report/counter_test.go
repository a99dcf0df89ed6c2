package report

import (
	"math"
	"slices"
	"testing"
)

func TestIncrement(t *testing.T) {
	const gap = 60_000 // MaxGap, ms
	at := func(ms int64, v float64) sample { return sample{t: ms, v: v} }
	born := func(ms int64, v, created float64) sample { return sample{t: ms, v: v, created: int64(created * 1000)} }
	none := sample{}
	for _, tc := range []struct {
		name      string
		prev      sample
		hasPrev   bool
		cur       sample
		want      float64
		wantSince int64
		wantOK    bool
	}{
		{"growth", at(0, 100), true, at(1000, 150), 50, 0, true},
		{"no traffic", at(0, 150), true, at(1000, 150), 0, 0, true},
		{"reset: all of the new value", at(0, 400), true, at(1000, 30), 30, 0, true},
		{"reset to zero, nothing since", at(0, 400), true, at(1000, 0), 0, 0, true},
		{"previous sample too old", at(0, 100), true, at(gap+1, 150), 0, 0, false},
		{"previous sample at MaxGap", at(0, 100), true, at(gap, 150), 50, 0, true},
		{"first sample: history", none, false, at(1000, 5000), 0, 0, false},
		{"first sample, born since: all of it", none, false, born(10_000, 5000, 4.5), 5000, 4500, true},
		{"first sample, born at zero", none, false, born(10_000, 0, 4.5), 0, 4500, true},
		{"first sample, born too long ago", none, false, born(gap+5000, 5000, 4.5), 0, 4500, false},
		{"same birth as the previous sample: growth", born(5000, 100, 4.5), true, born(10_000, 300, 4.5), 200, 5000, true},
		{"born again after the previous sample", born(5000, 100, 4.5), true, born(10_000, 300, 7), 300, 7000, true},
		{"born again, below the previous value", born(5000, 900, 4.5), true, born(10_000, 300, 7), 300, 7000, true},
		{"born after a sample without a birth", at(5000, 900), true, born(10_000, 900, 7), 900, 7000, true},
		{"birth before the previous sample, which lacks it: growth", at(5000, 100), true, born(10_000, 300, 2), 200, 5000, true},
		{"birth after the sample (clock ahead)", none, false, born(10_000, 300, 11), 300, 10_000, true},
		{"birth gone (the exporter restarted): growth", born(5000, 100, 4.5), true, at(10_000, 300), 200, 5000, true},
	} {
		d, since, ok := increment(tc.prev, tc.hasPrev, tc.cur, gap)
		if ok != tc.wantOK || (ok && (d != tc.want || since != tc.wantSince)) {
			t.Errorf("%s: %v since %d, ok %v; want %v since %d, ok %v", tc.name, d, since, ok, tc.want, tc.wantSince, tc.wantOK)
		}
	}
}

// TestSpread checks that an increment lands in the buckets in proportion to
// the time it overlaps them, and that the share outside the period is
// dropped.
func TestSpread(t *testing.T) {
	const s = 1000                    // a second in milliseconds
	b := newBuckets(0, 1000*s, 300*s) // buckets [0,300) [300,600) [600,900) [900,1000)
	if len(b.bytes) != 4 {
		t.Fatalf("%d buckets, want 4", len(b.bytes))
	}
	b.spread(-100*s, 200*s, 300)  // 100 before the period, dropped; 200 in bucket 0
	b.spread(200*s, 800*s, 600)   // 100, 300, 200
	b.spread(800*s, 800*s, 99)    // no time: nothing
	b.spread(950*s, 1050*s, 1000) // 500 in bucket 3, 500 after the period
	want := []float64{300, 300, 200, 500}
	for k := range want {
		if math.Abs(b.bytes[k]-want[k]) > 1e-9 {
			t.Errorf("bucket %d: %v bytes, want %v (all: %v)", k, b.bytes[k], want[k], b.bytes)
		}
	}
	// Rates: bits per second of each bucket's own length; the last is 100 s.
	wantRates := []float64{300 * 8 / 300.0, 300 * 8 / 300.0, 200 * 8 / 300.0, 500 * 8 / 100.0}
	for k, r := range b.rates() {
		if math.Abs(r-wantRates[k]) > 1e-9 {
			t.Errorf("rate %d: %v, want %v", k, r, wantRates[k])
		}
	}
}

func TestNearestRank(t *testing.T) {
	for _, tc := range []struct{ n, want int }{
		{1, 1}, {12, 12}, {20, 19}, {100, 95}, {101, 96},
		{8928, 8482}, // 31 days
		{8640, 8208}, // 30 days
		{8940, 8493}, // 31 days and the hour a clock goes back
	} {
		if got := nearestRank(tc.n, 95); got != tc.want {
			t.Errorf("nearestRank(%d, 95) = %d, want %d", tc.n, got, tc.want)
		}
		if want := int(math.Ceil(0.95 * float64(tc.n))); tc.want != want {
			t.Errorf("test table: rank of %d is %d by ⌈0.95·n⌉", tc.n, want)
		}
	}
}

func TestPercentile(t *testing.T) {
	if got := percentile(nil, 95); got != 0 {
		t.Errorf("no values: %v", got)
	}
	var v []float64
	for i := 100; i >= 1; i-- {
		v = append(v, float64(i))
	}
	if got := percentile(slices.Clone(v), 95); got != 95 {
		t.Errorf("1..100: %v, want 95", got)
	}
	if got := percentile(v[:20], 95); got != 99 { // 81..100: the 19th
		t.Errorf("81..100: %v, want 99", got)
	}
}
