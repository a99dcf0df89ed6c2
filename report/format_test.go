package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func sampleReport(t *testing.T) *Report {
	loc := berlin(t)
	return &Report{
		Period:  Period{From: time.Date(2026, 10, 1, 0, 0, 0, 0, loc), To: time.Date(2026, 11, 1, 0, 0, 0, 0, loc)},
		End:     time.Date(2026, 11, 1, 0, 0, 0, 0, loc),
		Buckets: 8940,
		Rank:    8493,
		Tags: []Tag{
			{
				Name:   "acme",
				Metric: MetricAddresses,
				In:     Usage{Bytes: 1234567890123, Packets: 987654321, P95: 123456789.5},
				Out:    Usage{Bytes: 456789012345, Packets: 345678, P95: 4560000},
				Addresses: []Address{
					{IP: "192.0.2.1", In: Counts{Bytes: 1000000000000, Packets: 900000000}, Out: Counts{Bytes: 300000000000, Packets: 345000}},
					{IP: "2001:db8::1", In: Counts{Bytes: 234567890123, Packets: 87654321}, Out: Counts{Bytes: 156789012345, Packets: 678}},
				},
			},
			{Name: "ssh", Metric: MetricTag, None: Usage{Bytes: 999, Packets: 12, P95: 0.25}},
		},
	}
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, sampleReport(t)); err != nil {
		t.Fatal(err)
	}
	want := `Traffic from 2026-10-01 00:00 CEST to 2026-11-01 00:00 CET (Europe/Berlin)

acme
                               in           out
  bytes                   1.23 TB     456.79 GB
  packets                987.65 M      345.68 k
  95th percentile   123.46 Mbit/s   4.56 Mbit/s

  address              in         out       total    packets
  192.0.2.1       1.00 TB   300.00 GB     1.30 TB   900.35 M
  2001:db8::1   234.57 GB   156.79 GB   391.36 GB    87.65 M

ssh (totals of the tag's rules; no per-address counters)
                         in       out      none
  bytes                 0 B       0 B     999 B
  packets                 0         0        12
  95th percentile   0 bit/s   0 bit/s   0 bit/s

95th percentile: per direction, the 8493rd lowest of the period's 8940 five-minute rates (nearest rank).
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteCSV(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCSV(&b, sampleReport(t)); err != nil {
		t.Fatal(err)
	}
	want := `from,to,tag,metric,ip,in_bytes,out_bytes,none_bytes,in_packets,out_packets,none_packets,in_p95_bits_per_second,out_p95_bits_per_second,none_p95_bits_per_second,complete
2026-10-01T00:00:00+02:00,2026-11-01T00:00:00+01:00,acme,ipacct_ip,,1234567890123,456789012345,0,987654321,345678,0,123456789.5,4560000,0,true
2026-10-01T00:00:00+02:00,2026-11-01T00:00:00+01:00,acme,ipacct_ip,192.0.2.1,1000000000000,300000000000,0,900000000,345000,0,,,,true
2026-10-01T00:00:00+02:00,2026-11-01T00:00:00+01:00,acme,ipacct_ip,2001:db8::1,234567890123,156789012345,0,87654321,678,0,,,,true
2026-10-01T00:00:00+02:00,2026-11-01T00:00:00+01:00,ssh,ipacct_tag,,0,0,999,0,0,12,0,0,0.25,true
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, sampleReport(t)); err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, b.Bytes()); err != nil {
		t.Fatal(err)
	}
	want := `{"from":"2026-10-01T00:00:00+02:00","to":"2026-11-01T00:00:00+01:00","complete":true,"period_to":"2026-11-01T00:00:00+01:00","time_zone":"Europe/Berlin",` +
		`"percentile":{"percentile":95,"bucket_seconds":300,"buckets":8940,"rank":8493},"tags":[` +
		`{"tag":"acme","metric":"ipacct_ip",` +
		`"in":{"bytes":1234567890123,"packets":987654321,"p95_bits_per_second":123456789.5},` +
		`"out":{"bytes":456789012345,"packets":345678,"p95_bits_per_second":4560000},` +
		`"addresses":[` +
		`{"ip":"192.0.2.1","in":{"bytes":1000000000000,"packets":900000000},"out":{"bytes":300000000000,"packets":345000},"total_bytes":1300000000000},` +
		`{"ip":"2001:db8::1","in":{"bytes":234567890123,"packets":87654321},"out":{"bytes":156789012345,"packets":678},"total_bytes":391356902468}]},` +
		`{"tag":"ssh","metric":"ipacct_tag",` +
		`"in":{"bytes":0,"packets":0,"p95_bits_per_second":0},"out":{"bytes":0,"packets":0,"p95_bits_per_second":0},` +
		`"none":{"bytes":999,"packets":12,"p95_bits_per_second":0.25}}]}`
	if got := compact.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	// No tags: a list, not null.
	b.Reset()
	if err := WriteJSON(&b, &Report{Period: sampleReport(t).Period, End: sampleReport(t).End}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"tags": []`) {
		t.Errorf("empty report: %s", b.String())
	}
}

func TestSI(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{
		{0, "B", "0 B"}, {999, "B", "999 B"}, {1000, "B", "1.00 kB"}, {1234567, "B", "1.23 MB"},
		{999999999, "B", "1000.00 MB"}, {1e18, "B", "1.00 EB"}, {1e21, "B", "1000.00 EB"},
		{12, "", "12"}, {12345, "", "12.35 k"}, {0.4, "bit/s", "0 bit/s"}, {1.5e9, "bit/s", "1.50 Gbit/s"},
	} {
		if got := si(tc.v, tc.unit); got != tc.want {
			t.Errorf("si(%v, %q) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
}

func TestOrdinal(t *testing.T) {
	for n, want := range map[int]string{1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 11: "11th", 12: "12th", 13: "13th", 21: "21st", 112: "112th", 8482: "8482nd", 8493: "8493rd"} {
		if got := ordinal(n); got != want {
			t.Errorf("ordinal(%d) = %q, want %q", n, got, want)
		}
	}
}
