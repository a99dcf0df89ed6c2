// Package report computes a billing period's traffic per tag (tenant) and per
// address from the raw samples of the ipacct_* counters stored in Prometheus
// (or a store that speaks its HTTP API, such as VictoriaMetrics), and writes
// it as text, CSV, JSON, or a mail with a chart. It backs "ipacct_exporter
// report".
//
// # Input
//
// It reads ipacct_ip_bytes_total and ipacct_ip_packets_total (labels tag, ip,
// direction; their family follows from the ip) and ipacct_tag_bytes_total and
// ipacct_tag_packets_total (labels tag, direction, table_family). Every other
// label (job, instance, netns, …) is summed away, after the increments of
// each raw series have been worked out: counters are never added together
// before their resets are found. A tag with ipacct_ip_* samples in the period
// is reported from them, the sum of its addresses, with a table of addresses;
// any other tag is reported from ipacct_tag_*, summed over table_family,
// without one. Direction "in" and "out" are reported as such; any other
// direction ("none", "") as "none".
//
// # Totals
//
// The samples are read raw, through the HTTP API, one window (--chunk) at a
// time; Prometheus' increase() is not used, as it extrapolates to the edges of
// its range. Each sample of a raw series has an increment, the traffic its
// scrape saw:
//
//   - v - p, where p is the value of the series' previous sample, when v >= p;
//   - v, when v < p: the counter was reset (a reboot, a reloaded rule, an
//     address whose set element timed out and came back at zero) and counted
//     v since;
//   - v, when the store kept a created timestamp (the _created series that
//     Prometheus makes of OpenMetrics' created samples) saying the counter
//     was born, at zero, after p, or, for a series' first sample, at all
//     (within --max-gap);
//   - none (0) for the first sample of a series without such a timestamp, or
//     one whose previous sample is more than --max-gap older: the traffic the
//     counter held before it was first scraped (an exporter restart's
//     counters, a scraper's first sight of an old counter) belongs to no
//     period that Prometheus saw.
//
// A sample at time t holds the traffic up to t: a period (from, to] counts
// the increments of the samples whose timestamps fall in it, after from, up
// to and including to. So the total is the exact sum of the increments the
// scrapes saw, consecutive periods add up, and a series that starts or ends
// inside the period counts only what was scraped. The previous sample of the
// period's first one is looked up before the period, as far back as
// --max-gap. A period that has not ended is counted up to now, and says so.
//
// The answers are not trusted: see checkAnswer.
//
// What cannot be seen, and is missing from every period:
//
//   - the traffic between the last scrape before a reset and the reset (the
//     counter's last value is never scraped);
//   - the traffic a series counted before its first scrape, when the store
//     has no created timestamp of it, or before its first scrape after a gap
//     longer than --max-gap;
//   - when the counter, after a reset, has already passed its value at the
//     last scrape before the reset, and no created timestamp says it was
//     born again, the reset is invisible and the report undercounts by that
//     old value (Prometheus has the same blind spot).
//
// Values are float64 in Prometheus: totals are exact up to 2^53 (9 PB) per
// counter.
//
// # 95th percentile
//
// Burstable billing, as ISPs usually do it: per tag, in and out separately
// (and "none", when a tag has such traffic), over consecutive 5-minute buckets
// aligned to the start of the period. Each increment is spread evenly over the
// time between its sample and the previous one, and a bucket holds the share
// that falls in it, so a missed scrape or a scrape interval that does not
// divide 5 minutes makes no spike. The bucket's rate is its bytes × 8 ÷ its
// length in seconds (300, except a shorter last bucket when the period is not
// a whole number of buckets). Buckets without traffic count, as zero; in a
// period that has not ended, only the buckets that have passed. Of the N rates,
// sorted ascending, the 95th percentile is the one at rank ⌈0.95·N⌉
// (nearest rank): for a 31-day month, N = 8928 and the rank is 8482, so the
// 446 highest 5-minute rates (37 hours) are not billed. Whoever bills on the
// greater of in and out takes the maximum of the two.
//
// The increment of the first sample after the period, looked up as far as
// --max-gap, contributes its share to the last buckets, and that of the
// period's first sample only its share after the start: the buckets hold the
// traffic of their own time. The buckets of a period therefore need not add
// up to its total.
package report
