package flow

import (
	"strings"
	"testing"

	"github.com/ipacct/ipacct_exporter/managed"
)

// TestBuildSkipsFlows: the managed table holds nothing for the entries
// counted from flows, and everything for the kernel's, from one file.
func TestBuildSkipsFlows(t *testing.T) {
	f := mustParse(t, tenantsYAML+`
  - tag: kernel-side
    networks: [203.0.113.0/24]
  - tag: kernel-side6
    networks: [2001:db8:ff::/64]
    direction: in
`)
	rs, err := managed.Build(f)
	if err != nil {
		t.Fatal(err)
	}
	text := rs.Text()
	for _, tag := range []string{"dns", "rent31", "rent31-lab", "rent32"} {
		if strings.Contains(text, "="+tag+"_") {
			t.Errorf("the table counts the flows entry %s:\n%s", tag, text)
		}
	}
	for _, tag := range []string{"servers", "kernel-side", "kernel-side6"} {
		if !strings.Contains(text, "="+tag+"_in=") {
			t.Errorf("no set for %s:\n%s", tag, text)
		}
	}
}
