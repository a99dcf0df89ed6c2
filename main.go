// Command ipacct_exporter serves the kernel's netfilter accounting counters,
// picked by the tag in their rule comments, as Prometheus metrics.
//
// This file composes the program: each command's flags, and a switch that
// runs the command the arguments name. Each command is a function that
// returns the exit code: serve (serve.go), checkConfig and cleanup
// (rules.go), runReport (report.go).
package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/ipacct/ipacct_exporter/internal/buildinfo"
	"github.com/ipacct/ipacct_exporter/internal/netns"
)

const name = "ipacct_exporter"

// defaultAddress is the default listen address. 10427 is outside the
// 9100-9999 range that the Prometheus default port allocations have filled.
const defaultAddress = ":10427"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// serveFlags is the daemon's command line. configFile and netns are
// cleanup's too.
type serveFlags struct {
	web           *web.FlagConfig
	metricsPath   string
	lifecycle     bool
	netns         []string
	scrapeTimeout time.Duration
	collectors    enabledCollectors
	flowListen    string
	stateFile     string
	configFile    string
	check, dryRun bool
	log           promslog.Config
}

// run runs the command that args name, writing to stdout and stderr, and
// returns its exit code: 2 for invalid arguments. --help and --version
// exit from inside the parse, as kingpin does.
func run(args []string, stdout, stderr io.Writer) int {
	buildinfo.Fill()
	app := kingpin.New(name, "Serves netfilter (nftables and iptables) accounting counters, tagged by rule comments, as Prometheus metrics. Each command has its own flags: see \"ipacct_exporter serve --help\" for the daemon's, which it takes without the word serve too.").
		UsageWriter(stdout).ErrorWriter(stderr)
	// Each command has its own flags, so that "report --help" shows no
	// daemon flag. serve is the default: its flags work without the word.
	serveCmd := app.Command("serve", "Serve metrics (the default).").Default()
	s := addServeFlags(serveCmd)
	cleanupCmd := app.Command("cleanup", "Delete the exporter's nftables table (the one --config.file names, default inet ipacct) and nothing else, then exit.")
	cleanupCmd.Flag("config.file", "rules.yaml whose table to delete. Default: inet ipacct.").StringVar(&s.configFile)
	cleanupCmd.Flag("netns", "Network namespace to delete the table in: a name under /run/netns or a path such as /proc/PID/ns/net. Default: the exporter's own.").StringsVar(&s.netns)
	reportCmd, rep := addReportCommand(app)
	app.Version(version.Print(name))
	app.HelpFlag.Short('h')

	command, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	patterns, err := netns.ParsePatterns(s.netns)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	// nsPath is the one namespace that --config.file and cleanup manage.
	nsPath, single := patterns.Single()
	if !single && (s.configFile != "" || command == cleanupCmd.FullCommand()) {
		fmt.Fprintf(stderr, "%s: --config.file and cleanup manage rules in one network namespace: give at most one --netns, without a glob\n", name)
		return 2
	}

	switch {
	case command == reportCmd.FullCommand():
		return runReport(rep, stdout, stderr)
	case command == cleanupCmd.FullCommand():
		return cleanup(s.configFile, nsPath, stdout, stderr)
	case s.check || s.dryRun:
		return checkConfig(s.configFile, s.check, s.dryRun, stdout, stderr)
	default:
		return serve(s, patterns, stderr)
	}
}

// addServeFlags adds the daemon's flags to cmd.
func addServeFlags(cmd *kingpin.CmdClause) *serveFlags {
	s := &serveFlags{web: kingpinflag.AddFlags(cmd, defaultAddress)}
	cmd.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&s.metricsPath)
	cmd.Flag("web.enable-lifecycle", "Reload rules.yaml on POST /-/reload. Off: anyone who can reach the port could make the exporter reload; SIGHUP always reloads.").BoolVar(&s.lifecycle)
	cmd.Flag("netns", "Network namespace to read counters from: a name under /run/netns, a path such as /proc/PID/ns/net, or a glob of either (quote it). Repeatable; with several, or a glob, every series gets a netns label. Entering a namespace needs CAP_SYS_ADMIN. Default: the exporter's own.").StringsVar(&s.netns)
	cmd.Flag("netns.allow-user-namespaces", "Also read network namespaces that a user namespace other than the exporter's owns. Any local user can make one (unshare -rn) with tagged counters of their choosing; without this flag a glob skips them and a named one fails its collectors.").BoolVar(&s.collectors.allowUserNamespaces)
	cmd.Flag("scrape.timeout", "Longest time a scrape may spend reading the kernel (0: no limit).").Default("10s").DurationVar(&s.scrapeTimeout)
	cmd.Flag("collector.nftables", "Read tagged rules and named counters of every nftables table over netlink (also the tables iptables-nft writes).").Default("true").BoolVar(&s.collectors.nftables)
	cmd.Flag("collector.iptables", "Read tagged rules of iptables-legacy and ip6tables-legacy tables, when the kernel has any.").Default("true").BoolVar(&s.collectors.iptables)
	cmd.Flag("collector.iptables.lock-timeout", "How long iptables-legacy waits for the xtables lock.").Default("5s").DurationVar(&s.collectors.lockTimeout)
	cmd.Flag("collector.table", "Read only the tables whose \"TABLE_FAMILY NAME\" matches this glob, such as 'ip filter' or 'inet *' (quote it); repeatable. Default: every table. The table of --config.file is always read.").PlaceHolder("PATTERN").StringsVar(&s.collectors.filter.Tables)
	cmd.Flag("collector.chain", "Read tagged rules only in the chains whose name matches this glob, such as ACCT4 or 'ACCT*'; repeatable. Default: every chain. Named counters and sets are not in chains, and are read with their table.").PlaceHolder("PATTERN").StringsVar(&s.collectors.filter.Chains)
	const flowHelp = "UDP address to receive NetFlow v5, v9 and IPFIX on, such as :2055. Flows count for the entries of --config.file with source: flow. Empty: off."
	cmd.Flag("collector.flow.listen-address", flowHelp).PlaceHolder("ADDRESS").StringVar(&s.flowListen)
	cmd.Flag("state.file", "File that keeps, across restarts, what the exporter counted for kernel counters that vanished or were zeroed, so that a restart after a partial change of the ruleset does not look like a counter reset to Prometheus. Written every few seconds and at shutdown. Default: none.").PlaceHolder("PATH").StringVar(&s.stateFile)
	cmd.Flag("config.file", "rules.yaml: accounting rules to install in the exporter's own nftables table and keep in step with the file. Without it, the exporter only reads existing tagged rules.").StringVar(&s.configFile)
	cmd.Flag("config.check", "Validate --config.file and exit.").BoolVar(&s.check)
	cmd.Flag("config.dry-run", "Print the nftables table that --config.file would install, in nft syntax that nft -f loads into the same table, and exit without touching the kernel.").BoolVar(&s.dryRun)
	s.log = promslog.Config{Level: promslog.NewLevel(), Format: promslog.NewFormat()}
	cmd.Flag(promslogflag.LevelFlagName, promslogflag.LevelFlagHelp).Default("info").HintOptions(promslog.LevelFlagOptions...).SetValue(s.log.Level)
	cmd.Flag(promslogflag.FormatFlagName, promslogflag.FormatFlagHelp).Default("logfmt").HintOptions(promslog.FormatFlagOptions...).SetValue(s.log.Format)
	return s
}
