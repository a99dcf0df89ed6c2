package flow

import (
	"math"
	"math/bits"
)

// maxRates bounds the sampling rates whose remainders a router's
// decoder keeps; a rate past it is rounded down flow by flow.
const maxRates = 64

// rate is a sampling rate: each packet the router sampled stands for
// num/den packets on the wire. samplingInterval and its kin give N/1;
// RFC 5476's samplingPacketInterval (packets taken) and samplingPacketSpace
// (packets skipped) give (taken+skipped)/taken, rarely a whole number: 2
// taken and 3 skipped is 5/2. The zero rate is no rate.
type rate struct{ num, den uint64 }

// unsampled is the rate of a router that announces none.
var unsampled = rate{1, 1}

// announcedRate is the rate that a record's sampling fields give: interval
// (one packet in N), else taken and skipped. ok is false when they give
// none.
func announcedRate(interval, taken, skipped uint64) (r rate, ok bool) {
	switch {
	case interval > 0:
		return rate{interval, 1}, true
	case taken > 0:
		num := satAdd(taken, skipped)
		g := gcd(num, taken)
		return rate{num / g, taken / g}, true
	}
	return rate{}, false
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// carry is what scaling the counts of flows at one rate left over:
// fractions of a packet and of a byte, in units of 1/den of the rate.
type carry struct{ packets, bytes uint64 }

// carries are a router's carries, per rate.
type carries map[rate]*carry

// of returns the carry of r: nil for a whole rate, which leaves no
// fraction, or when maxRates others are kept.
func (m *carries) of(r rate) *carry {
	if r.den == 1 {
		return nil
	}
	if c, ok := (*m)[r]; ok {
		return c
	}
	if len(*m) >= maxRates {
		return nil
	}
	if *m == nil {
		*m = make(carries)
	}
	c := &carry{}
	(*m)[r] = c
	return c
}

// scale multiplies a flow's counts by r, carrying fractions in c (nil:
// dropping them).
func (c *carry) scale(packets, bytes uint64, r rate) (uint64, uint64) {
	if c == nil {
		return scale(packets, r, nil), scale(bytes, r, nil)
	}
	return scale(packets, r, &c.packets), scale(bytes, r, &c.bytes)
}

// scale returns v × r. The product is rounded down, and the fraction it
// leaves over, in units of 1/r.den, is added to *rem, which gives a whole
// unit to the count that makes it reach one: so the sum of many counts
// scaled at one rate is the exact product of their sum, not a fifth low
// (2 taken, 3 skipped) as rounding each count down would make it. With rem
// nil the fraction is dropped. A product past 64 bits saturates.
func scale(v uint64, r rate, rem *uint64) uint64 {
	hi, lo := bits.Mul64(v, r.num)
	if hi >= r.den {
		return math.MaxUint64
	}
	q, frac := bits.Div64(hi, lo, r.den)
	if rem == nil {
		return q
	}
	// frac and *rem are below r.den, so their sum is below 2×r.den: at
	// most one unit, and what stays fits in 64 bits, whatever the carry.
	sum, carry := bits.Add64(frac, *rem, 0)
	if carry == 1 || sum >= r.den {
		sum -= r.den
		q = satAdd(q, 1)
	}
	*rem = sum
	return q
}
