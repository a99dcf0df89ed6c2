package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
)

// Querier runs a PromQL instant query at a time and returns its value and
// the warnings Prometheus sent with it.
type Querier interface {
	Query(ctx context.Context, query string, ts time.Time) (model.Value, []string, error)
}

// DefaultMaxAnswer is how many bytes of one answer Client reads by default.
// An hour (--chunk) of 1-minute samples of 10,000 addresses, in and out,
// bytes and packets, is about 80 MB of JSON.
const DefaultMaxAnswer = 256 << 20

// ErrAnswerTooLarge is returned, wrapped, when an answer is longer than the
// client's limit.
var ErrAnswerTooLarge = errors.New("answer too large")

// AnswerTooLargeError is the error of an answer longer than Limit bytes.
type AnswerTooLargeError struct{ Limit int64 }

func (e *AnswerTooLargeError) Error() string {
	return fmt.Sprintf("the answer is longer than %d bytes (--max-answer-size); a shorter --chunk asks for less per query", e.Limit)
}

// Is makes errors.Is(err, ErrAnswerTooLarge) true.
func (e *AnswerTooLargeError) Is(target error) bool { return target == ErrAnswerTooLarge }

// Client is a Querier over the Prometheus HTTP API (/api/v1/query), which
// long-term stores such as VictoriaMetrics speak too.
//
// It decodes an answer as it arrives, one series at a time, and reads no more
// than MaxAnswer bytes of it: what it keeps is the samples (16 bytes each),
// never the whole body.
type Client struct {
	http     *http.Client
	endpoint *url.URL
	url      string // without a password, for messages
	// MaxAnswer is the most bytes read of one answer.
	MaxAnswer int64
}

// NewClient returns a Client for the Prometheus server at address (such as
// http://localhost:9090), with the HTTP client settings (basic auth,
// authorization, OAuth 2, TLS, proxy) of httpConfigFile when it is not "":
// the YAML of prometheus/common/config.HTTPClientConfig, the format of a
// scrape config's HTTP settings and of promtool's --http.config.file.
func NewClient(address, httpConfigFile string) (*Client, error) {
	u, err := url.Parse(address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid Prometheus URL %q: want http://host:port or https://host:port, with a path prefix if Prometheus has one", address)
	}
	hc := &config.DefaultHTTPClientConfig
	if httpConfigFile != "" {
		if hc, _, err = config.LoadHTTPConfigFile(httpConfigFile); err != nil {
			return nil, fmt.Errorf("HTTP client configuration %s: %w", httpConfigFile, err)
		}
	}
	client, err := config.NewClientFromConfig(*hc, "ipacct_exporter_report")
	if err != nil {
		return nil, fmt.Errorf("HTTP client configuration %s: %w", httpConfigFile, err)
	}
	return &Client{http: client, endpoint: u.JoinPath("api/v1/query"), url: u.Redacted(), MaxAnswer: DefaultMaxAnswer}, nil
}

// String is the server's URL, without a password.
func (c *Client) String() string { return c.url }

// APIError is an error answer of Prometheus.
type APIError struct {
	StatusCode int
	Type       string // such as bad_data, execution, timeout
	Message    string
}

func (e *APIError) Error() string {
	if e.Type == "" {
		return fmt.Sprintf("HTTP status %d: %s", e.StatusCode, e.Message)
	}
	return fmt.Sprintf("%s (HTTP status %d): %s", e.Type, e.StatusCode, e.Message)
}

// Query runs query at ts through /api/v1/query. It posts the query, as it may
// be long, and falls back to GET when the server does not allow POST.
func (c *Client) Query(ctx context.Context, query string, ts time.Time) (model.Value, []string, error) {
	form := url.Values{"query": {query}, "time": {formatTime(ts)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err == nil && (resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotImplemented) {
		resp.Body.Close()
		u := *c.endpoint
		u.RawQuery = form.Encode()
		if req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil); err != nil {
			return nil, nil, err
		}
		resp, err = c.http.Do(req)
	}
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body := &boundedReader{r: resp.Body, left: c.MaxAnswer}
	a, err := decodeAnswer(body)
	switch {
	case body.exceeded:
		return nil, nil, &AnswerTooLargeError{Limit: c.MaxAnswer}
	case err != nil && a.status == "":
		if errors.Is(err, ctx.Err()) {
			return nil, nil, err
		}
		return nil, nil, &APIError{StatusCode: resp.StatusCode, Message: "not an answer of the Prometheus HTTP API: " + snippet(body.head.Bytes())}
	case a.status != "" && a.status != "success":
		return nil, a.warnings, &APIError{StatusCode: resp.StatusCode, Type: a.errorType, Message: a.error}
	case err != nil:
		return nil, a.warnings, fmt.Errorf("decoding the answer: %w", err)
	case a.resultType != model.ValMatrix.String():
		return nil, a.warnings, fmt.Errorf("the answer is a %q, not a range vector (matrix)", a.resultType)
	}
	return a.matrix, a.warnings, nil
}

// boundedReader reads at most left bytes of r, then fails; it keeps the
// start of what it read for a message.
type boundedReader struct {
	r        io.Reader
	left     int64
	exceeded bool
	head     bytes.Buffer
}

const headBytes = 200

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Is there more? Then the answer is over the limit.
		var one [1]byte
		if n, _ := io.ReadFull(b.r, one[:]); n > 0 {
			b.exceeded = true
			return 0, ErrAnswerTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if room := headBytes - b.head.Len(); room > 0 {
		b.head.Write(p[:min(n, room)])
	}
	return n, err
}

// answer is what decodeAnswer took from an answer of the HTTP API.
type answer struct {
	status, errorType, error string
	warnings                 []string
	resultType               string
	matrix                   model.Matrix
}

// decodeAnswer decodes the envelope of the HTTP API, whose keys may come in
// any order, and a matrix result one series at a time.
func decodeAnswer(r io.Reader) (answer, error) {
	var a answer
	dec := json.NewDecoder(r)
	err := decodeObject(dec, func(key string) error {
		switch key {
		case "status":
			return dec.Decode(&a.status)
		case "errorType":
			return dec.Decode(&a.errorType)
		case "error":
			return dec.Decode(&a.error)
		case "warnings":
			return dec.Decode(&a.warnings)
		case "data":
			return decodeObject(dec, func(key string) error {
				switch key {
				case "resultType":
					return dec.Decode(&a.resultType)
				case "result":
					return decodeResult(dec, &a)
				}
				return skipValue(dec)
			})
		}
		return skipValue(dec) // such as "infos"
	})
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // cut short
	}
	if err == nil {
		_, err = dec.Token()
		if err == io.EOF {
			err = nil
		} else if err == nil {
			err = errors.New("more than one JSON value")
		}
	}
	return a, err
}

// decodeResult decodes a result array of objects that have "metric" and
// "values", a matrix; anything else is said by resultType.
func decodeResult(dec *json.Decoder, a *answer) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != json.Delim('[') {
		return fmt.Errorf("result is %v, not an array", tok)
	}
	a.matrix = model.Matrix{}
	for dec.More() {
		s, err := decodeSeries(dec)
		if err != nil {
			return err
		}
		if s.Values != nil {
			a.matrix = append(a.matrix, s)
		}
	}
	_, err = dec.Token() // ]
	return err
}

// decodeSeries decodes one series of a matrix. Its samples are read by
// parseValues, ten times faster than by model.SamplePair's decoder.
func decodeSeries(dec *json.Decoder) (*model.SampleStream, error) {
	s := &model.SampleStream{}
	err := decodeObject(dec, func(key string) error {
		switch key {
		case "metric":
			return dec.Decode(&s.Metric)
		case "values":
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return err
			}
			var err error
			s.Values, err = parseValues(raw)
			return err
		}
		return skipValue(dec) // such as "histograms"
	})
	return s, err
}

// parseValues parses the samples of a series as the HTTP API writes them:
// [[1796556000.123,"42"],…], a time in seconds (to the millisecond) and a
// value in a string, which may be NaN or ±Inf.
func parseValues(b []byte) ([]model.SamplePair, error) {
	p := valuesParser{b: b}
	p.expect('[')
	out := make([]model.SamplePair, 0, len(b)/24)
	if p.peek() == ']' {
		p.i++
		return out, p.err
	}
	for p.err == nil {
		p.expect('[')
		t := p.time()
		p.expect(',')
		p.expect('"')
		end := bytes.IndexByte(b[p.i:], '"')
		if end < 0 {
			p.fail("an unterminated value")
			break
		}
		v, err := strconv.ParseFloat(string(b[p.i:p.i+end]), 64)
		if err != nil {
			p.fail(fmt.Sprintf("the value %q", b[p.i:p.i+end]))
			break
		}
		p.i += end + 1
		p.expect(']')
		out = append(out, model.SamplePair{Timestamp: t, Value: model.SampleValue(v)})
		if p.peek() != ',' {
			break
		}
		p.i++
	}
	p.expect(']')
	return out, p.err
}

// valuesParser reads the bytes of a values array from i on; its first
// error stops it.
type valuesParser struct {
	b   []byte
	i   int
	err error
}

func (p *valuesParser) fail(what string) {
	if p.err == nil {
		p.err = fmt.Errorf("samples: %s at byte %d", what, p.i)
	}
}

// peek returns the next byte that is not white space, 0 at the end.
func (p *valuesParser) peek() byte {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\n' || p.b[p.i] == '\t' || p.b[p.i] == '\r') {
		p.i++
	}
	if p.i == len(p.b) || p.err != nil {
		return 0
	}
	return p.b[p.i]
}

func (p *valuesParser) expect(c byte) {
	if p.peek() != c {
		p.fail(fmt.Sprintf("no %q", c))
		return
	}
	p.i++
}

// time reads seconds since the epoch, a JSON number, as milliseconds: exactly
// when written with at most three decimals, as Prometheus does.
func (p *valuesParser) time() model.Time {
	p.peek()
	start := p.i
	for p.i < len(p.b) && strings.IndexByte("0123456789.-+eE", p.b[p.i]) >= 0 {
		p.i++
	}
	text := string(p.b[start:p.i])
	whole, frac, _ := strings.Cut(text, ".")
	if sec, err := strconv.ParseInt(whole, 10, 64); err == nil && len(frac) <= 3 && !strings.ContainsAny(text, "eE+") && (sec >= 0 || !strings.HasPrefix(whole, "-")) {
		ms, err := strconv.ParseInt((frac + "000")[:3], 10, 64)
		if err == nil && sec < math.MaxInt64/1000 {
			return model.Time(sec*1000 + ms)
		}
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(f) || math.Abs(f) > math.MaxInt64/1000 {
		p.fail(fmt.Sprintf("the time %q", text))
		return 0
	}
	return model.Time(math.Round(f * 1000))
}

// decodeObject reads an object, calling field for each key with the decoder
// before the key's value, which field must consume.
func decodeObject(dec *json.Decoder, field func(key string) error) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("%v where an object belongs", tok)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if err := field(key); err != nil {
			return err
		}
	}
	_, err = dec.Token() // }
	return err
}

// skipValue reads one value, of any size, without keeping it.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// formatTime writes t as the API's seconds since the epoch, to the
// millisecond.
func formatTime(t time.Time) string {
	ms := t.UnixMilli()
	if ms < 0 {
		return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)
	}
	return fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
}

// snippet is the start of a body, on one line, for an error message.
func snippet(body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) >= headBytes {
		body = append(body[:headBytes:headBytes], "…"...)
	}
	if len(body) == 0 {
		return "empty body"
	}
	return strconv.Quote(string(body))
}
