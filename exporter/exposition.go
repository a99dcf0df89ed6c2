package exporter

import (
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// The exporter writes its families straight into the exposition, in the
// text format or OpenMetrics, byte for byte what expfmt writes for the same
// families (exposition_test.go compares the two): a million addresses make
// two million series, and building a metric object for each before a byte
// is sent costs gigabytes.

// expoWriter writes an exposition through a buffer of its own.
type expoWriter struct {
	w   io.Writer
	om  bool // OpenMetrics, with created lines; else the text format
	enc expfmt.Encoder
	buf []byte
	err error
	// The created time last written and its text: series born in one read
	// share it.
	createdMs   int64
	createdText []byte
}

// flushAt is the buffered size at which expoWriter writes through.
const flushAt = 32 << 10

// newExpoWriter returns a writer of the format, which must be of the text
// or the OpenMetrics type. Families of client_model's type go through
// expfmt's encoder for the format, into the same buffer.
func newExpoWriter(w io.Writer, format expfmt.Format) *expoWriter {
	x := &expoWriter{w: w, om: format.FormatType() == expfmt.TypeOpenMetrics, buf: make([]byte, 0, flushAt+4<<10)}
	x.enc = expfmt.NewEncoder(x, format, expfmt.WithCreatedLines())
	return x
}

// Write, WriteString, WriteByte and WriteRune let expfmt's encoders write
// through the buffer, without a bufio.Writer of their own.
func (x *expoWriter) Write(p []byte) (int, error) {
	x.buf = append(x.buf, p...)
	x.flushIfFull()
	return len(p), x.err
}

func (x *expoWriter) WriteString(s string) (int, error) {
	x.buf = append(x.buf, s...)
	x.flushIfFull()
	return len(s), x.err
}

func (x *expoWriter) WriteByte(c byte) error {
	x.buf = append(x.buf, c)
	x.flushIfFull()
	return x.err
}

func (x *expoWriter) WriteRune(r rune) (int, error) {
	x.buf = utf8.AppendRune(x.buf, r)
	x.flushIfFull()
	return utf8.RuneLen(r), x.err
}

func (x *expoWriter) flushIfFull() {
	if len(x.buf) >= flushAt {
		x.flush()
	}
}

func (x *expoWriter) flush() error {
	if x.err == nil && len(x.buf) > 0 {
		_, x.err = x.w.Write(x.buf)
	}
	x.buf = x.buf[:0]
	return x.err
}

// header writes a family's HELP and TYPE lines. An OpenMetrics counter's
// family is named without its _total.
func (x *expoWriter) header(name, help string, typ dto.MetricType) {
	if x.om && typ == dto.MetricType_COUNTER {
		name = strings.TrimSuffix(name, "_total")
	}
	x.buf = append(x.buf, "# HELP "...)
	x.buf = append(x.buf, name...)
	x.buf = append(x.buf, ' ')
	x.buf = appendEscaped(x.buf, help, x.om)
	x.buf = append(x.buf, "\n# TYPE "...)
	x.buf = append(x.buf, name...)
	if typ == dto.MetricType_COUNTER {
		x.buf = append(x.buf, " counter\n"...)
	} else {
		x.buf = append(x.buf, " gauge\n"...)
	}
}

// counter writes a counter's sample line, and in OpenMetrics its created
// line when it has a created time (unix milliseconds). labels is the
// series' label block, braces included.
func (x *expoWriter) counter(name string, labels []byte, v uint64, created int64) {
	x.line(name, "", labels)
	x.buf = appendValue(x.buf, v, x.om)
	x.buf = append(x.buf, '\n')
	if x.om && created != 0 {
		x.line(name[:len(name)-len("_total")], "_created", labels)
		x.buf = append(x.buf, x.created(created)...)
		x.buf = append(x.buf, '\n')
	}
	x.flushIfFull()
}

// gauge writes a gauge's sample line.
func (x *expoWriter) gauge(name string, labels []byte, v uint64) {
	x.line(name, "", labels)
	x.buf = appendValue(x.buf, v, x.om)
	x.buf = append(x.buf, '\n')
	x.flushIfFull()
}

func (x *expoWriter) line(name, suffix string, labels []byte) {
	x.buf = append(x.buf, name...)
	x.buf = append(x.buf, suffix...)
	x.buf = append(x.buf, labels...)
	x.buf = append(x.buf, ' ')
}

// created is the text of a created time, as expfmt writes it: seconds, as
// a float.
func (x *expoWriter) created(ms int64) []byte {
	if ms != x.createdMs || x.createdText == nil {
		x.createdMs = ms
		x.createdText = appendOMFloat(x.createdText[:0], float64(ms*1e6)/1e9)
	}
	return x.createdText
}

// close ends the exposition (OpenMetrics' "# EOF") and writes what is
// buffered.
func (x *expoWriter) close() error {
	if closer, ok := x.enc.(expfmt.Closer); ok {
		if err := closer.Close(); err != nil && x.err == nil {
			x.err = err
		}
	}
	return x.flush()
}

// labelBlock appends a label block, {name="value",…}, values escaped, to
// b; n counts the labels added.
type labelBlock struct {
	b []byte
	n int
}

func (l labelBlock) add(name, value string) labelBlock {
	if l.n == 0 {
		l.b = append(l.b, '{')
	} else {
		l.b = append(l.b, ',')
	}
	l.b = append(l.b, name...)
	l.b = append(l.b, '=', '"')
	l.b = appendEscaped(l.b, value, true)
	l.b = append(l.b, '"')
	l.n++
	return l
}

func (l labelBlock) end() []byte { return append(l.b, '}') }

// appendEscaped escapes a label value (quote true) or a HELP text of the
// text format (quote false) as expfmt does: backslash, newline and, with
// quote, the double quote. OpenMetrics escapes its HELP texts as label
// values.
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '"' && quote:
			b = append(b, '\\', '"')
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendValue appends a counter's or gauge's value as expfmt writes the
// float64 it converts to: the shortest representation ('g', -1), and in
// OpenMetrics with ".0" when that has neither a '.' nor an exponent. Below
// 2^53 a float64 holds the integer exactly, so the shortest representation
// is its digits, in exponent form from 1e+06 on: written here without
// strconv's float formatting, which costs most of a large scrape's lines.
func appendValue(b []byte, v uint64, om bool) []byte {
	switch {
	case v < 1e6:
		b = strconv.AppendUint(b, v, 10)
		if om {
			b = append(b, '.', '0')
		}
		return b
	case v >= 1<<53:
		if om {
			return appendOMFloat(b, float64(v))
		}
		return strconv.AppendFloat(b, float64(v), 'g', -1, 64)
	}
	start := len(b)
	b = strconv.AppendUint(b, v, 10)
	exp := len(b) - start - 1
	end := len(b)
	for b[end-1] == '0' {
		end--
	}
	// d.ddd: move the digits after the first right by one for the point.
	b = b[:end]
	if end-start > 1 {
		b = append(b, 0)
		copy(b[start+2:], b[start+1:end])
		b[start+1] = '.'
	}
	b = append(b, 'e', '+')
	if exp < 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, int64(exp), 10)
}

// appendOMFloat appends a float as OpenMetrics writes it (expfmt's
// writeOpenMetricsFloat, for finite values).
func appendOMFloat(b []byte, f float64) []byte {
	switch f {
	case 0:
		return append(b, "0.0"...)
	case 1:
		return append(b, "1.0"...)
	case -1:
		return append(b, "-1.0"...)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, 64)
	for _, c := range b[start:] {
		if c == '.' || c == 'e' {
			return b
		}
	}
	return append(b, '.', '0')
}
