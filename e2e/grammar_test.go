package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// muninMistakesNFT holds the comments a munin user writes by mistake (seed
// 003's thread: "=tag desc"), each started but not finished, beside tags
// munin's plugin reads its own way: upper-case suffixes and a tag without a
// description.
const muninMistakesNFT = `
table ip acct {
	chain ACCT4 {
		counter comment "=unclosed Free text"
		counter comment "x=glued_in="
		counter comment "= spaced= token"
		counter comment "=web_UP="
		counter comment "=web_DOWN= Web traffic"
		counter comment "=lonely="
		counter comment "a = b, not a tag"
	}
}
`

// TestMuninMistakesReported: a comment that starts a tag token and does not
// finish it is counted in ipacct_invalid_tag_comments and logged once, with
// what to write instead; the upper-case suffixes count as directions, and a
// tag without a description is described by its name.
func TestMuninMistakesReported(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t)
	ns.NFT(muninMistakesNFT)
	e := startExporter(t, nil, "--netns="+ns.Path(), "--no-collector.iptables")
	text, fams := e.scrape(t)
	e.scrape(t)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ipacct_invalid_tag_comments", map[string]string{"collector": "nftables"}, 3},
		{"ipacct_tag_rules", map[string]string{"tag": "web", "direction": "out", "table_family": "ip"}, 1},
		{"ipacct_tag_rules", map[string]string{"tag": "web", "direction": "in", "table_family": "ip"}, 1},
		{"ipacct_tag_info", map[string]string{"tag": "web", "description": "Web traffic"}, 1},
		{"ipacct_tag_info", map[string]string{"tag": "lonely", "description": "lonely"}, 1},
	} {
		if got, ok := value(fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v\n%s", c.name, c.labels, got, ok, c.want, text)
		}
	}
	logs := e.logs.WaitFor("=spaced= token", 5*time.Second)
	for _, fix := range []string{`=unclosed= Free text`, `=glued_in= x`, `=spaced= token`} {
		if n := strings.Count(logs, fix); n != 1 {
			t.Errorf("the log says %d times to write %q, want once:\n%s", n, fix, logs)
		}
	}
	if n := strings.Count(logs, "its tag comment does not parse"); n != 3 {
		t.Errorf("%d warnings over two scrapes, want 3, one per comment:\n%s", n, logs)
	}
}
