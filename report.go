package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	_ "time/tzdata" // --timezone names on machines without zoneinfo

	"github.com/alecthomas/kingpin/v2"

	"github.com/ipacct/ipacct_exporter/report"
)

const reportHelp = `Print a billing period's traffic per tag (tenant) from the ipacct_* history in Prometheus (or a store that speaks its query API), then exit.

Per tag: in and out bytes and packets, the 95th percentile of the 5-minute rates in bits/s, and, for a tag with per-address counters (ipacct_ip_*), its addresses by total bytes; a tag without them is reported from ipacct_tag_*. Labels other than tag, ip and direction (table_family, family, job, instance, netns) are summed away.

Totals are exact: they add the increments the scrapes saw between consecutive raw samples, a counter reset counting the value after it, and are not extrapolated like increase(). A sample at time t holds the traffic up to t: the period counts the samples after its start up to and including its end. A series' first sample counts in full only when the store kept a created timestamp saying the counter was born (at zero) since; otherwise what it held is history. Lost: the traffic between the last scrape before a reset and the reset.

A period that has not ended (this month, a --to in the future) is counted up to now, and every format says so.

95th percentile: in and out separately, over consecutive 5-minute buckets aligned to the start of the period, each increment spread evenly over the time since the previous sample; buckets without traffic count as 0; of the N rates of the buckets that have passed, sorted, the one at rank ceil(0.95*N) (nearest rank).

--format=email writes a complete mail for "sendmail -t": the text report and an HTML one of one --tag with a chart of its traffic per day (a PNG inside the message).

Exit status: 0 done, 1 Prometheus unreachable, a query failed, no data or --timeout, 2 invalid flags.`

// addReportCommand adds the report command to app, and returns it and the
// report its flags describe once app.Parse has read them.
func addReportCommand(app *kingpin.Application) (*kingpin.CmdClause, *report.Command) {
	cmd := app.Command("report", reportHelp)
	c := &report.Command{}
	cmd.Flag("prometheus.url", "URL of the Prometheus server that scrapes the exporter, with its path prefix if it has one.").Default("http://localhost:9090").StringVar(&c.URL)
	cmd.Flag("http.config.file", "File with the HTTP client settings for Prometheus: basic auth (password_file), authorization, OAuth 2, TLS (ca_file, cert_file, insecure_skip_verify), proxy; the format of promtool's --http.config.file.").PlaceHolder("FILE").StringVar(&c.HTTPConfigFile)
	cmd.Flag("period", "Calendar month to report, YYYY-MM, in --timezone. Default, without --from and --to: the last full month.").PlaceHolder("YYYY-MM").StringVar(&c.Period)
	cmd.Flag("from", "Start of the period: YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] in --timezone, or RFC 3339. With --to, instead of --period.").StringVar(&c.From)
	cmd.Flag("to", "End of the period; same forms as --from. In the future: the report counts up to now and says so.").StringVar(&c.To)
	cmd.Flag("timezone", "Time zone of the period and of the times printed: Local, UTC or a name such as Europe/Berlin.").Default("Local").StringVar(&c.TimeZone)
	cmd.Flag("tag", "Report only this tag (repeatable). A tag without samples in the period is an error.").StringsVar(&c.Tags)
	cmd.Flag("match", `Extra PromQL label matcher every series must satisfy, such as job="ipacct" (repeatable).`).StringsVar(&c.Matchers)
	cmd.Flag("format", "Output: text (for people), csv, json, or email (a mail message of one --tag, for sendmail -t).").Default("text").EnumVar(&c.Format, report.Formats...)
	cmd.Flag("step", "With --format=csv or json: rows of each step too, such as 1h, or 1d (calendar days in --timezone); the rows add up to the totals.").PlaceHolder("1h|1d").StringVar(&c.Step)
	cmd.Flag("mail.to", "--format=email: recipient (repeatable).").PlaceHolder("ADDRESS").StringsVar(&c.Mail.To)
	cmd.Flag("mail.from", "--format=email: sender.").PlaceHolder("ADDRESS").StringVar(&c.Mail.From)
	cmd.Flag("mail.subject", `--format=email: subject. Default: "Traffic of TAG in MONTH YEAR", or the period.`).StringVar(&c.Mail.Subject)
	cmd.Flag("mail.percentile", "--format=email: chart the 5-minute rates and their 95th percentiles too, for tenants billed by them.").BoolVar(&c.Mail.Percentile)
	cmd.Flag("timeout", "Give up when the report is not done after this long (0: never).").Default("5m").DurationVar(&c.Timeout)
	cmd.Flag("max-gap", "Longest time between two samples of a series for the later one to count an increment over the earlier; a longer gap starts the series anew. Also how far before and after the period its neighbouring samples are looked for.").Default("24h").DurationVar(&c.MaxGap)
	cmd.Flag("chunk", "Time span one query reads: lower it when Prometheus refuses a query for loading too many samples.").Default("1h").DurationVar(&c.Chunk)
	maxAnswer := cmd.Flag("max-answer-size", "Most bytes read of one answer of Prometheus; a longer one fails the report (lower --chunk).").Default(strconv.Itoa(report.DefaultMaxAnswer>>20) + "MiB").Bytes()
	// The one flag whose type is not report.Command's: converted once
	// the command is parsed.
	cmd.Action(func(*kingpin.ParseContext) error {
		c.MaxAnswer = int64(*maxAnswer)
		return nil
	})
	return cmd, c
}

// runReport makes the report c describes; SIGINT or SIGTERM cancel it.
func runReport(c *report.Command, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return c.Run(ctx, stdout, stderr)
}
