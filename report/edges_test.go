package report

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// hour is the hand-worked example's period, (t0, t0+1h].
func hour(from, to time.Duration) Options {
	o := handWorkedOptions()
	o.Period = Period{From: t0.Add(from), To: t0.Add(to)}
	return o
}

func inBytes(t *testing.T, f Querier, o Options, tag string) uint64 {
	t.Helper()
	r, err := Build(context.Background(), f, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range r.Tags {
		if tg.Name == tag {
			return tg.In.Bytes
		}
	}
	t.Fatalf("no tag %s in %+v", tag, r.Tags)
	return 0
}

// TestEdges: a sample at time t holds the traffic up to t. One exactly at
// the start of a period is the period before's, one exactly at the end the
// period's own.
func TestEdges(t *testing.T) {
	f := &fakeProm{series: model.Matrix{
		stream(t, `ipacct_tag_bytes_total{tag="e",direction="in"}`, t0,
			-60, 1000, 0, 1050, 1800, 1100, 3600, 1400, 3660, 1500),
	}}
	for _, leftOpen := range []bool{false, true} {
		f.leftOpen = leftOpen
		if got := inBytes(t, f, hour(-time.Hour, 0), "e"); got != 50 {
			t.Errorf("the hour before: %d bytes, want 50 (the sample at its end)", got)
		}
		if got := inBytes(t, f, hour(0, time.Hour), "e"); got != 50+300 {
			t.Errorf("the hour: %d bytes, want 350 (at 1800 s and at its end)", got)
		}
		if got := inBytes(t, f, hour(time.Hour, 2*time.Hour), "e"); got != 100 {
			t.Errorf("the hour after: %d bytes, want 100", got)
		}
	}
}

// TestCreated: a counter born in the window counts its first sample in full
// when its created timestamp says so; without one, the first sample is
// history.
func TestCreated(t *testing.T) {
	const (
		counter = `ipacct_ip_bytes_total{tag="c",ip="%s",direction="in",instance="%s"}`
		created = `ipacct_ip_bytes_created{tag="c",ip="%s",direction="in",instance="%s"}`
	)
	born := t0.Add(10 * time.Minute).Unix() // seconds, as Prometheus keeps it
	ser := func(name, ip, instance string, pairs ...float64) *model.SampleStream {
		return stream(t, strings.Replace(strings.Replace(name, "%s", ip, 1), "%s", instance, 1), t0, pairs...)
	}
	b := float64(born)
	rebirth := float64(t0.Add(30 * time.Minute).Unix())
	f := &fakeProm{series: model.Matrix{
		// The exporter serves a new counter at 0 first: one Prometheus
		// counts the burst from the second sample.
		ser(counter, "192.0.2.1", "a", 615, 0, 675, 5000, 735, 5100),
		ser(created, "192.0.2.1", "a", 615, b, 675, b, 735, b),
		// A second Prometheus, which first scraped it after the 0: its
		// created timestamp says the whole value is new.
		ser(counter, "192.0.2.1", "b", 690, 5000, 750, 5100),
		ser(created, "192.0.2.1", "b", 690, b, 750, b),
		// Without a created timestamp (it existed when the exporter
		// started), the first sample is history.
		ser(counter, "192.0.2.2", "a", 615, 7000, 675, 7300),
		// Born again: after a sample of its first life, a new created
		// timestamp and a value from zero, above the old one already (no
		// decrease shows the reset; the created timestamp does).
		ser(counter, "192.0.2.3", "a", -60, 100, 615, 200, 1815, 400, 1875, 450),
		ser(created, "192.0.2.3", "a", -60, 1, 615, 1, 1815, rebirth, 1875, rebirth),
		// The exporter restarted: the created timestamp is gone, the kernel
		// counter went on.
		ser(counter, "192.0.2.4", "a", 615, 0, 675, 300, 2415, 400),
		ser(created, "192.0.2.4", "a", 615, b, 675, b),
		// Born before the window but first seen in it: counted, as a
		// sample's traffic is its time's.
		ser(counter, "192.0.2.5", "a", 120, 900),
		ser(created, "192.0.2.5", "a", 120, float64(t0.Add(-time.Minute).Unix())),
		// Born longer than --max-gap before its first sample: not counted.
		ser(counter, "192.0.2.6", "a", 3000, 900),
		ser(created, "192.0.2.6", "a", 3000, float64(t0.Add(-time.Hour).Unix())),
	}}
	r, err := Build(context.Background(), f, handWorkedOptions())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{
		"192.0.2.1": 5100 + 5100,
		"192.0.2.2": 300,
		"192.0.2.3": 100 + 400 + 50,
		"192.0.2.4": 300 + 100,
		"192.0.2.5": 900,
		"192.0.2.6": 0,
	}
	if len(r.Tags) != 1 || len(r.Tags[0].Addresses) != len(want) {
		t.Fatalf("report %+v", r.Tags)
	}
	for _, a := range r.Tags[0].Addresses {
		if a.In.Bytes != want[a.IP] {
			t.Errorf("%s: %d bytes, want %d", a.IP, a.In.Bytes, want[a.IP])
		}
	}
	// The births' traffic is in the buckets too.
	if r.Tags[0].In.P95 <= 0 {
		t.Errorf("no 95th percentile: %v", r.Tags[0].In.P95)
	}
}

// TestSteps: each step counts the samples in (its start, its end]; the steps
// add up to the period.
func TestSteps(t *testing.T) {
	o := handWorkedOptions()
	o.Step = 20 * time.Minute
	r, err := Build(context.Background(), &fakeProm{series: handWorked(t)}, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Steps) != 4 || !r.Steps[0].Equal(t0) || !r.Steps[3].Equal(t0.Add(time.Hour)) {
		t.Fatalf("steps %v", r.Steps)
	}
	t1 := r.Tags[0]
	// 192.0.2.1 in: instance a's 250 at 600 s and 30 at 1200 s, b's 15 at
	// 900 s; nothing; 60 at 3540 s and 910 at 3600 s.
	a := t1.Addresses[0]
	if got := []uint64{a.Steps[0].In.Bytes, a.Steps[1].In.Bytes, a.Steps[2].In.Bytes}; got[0] != 295 || got[1] != 0 || got[2] != 970 {
		t.Errorf("192.0.2.1 in by step: %v, want [295 0 970]", got)
	}
	for _, tag := range r.Tags {
		var sum Traffic
		for _, s := range tag.Steps {
			for _, d := range []direction{dirIn, dirOut, dirNone} {
				sum.counts(d).Bytes += s.counts(d).Bytes
				sum.counts(d).Packets += s.counts(d).Packets
			}
		}
		if sum != tag.Traffic() {
			t.Errorf("%s: steps add up to %+v, the period is %+v", tag.Name, sum, tag.Traffic())
		}
	}
}

func TestStepBounds(t *testing.T) {
	month := testMonth(t)
	for _, tc := range []struct {
		step     time.Duration
		n        int
		longest  time.Duration
		shortest time.Duration
	}{
		{24 * time.Hour, 31, 25 * time.Hour, 24 * time.Hour}, // calendar days: the 25th has 25 hours
		{time.Hour, 745, time.Hour, time.Hour},
		{48 * time.Hour, 16, 49 * time.Hour, 24 * time.Hour},
		{5 * time.Minute, 8940, 5 * time.Minute, 5 * time.Minute},
	} {
		b, err := StepBounds(month.From, month.To, tc.step)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != tc.n+1 || !b[0].Equal(month.From) || !b[tc.n].Equal(month.To) {
			t.Errorf("%s: %d steps from %s to %s", tc.step, len(b)-1, b[0], b[len(b)-1])
			continue
		}
		longest, shortest := time.Duration(0), time.Duration(1<<62)
		for k := 0; k < tc.n; k++ {
			longest, shortest = max(longest, b[k+1].Sub(b[k])), min(shortest, b[k+1].Sub(b[k]))
		}
		if longest != tc.longest || shortest != tc.shortest {
			t.Errorf("%s: steps of %s to %s, want %s to %s", tc.step, shortest, longest, tc.shortest, tc.longest)
		}
	}
	for _, bad := range []time.Duration{time.Minute, 7 * time.Minute, 25 * time.Hour} {
		if _, err := StepBounds(month.From, month.To, bad); err == nil || !strings.Contains(err.Error(), "invalid step") {
			t.Errorf("step %s: %v", bad, err)
		}
	}
}

// TestCommandRunningPeriod: a month, or a --to, that has not ended is
// counted up to now, and every format says so.
func TestCommandRunningPeriod(t *testing.T) {
	srv := httptest.NewServer(&fakeProm{series: handWorked(t)})
	defer srv.Close()
	now := t0.Add(30*time.Minute + time.Second)
	for _, tc := range []struct {
		name   string
		change func(*Command)
	}{
		{"this month", func(c *Command) { c.From, c.To, c.Period = "", "", "2026-10" }},
		{"a --to in the future", func(c *Command) { c.To = t0.Add(2 * time.Hour).Format(time.RFC3339) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := command(srv.URL)
			c.Now = now
			tc.change(&c)
			outputs := map[string]string{}
			for _, format := range Formats {
				c := c
				c.Format = format
				if format == "email" {
					c.Tags = []string{"t1"}
					c.Mail = Mail{To: []string{"tenant@example.net"}, From: "billing@example.net"}
				}
				code, out, stderr := run(c)
				if code != ExitOK {
					t.Fatalf("%s: exit %d: %s", format, code, stderr)
				}
				outputs[format] = out
			}
			if !strings.Contains(outputs["text"], "Traffic from 2026-10-01 00:00 UTC to 2026-10-01 00:30:01 UTC (UTC)\nIncomplete: the period runs to ") ||
				!strings.Contains(outputs["text"], "the 6th lowest of the 6 five-minute rates that have passed") {
				t.Errorf("text:\n%s", outputs["text"])
			}
			rows, err := csv.NewReader(strings.NewReader(outputs["csv"])).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			for _, row := range rows[1:] {
				if row[1] != "2026-10-01T00:30:01Z" || row[len(row)-1] != "false" {
					t.Errorf("csv row %v: want to 2026-10-01T00:30:01Z and complete false", row)
				}
			}
			var j jsonReport
			if err := json.Unmarshal([]byte(outputs["json"]), &j); err != nil {
				t.Fatal(err)
			}
			if j.Complete || !j.To.Equal(now) || !j.PeriodTo.After(now) || j.Percentile.Buckets != 6 {
				t.Errorf("json: complete %v, to %s, period_to %s, %d buckets", j.Complete, j.To, j.PeriodTo, j.Percentile.Buckets)
			}
			if !strings.Contains(outputs["email"], " (so far)\n") || !strings.Contains(outputs["email"], "Incomplete: the period runs to") {
				t.Errorf("email does not say the period runs on:\n%s", outputs["email"])
			}
		})
	}
	c := command(srv.URL)
	c.Now = t0.Add(-time.Hour)
	if code, _, stderr := run(c); code != ExitUsage || !strings.Contains(stderr, "has not begun") {
		t.Errorf("a period not begun: exit %d, %s", code, stderr)
	}
}
