package iptables

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// Lines are as iptables-legacy 1.8.9 prints them with -v -S, copied from
// its output unless noted.
func TestParseRules(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  []rule
	}{
		{
			name:  "seed example",
			lines: []string{`-A ACCT4 ! -s 10.2.3.0/24 -p tcp -m tcp --dport 22 -m comment --comment "=unauthssh= Unauthorized SSH traffic received" -c 17 2345`},
			want:  []rule{{comment: "=unauthssh= Unauthorized SSH traffic received", commented: true, packets: 17, bytes: 2345}},
		},
		{
			name:  "quotes, backslash and non-ASCII",
			lines: []string{`-A ACCT4 -p udp -m udp --dport 80 -m comment --comment "=q_in= say \"hi\" \\ ünï" -c 3 99`},
			want:  []rule{{comment: `=q_in= say "hi" \ ünï`, commented: true, packets: 3, bytes: 99}},
		},
		{
			name:  "escaped quotes and backslashes in a row",
			lines: []string{`-A ACCT4 -p udp -m udp --dport 93 -m comment --comment "a\\\"b\\\\" -c 0 0`},
			want:  []rule{{comment: `a\"b\\`, commented: true}},
		},
		{
			name:  "single quote is escaped too",
			lines: []string{`-A ACCT4 -p udp -m udp --dport 83 -m comment --comment "a\'b" -c 1 2`},
			want:  []rule{{comment: "a'b", commented: true, packets: 1, bytes: 2}},
		},
		{
			name:  "unquoted comment",
			lines: []string{`-A ACCT4 -p udp -m udp --dport 81 -m comment --comment plain -c 5 6`},
			want:  []rule{{comment: "plain", commented: true, packets: 5, bytes: 6}},
		},
		{
			name:  "empty comment",
			lines: []string{`-A ACCT4 -p udp -m udp --dport 86 -m comment --comment "" -c 0 0`},
			want:  []rule{{comment: "", commented: true}},
		},
		{
			name:  "tab and control bytes are printed raw",
			lines: []string{"-A ACCT4 -p udp -m udp --dport 98 -m comment --comment \"a\tb\rc\vd\x01\xff\" -c 0 0"},
			want:  []rule{{comment: "a\tb\rc\vd\x01\xff", commented: true}},
		},
		{
			name:  "shell characters are literal",
			lines: []string{"-A ACCT4 -p udp -m udp --dport 88 -m comment --comment \"$x`y\" -c 0 0"},
			want:  []rule{{comment: "$x`y", commented: true}},
		},
		{
			name:  "counters inside a comment",
			lines: []string{`-A ACCT4 -p udp -m udp --dport 92 -m comment --comment "-A X -c 1 2" -c 7 8`},
			want:  []rule{{comment: "-A X -c 1 2", commented: true, packets: 7, bytes: 8}},
		},
		{
			name:  "comment -c is unquoted",
			lines: []string{`-A ACCT4 -p udp -m udp --dport 91 -m comment --comment -c -c 7 8`},
			want:  []rule{{comment: "-c", commented: true, packets: 7, bytes: 8}},
		},
		{
			name:  "two comment matches",
			lines: []string{`-A ACCT4 -p udp -m udp --dport 85 -m comment --comment x -m comment --comment "=y_in= z" -c 1 1`},
			want:  []rule{{comment: "x =y_in= z", commented: true, packets: 1, bytes: 1}},
		},
		{
			name:  "target after the counters",
			lines: []string{`-A ACCT4 -p udp -m udp --dport 89 -m comment --comment after -c 4 5 -j ACCEPT`},
			want:  []rule{{comment: "after", commented: true, packets: 4, bytes: 5}},
		},
		{
			name:  "target option -c after the counters",
			lines: []string{`-A ACCT4 -p udp -m udp --dport 94 -m comment --comment "=lg=" -c 1 2 -j LOG --log-prefix -c`},
			want:  []rule{{comment: "=lg=", commented: true, packets: 1, bytes: 2}},
		},
		{
			name:  "rule without comment",
			lines: []string{`-A INPUT -c 10 20 -j ACCT4`},
			want:  []rule{{packets: 10, bytes: 20}},
		},
		{
			name:  "rule without target, the accounting case",
			lines: []string{`-A ACCT4 -d 192.0.2.1/32 -p udp -m udp --dport 80 -m comment --comment "=web4_down= Combined web traffic to/from local 80/443" -c 10 1280`},
			want:  []rule{{comment: "=web4_down= Combined web traffic to/from local 80/443", commented: true, packets: 10, bytes: 1280}},
		},
		{
			name:  "largest counters",
			lines: []string{`-A X -c 18446744073709551615 18446744073709551615`},
			want:  []rule{{packets: 1<<64 - 1, bytes: 1<<64 - 1}},
		},
		{
			name: "policy and chain lines are skipped",
			lines: []string{
				`-P INPUT ACCEPT -c 123 456`,
				`-N ACCT4`,
				`-A INPUT -c 1 2 -j ACCT4`,
			},
			want: []rule{{packets: 1, bytes: 2}},
		},
		{
			name:  "no lines",
			lines: nil,
			want:  nil,
		},
		{
			name: "comment with a newline spans two lines",
			lines: []string{
				`-A ACCT4 -p udp -m udp --dport 90 -m comment --comment "line1`,
				`line2" -c 3 4`,
				`-A ACCT4 -c 5 6`,
			},
			want: []rule{
				{comment: "line1\nline2", commented: true, packets: 3, bytes: 4},
				{packets: 5, bytes: 6},
			},
		},
		{
			name: "comment with a newline and what looks like a rule",
			lines: []string{
				`-A ACCT4 -m comment --comment "x`,
				`-A ACCT4 -c 999 999`,
				`" -c 1 2`,
			},
			want: []rule{{comment: "x\n-A ACCT4 -c 999 999\n", commented: true, packets: 1, bytes: 2}},
		},
		{
			name: "continuation that go-iptables rewrote",
			// From `--comment "a\n[1:2] b" -c 5 6`: go-iptables turns a
			// line "[1:2] REST" into "REST -c 1 2".
			lines: []string{
				`-A ACCT4 -m comment --comment "a`,
				`b" -c 5 6 -c 1 2`,
			},
			want: []rule{{comment: "a\nb", commented: true, packets: 5, bytes: 6}},
		},
		{
			name: "target option with a newline after the counters",
			lines: []string{
				`-A ACCT4 -m comment --comment "=lg_in=" -c 1 2 -j LOG --log-prefix "pre`,
				`fix"`,
				`-A ACCT4 -c 3 4`,
			},
			want: []rule{{comment: "=lg_in=", commented: true, packets: 1, bytes: 2}, {packets: 3, bytes: 4}},
		},
		{
			name: `names with '"' are printed raw`,
			lines: []string{
				`-N "q`,
				`-A "q -i "x -p udp -m comment --comment "=iq_in=" -c 1 2`,
				`-A INPUT -c 3 4 -j "q`,
			},
			want: []rule{{comment: "=iq_in=", commented: true, packets: 1, bytes: 2}, {packets: 3, bytes: 4}},
		},
		{
			name: `match names with '"' are printed raw`,
			lines: []string{
				`-A ACCT4 -m recent --rcheck --name "r --mask 255.255.255.255 --rsource -m comment --comment "=r_in=" -c 1 1`,
				`-A ACCT4 -m hashlimit --hashlimit-upto 5/sec --hashlimit-burst 5 --hashlimit-name "h -m comment --comment "=h_in=" -c 2 2`,
				`-A ACCT4 -m physdev --physdev-in "p -m comment --comment "=p_in=" -c 3 3`,
				`-A ACCT4 ! -o a" -m comment --comment "=o_in=" -c 4 4`, // made up
			},
			want: []rule{
				{comment: "=r_in=", commented: true, packets: 1, bytes: 1},
				{comment: "=h_in=", commented: true, packets: 2, bytes: 2},
				{comment: "=p_in=", commented: true, packets: 3, bytes: 3},
				{comment: "=o_in=", commented: true, packets: 4, bytes: 4},
			},
		},
		{
			name:  "other matches quote their strings",
			lines: []string{`-A ACCT4 -m string --string "\"a -c 1 2" --algo bm -m comment --comment "=st_in=" -c 5 6`},
			want:  []rule{{comment: "=st_in=", commented: true, packets: 5, bytes: 6}},
		},
		{
			name:  "--comment of another match is not a comment",
			lines: []string{`-A ACCT4 -m madeup --comment nope -c 5 6`},
			want:  []rule{{packets: 5, bytes: 6}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRules(tt.lines)
			if err != nil {
				t.Fatalf("parseRules: %v", err)
			}
			if !reflect.DeepEqual(withoutContent(got), tt.want) {
				t.Errorf("parseRules:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
	}{
		{"no counters", []string{`-A ACCT4 -p udp -m udp --dport 80`}},
		{"one counter", []string{`-A ACCT4 -c 1`}},
		{"counter not a number", []string{`-A ACCT4 -c 1 x`}},
		{"negative counter", []string{`-A ACCT4 -c -1 2`}},
		{"counter overflows", []string{`-A ACCT4 -c 18446744073709551616 1`}},
		{"no chain", []string{`-A `}},
		{"comment without value", []string{`-A ACCT4 -m comment --comment`}},
		{"unterminated comment", []string{`-A ACCT4 -m comment --comment "abc -c 1 2`}},
		{"unterminated comment over lines", []string{`-A ACCT4 -m comment --comment "abc`, `def -c 1 2`}},
		{"escape at the end", []string{`-A ACCT4 -m comment --comment "abc\`}},
		{"text after the closing quote", []string{`-A ACCT4 -m comment --comment "a"b -c 1 2`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRules(tt.lines)
			if err == nil {
				t.Fatalf("parseRules(%q) = %+v, want an error", tt.lines, got)
			}
		})
	}
	if _, err := parseRule(`-A ACCT4 -m comment --comment "abc`); !errors.Is(err, errUnterminated) {
		t.Errorf("parseRule of an unterminated comment: %v, want errUnterminated", err)
	}
	if _, err := parseRule(`-P INPUT ACCEPT -c 1 2`); err == nil {
		t.Error("parseRule of a policy line: no error")
	}
}

// saveString quotes a value as xtables_save_string of iptables 1.8.9 does,
// leading space included.
func saveString(value string) string {
	const noQuote = "_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	if value != "" && strings.Trim(value, noQuote) == "" {
		return " " + value
	}
	var b strings.Builder
	b.WriteString(` "`)
	for i := 0; i < len(value); i++ {
		if c := value[i]; c == '"' || c == '\\' || c == '\'' {
			b.WriteByte('\\')
		}
		b.WriteByte(value[i])
	}
	b.WriteByte('"')
	return b.String()
}

func TestSaveString(t *testing.T) {
	// Against iptables' own output above.
	for value, want := range map[string]string{
		"plain":                    " plain",
		"-c":                       " -c",
		"":                         ` ""`,
		"=lg=":                     ` "=lg="`,
		`=q_in= say "hi" \ ünï`:    ` "=q_in= say \"hi\" \\ ünï"`,
		"a'b":                      ` "a\'b"`,
		`a\"b\\`:                   ` "a\\\"b\\\\"`,
		"=unauthssh= Unauthorized": ` "=unauthssh= Unauthorized"`,
	} {
		if got := saveString(value); got != want {
			t.Errorf("saveString(%q) = %q, want %q", value, got, want)
		}
	}
}

func FuzzParseRule(f *testing.F) {
	f.Add("=q_in= say \"hi\" \\ ünï", uint64(3), uint64(99), `-A ACCT4 -m comment --comment "=q_in= say \"hi\" \\ ünï" -c 3 99`)
	f.Add("-c", uint64(0), uint64(0), `-A ACCT4 -m comment --comment -c -c 0 0`)
	f.Add("line1\nline2", uint64(1<<64-1), uint64(1), "-A ACCT4 -m comment --comment \"line1\nline2\" -c 1 2")
	f.Add("x\n-A ACCT4 -c 999 999\n", uint64(1), uint64(2), `-A "q -i "x -m recent --name "r -c 1 2 -j "q`)
	f.Add("", uint64(0), uint64(0), `-A ACCT4 -m comment --comment "a\`)
	f.Add(`\"'\\`, uint64(5), uint64(6), `-P INPUT ACCEPT -c 1 2`)
	f.Fuzz(func(t *testing.T, comment string, packets, bytes uint64, line string) {
		// Any text: no panic, whatever the result.
		parseRule(line)
		parseRules(strings.Split(line, "\n"))

		// A comment is a C string: it cannot hold a NUL.
		if strings.IndexByte(comment, 0) >= 0 {
			return
		}
		built := "-A ACCT4 -p udp -m udp --dport 80 -m comment --comment" + saveString(comment) +
			" -c " + strconv.FormatUint(packets, 10) + " " + strconv.FormatUint(bytes, 10) +
			` -j LOG --log-prefix "a \"b"`
		got, err := parseRules(strings.Split(built, "\n"))
		if err != nil {
			t.Fatalf("parseRules(%q): %v", built, err)
		}
		want := []rule{{comment: comment, commented: true, packets: packets, bytes: bytes}}
		// The identity is the line without its counters.
		if c := strings.Replace(built, " -c "+strconv.FormatUint(packets, 10)+" "+strconv.FormatUint(bytes, 10), "", 1); len(got) == 1 && got[0].content != c {
			t.Fatalf("content %q, want %q", got[0].content, c)
		}
		if !reflect.DeepEqual(withoutContent(got), want) {
			t.Fatalf("parseRules(%q):\n got %+v\nwant %+v", built, got, want)
		}
	})
}

// withoutContent clears the rules' identity, which TestRuleContent checks.
func withoutContent(rules []rule) []rule {
	for i := range rules {
		rules[i].content = ""
	}
	return rules
}

// TestRuleContent: a rule's identity is its line without the counters, so
// that the same rule with other counts (restored with iptables-restore -c,
// or zeroed) is the same rule, and another rule is not.
func TestRuleContent(t *testing.T) {
	a, err := parseRule(`-A ACCT4 -d 192.0.2.1/32 -m comment --comment "=web_in=" -c 10 600 -j RETURN`)
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseRule(`-A ACCT4 -d 192.0.2.1/32 -m comment --comment "=web_in=" -c 0 0 -j RETURN`)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseRule(`-A ACCT4 -d 192.0.2.2/32 -m comment --comment "=web_in=" -c 10 600 -j RETURN`)
	if err != nil {
		t.Fatal(err)
	}
	if a.content != b.content || a.content == c.content {
		t.Errorf("contents: %q %q %q", a.content, b.content, c.content)
	}
	if want := `-A ACCT4 -d 192.0.2.1/32 -m comment --comment "=web_in=" -j RETURN`; a.content != want {
		t.Errorf("content %q, want %q", a.content, want)
	}
}
