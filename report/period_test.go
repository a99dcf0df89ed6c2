package report

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin without the system's zoneinfo
)

func berlin(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestResolvePeriod(t *testing.T) {
	loc := berlin(t)
	now := time.Date(2026, 11, 21, 20, 18, 0, 0, time.UTC)
	for _, tc := range []struct {
		name             string
		period, from, to string
		wantFrom, wantTo string // RFC 3339
		wantHours        float64
	}{
		{name: "default: last full month", wantFrom: "2026-10-01T00:00:00+02:00", wantTo: "2026-11-01T00:00:00+01:00", wantHours: 745},
		{name: "a month with the clock going back", period: "2026-10", wantFrom: "2026-10-01T00:00:00+02:00", wantTo: "2026-11-01T00:00:00+01:00", wantHours: 745},
		{name: "a month with the clock going forward", period: "2026-03", wantFrom: "2026-03-01T00:00:00+01:00", wantTo: "2026-04-01T00:00:00+02:00", wantHours: 743},
		{name: "December", period: "2025-12", wantFrom: "2025-12-01T00:00:00+01:00", wantTo: "2026-01-01T00:00:00+01:00", wantHours: 744},
		{name: "dates", from: "2026-10-01", to: "2026-10-02", wantFrom: "2026-10-01T00:00:00+02:00", wantTo: "2026-10-02T00:00:00+02:00", wantHours: 24},
		{name: "times of day", from: "2026-10-01T06:30", to: "2026-10-01 18:00:30", wantFrom: "2026-10-01T06:30:00+02:00", wantTo: "2026-10-01T18:00:30+02:00", wantHours: 11.5 + 30.0/3600},
		{name: "RFC 3339 keeps its offset", from: "2026-10-01T00:00:00Z", to: "2026-10-01T01:00:00Z", wantFrom: "2026-10-01T02:00:00+02:00", wantTo: "2026-10-01T03:00:00+02:00", wantHours: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ResolvePeriod(tc.period, tc.from, tc.to, loc, now)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.From.Format(time.RFC3339); got != tc.wantFrom {
				t.Errorf("from %s, want %s", got, tc.wantFrom)
			}
			if got := p.To.Format(time.RFC3339); got != tc.wantTo {
				t.Errorf("to %s, want %s", got, tc.wantTo)
			}
			if got := p.To.Sub(p.From).Hours(); got != tc.wantHours {
				t.Errorf("%v hours, want %v", got, tc.wantHours)
			}
		})
	}
}

func TestLastFullMonthInJanuary(t *testing.T) {
	p := LastFullMonth(time.Date(2027, 1, 1, 0, 30, 0, 0, time.UTC), time.UTC)
	if p.From != time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) || p.To != time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC) {
		t.Errorf("got %s", p)
	}
	// 00:30 UTC on 1 January is still 31 December in New York.
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	p = LastFullMonth(time.Date(2027, 1, 1, 0, 30, 0, 0, time.UTC), ny)
	if got := p.From.Format("2006-01"); got != "2026-11" {
		t.Errorf("New York: %s, want November", p)
	}
}

func TestResolvePeriodErrors(t *testing.T) {
	now := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		period, from, to string
		want             string
	}{
		{period: "2026-13", want: `invalid --period "2026-13": want a calendar month, YYYY-MM`},
		{period: "2026-10-01", want: `invalid --period "2026-10-01"`},
		{period: "october", want: `invalid --period "october"`},
		{period: "2026-10", from: "2026-10-01", want: "either --period or --from and --to"},
		{from: "2026-10-01", want: "--from and --to go together"},
		{to: "2026-10-01", want: "--from and --to go together"},
		{from: "2026-10-02", to: "2026-10-01", want: "empty period: 2026-10-02T00:00:00Z is not before 2026-10-01T00:00:00Z"},
		{from: "2026-10-01", to: "2026-10-01", want: "empty period"},
		{from: "yesterday", to: "2026-10-01", want: `--from: invalid time "yesterday"`},
		{from: "2026-10-01", to: "2026-10-01T25:00", want: `--to: invalid time "2026-10-01T25:00"`},
		{from: "2020-01-01", to: "2026-01-01", want: "longer than 366 days"},
	} {
		_, err := ResolvePeriod(tc.period, tc.from, tc.to, time.UTC, now)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("period %q from %q to %q: error %v, want %q", tc.period, tc.from, tc.to, err, tc.want)
		}
	}
}
