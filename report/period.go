package report

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
)

// MaxPeriod is the longest period a report covers.
const MaxPeriod = 366 * 24 * time.Hour

// Period is the half-open interval (From, To]: a sample at time t holds the
// traffic up to t, so a sample at To is the period's, one at From the
// period's before.
type Period struct {
	From, To time.Time
}

// End returns where a report made at now counts to: To, or now, truncated to
// the second, when the period has not ended. A period that has not begun is
// an error.
func (p Period) End(now time.Time) (time.Time, error) {
	if !now.After(p.From) {
		return time.Time{}, fmt.Errorf("the period from %s has not begun: it is %s", p.From.Format(time.RFC3339), now.In(p.From.Location()).Format(time.RFC3339))
	}
	if now.Before(p.To) {
		end := now.Truncate(time.Second).In(p.To.Location())
		if !end.After(p.From) {
			end = now.In(p.To.Location())
		}
		return end, nil
	}
	return p.To, nil
}

// MinStep is the shortest step Options.Step may be.
const MinStep = BucketWidth

// StepBounds returns the boundaries of the steps of length step from from to
// end: from, from+step, …, end; the last step may be shorter. A step that is
// a whole number of days is that many calendar days in from's time zone
// (23 or 25 hours when the clocks change); any other step is a length of
// time, and must divide a day.
func StepBounds(from, end time.Time, step time.Duration) ([]time.Time, error) {
	const day = 24 * time.Hour
	if step < MinStep || (step%day != 0 && day%step != 0) {
		return nil, fmt.Errorf("invalid step %s: want at least %s, dividing a day (such as 1h) or whole days (1d)", model.Duration(step), model.Duration(MinStep))
	}
	bounds := []time.Time{from}
	for k := 1; ; k++ {
		var b time.Time
		if step%day == 0 {
			b = from.AddDate(0, 0, k*int(step/day))
		} else {
			b = from.Add(time.Duration(k) * step)
		}
		if !b.Before(end) {
			return append(bounds, end), nil
		}
		bounds = append(bounds, b)
	}
}

// Month returns the calendar month that holds t, in t's location.
func Month(t time.Time) Period {
	from := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, t.Location())
	return Period{From: from, To: from.AddDate(0, 1, 0)}
}

// LastFullMonth returns the calendar month before the one that holds now, in
// loc.
func LastFullMonth(now time.Time, loc *time.Location) Period {
	this := Month(now.In(loc))
	return Month(this.From.AddDate(0, -1, 0))
}

// ParseMonth parses a calendar month written YYYY-MM, in loc.
func ParseMonth(s string, loc *time.Location) (Period, error) {
	t, err := time.ParseInLocation("2006-01", s, loc)
	if err != nil {
		return Period{}, fmt.Errorf("invalid --period %q: want a calendar month, YYYY-MM such as 2026-10", s)
	}
	return Month(t), nil
}

// timeLayouts are the forms --from and --to accept. All but RFC 3339 are read
// in the report's time zone.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05",
	"2006-01-02 15:04",
	"2006-01-02",
}

// ParseTime parses a --from or --to value: a date (midnight), a date and a
// time of day in loc, or an RFC 3339 time with its own offset.
func ParseTime(s string, loc *time.Location) (time.Time, error) {
	for _, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q: want YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] or RFC 3339", s)
}

// ResolvePeriod turns the command's --period, --from and --to into a period:
// --period, or both --from and --to, or neither (the last full month before
// now). Times without an offset are in loc.
func ResolvePeriod(period, from, to string, loc *time.Location, now time.Time) (Period, error) {
	var p Period
	switch {
	case period != "" && (from != "" || to != ""):
		return Period{}, errors.New("give either --period or --from and --to, not both")
	case period != "":
		var err error
		if p, err = ParseMonth(period, loc); err != nil {
			return Period{}, err
		}
	case from != "" || to != "":
		if from == "" || to == "" {
			return Period{}, errors.New("--from and --to go together")
		}
		var err error
		if p.From, err = ParseTime(from, loc); err != nil {
			return Period{}, fmt.Errorf("--from: %w", err)
		}
		if p.To, err = ParseTime(to, loc); err != nil {
			return Period{}, fmt.Errorf("--to: %w", err)
		}
	default:
		p = LastFullMonth(now, loc)
	}
	p.From, p.To = p.From.In(loc), p.To.In(loc)
	if err := p.Validate(); err != nil {
		return Period{}, err
	}
	return p, nil
}

// Validate checks that the period is not empty, not reversed and not longer
// than MaxPeriod.
func (p Period) Validate() error {
	switch {
	case !p.From.Before(p.To):
		return fmt.Errorf("empty period: %s is not before %s", p.From.Format(time.RFC3339), p.To.Format(time.RFC3339))
	case p.To.Sub(p.From) > MaxPeriod:
		return fmt.Errorf("period from %s to %s is longer than %d days", p.From.Format(time.RFC3339), p.To.Format(time.RFC3339), MaxPeriod/(24*time.Hour))
	}
	return nil
}

// String writes the period for people, e.g. "2026-10-01 00:00 CEST to
// 2026-11-01 00:00 CET".
func (p Period) String() string {
	const layout = "2006-01-02 15:04 MST"
	return p.From.Format(layout) + " to " + p.To.Format(layout)
}
