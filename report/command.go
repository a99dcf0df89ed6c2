package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Exit codes of Command.Run.
const (
	ExitOK     = 0
	ExitFailed = 1 // Prometheus unreachable, a query failed, no data, timeout
	ExitUsage  = 2 // invalid flags: period, time zone, URL, format, step, mail
)

// Command is "ipacct_exporter report": its flags, as given.
type Command struct {
	URL            string
	HTTPConfigFile string
	Period         string
	From, To       string
	TimeZone       string
	Tags           []string
	Matchers       []string
	Format         string
	Timeout        time.Duration
	MaxGap         time.Duration
	Chunk          time.Duration
	// Step is --step: "" or a duration such as 1h or 1d.
	Step string
	// MaxAnswer is the most bytes read of one answer; 0: DefaultMaxAnswer.
	MaxAnswer int64
	// Mail is where --format=email goes.
	Mail Mail
	// Now is the present; zero: time.Now().
	Now time.Time
}

// check returns what is wrong with the flags that need no parsing, or "".
func (c Command) check() string {
	mailFlags := len(c.Mail.To) > 0 || c.Mail.From != "" || c.Mail.Subject != "" || c.Mail.Percentile
	switch {
	case !slices.Contains(Formats, c.Format):
		return fmt.Sprintf("unknown --format %q: want one of %s", c.Format, strings.Join(Formats, ", "))
	case c.MaxGap <= 0:
		return "--max-gap must be positive"
	case c.Chunk < time.Second:
		return "--chunk must be at least 1s"
	case c.Timeout < 0:
		return "--timeout must not be negative"
	case c.MaxAnswer < 0:
		return "--max-answer-size must not be negative"
	case c.Step != "" && c.Format != "csv" && c.Format != "json":
		return "--step gives rows per step in --format=csv or json"
	case c.Format != "email" && mailFlags:
		return "--mail.* flags go with --format=email"
	case c.Format == "email" && len(c.Tags) != 1:
		return "--format=email reports one tenant: give --tag once"
	case c.Format == "email" && (len(c.Mail.To) == 0 || c.Mail.From == ""):
		return "--format=email needs --mail.to and --mail.from"
	}
	return ""
}

// Run makes the report and writes it to stdout, or a message to stderr, and
// returns the exit code. Nothing is written to stdout unless the whole
// report is made.
func (c Command) Run(ctx context.Context, stdout, stderr io.Writer) int {
	fail := func(code int, format string, args ...any) int {
		fmt.Fprintf(stderr, "ipacct_exporter report: "+format+"\n", args...)
		return code
	}
	now := c.Now
	if now.IsZero() {
		now = time.Now()
	}
	if msg := c.check(); msg != "" {
		return fail(ExitUsage, "%s", msg)
	}
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return fail(ExitUsage, "invalid --timezone %q: %v", c.TimeZone, err)
	}
	period, err := ResolvePeriod(c.Period, c.From, c.To, loc, now)
	if err != nil {
		return fail(ExitUsage, "%v", err)
	}
	end, err := period.End(now)
	if err != nil {
		return fail(ExitUsage, "%v", err)
	}
	var step time.Duration
	if c.Format == "email" {
		step = 24 * time.Hour // the chart's days
	}
	if c.Step != "" {
		d, err := model.ParseDuration(c.Step)
		if err == nil {
			_, err = StepBounds(period.From, end, time.Duration(d))
		}
		if err != nil {
			return fail(ExitUsage, "--step: %v", err)
		}
		step = time.Duration(d)
	}
	client, err := NewClient(c.URL, c.HTTPConfigFile)
	if err != nil {
		return fail(ExitUsage, "%v", err)
	}
	if c.MaxAnswer > 0 {
		client.MaxAnswer = c.MaxAnswer
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	r, err := Build(ctx, client, Options{
		Period:   period,
		Tags:     c.Tags,
		Matchers: c.Matchers,
		MaxGap:   c.MaxGap,
		Chunk:    c.Chunk,
		Step:     step,
		Rates:    c.Format == "email",
		Now:      now,
	})
	if err != nil {
		return fail(ExitFailed, "%s", explain(err, client.String(), c.Timeout))
	}
	var out bytes.Buffer
	if c.Format == "email" {
		m := c.Mail
		m.Date = now
		err = WriteEmail(&out, r, m)
	} else {
		err = Write(&out, c.Format, r)
	}
	if err != nil {
		return fail(ExitFailed, "%v", err)
	}
	if _, err := stdout.Write(out.Bytes()); err != nil {
		return fail(ExitFailed, "writing the report: %v", err)
	}
	if c.Format != "text" {
		for _, w := range r.Warnings {
			fmt.Fprintf(stderr, "ipacct_exporter report: warning: %s\n", printable(w))
		}
	}
	return ExitOK
}

// explain turns an error of Build into a message that says what went wrong
// first.
func explain(err error, server string, timeout time.Duration) string {
	var apiErr *APIError
	var urlErr *url.Error
	var tooLarge *AnswerTooLargeError
	switch {
	case errors.As(err, &tooLarge):
		return fmt.Sprintf("Prometheus at %s: %v", server, tooLarge)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no complete answer from Prometheus at %s within --timeout=%s (a longer --timeout or a shorter --chunk may help): %v", server, timeout, err)
	case errors.As(err, &apiErr):
		return fmt.Sprintf("Prometheus at %s failed a query: %v", server, err)
	case errors.As(err, &urlErr):
		return fmt.Sprintf("cannot reach Prometheus at %s: %v", server, urlErr) // without the query
	case errors.Is(err, ErrNoData):
		return fmt.Sprintf("%v in Prometheus at %s", err, server)
	}
	return err.Error()
}
