// Package iptables reads the counters of iptables-legacy rules, IPv4 and
// IPv6, whose comment carries an accounting tag.
//
// Only the legacy (x_tables) tables are read. Rules made with iptables-nft
// live in nftables, where the nftables collector counts them, and every kernel
// counter must be counted exactly once. Debian's plain `iptables` is
// iptables-nft, so this collector runs iptables-legacy and ip6tables-legacy by
// name, and never the plain tool.
//
// Listing a table with iptables-legacy creates it in the kernel. So a family
// is read only when the namespace's /proc/net/ip_tables_names (or
// ip6_tables_names) names tables, and only the tables named there are listed.
//
// Each chain is listed with `iptables-legacy -t TABLE -v -S CHAIN --wait N`.
// Nothing is ever changed: no counter is zeroed, no rule touched. This needs
// root, or the capabilities CAP_NET_ADMIN and CAP_NET_RAW (iptables-legacy)
// and CAP_DAC_READ_SEARCH (the /proc files are readable by root only; it
// also lets iptables-legacy open the xtables lock file, which it opens
// read-only). The lock file, /run/xtables.lock or the one $XTABLES_LOCKFILE
// names, must exist or be creatable: any root run of iptables makes it.
// iptables-legacy gets these capabilities only as root's or as the
// exporter's ambient capabilities: file capabilities set on the exporter's
// binary (setcap) do not pass to the programs it runs.
package iptables

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	goiptables "github.com/coreos/go-iptables/iptables"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/internal/netns"
)

// DefaultLockTimeout is how long a listing waits for the xtables lock when
// Options.LockTimeout is zero.
const DefaultLockTimeout = 5 * time.Second

// Options configure a Collector.
type Options struct {
	// NetNS is the path of the network namespace file to read
	// (/run/netns/NAME, /proc/PID/ns/net); "" is the exporter's own.
	NetNS string
	// Filter narrows the tables and chains read.
	Filter collector.Filter
	// LockTimeout bounds the wait of each iptables-legacy command for the
	// xtables lock, which a rule change holds. It is rounded up to whole
	// seconds; zero or less means DefaultLockTimeout. Without a bound, a
	// stuck iptables-restore would hang every scrape.
	LockTimeout time.Duration
}

// Collector reads tagged counters of legacy iptables rules. It is safe for
// concurrent use.
type Collector struct {
	netNS       string
	lockSeconds int
	filter      collector.Filter

	mu      sync.Mutex
	handles map[family.Table]*goiptables.IPTables // made on first use
}

var _ collector.Collector = (*Collector)(nil)

// New returns a Collector. It runs nothing: the tools are looked up when a
// family first has legacy tables to read.
func New(opts Options) *Collector {
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	return &Collector{
		netNS:  opts.NetNS,
		filter: opts.Filter,
		// go-iptables waits forever with Timeout(0): never pass it.
		lockSeconds: int((timeout + time.Second - 1) / time.Second),
		handles:     make(map[family.Table]*goiptables.IPTables),
	}
}

// xtablesFamily is one family of x_tables: its tables' family, ip or ip6,
// and its tool.
type xtablesFamily struct {
	table      family.Table
	tool       string
	tablesFile string // the legacy tables loaded in the reading thread's namespace
	proto      goiptables.Protocol
}

func xtablesFamilies() []xtablesFamily {
	return []xtablesFamily{
		{family.IP, "iptables-legacy", "/proc/thread-self/net/ip_tables_names", goiptables.ProtocolIPv4},
		{family.IP6, "ip6tables-legacy", "/proc/thread-self/net/ip6_tables_names", goiptables.ProtocolIPv6},
	}
}

// Read lists every legacy table of the namespace, IPv4 then IPv6, tables in
// the kernel's order, chains and rules in the order iptables prints them.
func (b *Collector) Read(ctx context.Context) (collector.Reading, error) {
	var reading collector.Reading
	// Inside the namespace: the /proc files are per thread, and the tools
	// inherit the namespace of the thread that starts them.
	err := netns.Do(b.netNS, func() error {
		for _, f := range xtablesFamilies() {
			if err := b.readFamily(ctx, f, &reading); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return collector.Reading{}, err // a refused setns says it needs CAP_SYS_ADMIN
	}
	return reading, nil
}

func (b *Collector) readFamily(ctx context.Context, f xtablesFamily, reading *collector.Reading) error {
	tables, err := loadedTables(f.tablesFile)
	if err != nil || len(tables) == 0 {
		return err
	}
	ipt, err := b.handle(f)
	if err != nil {
		return err
	}
	for _, table := range tables {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !b.filter.Table(f.table, table) {
			continue
		}
		chains, err := ipt.ListChains(table)
		if err != nil {
			return commandFailed(err)
		}
		for _, chain := range chains {
			// go-iptables takes no context: stop between commands.
			if err := ctx.Err(); err != nil {
				return err
			}
			if !b.filter.Chain(f.table, table, chain) {
				continue
			}
			lines, err := ipt.ListWithCounters(table, chain)
			if err != nil {
				return commandFailed(err)
			}
			where := string(f.table) + " " + table + " " + chain
			rules, err := parseRules(lines)
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			for _, r := range rules {
				if r.commented {
					reading.Add(where, collector.ParseComment(r.comment), collector.Record{Family: f.table, Packets: r.packets, Bytes: r.bytes, ID: collector.ID(string(f.table) + " " + table + " " + r.content)})
				}
			}
		}
	}
	return nil
}

// loadedTables reads a family's legacy table names, one a line. The file is
// missing when x_tables for the family is not loaded at all; both that and
// an empty file mean there is nothing to read.
func loadedTables(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("%w: the iptables collector needs CAP_DAC_READ_SEARCH to read this root-only file, "+
			"and CAP_NET_ADMIN and CAP_NET_RAW for iptables-legacy: run as root, or grant all three as ambient "+
			"capabilities; on a host without legacy tables, use --no-collector.iptables", err)
	case err != nil:
		return nil, err
	}
	return strings.Fields(string(data)), nil
}

// handle returns the family's go-iptables handle, made once. A failure is
// not kept, so that installing the tool later needs no restart.
func (b *Collector) handle(f xtablesFamily) (*goiptables.IPTables, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ipt := b.handles[f.table]; ipt != nil {
		return ipt, nil
	}
	// An explicit path: go-iptables would otherwise run plain "iptables",
	// which is iptables-nft on Debian.
	path, err := exec.LookPath(f.tool)
	if err != nil {
		return nil, fmt.Errorf("%s not found in PATH: install the iptables package, or disable with --no-collector.iptables", f.tool)
	}
	ipt, err := goiptables.New(goiptables.IPFamily(f.proto), goiptables.Path(path), goiptables.Timeout(b.lockSeconds))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	b.handles[f.table] = ipt
	return ipt, nil
}

// commandError is a failed iptables-legacy command, on one line, with what
// to do about it. It unwraps to go-iptables' *Error.
type commandError struct {
	err  error
	hint string
}

func (e *commandError) Error() string {
	msg := strings.ReplaceAll(strings.TrimSpace(e.err.Error()), "\n", "; ")
	if e.hint == "" {
		return msg
	}
	return msg + ": " + e.hint
}

func (e *commandError) Unwrap() error { return e.err }

func commandFailed(err error) error {
	msg := err.Error()
	var hint string
	switch {
	case strings.Contains(msg, "lock file"):
		hint = "iptables-legacy must open the xtables lock file (/run/xtables.lock, or the file that " +
			"$XTABLES_LOCKFILE names): it must exist (any run of iptables as root makes it), and iptables-legacy " +
			"needs root or the ambient capability CAP_DAC_READ_SEARCH to open it (file capabilities of the " +
			"exporter do not pass to iptables-legacy)"
	case strings.Contains(msg, "Permission denied"), strings.Contains(msg, "you must be root"),
		strings.Contains(msg, "Operation not permitted"):
		hint = "listing legacy iptables rules needs CAP_NET_ADMIN and CAP_NET_RAW in iptables-legacy, which has " +
			"them as root or as ambient capabilities of the exporter, not from file capabilities of the exporter"
	}
	return &commandError{err: err, hint: hint}
}
