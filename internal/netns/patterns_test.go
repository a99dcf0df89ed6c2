package netns

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestParsePatterns(t *testing.T) {
	for _, c := range []struct {
		values  []string
		err     string
		several bool
		single  string
	}{
		{values: nil, single: ""},
		{values: []string{"blue"}, single: "/run/netns/blue"},
		{values: []string{"/proc/42/ns/net"}, single: "/proc/42/ns/net"},
		{values: []string{"blue", "red"}, several: true},
		{values: []string{"cni-*"}, several: true},
		{values: []string{"/proc/[0-9]*/ns/net"}, several: true},
		{values: []string{""}, err: "--netns: empty value; leave the flag out to read the exporter's own namespace"},
		{values: []string{"cni-[x"}, err: `--netns "cni-[x": syntax error in pattern`},
	} {
		p, err := ParsePatterns(c.values)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%q: error %v, want %s", c.values, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.values, err)
			continue
		}
		single, ok := p.Single()
		if p.Several() != c.several || ok == c.several || single != c.single {
			t.Errorf("%q: several %v, single %q %v; want several %v, single %q", c.values, p.Several(), single, ok, c.several, c.single)
		}
	}
}

// TestResolve lists a namespace reached by two paths once, keeps a named
// namespace that does not exist, and skips glob matches that are not
// namespaces.
func TestResolve(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "not-a-namespace"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got := Patterns{"/proc/self/ns/net", "/proc/thread-self/ns/net", "never-made", dir + "/*"}.Resolve()
	want := []Namespace{
		{Name: "/proc/self/ns/net", Path: "/proc/self/ns/net"},
		{Name: "never-made", Path: "/run/netns/never-made"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Resolve = %+v, want %+v", got, want)
	}
	if got := (Patterns{}).Resolve(); !reflect.DeepEqual(got, []Namespace{{}}) {
		t.Errorf("no patterns: %+v, want the exporter's own namespace", got)
	}
	if got := (Patterns{"/proc/self/ns/ne[t]"}).Resolve(); len(got) != 1 || !got[0].Globbed {
		t.Errorf("glob of the own namespace: %+v", got)
	}
}

// TestEscape: every label value is UTF-8 without control characters, names
// that are already such stay, and no two names share a value.
func TestEscape(t *testing.T) {
	for name, want := range map[string]string{
		"blue":         "blue",
		"tenant-ü":     "tenant-ü",
		`say "hi"`:     `say "hi"`,
		"bad-\xff":     `bad-\xff`,
		`bad-\xff`:     `bad-\\xff`,
		"bad-\xfe\x01": `bad-\xfe\x01`,
		"line\nbreak":  `line\nbreak`,
		"nel-\u0085":   `nel-\u0085`,
		`a\b`:          `a\\b`,
	} {
		got := escape(name)
		if got != want {
			t.Errorf("escape(%q) = %s, want %s", name, got, want)
		}
		if !utf8.ValidString(got) || strings.IndexFunc(got, unicode.IsControl) >= 0 {
			t.Errorf("escape(%q) = %q, not a clean label value", name, got)
		}
	}
	if got := label("/run/netns/bad-\xff"); got != `bad-\xff` {
		t.Errorf("label of a name under /run/netns: %s", got)
	}
	if got := label("/var/run/other/bad-\xff"); got != `/var/run/other/bad-\xff` {
		t.Errorf("label of a path: %s", got)
	}
}
