package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ipacct/ipacct_exporter/config"
	"github.com/ipacct/ipacct_exporter/exporter"
	"github.com/ipacct/ipacct_exporter/flow"
	"github.com/ipacct/ipacct_exporter/managed"
)

// netflowCmd is the netflow collector's part of the command line: off
// unless --collector.netflow.listen-address names a UDP address.
type netflowCmd struct {
	listen    *string
	collector *flow.Collector
	conn      *net.UDPConn
}

func addNetflowFlags(serve *kingpin.CmdClause) *netflowCmd {
	return &netflowCmd{
		listen: serve.Flag("collector.netflow.listen-address",
			"UDP address to receive NetFlow v5, v9 and IPFIX on, such as :2055. Flows count for the entries of --config.file with source: flows. Empty: off.").Default("").String(),
	}
}

// prepare creates the collector when it is on; it needs the entries of
// rules.yaml to attribute flows to.
func (n *netflowCmd) prepare(logger *slog.Logger, configFile string) int {
	if *n.listen == "" {
		return 0
	}
	if configFile == "" {
		fmt.Fprintln(os.Stderr, "--collector.netflow.listen-address needs --config.file: flows count only for the accounting and addresses entries with source: flows")
		return 2
	}
	n.collector = flow.New(logger.With("collector", "netflow"))
	return 0
}

// attach gives the collector each rules.yaml that the manager loads and
// applies: the kernel and the flows take the same parse of the file.
func (n *netflowCmd) attach(m *managed.Manager, logger *slog.Logger) {
	m.OnApply(func(f *config.File) {
		switch {
		case n.collector != nil:
			n.collector.Configure(f)
			if !f.HasFlows() {
				logger.Warn("the netflow collector is on, but no entry of rules.yaml has source: flows; no flow counts", "file", f.Path)
			}
		case f.HasFlows():
			logger.Warn("entries of rules.yaml have source: flows, but the netflow collector is off; set --collector.netflow.listen-address", "file", f.Path)
		}
	})
}

// start opens the UDP socket and receives on it until close.
func (n *netflowCmd) start(logger *slog.Logger) int {
	if n.collector == nil {
		return 0
	}
	conn, err := flow.Listen(*n.listen)
	if err != nil {
		logger.Error("netflow collector: cannot listen", "address", *n.listen, "err", err)
		return 1
	}
	n.conn = conn
	logger.Info("netflow collector listening", "address", conn.LocalAddr().String())
	go func() {
		if err := n.collector.Serve(conn); err != nil {
			logger.Error("netflow collector stopped receiving", "err", err)
		}
	}()
	return 0
}

func (n *netflowCmd) sources() []exporter.Collector {
	if n.collector == nil {
		return nil
	}
	return []exporter.Collector{{Name: "netflow", Collector: n.collector}}
}

func (n *netflowCmd) register(r *prometheus.Registry) {
	if n.collector != nil {
		r.MustRegister(n.collector.Telemetry())
	}
}

func (n *netflowCmd) close() {
	if n.conn != nil {
		n.conn.Close()
	}
}
