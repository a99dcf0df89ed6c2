package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// environment describes the run, for the head of the report.
func environment(cfg config) []string {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	version := func(args ...string) string {
		out, err := exec.Command(args[0], args[1:]...).Output()
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(string(out))
	}
	env := []string{
		fmt.Sprintf("%s, kernel %s, %d CPUs, %s", time.Now().Format(time.DateTime), unix.ByteSliceToString(uts.Release[:]), runtime.NumCPU(), runtime.Version()),
		fmt.Sprintf("%s; %s", version("nft", "--version"), version("iptables-nft-save", "--version")),
	}
	save, _ := filepath.EvalSymlinks(mustLookPath("iptables-save"))
	nftSave, _ := filepath.EvalSymlinks(mustLookPath("iptables-nft-save"))
	if save != "" && save == nftSave {
		env = append(env, fmt.Sprintf("`iptables-save` resolves to %s, the binary `iptables-nft-save` runs: the iptables-nft-save column is `iptables-save -c` too", save))
	} else {
		env = append(env, fmt.Sprintf("`iptables-save` is %q here, not iptables-nft-save (%q): the table shows iptables-nft-save", save, nftSave))
	}
	env = append(env,
		fmt.Sprintf("%d measured rounds per case after one warm-up, interleaved; scrapes over HTTP with gzip=%v; exporter --scrape.timeout=%s", cfg.rounds, cfg.gzip, cfg.scrapeTimeout),
		"what a scrape measures: the exporter's binary listens on 127.0.0.1 in the host's namespace and reads the case's namespace over netlink; the rules there sit in chains that no hook calls and no rule jumps to, so no packet, the scrapes' included, walks them: the scrape pays for reading them, as the tools do, and for nothing else",
		fmt.Sprintf("load average at the start: %s", loadavg()))
	return env
}

func mustLookPath(name string) string {
	p, _ := exec.LookPath(name)
	return p
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
