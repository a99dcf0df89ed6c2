package e2e

import (
	"testing"

	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// TestCollectorTableAndChain: as munin's plugin reads only the chains it is
// told, --collector.table and --collector.chain keep a stray tagged rule
// elsewhere out of a bill, in nftables and iptables-legacy alike; the
// managed table is read whole all the same.
func TestCollectorTableAndChain(t *testing.T) {
	netnstest.RequireRoot(t, "nft", "iptables-legacy")
	ns := netnstest.New(t, "192.0.2.1/24")
	ns.NFT(`
table ip acct {
	chain ACCT4 {
		type filter hook output priority 0;
		udp dport 7001 counter comment "=svc_out="
	}
	chain OTHER {
		type filter hook output priority 1;
		udp dport 7001 counter comment "=svc_out= a stray rule"
	}
}
table ip elsewhere {
	chain ACCT4 {
		type filter hook output priority 2;
		udp dport 7001 counter comment "=svc_out= another stray rule"
	}
}
`)
	ns.Run("iptables-legacy", "-N", "ACCT4")
	ns.Run("iptables-legacy", "-A", "OUTPUT", "-j", "ACCT4")
	ns.Run("iptables-legacy", "-A", "ACCT4", "-p", "udp", "--dport", "7001", "-m", "comment", "--comment", "=svc_out=")
	ns.Run("iptables-legacy", "-A", "OUTPUT", "-p", "udp", "--dport", "7001", "-m", "comment", "--comment", "=svc_out= stray")
	path := writeFile(t, t.TempDir(), "rules.yaml", "accounting:\n  - tag: managed\n    direction: in\n    protocol: udp\n    ports: [7001]\n")

	// Install the managed table first, so that it counts the traffic too.
	first := startExporter(t, nil, "--netns="+ns.Path(), "--config.file="+path)
	_ = first.cmd.Process.Kill()
	_ = first.cmd.Wait()
	sent := ns.SendUDP("192.0.2.1:40000", "192.0.2.1:7001", 100, 3)
	for _, c := range []struct {
		name  string
		args  []string
		rules float64 // svc's kernel counters read: each counted the traffic once
	}{
		{"everything", nil, 5},
		{"one chain", []string{"--collector.chain=ACCT4"}, 3},
		{"one table", []string{"--collector.table=ip acct"}, 2},
		{"a table and a chain", []string{"--collector.table=ip acct", "--collector.table=ip filter", "--collector.chain=ACCT*"}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := startExporter(t, nil, append([]string{"--netns=" + ns.Path(), "--config.file=" + path}, c.args...)...)
			_, fams := e.scrape(t)
			got, _ := value(fams, "ipacct_tag_rules", map[string]string{"tag": "svc"})
			b, _ := value(fams, "ipacct_tag_bytes_total", map[string]string{"tag": "svc"})
			if got != c.rules || uint64(b) != uint64(c.rules)*sent {
				t.Errorf("svc: %v rules, %v bytes; want %v rules, %d bytes", got, b, c.rules, uint64(c.rules)*sent)
			}
			// The managed table is read whatever the filter.
			if m, ok := value(fams, "ipacct_tag_bytes_total", map[string]string{"tag": "managed"}); !ok || uint64(m) != sent {
				t.Errorf("managed: %v (present %v), want %d", m, ok, sent)
			}
		})
	}
}
