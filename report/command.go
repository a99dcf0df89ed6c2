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
)

// Exit codes of Command.Run.
const (
	ExitOK     = 0
	ExitFailed = 1 // Prometheus unreachable, a query failed, no data, timeout
	ExitUsage  = 2 // invalid flags: period, time zone, URL, format
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
	// Now is the present; zero: time.Now().
	Now time.Time
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
	if !slices.Contains(Formats, c.Format) {
		return fail(ExitUsage, "unknown --format %q: want one of %s", c.Format, strings.Join(Formats, ", "))
	}
	if c.MaxGap <= 0 {
		return fail(ExitUsage, "--max-gap must be positive")
	}
	if c.Chunk < time.Second {
		return fail(ExitUsage, "--chunk must be at least 1s")
	}
	if c.Timeout < 0 {
		return fail(ExitUsage, "--timeout must not be negative")
	}
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return fail(ExitUsage, "invalid --timezone %q: %v", c.TimeZone, err)
	}
	period, err := ResolvePeriod(c.Period, c.From, c.To, loc, now)
	if err != nil {
		return fail(ExitUsage, "%v", err)
	}
	client, err := NewClient(c.URL, c.HTTPConfigFile)
	if err != nil {
		return fail(ExitUsage, "%v", err)
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
		Now:      now,
	})
	if err != nil {
		return fail(ExitFailed, "%s", explain(err, client.String(), c.Timeout))
	}
	var out bytes.Buffer
	if err := Write(&out, c.Format, r); err != nil {
		return fail(ExitFailed, "%v", err)
	}
	if _, err := stdout.Write(out.Bytes()); err != nil {
		return fail(ExitFailed, "writing the report: %v", err)
	}
	if c.Format != "text" {
		for _, w := range r.Warnings {
			fmt.Fprintf(stderr, "ipacct_exporter report: Prometheus warned: %s\n", w)
		}
	}
	return ExitOK
}

// explain turns an error of Build into a message that says what went wrong
// first.
func explain(err error, server string, timeout time.Duration) string {
	var apiErr *APIError
	var urlErr *url.Error
	switch {
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
