// Package tag parses the accounting tag that an operator writes into a
// netfilter rule comment, in the munin traffic_accounting grammar:
//
//	=web4_down= Combined web traffic to/from local 80/443
//
// A comment is accounted when it holds a token "=TAG=" at its start or after
// white space. TAG is 1 to 64 letters, digits, '_', '.' or '-'. A TAG ending in
// "_in" or "_down" counts direction in, one ending in "_out" or "_up" counts
// direction out; the suffix is not part of the tag name. The text after the
// closing '=' is the description.
package tag

import (
	"errors"
	"fmt"
	"strings"
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
	Description string    // text after the token, trimmed, valid UTF-8
}

// ErrNoTag is returned for a comment that holds no tag token: such a rule is
// not accounted, and that is not an error of the operator's.
var ErrNoTag = errors.New("no tag token")

// Parse finds the tag token of a comment. It returns ErrNoTag when the comment
// holds none, and a descriptive error when a token is opened (see tokenStart)
// but the TAG inside it is not valid. Only the first token counts.
func Parse(comment string) (Tag, error) {
	start := tokenStart(comment)
	if start < 0 {
		return Tag{}, ErrNoTag
	}
	rest := comment[start+1:]
	end := strings.IndexByte(rest, '=')
	raw := rest[:end]
	if err := validate(raw); err != nil {
		return Tag{}, err
	}
	t := Tag{Name: raw, Direction: None}
	for _, s := range suffixes {
		if strings.HasSuffix(raw, s.suffix) {
			t.Name, t.Direction = strings.TrimSuffix(raw, s.suffix), s.dir
			break
		}
	}
	if t.Name == "" {
		return Tag{}, fmt.Errorf("tag %q has a direction suffix but no name", raw)
	}
	t.Description = strings.ToValidUTF8(strings.TrimSpace(rest[end+1:]), "\uFFFD")
	return t, nil
}

// tokenStart returns the index of the '=' that opens the first tag token, or
// -1. A token opens with '=' at the start of the comment or after white
// space, directly followed by a byte that is neither white space nor '=', and
// closes at the next '='. So "a = b" and "== x ==" open none, and
// "=bad tag= x" opens one that does not parse.
func tokenStart(s string) int {
	for i := 0; i+1 < len(s); i++ {
		if s[i] != '=' || (i > 0 && !isSpace(s[i-1])) || isSpace(s[i+1]) || s[i+1] == '=' {
			continue
		}
		if strings.IndexByte(s[i+1:], '=') >= 0 {
			return i
		}
		return -1 // no '=' after this one, so none after any later one
	}
	return -1
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
