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
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/config"
	"github.com/ipacct/ipacct_exporter/exporter"
	"github.com/ipacct/ipacct_exporter/internal/buildinfo"
	"github.com/ipacct/ipacct_exporter/internal/netns"
	"github.com/ipacct/ipacct_exporter/managed"
)

const name = "ipacct_exporter"

// defaultAddress is the default listen address. 10427 is outside the
// 9100-9999 range that the Prometheus default port allocations have filled.
const defaultAddress = ":10427"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	buildinfo.Fill()
	app := kingpin.New(name, "Serves netfilter (nftables and iptables) accounting counters, tagged by rule comments, as Prometheus metrics. Each command has its own flags: see \"ipacct_exporter serve --help\" for the daemon's, which it takes without the word serve too.")
	// Each command has its own flags, so that "report --help" shows no
	// daemon flag. serve is the default: its flags work without the word.
	serve := app.Command("serve", "Serve metrics (the default).").Default()
	cleanupCmd := app.Command("cleanup", "Delete the exporter's nftables table (the one --config.file names, default inet ipacct) and nothing else, then exit.")
	var (
		metricsPath = serve.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
		webConfig   = kingpinflag.AddFlags(serve, defaultAddress)
		lifecycle   = serve.Flag("web.enable-lifecycle", "Reload rules.yaml on POST /-/reload. Off: anyone who can reach the port could make the exporter reload; SIGHUP always reloads.").Bool()
		netnsFlag   = serve.Flag("netns", "Network namespace to read counters from: a name under /run/netns, a path such as /proc/PID/ns/net, or a glob of either (quote it). Repeatable; with several, or a glob, every series gets a netns label. Entering a namespace needs CAP_SYS_ADMIN. Default: the exporter's own.").Strings()
		netnsUserNS = serve.Flag("netns.allow-user-namespaces", "Also read network namespaces that a user namespace other than the exporter's owns. Any local user can make one (unshare -rn) with tagged counters of their choosing; without this flag a glob skips them and a named one fails its collectors.").Bool()
		timeout     = serve.Flag("scrape.timeout", "Longest time a scrape may spend reading the kernel (0: no limit).").Default("10s").Duration()
		useNftables = serve.Flag("collector.nftables", "Read tagged rules and named counters of every nftables table over netlink (also the tables iptables-nft writes).").Default("true").Bool()
		useIptables = serve.Flag("collector.iptables", "Read tagged rules of iptables-legacy and ip6tables-legacy tables, when the kernel has any.").Default("true").Bool()
		lockTimeout = serve.Flag("collector.iptables.lock-timeout", "How long iptables-legacy waits for the xtables lock.").Default("5s").Duration()
		tables      = serve.Flag("collector.table", "Read only the tables whose \"FAMILY NAME\" matches this glob, such as 'ip filter' or 'inet *' (quote it); repeatable. Default: every table. The table of --config.file is always read.").PlaceHolder("PATTERN").Strings()
		chains      = serve.Flag("collector.chain", "Read tagged rules only in the chains whose name matches this glob, such as ACCT4 or 'ACCT*'; repeatable. Default: every chain. Named counters and sets are not in chains, and are read with their table.").PlaceHolder("PATTERN").Strings()
		stateFile   = serve.Flag("state.file", "File that keeps, across restarts, what the exporter counted for kernel counters that vanished or were zeroed, so that a restart after a partial change of the ruleset does not look like a counter reset to Prometheus. Written every few seconds and at shutdown. Default: none.").PlaceHolder("PATH").String()
		configFile  = serve.Flag("config.file", "rules.yaml: accounting rules to install in the exporter's own nftables table and keep in step with the file. Without it, the exporter only reads existing tagged rules.").String()
		configCheck = serve.Flag("config.check", "Validate --config.file and exit.").Bool()
		dryRun      = serve.Flag("config.dry-run", "Print the nftables table that --config.file would install, in nft syntax that nft -f loads into the same table, and exit without touching the kernel.").Bool()
	)
	cleanupCmd.Flag("config.file", "rules.yaml whose table to delete. Default: inet ipacct.").StringVar(configFile)
	cleanupCmd.Flag("netns", "Network namespace to delete the table in: a name under /run/netns or a path such as /proc/PID/ns/net. Default: the exporter's own.").StringsVar(netnsFlag)
	netflow := addNetflowFlags(serve)
	addReportCommand(app)
	logConfig := &promslog.Config{Level: promslog.NewLevel(), Format: promslog.NewFormat()}
	serve.Flag(promslogflag.LevelFlagName, promslogflag.LevelFlagHelp).Default("info").HintOptions(promslog.LevelFlagOptions...).SetValue(logConfig.Level)
	serve.Flag(promslogflag.FormatFlagName, promslogflag.FormatFlagHelp).Default("logfmt").HintOptions(promslog.FormatFlagOptions...).SetValue(logConfig.Format)
	app.Version(version.Print(name))
	app.HelpFlag.Short('h')
	command, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	logger := promslog.New(logConfig)
	patterns, err := netns.ParsePatterns(*netnsFlag)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	// nsPath is the one namespace that --config.file and cleanup manage.
	nsPath, single := patterns.Single()
	if !single && (*configFile != "" || command == cleanupCmd.FullCommand()) {
		fmt.Fprintf(os.Stderr, "%s: --config.file and cleanup manage rules in one network namespace: give at most one --netns, without a glob\n", name)
		return 2
	}

	cleanup := command == cleanupCmd.FullCommand()
	if *configCheck || *dryRun || cleanup {
		return runConfigCommand(*configFile, nsPath, *configCheck, *dryRun, cleanup)
	}
	logger.Info("starting "+name, "version", version.Info(), "build_context", version.BuildContext())

	if code := netflow.prepare(logger, *configFile); code != 0 {
		return code
	}
	defer netflow.close()
	filter := collector.Filter{Tables: *tables, Chains: *chains}
	if err := filter.Check(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: --collector.table or --collector.chain: %v\n", name, err)
		return 2
	}
	var manager *managed.Manager
	if *configFile != "" {
		manager = managed.NewManager(*configFile, nsPath, logger)
		netflow.attach(manager, logger)
		// The managed table is read whole, whatever the filter says. Its
		// name is the one at start: changing it needs a restart.
		manager.OnApply(func(f *config.File) {
			if len(filter.Managed) == 0 {
				filter.Managed = []string{"inet " + f.Table}
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
	enabled := collectorSet{nftables: *useNftables, iptables: *useIptables, lockTimeout: *lockTimeout, filter: filter, allowUserNamespaces: *netnsUserNS}
	if code := netflow.start(logger); code != 0 {
		return code
	}
	if !enabled.nftables && !enabled.iptables && netflow.collector == nil {
		logger.Error("every collector is disabled: enable --collector.nftables or --collector.iptables")
		return 2
	}
	var counters *exporter.Exporter
	if single {
		sources := append(enabled.sources(netns.Namespace{Path: nsPath}), netflow.sources()...)
		for _, s := range sources {
			logger.Info("collector enabled", "collector", s.Name)
		}
		counters = exporter.New(logger, *timeout, sources...)
	} else {
		logger.Info("reading several network namespaces, each series labelled netns", "netns", strings.Join(patterns, ","), "nftables", enabled.nftables, "iptables", enabled.iptables)
		ns := &namespaceSources{patterns: patterns, collectors: enabled, logger: logger}
		counters = exporter.NewForNamespaces(logger, *timeout, ns.list)
	}

	if *stateFile != "" {
		n, err := counters.LoadState(*stateFile)
		if err != nil {
			logger.Error("reading the state file", "err", err)
		} else {
			logger.Info("state file read", "file", *stateFile, "series", n)
		}
		stop := saveStatePeriodically(counters, *stateFile, logger)
		defer stop()
	}

	registry := prometheus.NewRegistry()
	registry.MustRegister(
		versioncollector.NewCollector(name),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if manager != nil {
		registry.MustRegister(manager)
	}
	netflow.register(registry)

	mux := http.NewServeMux()
	// OpenMetrics carries the created time of series that appear while
	// the exporter runs, which the report uses.
	mux.Handle(*metricsPath, exporter.Handler(counters, registry, logger))
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

	mux.Handle("/-/reload", reloadHandler(manager, *lifecycle))

	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
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
	}()
	if err := web.ListenAndServe(server, webConfig, logger); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("serving HTTP", "err", err)
		return 1
	}
	return 0
}

// runConfigCommand does what --config.check, --config.dry-run and cleanup
// ask, and returns the exit code.
func runConfigCommand(path, nsPath string, check, dryRun, cleanup bool) int {
	table := "ipacct"
	if path != "" || check || dryRun {
		if path == "" {
			fmt.Fprintln(os.Stderr, "--config.check and --config.dry-run need --config.file")
			return 2
		}
		f, err := config.Load(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		rs, err := managed.Build(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		table = f.Table
		if dryRun {
			fmt.Print(rs.Text())
		}
		if check {
			fmt.Printf("%s: valid, %d accounting entries, %d addresses entries\n", path, len(f.Accounting), len(f.Addresses))
		}
	}
	if !cleanup || check || dryRun {
		return 0 // neither touches the kernel
	}
	// A running exporter makes its table again: say so. Without one, the
	// claim keeps an exporter from starting on the table meanwhile.
	claim, err := managed.ClaimTable(nsPath, table, "ipacct_exporter cleanup")
	if owner := (*managed.ClaimedError)(nil); errors.As(err, &owner) {
		fmt.Fprintf(os.Stderr, "%s: a running ipacct_exporter manages table inet %s (%s) and will make it again within a second: stop it to remove the table for good\n", name, table, owner.Owner)
	}
	defer claim.Release()
	conn, closeConn, err := managed.Dial(nsPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer closeConn()
	deleted, err := managed.Cleanup(conn, table)
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, managed.ExplainPermission(err))
		return 1
	case deleted:
		fmt.Printf("deleted table inet %s\n", table)
	default:
		fmt.Printf("no table inet %s: nothing to do\n", table)
	}
	return 0
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
