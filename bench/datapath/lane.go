package datapath

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/internal/netns"
)

// Addresses of every lane; each lane has namespaces of its own, so they
// repeat without meeting.
var (
	senderAddr   = netip.MustParsePrefix("10.1.0.2/24")
	routerIn     = netip.MustParsePrefix("10.1.0.1/24")
	routerOut    = netip.MustParsePrefix("10.2.0.1/24")
	receiverAddr = netip.MustParsePrefix("10.2.0.2/24")
	// The test traffic's sources: several, as a gateway sees several
	// hosts, each a set element or a rule of its own.
	sources = func() []netip.Addr {
		var out []netip.Addr
		a := netip.MustParseAddr("10.1.0.10")
		for range 8 {
			out = append(out, a)
			a = a.Next()
		}
		return out
	}()
)

const (
	// nice of the sender thread and of the router's NAPI thread, so that
	// other work of this process on their CPUs gets less of them. Only
	// while a case is measured does either have anything to do.
	nice = -15

	udpPort = 9 // discard; nothing listens, the receiver drops at ingress
	payload = 64
)

// env is one run: its namespaces and CPUs.
type env struct {
	id                   string   // random, in names, so runs do not meet
	namespaces           []string // to delete
	created              []string // all, for the test to check
	senderCPU, routerCPU int      // -1: not pinned
	iptablesVersion      string
}

// lane is one case and the three namespaces it runs in.
type lane struct {
	kind string
	n    int // addresses

	snd, rtr, rcv               string // namespace names
	sndIf, rinIf, routIf, rcvIf string // sender, router in and out, receiver
	// Per-address sets: the table, the names of the sets of each
	// direction, and which of them holds each test address.
	table           string
	outSets, inSets []string
	outOwn, inOwn   map[netip.Addr]string
	napi            []int // the router's NAPI threads
	pps             []float64
}

func newEnv() (*env, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root for network namespaces and netfilter")
	}
	for _, tool := range []string{"ip", "nft", "iptables", "iptables-restore", "iptables-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("needs %s: %w", tool, err)
		}
	}
	b := make([]byte, 2)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	e := &env{id: hex.EncodeToString(b)[:3], senderCPU: -1, routerCPU: -1}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil {
		var cpus []int
		for i := 0; i < 1024 && len(cpus) < 2; i++ {
			if set.IsSet(i) {
				cpus = append(cpus, i)
			}
		}
		if len(cpus) == 2 {
			e.senderCPU, e.routerCPU = cpus[0], cpus[1]
		}
	}
	out, err := exec.Command("iptables", "-V").Output()
	if err != nil {
		return nil, fmt.Errorf("iptables -V: %w", err)
	}
	e.iptablesVersion = strings.TrimSpace(string(out))
	return e, nil
}

// cleanup deletes every namespace the run created.
func (e *env) cleanup() error {
	var errs []error
	for _, ns := range e.namespaces {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %v: %s", ns, err, out))
		}
	}
	e.namespaces = nil
	return errors.Join(errs...)
}

func nsPath(name string) string { return "/run/netns/" + name }

// runIn runs a command in namespace ns (with a /sys of its own, as `ip
// netns exec` mounts one), with stdin as its input.
func runIn(ns, stdin, name string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %.2000s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// script runs the commands, one a line, each as runIn does, stopping at the
// first that fails. "sysctl KEY=VALUE" writes /proc/sys itself, so that
// procps need not be installed.
func script(ns string, lines ...string) error {
	for _, l := range lines {
		f := strings.Fields(l)
		if key, value, ok := strings.Cut(strings.TrimPrefix(l, "sysctl "), "="); ok && f[0] == "sysctl" {
			// /proc/sys/net is the namespace of the thread that opens it.
			err := netns.Do(nsPath(ns), func() error {
				return os.WriteFile("/proc/sys/"+strings.ReplaceAll(key, ".", "/"), []byte(value), 0o644)
			})
			if err != nil {
				return fmt.Errorf("sysctl %s: %w", l, err)
			}
			continue
		}
		if _, err := runIn(ns, "", f[0], f[1:]...); err != nil {
			return err
		}
	}
	return nil
}

func (e *env) addNS(name string) error {
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add %s: %v: %s", name, err, out)
	}
	e.namespaces = append(e.namespaces, name)
	e.created = append(e.created, name)
	return script(name,
		"ip link set lo up",
		// No IPv6 chatter (router solicitations, MLD) crossing the router.
		"sysctl net.ipv6.conf.all.disable_ipv6=1",
		"sysctl net.ipv6.conf.default.disable_ipv6=1",
	)
}

// setup creates lane i's namespaces, links and accounting.
func (e *env) setup(l *lane, i int) error {
	base := fmt.Sprintf("ipacct-dp-%s-%d-", e.id, i)
	l.snd, l.rtr, l.rcv = base+"snd", base+"rtr", base+"rcv"
	for _, ns := range []string{l.snd, l.rtr, l.rcv} {
		if err := e.addNS(ns); err != nil {
			return err
		}
	}
	// Short names: the router's NAPI thread is found by name, and a
	// thread name holds 15 characters ("napi/d1a20a-NNN").
	p := fmt.Sprintf("d%s%d", e.id, i)
	l.sndIf, l.rinIf, l.routIf, l.rcvIf = p+"s", p+"a", p+"b", p+"r"
	mac := func(k int) string { return fmt.Sprintf("02:00:00:%02x:%02x:%02x", i, k, 1) }
	for _, pair := range [][4]string{{l.snd, l.sndIf, l.rtr, l.rinIf}, {l.rtr, l.routIf, l.rcv, l.rcvIf}} {
		if out, err := exec.Command("ip", "link", "add", pair[1], "netns", pair[0], "type", "veth",
			"peer", "name", pair[3], "netns", pair[2]).CombinedOutput(); err != nil {
			return fmt.Errorf("ip link add veth: %v: %s", err, out)
		}
	}
	// Fixed MAC addresses and permanent neighbours: no ARP, so no packet
	// waits in a neighbour queue (or is dropped from one) after the
	// router counted it.
	lines := map[string][]string{
		l.snd: {
			"ip link set " + l.sndIf + " address " + mac(1),
			"ip addr add " + senderAddr.String() + " dev " + l.sndIf,
		},
		l.rtr: {
			"ip link set " + l.rinIf + " address " + mac(2),
			"ip link set " + l.routIf + " address " + mac(3),
			"ip addr add " + routerIn.String() + " dev " + l.rinIf,
			"ip addr add " + routerOut.String() + " dev " + l.routIf,
			"sysctl net.ipv4.ip_forward=1",
		},
		l.rcv: {
			"ip link set " + l.rcvIf + " address " + mac(4),
			"ip addr add " + receiverAddr.String() + " dev " + l.rcvIf,
		},
	}
	for _, s := range sources {
		lines[l.snd] = append(lines[l.snd], "ip addr add "+s.String()+"/24 dev "+l.sndIf)
	}
	lines[l.snd] = append(lines[l.snd],
		"ip link set "+l.sndIf+" up",
		"ip route add default via "+routerIn.Addr().String(),
		"ip neigh replace "+routerIn.Addr().String()+" lladdr "+mac(2)+" dev "+l.sndIf+" nud permanent",
	)
	lines[l.rtr] = append(lines[l.rtr],
		"ip link set "+l.rinIf+" up",
		"ip link set "+l.routIf+" up",
		"ip neigh replace "+receiverAddr.Addr().String()+" lladdr "+mac(4)+" dev "+l.routIf+" nud permanent",
	)
	lines[l.rcv] = append(lines[l.rcv],
		"ip link set "+l.rcvIf+" up",
		"ip route add default via "+routerOut.Addr().String(),
	)
	for _, ns := range []string{l.snd, l.rtr, l.rcv} {
		if err := script(ns, lines[ns]...); err != nil {
			return err
		}
	}
	// The receiver counts the packet (rx_packets of its interface) and
	// drops it at once: its cost is small, the same in every case, and no
	// ICMP comes back.
	if _, err := runIn(l.rcv, fmt.Sprintf("table netdev sink {\n\tchain in {\n\t\ttype filter hook ingress device %q priority 0; policy drop;\n\t}\n}\n", l.rcvIf), "nft", "-f", "-"); err != nil {
		return err
	}
	if err := e.routerThread(l); err != nil {
		return err
	}
	switch l.kind {
	case caseSets:
		return e.installSets(l)
	case caseRules:
		return e.installRules(l)
	}
	return nil
}

// routerThread moves the router's receive work to a thread of its own, on
// the router CPU: GRO on the router's ingress veth gives it a NAPI ring,
// and threaded NAPI a kernel thread to poll it. Without it, the veth
// would run the router's and the receiver's work as softirq on the
// sending CPU.
func (e *env) routerThread(l *lane) error {
	if e.routerCPU < 0 {
		return nil // one CPU: nothing to pin
	}
	before := napiThreads(l.rinIf)
	if err := netns.Do(nsPath(l.rtr), func() error { return setFeature(l.rinIf, unix.ETHTOOL_SGRO, true) }); err != nil {
		return fmt.Errorf("GRO on %s: %w", l.rinIf, err)
	}
	// A veth hands a packet from a TSO-capable device to the peer's NAPI
	// ring only if GRO could merge it, which it cannot for forwarded UDP:
	// without TSO on the sending side every packet takes the ring.
	if err := netns.Do(nsPath(l.snd), func() error { return setFeature(l.sndIf, unix.ETHTOOL_STSO, false) }); err != nil {
		return fmt.Errorf("TSO off on %s: %w", l.sndIf, err)
	}
	if _, err := runIn(l.rtr, "", "sh", "-c", fmt.Sprintf("echo 1 > /sys/class/net/%s/threaded", l.rinIf)); err != nil {
		return err
	}
	var pids []int
	for try := 0; try < 50; try++ {
		for _, pid := range napiThreads(l.rinIf) {
			if !containsInt(before, pid) {
				pids = append(pids, pid)
			}
		}
		if len(pids) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(pids) == 0 {
		return fmt.Errorf("no threaded NAPI thread for %s", l.rinIf)
	}
	l.napi = pids
	var set unix.CPUSet
	set.Set(e.routerCPU)
	for _, pid := range pids {
		if err := unix.SchedSetaffinity(pid, &set); err != nil {
			return fmt.Errorf("pinning NAPI thread %d: %w", pid, err)
		}
		if err := unix.Setpriority(unix.PRIO_PROCESS, pid, nice); err != nil {
			return fmt.Errorf("nice of NAPI thread %d: %w", pid, err)
		}
	}
	return nil
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// napiThreads are the kernel threads polling dev's NAPI rings.
func napiThreads(dev string) []int {
	paths, _ := filepath.Glob("/proc/[0-9]*/comm")
	var pids []int
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || !strings.HasPrefix(string(b), "napi/"+dev+"-") {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// setFeature turns an offload on or off with a legacy ethtool ioctl
// (ETHTOOL_SGRO, ETHTOOL_STSO), so that no ethtool binary is needed.
func setFeature(dev string, cmd uint32, on bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	value := struct{ cmd, data uint32 }{cmd: cmd}
	if on {
		value.data = 1
	}
	// struct ifreq: the name, then a union whose ifr_data is a pointer.
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [16]byte
	}
	copy(ifr.name[:unix.IFNAMSIZ-1], dev)
	ifr.data = unsafe.Pointer(&value)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(&value)
	if errno != 0 {
		return errno
	}
	return nil
}

// cpuTime is the CPU time a thread has used (schedstat's first field). The
// kernel has no IRQ time accounting here, so a thread's time includes
// the softirq work done on its way, such as the receiver's.
func cpuTime(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("%s: empty", path)
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	return time.Duration(ns), err
}

// linkStats are an interface's counters, as /proc/net/dev has them.
type linkStats struct {
	rxPackets, rxDropped, txPackets, txDropped uint64
}

// stats reads dev's counters in namespace ns.
func stats(ns, dev string) (linkStats, error) {
	var s linkStats
	err := netns.Do(nsPath(ns), func() error {
		// thread-self: the namespace of this thread, which Do moved.
		f, err := os.Open("/proc/thread-self/net/dev")
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			name, rest, ok := strings.Cut(sc.Text(), ":")
			if !ok || strings.TrimSpace(name) != dev {
				continue
			}
			v := strings.Fields(rest)
			if len(v) < 16 {
				return fmt.Errorf("/proc/net/dev: short line for %s", dev)
			}
			n := func(i int) uint64 { x, _ := strconv.ParseUint(v[i], 10, 64); return x }
			// rx: bytes packets errs drop fifo frame compressed multicast;
			// tx: bytes packets errs drop ...
			s = linkStats{rxPackets: n(1), rxDropped: n(3), txPackets: n(9), txDropped: n(11)}
			return nil
		}
		return fmt.Errorf("no interface %s", dev)
	})
	return s, err
}
