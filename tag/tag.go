// Package tag parses the accounting tag that an operator writes into a
// netfilter rule comment, in the munin traffic_accounting grammar:
//
//	=web4_down= Combined web traffic to/from local 80/443
//
// A comment is accounted when it holds a token "=TAG=" at its start or after
// white space. TAG is 1 to 64 letters, digits, '_', '.' or '-'. A TAG ending in
// "_in" or "_down" counts direction in, one ending in "_out" or "_up" counts
// direction out, in any case ("_UP" too); the suffix is not part of the tag
// name. The text after the closing '=' is the description.
//
// A comment that starts a token and does not finish it is an error that says
// what to write instead, so that the rule is reported rather than silently
// left out: "=web Web traffic" (not closed), "x=web=" (glued to the text
// before it), "= web= x" (white space after the opening '='), "=a b= x" (not
// a valid TAG).
package tag

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLen is the longest TAG, suffix included.
const MaxLen = 64

// Direction is the sense of the traffic a tag counts, as munin's sent/received
// graphs pair it.
type Direction string

// The directions; None is a tag without a direction suffix.
const (
	In   Direction = "in"
	Out  Direction = "out"
	None Direction = "none"
)

// suffixes maps a TAG suffix to its direction. Longest first is not needed:
// no suffix is a suffix of another.
var suffixes = []struct {
	suffix string
	dir    Direction
}{
	{"_down", In},
	{"_in", In},
	{"_up", Out},
	{"_out", Out},
}

// Tag is a parsed accounting comment.
type Tag struct {
	Name        string    // TAG without its direction suffix
	Direction   Direction // from the suffix
	Description string    // text after the token, trimmed, printable UTF-8
}

// ErrNoTag is returned for a comment that holds no tag token: such a rule is
// not accounted, and that is not an error of the operator's.
var ErrNoTag = errors.New("no tag token")

// Parse finds the tag token of a comment. It returns ErrNoTag when the comment
// holds none, and an error that says what to write instead when it holds a
// broken one (see the package comment). Only the first token counts: the
// text after it, '=' and all, is the description.
func Parse(comment string) (Tag, error) {
	s := comment
	for i := strings.IndexByte(s, '='); i >= 0; i = nextEquals(s, i) {
		wordStart := i == 0 || isSpace(s[i-1])
		switch {
		case i+1 == len(s):
			return Tag{}, ErrNoTag
		case wordStart && !isSpace(s[i+1]) && s[i+1] != '=':
			return token(s, i)
		case wordStart && isSpace(s[i+1]):
			// "= web= x": a TAG and its closing '=' after the space.
			j := i + 1
			for j < len(s) && isSpace(s[j]) {
				j++
			}
			if end := tagEnd(s, j); end > j && end < len(s) && s[end] == '=' {
				return Tag{}, fmt.Errorf("tag token %q has white space after its opening '='; write %q",
					truncate(s[i:end+1]), truncate(s[:i]+"="+s[j:]))
			}
		case !wordStart && s[i-1] != '=':
			// "x=web=": a token glued to the text before it.
			if end := tagEnd(s, i+1); end > i+1 && end < len(s) && s[end] == '=' {
				rest := strings.TrimSpace(strings.TrimSpace(s[:i]) + " " + strings.TrimSpace(s[end+1:]))
				return Tag{}, fmt.Errorf("tag token %q follows other text without white space; write %q",
					truncate(s[i:end+1]), truncate(strings.TrimSpace(s[i:end+1]+" "+rest)))
			}
		}
	}
	return Tag{}, ErrNoTag
}

// nextEquals is the index of the first '=' after s[i], or -1.
func nextEquals(s string, i int) int {
	if j := strings.IndexByte(s[i+1:], '='); j >= 0 {
		return i + 1 + j
	}
	return -1
}

// token parses the token that the '=' at s[open] opens: it is followed by a
// byte that is neither white space nor '=', and at the start of s or after
// white space.
func token(s string, open int) (Tag, error) {
	closing := nextEquals(s, open)
	if closing < 0 {
		// "=web Web traffic": a TAG, then no '=' to close it.
		if end := tagEnd(s, open+1); end == len(s) || isSpace(s[end]) {
			return Tag{}, fmt.Errorf("tag token %q has no closing '='; write %q",
				truncate(s[open:end]), truncate(s[:end]+"="+s[end:]))
		}
		return Tag{}, ErrNoTag
	}
	raw := s[open+1 : closing]
	if err := validate(raw); err != nil {
		return Tag{}, err
	}
	t := Tag{Name: raw, Direction: None}
	for _, sf := range suffixes {
		if n := len(raw) - len(sf.suffix); n >= 0 && strings.EqualFold(raw[n:], sf.suffix) {
			t.Name, t.Direction = raw[:n], sf.dir
			break
		}
	}
	if t.Name == "" {
		return Tag{}, fmt.Errorf("tag %q has a direction suffix but no name", raw)
	}
	t.Description = printable(s[closing+1:])
	return t, nil
}

// printable makes a description fit for a label value that dashboards and
// logs show: valid UTF-8, white space such as a newline made a space, and
// other control characters (a NUL, an escape) shown as U+FFFD, as invalid
// UTF-8 is; then trimmed.
func printable(s string) string {
	if printableASCII(s) {
		return strings.TrimSpace(s) // what printableText does with it, at a fraction of the cost
	}
	return printableText(s)
}

// printableText is printable of any text.
func printableText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		switch {
		case !unicode.IsControl(r):
			return r
		case unicode.IsSpace(r):
			return ' '
		}
		return '\uFFFD'
	}, s)
	return strings.TrimSpace(s)
}

// printableASCII tells whether s is ASCII without control characters: the
// description of nearly every rule, which printable keeps as it is.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// tagEnd is the end of the run of TAG bytes that starts at s[i].
func tagEnd(s string, i int) int {
	for i < len(s) && validByte(s[i]) {
		i++
	}
	return i
}

func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\v' || b == '\f'
}

func validate(raw string) error {
	switch {
	case len(raw) > MaxLen:
		return fmt.Errorf("tag %q is %d bytes long, at most %d are allowed", truncate(raw), len(raw), MaxLen)
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; !validByte(c) {
			r, _ := utf8.DecodeRuneInString(raw[i:])
			return fmt.Errorf("tag %q has the character %q; a tag is letters, digits, '_', '.' and '-'", truncate(raw), r)
		}
	}
	return nil
}

func validByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}

// truncate keeps an error message short and valid UTF-8 when the comment is
// long or binary.
func truncate(s string) string {
	if len(s) > MaxLen+8 {
		s = s[:MaxLen+8] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
