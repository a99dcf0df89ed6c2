package tag

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
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
		// In any case, as munin's plugin matches them.
		{"=web_UP= x", Tag{"web", Out, "x"}, ""},
		{"=Web_Down=", Tag{"Web", In, ""}, ""},
		{"=LAN_In=", Tag{"LAN", In, ""}, ""},
		{"=_OUT=", Tag{}, "no name"},
		// Where the token may stand.
		{"customer A =cust.a-1_out= billed monthly", Tag{"cust.a-1", Out, "billed monthly"}, ""},
		{"\t=tab= after a tab", Tag{"tab", None, "after a tab"}, ""},
		{"=tight=description", Tag{"tight", None, "description"}, ""},
		{"=a= b =c= d", Tag{"a", None, "b =c= d"}, ""},
		{"  =spaced=   trimmed  ", Tag{"spaced", None, "trimmed"}, ""},
		{"x = y =z= w", Tag{"z", None, "w"}, ""},
		// Not tags.
		{"", Tag{}, "none"},
		{"plain comment", Tag{}, "none"},
		{"a = b", Tag{}, "none"},
		{"== header ==", Tag{}, "none"},
		{"=", Tag{}, "none"},
		{"a >= b", Tag{}, "none"},
		{"a == b", Tag{}, "none"},
		{"==tag==", Tag{}, "none"},
		{"k=v,w=1", Tag{}, "none"},
		{"=> redirect", Tag{}, "none"},
		{"x = y", Tag{}, "none"},
		// Started but not finished: what to write instead.
		{"=unclosed Free text", Tag{}, `tag token "=unclosed" has no closing '='; write "=unclosed= Free text"`},
		{"=open", Tag{}, `tag token "=open" has no closing '='; write "=open="`},
		{"x=glued_in=", Tag{}, `tag token "=glued_in=" follows other text without white space; write "=glued_in= x"`},
		{"x=y= not at a word start", Tag{}, `write "=y= x not at a word start"`},
		{"= spaced= token", Tag{}, `tag token "= spaced=" has white space after its opening '='; write "=spaced= token"`},
		{"a =\tweb_in= b", Tag{}, `write "a =web_in= b"`},
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
		// Control characters never reach the label.
		{"=n= a\x00b", Tag{"n", None, "a\uFFFDb"}, ""},
		{"=n= \x1b[31mred\x7f", Tag{"n", None, "\uFFFD[31mred\uFFFD"}, ""},
		{"=n= one\ttwo\nthree\u0085four", Tag{"n", None, "one two three four"}, ""},
		{"=n=\x00", Tag{"n", None, "\uFFFD"}, ""},
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
	for _, s := range []string{"=web4_down= Combined web", "=a=", "a = b", "=bad tag= x", "=x_in=\xff", "== x",
		"=unclosed Free text", "x=glued_in=", "= spaced= token", "=web_UP= x", "=n= a\x00b"} {
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
			checkFix(t, comment, err)
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
		if !utf8.ValidString(got.Description) || got.Description != strings.TrimSpace(got.Description) ||
			strings.ContainsFunc(got.Description, unicode.IsControl) {
			t.Errorf("description %q", got.Description)
		}
		// The token is in the comment as written.
		if !strings.Contains(comment, "="+got.Name) {
			t.Errorf("name %q not in %q", got.Name, comment)
		}
	})
}

// fix is what an error tells the operator to write instead.
var fix = regexp.MustCompile(`; write ("(?:[^"\\]|\\.)*")$`)

// checkFix checks that what an error says to write is a comment whose token
// is closed and in its place: parsing it finds a tag, or at worst a TAG that
// is too long or only a suffix, never advice again.
func checkFix(t *testing.T, comment string, err error) {
	m := fix.FindStringSubmatch(err.Error())
	if m == nil {
		return
	}
	suggested, uerr := strconv.Unquote(m[1])
	if uerr != nil {
		t.Fatalf("Parse(%q): the suggestion in %q does not unquote: %v", comment, err, uerr)
	}
	if strings.Contains(suggested, "…") {
		return // shortened for the message
	}
	if _, err2 := Parse(suggested); errors.Is(err2, ErrNoTag) || err2 != nil && fix.MatchString(err2.Error()) {
		t.Errorf("Parse(%q): %v; but Parse of the suggestion %q: %v", comment, err, suggested, err2)
	}
}

// TestPrintableASCII: printable's shortcut for ASCII text gives what the
// general way gives, for every text of up to three bytes of ASCII and some
// longer ones, control characters and spaces included.
func TestPrintableASCII(t *testing.T) {
	check := func(s string) {
		if got, want := printable(s), printableText(s); got != want {
			t.Errorf("printable(%q) = %q, want %q", s, got, want)
		}
	}
	for a := range 128 {
		for b := range 128 {
			check(string([]byte{byte(a), byte(b)}))
			for _, c := range []byte{' ', '\t', 'x', 0, 0x7f, '~'} {
				check(string([]byte{byte(a), byte(b), c}))
			}
		}
	}
	for _, s := range []string{"", " native rule 12345 ", "\tdesc\n", "a\x00b", "a\x7fb", "  ~ x ~  ", "\v\fx\r"} {
		check(s)
	}
	if !printableASCII(" native rule 12345") || printableASCII("caf\u00e9") || printableASCII("a\x7f") || printableASCII("a\tb") {
		t.Error("printableASCII")
	}
}
