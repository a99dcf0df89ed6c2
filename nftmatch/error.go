package nftmatch

import "fmt"

// DocRef is where error messages send the reader for the subset.
const DocRef = "https://pkg.go.dev/github.com/ipacct/ipacct_exporter/nftmatch"

// Error is a match that does not parse or does not compile, at a place in
// its text.
type Error struct {
	Offset int    // byte offset into the match, from 0
	Msg    string // what is wrong there, and what was expected
}

// Column is the error's place as a 1-based byte column.
func (e *Error) Column() int { return e.Offset + 1 }

func (e *Error) Error() string {
	return fmt.Sprintf("column %d: %s", e.Column(), e.Msg)
}

func errorf(off int, format string, args ...any) *Error {
	return &Error{Offset: off, Msg: fmt.Sprintf(format, args...)}
}
