package report

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// t0 is the start of the hour-long period of the hand-worked example.
var t0 = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

// handWorked is a small set of series whose report is worked out by hand
// below, sample by sample. Times are seconds after t0; the period is
// (0, 3600], MaxGap 40 minutes, a chunk 20 minutes, so that samples fall on
// the edges of the period, of the chunks and of MaxGap.
func handWorked(t *testing.T) model.Matrix {
	return model.Matrix{
		// t1's address 192.0.2.1 in, scraped by instance a. Increments in the
		// period: 250 at 600 (over the sample at 0, the start: the previous
		// period's), a reset at 1200 (30), 60 at 3540, 910 at 3600 (the end:
		// this period's): 1250. Packets: 3, 1, 3, 5.
		stream(t, `ipacct_ip_bytes_total{tag="t1",ip="192.0.2.1",direction="in",instance="a"}`, t0,
			-60, 100, 0, 150, 600, 400, 1200, 30, 3540, 90, 3600, 1000),
		stream(t, `ipacct_ip_packets_total{tag="t1",ip="192.0.2.1",direction="in",instance="a"}`, t0,
			-60, 1, 0, 2, 600, 5, 1200, 1, 3540, 4, 3600, 9),
		// The same address from instance b: its sample before the period, at
		// exactly MaxGap before the start, is 45 minutes older than its first
		// one in the period, more than MaxGap, so that one starts the series
		// and counts nothing; then 15.
		stream(t, `ipacct_ip_bytes_total{tag="t1",ip="192.0.2.1",direction="in",instance="b"}`, t0,
			-2400, 10, 300, 20, 900, 35),
		// An address that starts in the middle of the period: 5000 is what it
		// held before its first scrape, not counted; then 100.
		stream(t, `ipacct_ip_bytes_total{tag="t1",ip="192.0.2.2",direction="out",instance="a"}`, t0,
			1800, 5000, 2400, 5100),
		// t1's own counters: not used, as t1 has addresses.
		stream(t, `ipacct_tag_bytes_total{tag="t1",direction="in",table_family="ip"}`, t0,
			0, 0, 600, 999999),
		// t2 has only tag counters, without a direction, in two families: 20 + 1.
		stream(t, `ipacct_tag_bytes_total{tag="t2",direction="none",table_family="ip"}`, t0,
			100, 10, 200, 30),
		stream(t, `ipacct_tag_bytes_total{tag="t2",direction="none",table_family="ip6"}`, t0,
			100, 5, 200, 6),
		// t3 ended before the period: not in the report.
		stream(t, `ipacct_tag_bytes_total{tag="t3",direction="in",table_family="ip"}`, t0,
			-600, 1, -300, 2),
	}
}

func handWorkedOptions() Options {
	return Options{
		Period: Period{From: t0, To: t0.Add(time.Hour)},
		MaxGap: 40 * time.Minute,
		Chunk:  20 * time.Minute,
		Now:    t0.Add(48 * time.Hour),
	}
}

func TestBuildHandWorked(t *testing.T) {
	// The buckets, 300 s each. In: 250 over (0, 600] gives 125 to buckets 0
	// and 1; 30 over (600, 1200] 15 to 2 and 3; 60 over (1200, 3540] 60·300/2340
	// to each of 4..10 and 60·240/2340 to 11; 910 over (3540, 3600] all to
	// 11; instance b's 15 over (300, 900] 7.5 to 1 and 2. Of 12 buckets, the
	// 95th percentile is the 12th lowest, the highest: bucket 11.
	inP95 := (60*240.0/2340 + 910) * 8 / 300
	outP95 := 50 * 8 / 300.0 // 100 over (1800, 2400], 50 in each of 6 and 7
	noneP95 := 21 * 8 / 300.0
	want := &Report{
		Period:  Period{From: t0, To: t0.Add(time.Hour)},
		End:     t0.Add(time.Hour),
		Buckets: 12,
		Rank:    12,
		Tags: []Tag{
			{
				Name:   "t1",
				Metric: MetricAddresses,
				In:     Usage{Bytes: 1265, Packets: 12, P95: inP95},
				Out:    Usage{Bytes: 100, P95: outP95},
				Addresses: []Address{
					{IP: "192.0.2.1", In: Counts{Bytes: 1265, Packets: 12}},
					{IP: "192.0.2.2", Out: Counts{Bytes: 100}},
				},
			},
			{Name: "t2", Metric: MetricTag, None: Usage{Bytes: 21, P95: noneP95}},
		},
	}
	for _, leftOpen := range []bool{false, true} {
		f := &fakeProm{series: handWorked(t), leftOpen: leftOpen}
		got, err := Build(context.Background(), f, handWorkedOptions())
		if err != nil {
			t.Fatal(err)
		}
		roundP95(got)
		roundP95(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Prometheus 3 ranges %v:\n got %+v\nwant %+v", leftOpen, got, want)
		}
	}
}

// roundP95 rounds the percentiles to 9 significant digits, for comparison
// with values worked out in another order.
func roundP95(r *Report) {
	for i := range r.Tags {
		for _, u := range []*Usage{&r.Tags[i].In, &r.Tags[i].Out, &r.Tags[i].None} {
			if u.P95 != 0 {
				e := math.Pow(10, 9-math.Ceil(math.Log10(u.P95)))
				u.P95 = math.Round(u.P95*e) / e
			}
		}
	}
}

// TestBuildSplitPeriods checks that two adjacent periods add up to the one
// they make, wherever the split falls.
func TestBuildSplitPeriods(t *testing.T) {
	f := &fakeProm{series: handWorked(t)}
	o := handWorkedOptions()
	whole, err := Build(context.Background(), f, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, split := range []time.Duration{300 * time.Second, 1200 * time.Second, 1337 * time.Second, 1800 * time.Second} {
		first, second := o, o
		first.Period.To = t0.Add(split)
		second.Period.From = t0.Add(split)
		sums := map[string]uint64{}
		for _, opts := range []Options{first, second} {
			r, err := Build(context.Background(), f, opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, tag := range r.Tags {
				sums[tag.Name+" in"] += tag.In.Bytes
				sums[tag.Name+" out"] += tag.Out.Bytes
				sums[tag.Name+" none"] += tag.None.Bytes
				sums[tag.Name+" in packets"] += tag.In.Packets
			}
		}
		for _, tag := range whole.Tags {
			for k, v := range map[string]uint64{" in": tag.In.Bytes, " out": tag.Out.Bytes, " none": tag.None.Bytes, " in packets": tag.In.Packets} {
				if sums[tag.Name+k] != v {
					t.Errorf("split at %s: %s%s adds up to %d, the whole period has %d", split, tag.Name, k, sums[tag.Name+k], v)
				}
			}
		}
	}
}

func TestBuildTagFilter(t *testing.T) {
	f := &fakeProm{series: handWorked(t)}
	o := handWorkedOptions()
	o.Tags = []string{"t2"}
	r, err := Build(context.Background(), f, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Tags) != 1 || r.Tags[0].Name != "t2" || r.Tags[0].None.Bytes != 21 {
		t.Errorf("--tag=t2: %+v", r.Tags)
	}
}

func TestBuildNoData(t *testing.T) {
	f := &fakeProm{series: handWorked(t)}
	for name, change := range map[string]func(*Options){
		"a period without samples": func(o *Options) {
			o.Period = Period{From: t0.Add(-24 * time.Hour), To: t0.Add(-23 * time.Hour)}
		},
		"a tag without samples":   func(o *Options) { o.Tags = []string{"t2", "nope"} },
		"a tag that ended before": func(o *Options) { o.Tags = []string{"t3"} },
	} {
		o := handWorkedOptions()
		change(&o)
		_, err := Build(context.Background(), f, o)
		if !errors.Is(err, ErrNoData) {
			t.Errorf("%s: error %v, want ErrNoData", name, err)
		}
	}
}

// TestBuildRunningPeriod checks that a period that has not ended is counted
// up to now, its percentile over the buckets that have passed, and that no
// query asks for the future.
func TestBuildRunningPeriod(t *testing.T) {
	f := &fakeProm{series: handWorked(t)}
	o := handWorkedOptions()
	o.Now = t0.Add(30*time.Minute + 1500*time.Millisecond)
	r, err := Build(context.Background(), f, o)
	if err != nil {
		t.Fatal(err)
	}
	// Chunks (0, 20 min] and (20 min, 30 min 1 s], not more; windows before the
	// period back to -40 minutes (15, 20 (a chunk), 5); none after.
	if n := f.queries.Load(); n != 5 {
		t.Errorf("%d queries, want 5", n)
	}
	if want := t0.Add(30*time.Minute + time.Second); !r.End.Equal(want) || r.Complete() {
		t.Errorf("ends at %s, complete %v; want %s (now, to the second), incomplete", r.End, r.Complete(), want)
	}
	if r.Tags[0].In.Bytes != 250+30+15 {
		t.Errorf("t1 in: %d bytes up to now", r.Tags[0].In.Bytes)
	}
	// Six 5-minute buckets have passed; the highest is 125 bytes (0 and 1
	// of instance a) + 7.5 (instance b's in bucket 1).
	if r.Buckets != 6 || r.Rank != 6 {
		t.Errorf("%d buckets, rank %d; want 6, 6", r.Buckets, r.Rank)
	}
	if want := 132.5 * 8 / 300; math.Abs(r.Tags[0].In.P95-want) > 1e-9 {
		t.Errorf("t1 in: 95th percentile %v, want %v", r.Tags[0].In.P95, want)
	}

	// Not begun: an error.
	o.Now = t0
	if _, err := Build(context.Background(), f, o); err == nil || !strings.Contains(err.Error(), "has not begun") {
		t.Errorf("a period not begun: %v", err)
	}
}
