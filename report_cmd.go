package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // --timezone names on machines without zoneinfo

	"github.com/alecthomas/kingpin/v2"

	"github.com/ipacct/ipacct_exporter/report"
)

const reportHelp = `Print a billing period's traffic per tag (tenant) from the ipacct_* history in Prometheus, then exit.

Per tag: in and out bytes and packets, the 95th percentile of the 5-minute rates in bits/s, and, for a tag with per-address counters (ipacct_ip_*), its addresses by total bytes; a tag without them is reported from ipacct_tag_*. Labels other than tag, ip, direction (and family) are summed.

Totals are exact: they add the increments the scrapes saw between consecutive raw samples, a counter reset counting the value after it, and are not extrapolated like increase(). Lost: the traffic between the last scrape before a reset and the reset, and what a series counted before its first scrape.

95th percentile: in and out separately, over consecutive 5-minute buckets aligned to the start of the period, each increment spread evenly over the time since the previous sample; buckets without traffic count as 0; of the N rates, sorted, the one at rank ceil(0.95*N) (nearest rank).

Exit status: 0 done, 1 Prometheus unreachable, a query failed, no data or --timeout, 2 invalid flags.`

// addReportCommand registers the report command on app. Its action runs
// when app.Parse has read the flags, and exits with the report's code, so
// that the daemon's code path never sees the command.
func addReportCommand(app *kingpin.Application) {
	cmd := app.Command("report", reportHelp)
	var c report.Command
	cmd.Flag("prometheus.url", "URL of the Prometheus server that scrapes the exporter, with its path prefix if it has one.").Default("http://localhost:9090").StringVar(&c.URL)
	cmd.Flag("http.config.file", "File with the HTTP client settings for Prometheus: basic auth (password_file), authorization, OAuth 2, TLS (ca_file, cert_file, insecure_skip_verify), proxy; the format of promtool's --http.config.file.").PlaceHolder("FILE").StringVar(&c.HTTPConfigFile)
	cmd.Flag("period", "Calendar month to report, YYYY-MM, in --timezone. Default, without --from and --to: the last full month.").PlaceHolder("YYYY-MM").StringVar(&c.Period)
	cmd.Flag("from", "Start of the period, included: YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] in --timezone, or RFC 3339. With --to, instead of --period.").StringVar(&c.From)
	cmd.Flag("to", "End of the period, excluded; same forms as --from.").StringVar(&c.To)
	cmd.Flag("timezone", "Time zone of the period and of the times printed: Local, UTC or a name such as Europe/Berlin.").Default("Local").StringVar(&c.TimeZone)
	cmd.Flag("tag", "Report only this tag (repeatable). A tag without samples in the period is an error.").StringsVar(&c.Tags)
	cmd.Flag("match", `Extra PromQL label matcher every series must satisfy, such as job="ipacct" (repeatable).`).StringsVar(&c.Matchers)
	cmd.Flag("format", "Output: text (for people and mail), csv or json.").Default("text").EnumVar(&c.Format, report.Formats...)
	cmd.Flag("timeout", "Give up when the report is not done after this long (0: never).").Default("5m").DurationVar(&c.Timeout)
	cmd.Flag("max-gap", "Longest time between two samples of a series for the later one to count an increment over the earlier; a longer gap starts the series anew. Also how far before and after the period its neighbouring samples are looked for.").Default("24h").DurationVar(&c.MaxGap)
	cmd.Flag("chunk", "Time span one query reads: lower it when Prometheus refuses a query for loading too many samples.").Default("1h").DurationVar(&c.Chunk)
	cmd.Action(func(*kingpin.ParseContext) error {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := c.Run(ctx, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
		return nil
	})
}
