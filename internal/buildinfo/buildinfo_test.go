package buildinfo

import (
	"runtime/debug"
	"testing"

	"github.com/prometheus/common/version"
)

func TestFill(t *testing.T) {
	saved, savedDate := version.Version, version.BuildDate
	t.Cleanup(func() { version.Version, version.BuildDate = saved, savedDate })
	for _, tc := range []struct {
		ldflags, module, want string
	}{
		{"", "v1.2.3", "1.2.3"}, // go install …@v1.2.3
		{"", "v0.0.0-20260101120000-af830319928a+dirty", "0.0.0-20260101120000-af830319928a+dirty"},
		{"", "(devel)", "(devel)"},
		{"", "", "(devel)"},
		{"0.1.0", "v1.2.3", "0.1.0"}, // -ldflags -X wins
	} {
		version.Version, version.BuildDate = tc.ldflags, ""
		fill(&debug.BuildInfo{Main: debug.Module{Version: tc.module},
			Settings: []debug.BuildSetting{{Key: "vcs.time", Value: "2026-01-01T12:00:00Z"}}})
		if version.Version != tc.want || version.BuildDate != "2026-01-01T12:00:00Z" {
			t.Errorf("-X %q, module %q: version %q, build date %q; want %q", tc.ldflags, tc.module, version.Version, version.BuildDate, tc.want)
		}
	}
}
