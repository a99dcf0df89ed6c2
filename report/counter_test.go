package report

import (
	"math"
	"slices"
	"testing"
)

func TestIncrement(t *testing.T) {
	for _, tc := range []struct {
		prev, cur, want float64
	}{
		{100, 150, 50},
		{150, 150, 0},
		{400, 30, 30}, // reset: all of the new value
		{400, 0, 0},   // reset to zero, nothing since
		{0, 7, 7},
	} {
		if got := increment(sample{0, tc.prev}, sample{1, tc.cur}); got != tc.want {
			t.Errorf("increment(%v, %v) = %v, want %v", tc.prev, tc.cur, got, tc.want)
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
