package nftmatch

import (
	"strconv"
	"strings"
)

// tokKind is the class of a token.
type tokKind int

const (
	tokEOF    tokKind = iota
	tokWord           // a name, number, address, range: 22, echo-request, 10.0.0.1-10.0.0.5
	tokString         // "eth0", without the quotes
	tokOp             // == != < > <= >=
	tokPunct          // { } , ( ) | & / !
)

type token struct {
	kind tokKind
	text string
	pos  int // byte offset in the match
}

func (t token) String() string {
	if t.kind == tokEOF {
		return "the end of the match"
	}
	return strconv.Quote(t.text)
}

// wordByte reports whether c may be part of a word: names, numbers, IPv4
// and IPv6 addresses, ranges and tc classes (1:2).
func wordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '.' || c == ':' || c == '-'
}

// lex splits a match into tokens. White space (blank, tab, line break)
// separates tokens and is otherwise ignored.
func lex(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case wordByte(c):
			j := i
			for j < len(s) && wordByte(s[j]) {
				j++
			}
			toks = append(toks, token{tokWord, s[i:j], i})
			i = j
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					return nil, errorf(j, `escapes (\) are not supported in a string`)
				}
				if s[j] < 0x20 || s[j] >= 0x7f {
					return nil, errorf(j, "a string may hold printable ASCII only")
				}
				j++
			}
			if j == len(s) {
				return nil, errorf(i, "the string has no closing quote")
			}
			toks = append(toks, token{tokString, s[i+1 : j], i})
			i = j + 1
		case c == '=' || c == '!' || c == '<' || c == '>':
			if i+1 < len(s) && s[i+1] == '=' {
				toks = append(toks, token{tokOp, s[i : i+2], i})
				i += 2
				continue
			}
			switch c {
			case '=':
				return nil, errorf(i, `"=" is not an operator; write == or leave the operator out`)
			case '!':
				toks = append(toks, token{tokPunct, "!", i})
			default:
				toks = append(toks, token{tokOp, s[i : i+1], i})
			}
			i++
		case strings.IndexByte("{},()|&/", c) >= 0:
			toks = append(toks, token{tokPunct, s[i : i+1], i})
			i++
		case c == '#':
			return nil, errorf(i, "comments (#) are not allowed in a match")
		case c == ';':
			return nil, errorf(i, `";" ends a rule; a match is one expression, without statements`)
		case c == '$':
			return nil, errorf(i, "variables ($name) are not supported")
		case c == '@':
			return nil, errorf(i, "raw payload expressions and named sets (@...) are not supported by the exporter's match subset; see "+DocRef)
		case c == '\'':
			return nil, errorf(i, `strings are written in double quotes: "eth0"`)
		case c < 0x20 || c >= 0x7f:
			return nil, errorf(i, "unexpected byte 0x%02x; a match is printable ASCII", c)
		default:
			return nil, errorf(i, "unexpected %q", string(c))
		}
	}
	toks = append(toks, token{tokEOF, "", len(s)})
	return toks, nil
}
