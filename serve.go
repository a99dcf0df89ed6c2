package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/ipacct/ipacct_exporter/config"
	"github.com/ipacct/ipacct_exporter/exporter"
	"github.com/ipacct/ipacct_exporter/flow"
	"github.com/ipacct/ipacct_exporter/internal/netns"
	"github.com/ipacct/ipacct_exporter/managed"
)

// serve runs the daemon until SIGINT or SIGTERM: it applies rules.yaml,
// receives flows, and serves the counters of the namespaces that patterns
// name on /metrics.
func serve(s *serveFlags, patterns netns.Patterns, stderr io.Writer) int {
	s.log.Writer = stderr
	logger := promslog.New(&s.log)
	if err := s.collectors.filter.Check(); err != nil {
		fmt.Fprintf(stderr, "%s: --collector.table or --collector.chain: %v\n", name, err)
		return 2
	}
	if s.flowListen != "" && s.configFile == "" {
		fmt.Fprintln(stderr, "--collector.flow.listen-address needs --config.file: flows count only for the accounting and addresses entries with source: flow")
		return 2
	}
	if !s.collectors.nftables && !s.collectors.iptables && s.flowListen == "" {
		logger.Error("every collector is disabled: enable --collector.nftables or --collector.iptables")
		return 2
	}
	logger.Info("starting "+name, "version", version.Info(), "build_context", version.BuildContext())

	// The flow collector needs the entries of rules.yaml to attribute flows
	// to, so it is made before the first load of the file.
	var flows *flow.Collector
	if s.flowListen != "" {
		flows = flow.New(logger.With("collector", "flow"))
	}
	var manager *managed.Manager
	if s.configFile != "" {
		nsPath, _ := patterns.Single()
		manager = managed.NewManager(s.configFile, nsPath, logger)
		manager.OnApply(func(f *config.File) { configureFlows(flows, f, logger) })
		// The managed table is read whole, whatever the filter says. Its
		// name is the one at start: changing it needs a restart.
		manager.OnApply(func(f *config.File) {
			if len(s.collectors.filter.Managed) == 0 {
				s.collectors.filter.Managed = []string{"inet " + f.Table}
			}
		})
		if err := manager.Reload(); err != nil {
			return 1
		}
		defer manager.Close()
		ctx, stopWatching := context.WithCancel(context.Background())
		defer stopWatching()
		go manager.Watch(ctx)
	}
	if flows != nil {
		conn, err := flow.Listen(s.flowListen)
		if err != nil {
			logger.Error("flow collector: cannot listen", "address", s.flowListen, "err", err)
			return 1
		}
		defer conn.Close()
		logger.Info("flow collector listening", "address", conn.LocalAddr().String())
		go func() {
			if err := flows.Serve(conn); err != nil {
				logger.Error("flow collector stopped receiving", "err", err)
			}
		}()
	}

	counters := newExporter(s, patterns, flows, logger)
	if s.stateFile != "" {
		n, err := counters.LoadState(s.stateFile)
		if err != nil {
			logger.Error("reading the state file", "err", err)
		} else {
			logger.Info("state file read", "file", s.stateFile, "series", n)
		}
		stop := saveStatePeriodically(counters, s.stateFile, logger)
		defer stop()
	}
	handler, err := newHandler(s, counters, manager, flows, logger)
	if err != nil {
		logger.Error("building the landing page", "err", err)
		return 1
	}
	server := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	// Registered before serving: a signal is never the default's to handle.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go handleSignals(signals, server, manager, logger)
	if err := web.ListenAndServe(server, s.web, logger); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("serving HTTP", "err", err)
		return 1
	}
	return 0
}

// configureFlows gives the flow collector, when it is on, each rules.yaml
// that the manager loads and applies: the kernel and the flows take the same
// parse of the file. Either way, it warns when the file and the collector
// do not go together.
func configureFlows(flows *flow.Collector, f *config.File, logger *slog.Logger) {
	switch {
	case flows != nil:
		flows.Configure(f)
		if !f.HasFlows() {
			logger.Warn("the flow collector is on, but no entry of rules.yaml has source: flow; no flow counts", "file", f.Path)
		}
	case f.HasFlows():
		logger.Warn("entries of rules.yaml have source: flow, but the flow collector is off; set --collector.flow.listen-address", "file", f.Path)
	}
}

// newExporter makes the exporter of the enabled collectors: of the one
// namespace that patterns name, with the flow collector (nil when off), or
// of the namespaces that they name at each scrape.
func newExporter(s *serveFlags, patterns netns.Patterns, flows *flow.Collector, logger *slog.Logger) *exporter.Exporter {
	nsPath, single := patterns.Single()
	if !single {
		logger.Info("reading several network namespaces, each series labelled netns", "netns", strings.Join(patterns, ","), "nftables", s.collectors.nftables, "iptables", s.collectors.iptables)
		ns := &namespaceCollectors{patterns: patterns, collectors: s.collectors, logger: logger}
		return exporter.NewForNamespaces(logger, s.scrapeTimeout, ns.list)
	}
	list := s.collectors.in(netns.Namespace{Path: nsPath})
	if flows != nil {
		list = append(list, exporter.Collector{Name: "flow", Collector: flows})
	}
	for _, c := range list {
		logger.Info("collector enabled", "collector", c.Name)
	}
	return exporter.New(logger, s.scrapeTimeout, list...)
}

// newHandler serves the counters on --web.telemetry-path, with the
// exporter's own metrics, a landing page and /-/reload.
func newHandler(s *serveFlags, counters *exporter.Exporter, manager *managed.Manager, flows *flow.Collector, logger *slog.Logger) (http.Handler, error) {
	registry := prometheus.NewRegistry()
	registry.MustRegister(
		versioncollector.NewCollector(name),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if manager != nil {
		registry.MustRegister(manager)
	}
	if flows != nil {
		registry.MustRegister(flows.Telemetry())
	}

	mux := http.NewServeMux()
	// OpenMetrics carries the created time of series that appear while
	// the exporter runs, which the report uses.
	mux.Handle(s.metricsPath, exporter.Handler(counters, registry, logger))
	if s.metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        name,
			Description: "Netfilter accounting counters, tagged by rule comments",
			Version:     version.Info(),
			Links:       []web.LandingLinks{{Address: s.metricsPath, Text: "Metrics"}},
		})
		if err != nil {
			return nil, err
		}
		mux.Handle("/", landing)
	}
	mux.Handle("/-/reload", reloadHandler(manager, s.lifecycle))
	return mux, nil
}

// handleSignals reloads rules.yaml on SIGHUP, and shuts the server down
// on SIGINT or SIGTERM.
func handleSignals(signals <-chan os.Signal, server *http.Server, manager *managed.Manager, logger *slog.Logger) {
	for sig := range signals {
		if sig == syscall.SIGHUP {
			if manager == nil {
				logger.Info("SIGHUP ignored: no --config.file to reload")
			} else {
				manager.RequestReload() // Watch reloads, and logs the outcome
			}
			continue
		}
		// The managed rules stay: counting goes on while the exporter
		// restarts. "ipacct_exporter cleanup" removes them.
		logger.Info("shutting down", "signal", sig.String())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = server.Shutdown(ctx)
		cancel()
		return
	}
}

// stateSaveInterval is how often the state file is written, when it
// changed; stateSaveSoon is how soon after a counter vanished or was zeroed.
const (
	stateSaveInterval = 5 * time.Second
	stateSaveSoon     = time.Second
)

// saveStatePeriodically writes the exporter's state every few seconds, and
// within a second of a change that only the state keeps; the returned
// function stops it and writes a last time.
func saveStatePeriodically(e *exporter.Exporter, path string, logger *slog.Logger) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	save := func() {
		if err := e.SaveState(path); err != nil {
			logger.Error("saving state", "err", err)
		}
	}
	go func() {
		defer close(finished)
		tick := time.NewTicker(stateSaveInterval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				save()
			case <-e.StateChanged():
				save()
				// At most one such save a second, whatever the churn.
				select {
				case <-time.After(stateSaveSoon):
				case <-done:
					return
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		save()
	}
}
