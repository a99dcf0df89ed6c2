package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/internal/exetest"
	"github.com/ipacct/ipacct_exporter/internal/netns"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// These tests run the exporter as nobody (uid 65534) with chosen
// capabilities, through setpriv, and measure what each collector needs.
// Entering another namespace (--netns) takes setns, that is CAP_SYS_ADMIN,
// so the exporter starts inside the test's namespace (ip netns exec) and the
// test scrapes it there.

const nobody = "65534"

// Capability numbers, as in /proc/PID/status masks and setpriv's names.
var capBits = map[string]uint{"dac_read_search": unix.CAP_DAC_READ_SEARCH, "net_admin": unix.CAP_NET_ADMIN, "net_raw": unix.CAP_NET_RAW}

func capMask(caps []string) uint64 {
	var m uint64
	for _, c := range caps {
		b, ok := capBits[c]
		if !ok {
			panic("unknown capability " + c)
		}
		m |= 1 << b
	}
	return m
}

// capList is setpriv's "-all,+a,+b" for caps.
func capList(caps []string) string {
	s := "-all"
	for _, c := range caps {
		s += ",+" + c
	}
	return s
}

// publicDir makes a directory that uid 65534 can enter, which the test
// removes when it ends. t.TempDir and the exetest binary are in 0700
// directories of root.
func publicDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ipacct-priv-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// nobodysClaims gives the exporter, run as nobody, a directory of its own
// for its claim on the managed table ($RUNTIME_DIRECTORY, as systemd's
// RuntimeDirectory= sets it), and returns it.
func nobodysClaims(t *testing.T, dir string) string {
	t.Helper()
	claims := filepath.Join(dir, "run")
	uid, _ := strconv.Atoi(nobody)
	if err := os.Mkdir(claims, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(claims, uid, uid); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RUNTIME_DIRECTORY", claims)
	return claims
}

// publicBinary copies the exporter where nobody can run it.
func publicBinary(t *testing.T, dir, name string) string {
	t.Helper()
	src, err := os.ReadFile(exporterBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, src, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// setFileCaps gives the file the capabilities as permitted and effective
// file capabilities, as `setcap CAPS+ep` does (struct vfs_cap_data,
// revision 2), without needing the setcap tool.
func setFileCaps(t *testing.T, path string, caps []string) {
	t.Helper()
	m := capMask(caps)
	data := make([]byte, 20)
	binary.LittleEndian.PutUint32(data[0:], 0x02000000|0x1) // VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE
	binary.LittleEndian.PutUint32(data[4:], uint32(m))      // permitted, low word
	binary.LittleEndian.PutUint32(data[12:], uint32(m>>32)) // permitted, high word
	if err := unix.Setxattr(path, "security.capability", data, 0); err != nil {
		t.Fatalf("setting file capabilities on %s: %v", path, err)
	}
}

// privRun is how to start the exporter: as which uid, with which
// capabilities in its inheritable, ambient and bounding sets.
type privRun struct {
	uid  string // "" keeps root
	caps []string
	// fileCaps: caps stay in the bounding set only, so that the process
	// has what its binary's file capabilities give and no ambient set.
	fileCaps bool
	// noNewPrivs sets no_new_privs, as Kubernetes'
	// allowPrivilegeEscalation: false and Docker's no-new-privileges do.
	noNewPrivs bool
}

func (r privRun) args() []string {
	a := []string{"setpriv"}
	if r.uid != "" {
		a = append(a, "--reuid="+r.uid, "--regid="+r.uid, "--clear-groups")
	}
	if r.noNewPrivs {
		a = append(a, "--no-new-privs")
	}
	inherited := capList(r.caps)
	if r.fileCaps {
		inherited = "-all"
	}
	return append(a, "--inh-caps="+inherited, "--ambient-caps="+inherited, "--bounding-set="+capList(r.caps), "--")
}

type privExporter struct {
	base   string // http://127.0.0.1:PORT, in the exporter's namespace
	client *http.Client
	logs   *exetest.SyncBuffer
	pid    int
	exited chan struct{}
	state  *os.ProcessState
}

// startPrivExporter starts binary with args as run says, inside ns (or in
// the test's own namespace if ns is nil), and waits until it serves, or
// until it exits: then the caller looks at exited and the logs.
func startPrivExporter(t *testing.T, ns *netnstest.NS, run privRun, binary string, args ...string) *privExporter {
	t.Helper()
	var addr, nsPath string
	var cmdline []string
	if ns != nil {
		// The namespace is the test's own: any port is free in it.
		addr, nsPath = "127.0.0.1:10427", ns.Path()
		cmdline = []string{"ip", "netns", "exec", ns.Name}
	} else {
		addr = exetest.FreeAddr(t)
	}
	cmdline = append(cmdline, run.args()...)
	cmdline = append(cmdline, binary, "--web.listen-address="+addr)
	cmdline = append(cmdline, args...)
	cmd := exec.Command(cmdline[0], cmdline[1:]...)
	e := &privExporter{
		base: "http://" + addr,
		logs: &exetest.SyncBuffer{},
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
				var c net.Conn
				err := netns.Do(nsPath, func() error {
					var err error
					c, err = (&net.Dialer{}).DialContext(ctx, network, address)
					return err
				})
				return c, err
			},
		}},
		exited: make(chan struct{}),
	}
	cmd.Stdout, cmd.Stderr = e.logs, e.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", cmdline, err)
	}
	// ip netns exec and setpriv exec the next program: the pid is the
	// exporter's.
	e.pid = cmd.Process.Pid
	go func() {
		_ = cmd.Wait()
		e.state = cmd.ProcessState
		close(e.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-e.exited
		if t.Failed() {
			t.Logf("exporter (%v) output:\n%s", cmdline, e.logs.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-e.exited:
			return e
		default:
		}
		resp, err := e.client.Get(e.base + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the exporter did not answer on %s in its namespace: %v\n%s", addr, err, e.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *privExporter) running() bool {
	select {
	case <-e.exited:
		return false
	default:
		return true
	}
}

func (e *privExporter) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	if !e.running() {
		t.Fatalf("the exporter exited (%v)", e.state)
	}
	_, fams := scrapeWith(t, e.client, e.base)
	return fams
}

// checkIdentity proves from /proc that the process is the exporter, runs as
// uid, and holds exactly the capabilities in want (and ambient ones only if
// ambient), so that a test cannot pass on a process with more.
func (e *privExporter) checkIdentity(t *testing.T, uid string, want uint64, ambient bool) {
	t.Helper()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", e.pid))
	if err != nil || !strings.HasPrefix(filepath.Base(exe), "ipacct_exporter") {
		t.Fatalf("pid %d is %q (%v), not the exporter", e.pid, exe, err)
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", e.pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok {
			got[k] = strings.TrimSpace(v)
		}
	}
	if want := strings.Repeat(uid+"\t", 3) + uid; got["Uid"] != want {
		t.Errorf("Uid: %q, want %q", got["Uid"], want)
	}
	amb := uint64(0)
	if ambient {
		amb = want
	}
	for _, c := range []struct {
		field string
		want  uint64
	}{{"CapPrm", want}, {"CapEff", want}, {"CapBnd", want}, {"CapAmb", amb}} {
		v, err := strconv.ParseUint(got[c.field], 16, 64)
		if err != nil || v != c.want {
			t.Errorf("%s: %q, want %016x", c.field, got[c.field], c.want)
		}
	}
}

// failureLines returns the log lines that report a collector's failure.
func failureLines(logs, collector string) []string {
	var lines []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `msg="collector failed"`) && strings.Contains(l, "collector="+collector+" ") {
			lines = append(lines, l)
		}
	}
	return lines
}

// checkOneFailure checks that the collector failed with one log line, after
// several scrapes, holding every one of want.
func checkOneFailure(t *testing.T, logs, collector string, want ...string) {
	t.Helper()
	lines := failureLines(logs, collector)
	if len(lines) != 1 {
		t.Errorf("want one error line for the %s collector, got %d:\n%s", collector, len(lines), strings.Join(lines, "\n"))
		return
	}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			t.Errorf("the %s collector's error line lacks %q:\n%s", collector, w, lines[0])
		}
	}
}

// checkTagSeries checks that /metrics has exactly the kernel's series,
// with its numbers, and that the kernel's numbers are the traffic sent,
// counted times(token) over.
func checkTagSeries(t *testing.T, fams map[string]*dto.MetricFamily, kernel map[series]netnstest.Counter, sent map[string]netnstest.Counter, times func(tok string) uint64) {
	t.Helper()
	for s, c := range kernel {
		labels := map[string]string{"tag": s.tag, "direction": s.direction, "table_family": s.family}
		p, okp := value(fams, "ipacct_tag_packets_total", labels)
		b, okb := value(fams, "ipacct_tag_bytes_total", labels)
		if !okp || !okb || uint64(p) != c.Packets || uint64(b) != c.Bytes {
			t.Errorf("%v: /metrics has %v packets, %v bytes (present %v %v); the kernel %d, %d", s, p, b, okp, okb, c.Packets, c.Bytes)
		}
	}
	if n := len(fams["ipacct_tag_bytes_total"].GetMetric()); n != len(kernel) {
		t.Errorf("/metrics has %d tag series, the kernel %d", n, len(kernel))
	}
	for tok, c := range sent {
		tk := tokens[tok]
		fam := "ip"
		if strings.HasPrefix(tok, "=web6") {
			fam = "ip6"
		}
		n := times(tok)
		if got := kernel[series{tk.tag, tk.direction, fam}]; got.Bytes != n*c.Bytes || got.Packets != n*c.Packets {
			t.Errorf("%s: the kernel counted %+v, %d× the %+v sent", tok, got, n, c)
		}
	}
}

// tenantYAML counts the seed's two local addresses per address, at the
// default hooks: in at input, out at output.
const tenantYAML = `
addresses:
  - tag: tenant
    description: The seed's local addresses
    networks: [192.0.2.0/24, 2001:db8:f00d::/64]
`

// TestPrivilegesNetAdminOnly runs the exporter as nobody with CAP_NET_ADMIN
// and nothing else: it installs rules.yaml's per-address sets, reads the
// native and iptables-nft rules and the sets to the byte, and the
// iptables-legacy collector, which needs more, fails with one line that
// says what it needs.
func TestPrivilegesNetAdminOnly(t *testing.T) {
	netnstest.RequireRoot(t, "setpriv", "nft", "iptables-nft", "ip6tables-nft", "iptables-legacy", "ip6tables-legacy")
	ns := netnstest.New(t, netnstest.SeedAddrs...)
	ns.NFT(netnstest.SeedNFT)
	for _, cmd := range append(netnstest.SeedXtables("iptables-nft", "ip6tables-nft"), netnstest.SeedXtables("iptables-legacy", "ip6tables-legacy")...) {
		ns.Run(cmd[0], cmd[1:]...)
	}
	dir := publicDir(t)
	bin := publicBinary(t, dir, "ipacct_exporter")
	cfg := writeFile(t, dir, "rules.yaml", tenantYAML)

	// A claim left by an exporter of root's that was killed: nobody may
	// read it, not write it, and takes it over.
	var st unix.Stat_t
	if err := unix.Stat(ns.Path(), &st); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(nobodysClaims(t, dir), fmt.Sprintf("net-%d.inet-ipacct.lock", st.Ino))
	if err := os.WriteFile(stale, []byte("PID 1, --config.file gone.yaml\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	caps := []string{"net_admin"}
	e := startPrivExporter(t, ns, privRun{uid: nobody, caps: caps}, bin, "--config.file="+cfg)
	if !e.running() {
		t.Fatalf("the exporter exited (%v):\n%s", e.state, e.logs.String())
	}
	if b, err := os.ReadFile(stale); err != nil || string(b) != fmt.Sprintf("PID %d, --config.file %s\n", e.pid, cfg) {
		t.Errorf("the claim says %q (%v), want the exporter's", b, err)
	}
	e.checkIdentity(t, nobody, capMask(caps), true)
	if !strings.Contains(ns.Run("nft", "list", "tables"), "table inet ipacct") {
		t.Fatal("the unprivileged exporter did not install its table")
	}

	sent := ns.SendSeedTraffic()
	fams := e.scrape(t)

	// iptables-legacy cannot read without CAP_NET_RAW and
	// CAP_DAC_READ_SEARCH: the tag series it could add to (families ip
	// and ip6) wait for its first read, which never comes, and the log
	// says why. The per-address series, which it cannot feed, are served.
	if n := len(fams["ipacct_tag_bytes_total"].GetMetric()); n != 0 {
		t.Errorf("%d tag series served while the iptables collector has never read", n)
	}
	if logs := e.logs.WaitFor("not served until it has read once", 5*time.Second); !strings.Contains(logs, "collector=iptables") {
		t.Errorf("no log line saying the series wait for iptables:\n%s", logs)
	}

	// Per address: in at input to the address, out at output from it.
	want := map[string]netnstest.Counter{
		"=tenant_in= 192.0.2.1":         sent["=unauthssh="].Add(sent["=web4_down="]).Add(sent["=q_in="]),
		"=tenant_out= 192.0.2.1":        sent["=web4_up="],
		"=tenant_in= 2001:db8:f00d::1":  sent["=web6_down="].Add(sent["=web6ssl_down="]),
		"=tenant_out= 2001:db8:f00d::1": sent["=web6_up="].Add(sent["=web6ssl_up="]),
	}
	kernelSets := ns.NFTSetCounters()
	for k, w := range want {
		if kernelSets[k] != w {
			t.Errorf("%s: nft says %+v, the traffic sent was %+v", k, kernelSets[k], w)
		}
		tok, ip, _ := strings.Cut(k, " ")
		dirn := strings.TrimSuffix(strings.TrimPrefix(tok, "=tenant_"), "=")
		labels := map[string]string{"tag": "tenant", "ip": ip, "direction": dirn, "family": string(family.Of(netip.MustParseAddr(ip)))}
		b, okB := value(fams, "ipacct_ip_bytes_total", labels)
		p, okP := value(fams, "ipacct_ip_packets_total", labels)
		if !okB || !okP || uint64(b) != w.Bytes || uint64(p) != w.Packets {
			t.Errorf("%s: /metrics has %v bytes, %v packets (present %v %v), want %+v", k, b, p, okB, okP, w)
		}
	}
	if n := len(fams["ipacct_ip_bytes_total"].GetMetric()); n != len(want) || len(kernelSets) != len(want) {
		t.Errorf("%d per-address series on /metrics, %d in the kernel, want %d", n, len(kernelSets), len(want))
	}

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ipacct_collector_success", map[string]string{"collector": "nftables"}, 1},
		{"ipacct_collector_success", map[string]string{"collector": "iptables"}, 0},
		{"ipacct_config_last_reload_successful", nil, 1},
	} {
		if got, ok := value(fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	e.scrape(t)
	e.scrape(t)
	checkOneFailure(t, e.logs.String(), "iptables", "permission denied", "CAP_DAC_READ_SEARCH", "CAP_NET_ADMIN and CAP_NET_RAW", "--no-collector.iptables")
	if lines := failureLines(e.logs.String(), "nftables"); len(lines) != 0 {
		t.Errorf("the nftables collector failed:\n%s", strings.Join(lines, "\n"))
	}

	// As the log says: without iptables-legacy, the tag series are served.
	if err := syscall.Kill(e.pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-e.exited
	e = startPrivExporter(t, ns, privRun{uid: nobody, caps: caps}, bin, "--config.file="+cfg, "--no-collector.iptables")
	fams = e.scrape(t)
	// Tag series: the native rules count a local packet once, iptables-nft's
	// twice (ACCT4 is jumped to from INPUT and OUTPUT); the legacy rules
	// are not read.
	checkTagSeries(t, fams, kernelSumsOf(ns, true, false), sent, func(tok string) uint64 {
		if tok == "=q_in=" {
			return 2 // only in the xtables rules
		}
		return 3
	})
}

// TestPrivilegesWithoutCapabilities runs the exporter as nobody with no
// capability: it keeps serving, each collector reports failure on its gauge
// and once in the log, naming the capability; with --config.file it does
// not start, and says why.
func TestPrivilegesWithoutCapabilities(t *testing.T) {
	netnstest.RequireRoot(t, "setpriv", "nft", "iptables-legacy")
	ns := netnstest.New(t, netnstest.SeedAddrs...)
	ns.NFT(netnstest.SeedNFT)
	ns.Run("iptables-legacy", "-A", "INPUT", "-m", "comment", "--comment", "=legacy_in=")
	ns.SendSeedTraffic()
	dir := publicDir(t)
	bin := publicBinary(t, dir, "ipacct_exporter")
	none := privRun{uid: nobody}

	t.Run("serving", func(t *testing.T) {
		e := startPrivExporter(t, ns, none, bin)
		if !e.running() {
			t.Fatalf("the exporter exited (%v):\n%s", e.state, e.logs.String())
		}
		e.checkIdentity(t, nobody, 0, true)
		for i := 0; i < 3; i++ {
			fams := e.scrape(t)
			for _, c := range []string{"nftables", "iptables"} {
				if got, ok := value(fams, "ipacct_collector_success", map[string]string{"collector": c}); !ok || got != 0 {
					t.Errorf("scrape %d: ipacct_collector_success{collector=%q} = %v (present %v), want 0", i+1, c, got, ok)
				}
			}
			if n := len(fams["ipacct_tag_bytes_total"].GetMetric()); n != 0 {
				t.Errorf("scrape %d: %d tag series without any capability", i+1, n)
			}
		}
		if !e.running() {
			t.Fatalf("the exporter exited (%v)", e.state)
		}
		logs := e.logs.String()
		checkOneFailure(t, logs, "nftables", "operation not permitted", "CAP_NET_ADMIN")
		checkOneFailure(t, logs, "iptables", "permission denied", "CAP_DAC_READ_SEARCH")
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, "panic") || strings.Contains(l, "goroutine ") {
				t.Errorf("a crash in the log: %s", l)
			}
		}
	})

	t.Run("config.file", func(t *testing.T) {
		nobodysClaims(t, dir)
		cfg := writeFile(t, dir, "rules.yaml", tenantYAML)
		e := startPrivExporter(t, ns, none, bin, "--config.file="+cfg)
		select {
		case <-e.exited:
		case <-time.After(15 * time.Second):
			t.Fatal("the exporter serves without the rules of --config.file")
		}
		if e.state.Success() {
			t.Errorf("exit %v, want a failure", e.state)
		}
		logs := e.logs.String()
		if !strings.Contains(logs, `msg="rules.yaml not applied"`) || !strings.Contains(logs, "CAP_NET_ADMIN") {
			t.Errorf("the log does not say that rules.yaml needs CAP_NET_ADMIN:\n%s", logs)
		}
		if strings.Contains(ns.Run("nft", "list", "tables"), "ipacct") {
			t.Error("a table was made without CAP_NET_ADMIN")
		}
	})

	// Reading another namespace takes setns, which CAP_NET_ADMIN does not
	// allow: the exporter says so, and what it needs.
	t.Run("netns", func(t *testing.T) {
		caps := []string{"net_admin"}
		e := startPrivExporter(t, nil, privRun{uid: nobody, caps: caps}, bin, "--netns="+ns.Path())
		e.checkIdentity(t, nobody, capMask(caps), true)
		fams := e.scrape(t)
		e.scrape(t)
		for _, c := range []string{"nftables", "iptables"} {
			if got, ok := value(fams, "ipacct_collector_success", map[string]string{"collector": c}); !ok || got != 0 {
				t.Errorf("ipacct_collector_success{collector=%q} = %v (present %v), want 0", c, got, ok)
			}
			checkOneFailure(t, e.logs.String(), c, "operation not permitted", "CAP_SYS_ADMIN")
		}
	})
}

// TestPrivilegesIptablesLegacy measures what the iptables-legacy collector
// needs: as nobody, CAP_NET_ADMIN, CAP_NET_RAW and CAP_DAC_READ_SEARCH, all
// ambient; file capabilities on the binary are not enough, because
// iptables-legacy does not get them; as root, CAP_NET_ADMIN and CAP_NET_RAW.
func TestPrivilegesIptablesLegacy(t *testing.T) {
	netnstest.RequireRoot(t, "setpriv", "iptables-legacy", "ip6tables-legacy")
	ns := netnstest.New(t, netnstest.SeedAddrs...)
	for _, cmd := range netnstest.SeedXtables("iptables-legacy", "ip6tables-legacy") {
		ns.Run(cmd[0], cmd[1:]...)
	}
	sent := ns.SendSeedTraffic()
	kernel := kernelSumsOf(ns, false, true)
	dir := publicDir(t)
	bin := publicBinary(t, dir, "ipacct_exporter")
	fcapBin := publicBinary(t, dir, "ipacct_exporter_fcaps")
	all := []string{"dac_read_search", "net_admin", "net_raw"}
	setFileCaps(t, fcapBin, all)

	for _, tt := range []struct {
		name string
		run  privRun
		bin  string
		want []string // words of the error line; none: the read succeeds
	}{
		{name: "nobody with net_admin", run: privRun{uid: nobody, caps: []string{"net_admin"}}, bin: bin,
			want: []string{"ip_tables_names: permission denied", "CAP_DAC_READ_SEARCH"}},
		{name: "nobody without net_raw", run: privRun{uid: nobody, caps: []string{"dac_read_search", "net_admin"}}, bin: bin,
			want: []string{"you must be root", "CAP_NET_ADMIN and CAP_NET_RAW"}},
		{name: "nobody without net_admin", run: privRun{uid: nobody, caps: []string{"dac_read_search", "net_raw"}}, bin: bin,
			want: []string{"you must be root", "CAP_NET_ADMIN and CAP_NET_RAW"}},
		{name: "nobody with all three ambient", run: privRun{uid: nobody, caps: all}, bin: bin},
		{name: "nobody with all three as file capabilities", run: privRun{uid: nobody, caps: all, fileCaps: true}, bin: fcapBin,
			want: []string{"can't open lock file", "file capabilities of the exporter do not pass to iptables-legacy"}},
		{name: "root with net_admin", run: privRun{caps: []string{"net_admin"}}, bin: bin,
			want: []string{"you must be root", "CAP_NET_ADMIN and CAP_NET_RAW"}},
		{name: "root with net_admin and net_raw", run: privRun{caps: []string{"net_admin", "net_raw"}}, bin: bin},
		// The DaemonSet's way (allowPrivilegeEscalation: false), with NET_RAW.
		{name: "root with net_admin and net_raw, no_new_privs", run: privRun{caps: []string{"net_admin", "net_raw"}, noNewPrivs: true}, bin: bin},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := startPrivExporter(t, ns, tt.run, tt.bin, "--no-collector.nftables")
			if !e.running() {
				t.Fatalf("the exporter exited (%v):\n%s", e.state, e.logs.String())
			}
			uid := tt.run.uid
			if uid == "" {
				uid = "0"
			}
			e.checkIdentity(t, uid, capMask(tt.run.caps), !tt.run.fileCaps)
			fams := e.scrape(t)
			e.scrape(t)
			success, ok := value(fams, "ipacct_collector_success", map[string]string{"collector": "iptables"})
			if tt.want != nil {
				if !ok || success != 0 {
					t.Errorf(`ipacct_collector_success{collector="iptables"} = %v (present %v), want 0`, success, ok)
				}
				checkOneFailure(t, e.logs.String(), "iptables", tt.want...)
				return
			}
			if !ok || success != 1 {
				t.Fatalf(`ipacct_collector_success{collector="iptables"} = %v (present %v), want 1`, success, ok)
			}
			// Jumped to from INPUT and OUTPUT: each packet counted twice.
			checkTagSeries(t, fams, kernel, sent, func(string) uint64 { return 2 })
		})
	}
}
