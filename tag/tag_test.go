package tag

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		comment string
		want    Tag
		err     string // "" for a tag, "none" for ErrNoTag, else a part of the error
	}{
		// Seed 003's comments.
		{"=unauthssh= Unauthorized SSH traffic received", Tag{"unauthssh", None, "Unauthorized SSH traffic received"}, ""},
		{"=web4_down= Combined web traffic to/from local 80/443", Tag{"web4", In, "Combined web traffic to/from local 80/443"}, ""},
		{"=web4_up= dummy", Tag{"web4", Out, "dummy"}, ""},
		{"=web6ssl_up=", Tag{"web6ssl", Out, ""}, ""},
		// Suffixes.
		{"=lan_in= x", Tag{"lan", In, "x"}, ""},
		{"=lan_out= x", Tag{"lan", Out, "x"}, ""},
		{"=lan_up_down=", Tag{"lan_up", In, ""}, ""},
		{"=lan_inside=", Tag{"lan_inside", None, ""}, ""},
		{"=_in=", Tag{}, "no name"},
		// Where the token may stand.
		{"customer A =cust.a-1_out= billed monthly", Tag{"cust.a-1", Out, "billed monthly"}, ""},
		{"\t=tab= after a tab", Tag{"tab", None, "after a tab"}, ""},
		{"=tight=description", Tag{"tight", None, "description"}, ""},
		{"=a= b =c= d", Tag{"a", None, "b =c= d"}, ""},
		{"  =spaced=   trimmed  ", Tag{"spaced", None, "trimmed"}, ""},
		{"x=y= not at a word start", Tag{}, "none"},
		// Not tags.
		{"", Tag{}, "none"},
		{"plain comment", Tag{}, "none"},
		{"a = b", Tag{}, "none"},
		{"== header ==", Tag{}, "none"},
		{"=open but never closed", Tag{}, "none"},
		{"=", Tag{}, "none"},
		// Opened but broken.
		{"=bad tag= x", Tag{}, "character ' '"},
		{"=web!= x", Tag{}, "character '!'"},
		{"=ünï= x", Tag{}, "character 'ü'"},
		{"=" + strings.Repeat("a", 64) + "=", Tag{strings.Repeat("a", 64), None, ""}, ""},
		{"=" + strings.Repeat("a", 65) + "=", Tag{}, "65 bytes long"},
		// Descriptions keep what the operator wrote, made valid UTF-8.
		{`=q= say "hi" \ back`, Tag{"q", None, `say "hi" \ back`}, ""},
		{"=u= ünïcödé ✓", Tag{"u", None, "ünïcödé ✓"}, ""},
		{"=b= \xff\xfe", Tag{"b", None, "\uFFFD"}, ""},
	} {
		got, err := Parse(tc.comment)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("Parse(%q): unexpected error %v", tc.comment, err)
		case tc.err == "none" && !errors.Is(err, ErrNoTag):
			t.Errorf("Parse(%q): got %+v, %v; want ErrNoTag", tc.comment, got, err)
		case tc.err != "" && tc.err != "none" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("Parse(%q): got error %v, want one containing %q", tc.comment, err, tc.err)
		case got != tc.want:
			t.Errorf("Parse(%q) = %+v, want %+v", tc.comment, got, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"=web4_down= Combined web", "=a=", "a = b", "=bad tag= x", "=x_in=\xff", "== x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, comment string) {
		got, err := Parse(comment)
		if err != nil {
			if got != (Tag{}) {
				t.Errorf("error %v with a tag %+v", err, got)
			}
			if !utf8.ValidString(err.Error()) {
				t.Errorf("error text is not UTF-8: %q", err.Error())
			}
			return
		}
		if got.Name == "" || len(got.Name) > MaxLen {
			t.Errorf("bad name %q", got.Name)
		}
		for i := 0; i < len(got.Name); i++ {
			if !validByte(got.Name[i]) {
				t.Errorf("name %q has %q", got.Name, got.Name[i])
			}
		}
		if got.Direction != In && got.Direction != Out && got.Direction != None {
			t.Errorf("direction %q", got.Direction)
		}
		if !utf8.ValidString(got.Description) || got.Description != strings.TrimSpace(got.Description) {
			t.Errorf("description %q", got.Description)
		}
		// The token is in the comment as written.
		if !strings.Contains(comment, "="+got.Name) {
			t.Errorf("name %q not in %q", got.Name, comment)
		}
	})
}
