package e2e

import (
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// longFlags are the long flags a help text lists, one a line as kingpin
// writes them (not those its descriptions name).
func longFlags(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command(exporterBinary(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var flags []string
	for _, m := range regexp.MustCompile(`(?m)^(?:  -\w, |      )--(?:\[no-\])?([a-z][a-z0-9.-]*)`).FindAllStringSubmatch(string(out), -1) {
		flags = append(flags, m[1])
	}
	return flags
}

// TestCommandsShowTheirOwnFlags: each command's help lists its flags and no
// other command's; the daemon's flags work without the word serve.
func TestCommandsShowTheirOwnFlags(t *testing.T) {
	common := []string{"help", "version"}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"report", "--help"}, []string{"prometheus.url", "http.config.file", "period", "from", "to", "timezone", "tag", "match",
			"format", "step", "mail.to", "mail.from", "mail.subject", "mail.percentile", "timeout", "max-gap", "chunk", "max-answer-size"}},
		{[]string{"cleanup", "--help"}, []string{"config.file", "netns"}},
		{[]string{"--help"}, nil},
	} {
		got := longFlags(t, tc.args...)
		want := append(slices.Clone(common), tc.want...)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s lists %v, want %v", strings.Join(tc.args, " "), got, want)
		}
	}
	serve := longFlags(t, "serve", "--help")
	for _, f := range []string{"web.listen-address", "web.config.file", "web.telemetry-path", "collector.nftables", "collector.flow.listen-address",
		"config.file", "config.check", "netns", "scrape.timeout", "log.level", "log.format"} {
		if !slices.Contains(serve, f) {
			t.Errorf("serve --help lacks --%s: %v", f, serve)
		}
	}
	if slices.Contains(serve, "prometheus.url") {
		t.Error("serve --help lists the report's flags")
	}
	// Without the word serve.
	path := writeFile(t, t.TempDir(), "rules.yaml", "accounting:\n  - tag: web\n    ports: [80]\n    protocol: udp\n")
	out, err := exec.Command(exporterBinary(t), "--config.file="+path, "--config.check", "--log.level=debug").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "valid, 1 accounting entries") {
		t.Errorf("daemon flags without serve: %v\n%s", err, out)
	}
}
