package iptables_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/collector/iptables"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
	"github.com/ipacct/ipacct_exporter/tag"
)

// helperEnv makes the test binary read its own namespace and exit, so that
// TestReadUnprivileged can run it under another user and capabilities.
const helperEnv = "IPACCT_IPTABLES_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		reading, err := iptables.New(iptables.Options{}).Read(context.Background())
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(3)
		}
		fmt.Printf("records: %d\n", len(reading.Records))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const (
	webDesc = "Combined web traffic to/from local 80/443"
	qDesc   = `say "hi" \ ünï`
)

var longTag = strings.Repeat("a", tag.MaxLen+1)

// The seed example, with -p udp so that known traffic hits it. ACCT4 is
// jumped to from INPUT and from OUTPUT: over loopback a packet to a local
// address goes through OUTPUT, then INPUT, so every match counts twice.
var acct4 = [][]string{
	{"!", "-s", "10.2.3.0/24", "-p", "udp", "--dport", "22", "-m", "comment", "--comment", "=unauthssh= Unauthorized SSH traffic received"},
	{"-d", "192.0.2.1", "-p", "udp", "--dport", "80", "-m", "comment", "--comment", "=web4_down= " + webDesc},
	{"-s", "192.0.2.1", "-p", "udp", "--sport", "80", "-m", "comment", "--comment", "=web4_up= dummy"},
	{"-d", "192.0.2.1", "-p", "udp", "--dport", "443", "-m", "comment", "--comment", "=web4_down= " + webDesc},
	{"-s", "192.0.2.1", "-p", "udp", "--sport", "443", "-m", "comment", "--comment", "=web4_up= dummy"},
	{"-d", "192.0.2.1", "-p", "udp", "--dport", "5353", "-m", "comment", "--comment", "=q_in= " + qDesc},
	{"-p", "udp", "-m", "comment", "--comment", "=bad tag!= x"},
	{"-p", "udp"},
	{"-p", "udp", "--dport", "9", "-m", "comment", "--comment", "=bad!tag= x"},
	{"-p", "udp", "--dport", "9", "-m", "comment", "--comment", "=" + longTag + "= too long"},
}

var acct6 = [][]string{
	{"-d", "2001:db8:f00d::1", "-p", "udp", "--dport", "80", "-m", "comment", "--comment", "=web6_down= " + webDesc},
	{"-s", "2001:db8:f00d::1", "-p", "udp", "--sport", "80", "-m", "comment", "--comment", "=web6_up= dummy"},
	{"-d", "2001:db8:f00d::1", "-p", "udp", "--dport", "443", "-m", "comment", "--comment", "=web6ssl_down= " + webDesc},
	{"-s", "2001:db8:f00d::1", "-p", "udp", "--sport", "443", "-m", "comment", "--comment", "=web6ssl_up= dummy"},
	{"-p", "udp"},
}

func setUpChain(ns *netnstest.NS, tool, chain string, rules [][]string) {
	ns.Run(tool, "-N", chain)
	ns.Run(tool, "-A", "INPUT", "-j", chain)
	ns.Run(tool, "-A", "OUTPUT", "-j", chain)
	for _, r := range rules {
		ns.Run(tool, append([]string{"-A", chain}, r...)...)
	}
}

// saveCounters reads the kernel's counters of a chain's rules, in order,
// with iptables-legacy-save: another output format, and another parser.
func saveCounters(t *testing.T, ns *netnstest.NS, tool, table, chain string) [][2]uint64 {
	t.Helper()
	re := regexp.MustCompile(`^\[(\d+):(\d+)\] -A ` + regexp.QuoteMeta(chain) + ` `)
	var counters [][2]uint64
	for _, line := range strings.Split(ns.Run(tool, "-c", "-t", table), "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		p, err1 := strconv.ParseUint(m[1], 10, 64)
		b, err2 := strconv.ParseUint(m[2], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("counters of %q: %v %v", line, err1, err2)
		}
		counters = append(counters, [2]uint64{p, b})
	}
	return counters
}

func record(name string, dir tag.Direction, fam family.Table, desc string, packets, bytes uint64) collector.Record {
	return collector.Record{Tag: name, Direction: dir, Family: fam, Description: desc, Packets: packets, Bytes: bytes}
}

// withoutIDs checks the records' identities and returns the records
// without them. Each is the hash of the family, table and rule line
// without counters: distinct here, since every rule of these tests
// differs. (TestReadSeedExample checks that they do not change with the
// counters.)
func withoutIDs(t *testing.T, records []collector.Record) []collector.Record {
	t.Helper()
	ids := map[uint64]bool{}
	out := slices.Clone(records)
	for i, r := range out {
		if r.ID == 0 || ids[r.ID] {
			t.Errorf("record %d: ID %x: want a distinct one", i, r.ID)
		}
		ids[r.ID] = true
		out[i].ID = 0
	}
	return out
}

func tablesOf(t *testing.T, ns *netnstest.NS, file string) []string {
	t.Helper()
	return strings.Fields(ns.Run("cat", file))
}

func TestReadSeedExample(t *testing.T) {
	netnstest.RequireRoot(t, "iptables-legacy", "ip6tables-legacy", "iptables-legacy-save", "ip6tables-legacy-save")
	ns := netnstest.New(t, "192.0.2.1/24", "198.51.100.1/24", "2001:db8:f00d::1/64")
	setUpChain(ns, "iptables-legacy", "ACCT4", acct4)
	setUpChain(ns, "ip6tables-legacy", "ACCT6", acct6)
	// A second table, seen once per packet: PREROUTING is on the way in only.
	ns.Run("iptables-legacy", "-t", "mangle", "-A", "PREROUTING", "-d", "192.0.2.1", "-p", "udp", "--dport", "80",
		"-m", "comment", "--comment", "=mangle80_in= prerouting")

	// Flows with distinct counts and sizes, so that a counter read from the
	// wrong rule shows.
	ssh := ns.SendUDP("198.51.100.1:40022", "192.0.2.1:22", 10, 3)
	web80in := ns.SendUDP("198.51.100.1:40080", "192.0.2.1:80", 100, 5)
	web80out := ns.SendUDP("192.0.2.1:80", "198.51.100.1:40081", 50, 7)
	web443in := ns.SendUDP("198.51.100.1:40443", "192.0.2.1:443", 200, 2)
	web443out := ns.SendUDP("192.0.2.1:443", "198.51.100.1:40444", 300, 4)
	q := ns.SendUDP("198.51.100.1:45353", "192.0.2.1:5353", 33, 6)
	web6in := ns.SendUDP("[2001:db8:f00d::1]:40080", "[2001:db8:f00d::1]:80", 70, 3)
	web6out := ns.SendUDP("[2001:db8:f00d::1]:80", "[2001:db8:f00d::1]:40081", 80, 5)
	ssl6in := ns.SendUDP("[2001:db8:f00d::1]:40443", "[2001:db8:f00d::1]:443", 90, 2)
	ssl6out := ns.SendUDP("[2001:db8:f00d::1]:443", "[2001:db8:f00d::1]:40444", 110, 6)

	byTable := map[string][]collector.Record{
		"filter": {
			record("unauthssh", tag.None, family.IP, "Unauthorized SSH traffic received", 2*3, 2*ssh),
			record("web4", tag.In, family.IP, webDesc, 2*5, 2*web80in),
			record("web4", tag.Out, family.IP, "dummy", 2*7, 2*web80out),
			record("web4", tag.In, family.IP, webDesc, 2*2, 2*web443in),
			record("web4", tag.Out, family.IP, "dummy", 2*4, 2*web443out),
			record("q", tag.In, family.IP, qDesc, 2*6, 2*q),
		},
		"mangle": {record("mangle80", tag.In, family.IP, "prerouting", 5, web80in)},
	}
	var want []collector.Record
	tables := tablesOf(t, ns, "/proc/net/ip_tables_names")
	if !reflect.DeepEqual(slices.Sorted(slices.Values(tables)), []string{"filter", "mangle"}) {
		t.Fatalf("IPv4 legacy tables %q, want filter and mangle", tables)
	}
	for _, table := range tables {
		want = append(want, byTable[table]...)
	}
	want = append(want,
		record("web6", tag.In, family.IP6, webDesc, 2*3, 2*web6in),
		record("web6", tag.Out, family.IP6, "dummy", 2*5, 2*web6out),
		record("web6ssl", tag.In, family.IP6, webDesc, 2*2, 2*ssl6in),
		record("web6ssl", tag.Out, family.IP6, "dummy", 2*6, 2*ssl6out),
	)

	b := iptables.New(iptables.Options{NetNS: ns.Path()})
	got, err := b.Read(context.Background())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if !reflect.DeepEqual(withoutIDs(t, got.Records), want) {
		t.Errorf("Records:\n got %s\nwant %s", dump(got.Records), dump(want))
	}

	// Whether "=bad tag!= x" is broken or no tag at all is the grammar's
	// call; the other two are broken under any.
	var wantInvalid []string
	for _, r := range acct4 {
		if c := r[len(r)-1]; r[len(r)-2] == "--comment" {
			if _, err := tag.Parse(c); err != nil && err != tag.ErrNoTag {
				wantInvalid = append(wantInvalid, c)
			}
		}
	}
	if !slices.Contains(wantInvalid, "=bad!tag= x") || !slices.Contains(wantInvalid, "="+longTag+"= too long") {
		t.Fatalf("the tag grammar takes broken tags: invalid are only %q", wantInvalid)
	}
	if len(got.Invalid) != len(wantInvalid) {
		t.Fatalf("Invalid = %+v, want the comments %q", got.Invalid, wantInvalid)
	}
	for i, inv := range got.Invalid {
		if inv.Where != "ip filter ACCT4" || inv.Comment != wantInvalid[i] || inv.Err == nil {
			t.Errorf("Invalid[%d] = %+v, want comment %q in ip filter ACCT4 with an error", i, inv, wantInvalid[i])
		}
	}

	// The kernel's own counters, read with iptables-legacy-save, must be
	// what Read returned: the tagged rules come first in each chain.
	kernel := map[string][][2]uint64{
		"ip filter":  saveCounters(t, ns, "iptables-legacy-save", "filter", "ACCT4"),
		"ip mangle":  saveCounters(t, ns, "iptables-legacy-save", "mangle", "PREROUTING"),
		"ip6 filter": saveCounters(t, ns, "ip6tables-legacy-save", "filter", "ACCT6"),
	}
	if len(kernel["ip filter"]) != len(acct4) || len(kernel["ip6 filter"]) != len(acct6) || len(kernel["ip mangle"]) != 1 {
		t.Fatalf("iptables-legacy-save shows %d, %d and %d rules, want %d, %d and 1",
			len(kernel["ip filter"]), len(kernel["ip6 filter"]), len(kernel["ip mangle"]), len(acct4), len(acct6))
	}
	var fromKernel []collector.Record
	for _, table := range tables {
		for i, r := range byTable[table] {
			c := kernel["ip "+table][i]
			r.Packets, r.Bytes = c[0], c[1]
			fromKernel = append(fromKernel, r)
		}
	}
	for i, r := range want[len(want)-4:] {
		c := kernel["ip6 filter"][i]
		r.Packets, r.Bytes = c[0], c[1]
		fromKernel = append(fromKernel, r)
	}
	if !reflect.DeepEqual(withoutIDs(t, got.Records), fromKernel) {
		t.Errorf("Records against iptables-legacy-save:\n got %s\nwant %s", dump(got.Records), dump(fromKernel))
	}
	// The untagged "-p udp" rules saw every datagram, twice.
	all4 := 2 * (3 + 5 + 7 + 2 + 4 + 6)
	if c := kernel["ip filter"][7]; c[0] != uint64(all4) {
		t.Errorf("untagged IPv4 rule counted %d packets, want %d", c[0], all4)
	}

	// Concurrent scrapes on one Collector see the same counters.
	var wg sync.WaitGroup
	results := make([]collector.Reading, 4)
	errs := make([]error, len(results))
	for i := range results {
		wg.Go(func() { results[i], errs[i] = b.Read(context.Background()) })
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil || !reflect.DeepEqual(results[i], got) {
			t.Errorf("concurrent Read %d: %v\n got %s\nwant %s", i, errs[i], dump(results[i].Records), dump(got.Records))
		}
	}

	// More traffic: the counters change, the identities do not.
	ns.SendUDP("198.51.100.1:40080", "192.0.2.1:80", 100, 5)
	later, err := b.Read(context.Background())
	if err != nil || len(later.Records) != len(got.Records) {
		t.Fatalf("Read after traffic: %d records, %v", len(later.Records), err)
	}
	changed := false
	for i, r := range later.Records {
		changed = changed || r.Bytes != got.Records[i].Bytes
		if r.ID != got.Records[i].ID {
			t.Errorf("record %d: ID %x after traffic, %x before", i, r.ID, got.Records[i].ID)
		}
	}
	if !changed {
		t.Error("no counter changed after traffic: the test proves nothing")
	}
}

// Rules that an exact parser must get right, through the real tools.
func TestReadUnusualRules(t *testing.T) {
	netnstest.RequireRoot(t, "iptables-legacy")
	ns := netnstest.New(t, "192.0.2.1/24")
	ipt := func(args ...string) { ns.Run("iptables-legacy", args...) }
	const odd = `a"b` // chain names and targets are printed unquoted
	ipt("-N", odd)
	ipt("-N", `"q`)
	ipt("-A", "INPUT", "-j", odd)
	match := []string{"-A", odd, "-p", "udp", "--dport", "7"}
	ipt(append(match, "-m", "comment", "--comment", "=nl_in= line1\nline2")...)
	ipt(append(match, "-m", "comment", "--comment", "-c")...)
	// go-iptables rewrites a line that starts with "[N:M] ": see parseRules.
	ipt(append(match, "-m", "comment", "--comment", "=gi_in= a\n[1:2] b")...)
	ipt(append(match, "!", "-i", `"x`, "-m", "comment", "--comment", "=iface_in=")...)
	ipt(append(match, "-m", "hashlimit", "--hashlimit-upto", "10000/sec", "--hashlimit-name", `"h`,
		"-m", "comment", "--comment", "=hl_in=")...)
	ipt(append(match, "-m", "string", "--string", `"x -c 1 2`, "--algo", "bm",
		"-m", "comment", "--comment", "=str_in=")...)
	ipt(append(match, "-m", "comment", "--comment", "=log_in=", "-j", "LOG", "--log-prefix", "-c")...)
	ipt(append(match, "-m", "comment", "--comment", "=jump_in=", "-j", `"q`)...)
	ipt(append(match, "-m", "comment", "--comment", "=x_in=", "-m", "comment", "--comment", "second")...)

	sent := ns.SendUDP("192.0.2.1:40007", "192.0.2.1:7", 20, 4)
	where := "ip filter " + odd
	want := []collector.Record{
		// A description is one line: the tag package makes a newline a
		// space.
		record("nl", tag.In, family.IP, "line1 line2", 4, sent),
		record("gi", tag.In, family.IP, "a b", 4, sent),
		record("iface", tag.In, family.IP, "", 4, sent),
		record("hl", tag.In, family.IP, "", 4, sent),
		record("str", tag.In, family.IP, "", 0, 0), // the payload is zeros: the string never matches
		record("log", tag.In, family.IP, "", 4, sent),
		record("jump", tag.In, family.IP, "", 4, sent),
		record("x", tag.In, family.IP, "second", 4, sent),
	}
	got, err := iptables.New(iptables.Options{NetNS: ns.Path()}).Read(context.Background())
	if err != nil {
		t.Fatalf("Read: %v\n%s", err, ns.Run("iptables-legacy", "-v", "-S"))
	}
	if !reflect.DeepEqual(withoutIDs(t, got.Records), want) || len(got.Invalid) != 0 {
		t.Errorf("Read in %s:\n got %s invalid %+v\nwant %s\nrules:\n%s", where, dump(got.Records), got.Invalid, dump(want),
			ns.Run("iptables-legacy", "-v", "-S"))
	}
}

func TestReadNoLegacyTables(t *testing.T) {
	netnstest.RequireRoot(t, "iptables-legacy", "ip6tables-legacy")
	ns := netnstest.New(t, "2001:db8:f00d::1/64")
	const v4, v6 = "/proc/net/ip_tables_names", "/proc/net/ip6_tables_names"
	if tables := append(tablesOf(t, ns, v4), tablesOf(t, ns, v6)...); len(tables) != 0 {
		netnstest.Skip(t, "this kernel makes legacy tables in new namespaces: %q", tables)
	}
	b := iptables.New(iptables.Options{NetNS: ns.Path()})
	got, err := b.Read(context.Background())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if !reflect.DeepEqual(got, collector.Reading{}) {
		t.Errorf("Read = %+v, want nothing", got)
	}
	if tables := append(tablesOf(t, ns, v4), tablesOf(t, ns, v6)...); len(tables) != 0 {
		t.Fatalf("Read created legacy tables %q", tables)
	}

	// IPv6 only: IPv4 must still not be listed, and so not created.
	ns.Run("ip6tables-legacy", "-A", "INPUT", "-p", "udp", "-m", "comment", "--comment", "=v6only_in= only")
	sent := ns.SendUDP("[2001:db8:f00d::1]:40000", "[2001:db8:f00d::1]:9", 1, 3)
	got, err = b.Read(context.Background())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	want := []collector.Record{record("v6only", tag.In, family.IP6, "only", 3, sent)}
	if !reflect.DeepEqual(withoutIDs(t, got.Records), want) {
		t.Errorf("Records:\n got %s\nwant %s", dump(got.Records), dump(want))
	}
	if tables := tablesOf(t, ns, v4); len(tables) != 0 {
		t.Errorf("Read created IPv4 legacy tables %q", tables)
	}
}

func TestReadMissingTool(t *testing.T) {
	netnstest.RequireRoot(t, "iptables-legacy")
	ns := netnstest.New(t)
	ns.Run("iptables-legacy", "-S") // makes the filter table
	t.Setenv("PATH", t.TempDir())
	_, err := iptables.New(iptables.Options{NetNS: ns.Path()}).Read(context.Background())
	const want = "iptables-legacy not found in PATH: install the iptables package, or disable with --no-collector.iptables"
	if err == nil || err.Error() != want {
		t.Errorf("Read without the tool: %v, want %q", err, want)
	}
}

func TestReadLockTimeout(t *testing.T) {
	netnstest.RequireRoot(t, "iptables-legacy")
	ns := netnstest.New(t)
	ns.Run("iptables-legacy", "-S")
	// A lock file of the test's own, so that other users of the host's
	// /run/xtables.lock are not stopped.
	lockFile := filepath.Join(t.TempDir(), "xtables.lock")
	t.Setenv("XTABLES_LOCKFILE", lockFile)
	f, err := os.Create(lockFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = iptables.New(iptables.Options{NetNS: ns.Path(), LockTimeout: 1500 * time.Millisecond}).Read(context.Background())
	elapsed := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "Stopped waiting after 2s") {
		t.Errorf("Read with the lock held: %v, want iptables to give up after 2s", err)
	}
	if elapsed < 2*time.Second || elapsed > 4*time.Second {
		t.Errorf("Read with the lock held took %v, want about 2s", elapsed)
	}
}

// TestReadUnprivileged runs a copy of the test binary as nobody, with
// capabilities added one by one, and checks that the errors name what is
// missing, and that the documented set is enough.
func TestReadUnprivileged(t *testing.T) {
	netnstest.RequireRoot(t, "iptables-legacy", "setpriv")
	ns := netnstest.New(t)
	ns.Run("iptables-legacy", "-A", "INPUT", "-m", "comment", "--comment", "=cap_in=")

	// A directory where nobody can run the binary and make lock files.
	dir, err := os.MkdirTemp("", "ipacct-iptables-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "iptables.test")
	copyFile(t, self, bin)

	// Where nobody can create a lock file.
	rootOnly := filepath.Join(dir, "root-only")
	if err := os.Mkdir(rootOnly, 0o755); err != nil {
		t.Fatal(err)
	}
	const all = "+dac_read_search,+net_admin,+net_raw"
	tests := []struct {
		name     string
		caps     string
		lockFile string // XTABLES_LOCKFILE, if any
		wantOut  []string
	}{
		{"no capabilities", "", "", []string{"error:", "permission denied", "CAP_DAC_READ_SEARCH", "CAP_NET_ADMIN and CAP_NET_RAW"}},
		{"lock file cannot be made", all, filepath.Join(rootOnly, "xtables.lock"), []string{"error:", "can't open lock file", "must open the xtables lock file"}},
		{"no CAP_NET_RAW", "+dac_read_search,+net_admin", filepath.Join(dir, "1.lock"), []string{"error:", "you must be root", "CAP_NET_ADMIN and CAP_NET_RAW"}},
		{"no CAP_NET_ADMIN", "+dac_read_search,+net_raw", filepath.Join(dir, "2.lock"), []string{"error:", "you must be root", "CAP_NET_ADMIN and CAP_NET_RAW"}},
		// With the host's /run/xtables.lock, which root's iptables-legacy
		// above made if it was missing.
		{"documented capabilities", all, "", []string{"records: 1\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"netns", "exec", ns.Name, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}
			if tt.caps != "" {
				args = append(args, "--inh-caps="+tt.caps, "--ambient-caps="+tt.caps)
			}
			cmd := exec.Command("ip", append(args, bin)...)
			cmd.Env = append(os.Environ(), helperEnv+"=1")
			if tt.lockFile != "" {
				cmd.Env = append(cmd.Env, "XTABLES_LOCKFILE="+tt.lockFile)
			}
			out, _ := cmd.CombinedOutput()
			for _, want := range tt.wantOut {
				if !strings.Contains(string(out), want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func dump(records []collector.Record) string {
	var b strings.Builder
	for _, r := range records {
		fmt.Fprintf(&b, "\n\t%s %s %s %q packets=%d bytes=%d", r.Family, r.Tag, r.Direction, r.Description, r.Packets, r.Bytes)
	}
	return b.String()
}
