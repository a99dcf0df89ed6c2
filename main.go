// Command ipacct_exporter serves the kernel's netfilter accounting counters,
// picked by the tag in their rule comments, as Prometheus metrics.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/ipacct/ipacct_exporter/backends/iptables"
	"github.com/ipacct/ipacct_exporter/backends/nftables"
	"github.com/ipacct/ipacct_exporter/exporter"
	"github.com/ipacct/ipacct_exporter/internal/netns"
)

const name = "ipacct_exporter"

// defaultAddress is the default listen address. 10427 is outside the
// 9100-9999 range that the Prometheus default port allocations have filled.
const defaultAddress = ":10427"

func main() {
	os.Exit(run(os.Args[1:]))
}

// collectorFlags are the --[no-]collector.NAME switches; a collector exists
// only through its entry here.
type collectorFlags struct {
	nftables, iptables *bool
}

func run(args []string) int {
	app := kingpin.New(name, "Serves netfilter (nftables and iptables) accounting counters, tagged by rule comments, as Prometheus metrics.")
	var (
		metricsPath = app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
		webConfig   = kingpinflag.AddFlags(app, defaultAddress)
		netnsFlag   = app.Flag("netns", "Network namespace to read counters from: a name under /run/netns or a path such as /proc/PID/ns/net. Default: the exporter's own.").Default("").String()
		timeout     = app.Flag("scrape.timeout", "Longest time a scrape may spend reading the kernel (0: no limit).").Default("10s").Duration()
		collectors_ = collectorFlags{
			nftables: app.Flag("collector.nftables", "Read tagged rules and named counters of every nftables table over netlink (also the tables iptables-nft writes).").Default("true").Bool(),
			iptables: app.Flag("collector.iptables", "Read tagged rules of iptables-legacy and ip6tables-legacy tables, when the kernel has any.").Default("true").Bool(),
		}
		lockTimeout = app.Flag("collector.iptables.lock-timeout", "How long iptables-legacy waits for the xtables lock.").Default("5s").Duration()
	)
	logConfig := &promslog.Config{}
	promslogflag.AddFlags(app, logConfig)
	app.Version(version.Print(name))
	app.HelpFlag.Short('h')
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	logger := promslog.New(logConfig)
	logger.Info("starting "+name, "version", version.Info(), "build_context", version.BuildContext())

	nsPath := netns.Path(*netnsFlag)
	var sources []exporter.Source
	if *collectors_.nftables {
		sources = append(sources, exporter.Source{Name: "nftables", Backend: nftables.New(nftables.Options{NetNS: nsPath})})
	}
	if *collectors_.iptables {
		sources = append(sources, exporter.Source{Name: "iptables", Backend: iptables.New(iptables.Options{NetNS: nsPath, LockTimeout: *lockTimeout})})
	}
	if len(sources) == 0 {
		logger.Error("every collector is disabled: enable --collector.nftables or --collector.iptables")
		return 2
	}
	for _, s := range sources {
		logger.Info("collector enabled", "collector", s.Name)
	}

	registry := prometheus.NewRegistry()
	registry.MustRegister(
		exporter.New(logger, *timeout, sources...),
		versioncollector.NewCollector(name),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	mux := http.NewServeMux()
	mux.Handle(*metricsPath, promhttp.HandlerFor(registry, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	if *metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        name,
			Description: "Netfilter accounting counters, tagged by rule comments",
			Version:     version.Info(),
			Links:       []web.LandingLinks{{Address: *metricsPath, Text: "Metrics"}},
		})
		if err != nil {
			logger.Error("building the landing page", "err", err)
			return 1
		}
		mux.Handle("/", landing)
	}

	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-stop
		logger.Info("shutting down", "signal", sig.String())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(ctx)
	}()
	if err := web.ListenAndServe(server, webConfig, logger); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("serving HTTP", "err", err)
		return 1
	}
	return 0
}
