package tag

import "testing"

// BenchmarkParse parses the comments a scrape meets, once per tagged rule
// and set: the bench suite's rules (native and iptables-nft), munin's
// example, a comment without a tag and one whose tag does not parse.
//
//	go test -run='^$' -bench=Parse -benchmem ./tag/
func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct{ name, comment string }{
		{"native", "=t42_in= native rule 12345"},
		{"iptables-nft", "=t42_out= xt rule 12345"},
		{"munin", "=web4_down= Combined web traffic to/from local 80/443"},
		{"mid-comment", "customer A =cust.a-1_out= billed monthly"},
		{"set", "=tenants_out="},
		{"no-tag", "accept established connections quickly"},
		{"invalid", "=bad tag= x"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Parse(bc.comment)
			}
		})
	}
}
