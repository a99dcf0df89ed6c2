package report

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Label values come from the store and may hold anything: an escape
// sequence that recolours a terminal or moves its cursor, a bidirectional
// override that reverses a line, bytes that are no UTF-8. Every format
// writes them so that they show as what they are.

// printable returns s with every rune that is not printable (control and
// format characters, such as ESC and U+202E) written as a Go escape (\x1b,
// \u202e), invalid UTF-8 as \xNN, and backslashes doubled.
func printable(s string) string {
	if isPrintable(s) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToASCII(r) // such as '\x1b' or '\u202e'
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}

func isPrintable(s string) bool {
	for i, r := range s {
		if r == '\\' || !unicode.IsPrint(r) || (r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD")) {
			return false
		}
	}
	return true
}

// escapeJSON writes every rune of JSON text that is not printable and that
// encoding/json left as it is (DEL, C1 controls, format characters) as a
// \u escape: the decoded strings are the same, and the text is safe to show.
func escapeJSON(text []byte) []byte {
	if isPrintable(string(text)) {
		return text
	}
	var b bytes.Buffer
	for _, r := range string(text) {
		if unicode.IsPrint(r) || r == '\n' || r == '\\' {
			b.WriteRune(r)
			continue
		}
		for _, u := range utf16.Encode([]rune{r}) {
			fmt.Fprintf(&b, `\u%04x`, u)
		}
	}
	return b.Bytes()
}
