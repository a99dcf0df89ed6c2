package flow

import (
	"math"
	"slices"
	"testing"
)

// TestScale: products past 64 bits saturate, and the carried fractions add
// up exactly, also when the denominator is near 2^64 and their sum
// overflows.
func TestScale(t *testing.T) {
	const v = math.MaxUint64 - 2
	near, _ := announcedRate(0, math.MaxUint64-1, 1) // (2^64-1)/(2^64-2): v leaves den-1 over
	for _, tc := range []struct {
		name   string
		counts []uint64
		r      rate
		want   []uint64
		carry  uint64
	}{
		{"saturates", []uint64{math.MaxUint64}, rate{5, 2}, []uint64{math.MaxUint64}, 0},
		{"just fits", []uint64{1 << 63}, rate{3, 2}, []uint64{3 << 62}, 0},
		{"5/2", []uint64{1, 1, 1, 1, 3}, rate{5, 2}, []uint64{2, 3, 2, 3, 7}, 1}, // 17.5
		{"near 2^64", []uint64{v, v}, near, []uint64{v, v + 1}, near.den - 2},
	} {
		var c carry
		var got []uint64
		for _, n := range tc.counts {
			got = append(got, scale(n, tc.r, &c.packets))
		}
		if !slices.Equal(got, tc.want) || c.packets != tc.carry {
			t.Errorf("%s: %d, carry %d; want %d, carry %d", tc.name, got, c.packets, tc.want, tc.carry)
		}
	}
	if r, _ := announcedRate(0, 4, 6); r != (rate{5, 2}) {
		t.Errorf("4 taken, 6 skipped: %v, want 5/2", r)
	}
}
