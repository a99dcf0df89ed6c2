package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
)

// Querier runs a PromQL instant query at a time and returns its value and
// the warnings Prometheus sent with it.
type Querier interface {
	Query(ctx context.Context, query string, ts time.Time) (model.Value, []string, error)
}

// Client is a Querier over the Prometheus HTTP API, through the client of
// github.com/prometheus/client_golang/api.
//
// It decodes the answers itself rather than through api/prometheus/v1: with
// the client_golang this module requires (v1.24), that package needs
// github.com/json-iterator/go, which the module does not. From v1.25 on,
// v1.NewAPI(client).Query can replace Client.Query.
type Client struct {
	api api.Client
	url string // without a password, for messages
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
	cfg := api.Config{Address: address}
	if httpConfigFile != "" {
		hc, _, err := config.LoadHTTPConfigFile(httpConfigFile)
		if err != nil {
			return nil, fmt.Errorf("HTTP client configuration %s: %w", httpConfigFile, err)
		}
		if cfg.Client, err = config.NewClientFromConfig(*hc, "ipacct_exporter_report"); err != nil {
			return nil, fmt.Errorf("HTTP client configuration %s: %w", httpConfigFile, err)
		}
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{api: c, url: u.Redacted()}, nil
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

// apiResponse is the envelope of every answer of the HTTP API.
type apiResponse struct {
	Status    string   `json:"status"`
	ErrorType string   `json:"errorType"`
	Error     string   `json:"error"`
	Warnings  []string `json:"warnings"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// Query runs query at ts through /api/v1/query. It posts the query, as it may
// be long, and falls back to GET when the server does not allow POST.
func (c *Client) Query(ctx context.Context, query string, ts time.Time) (model.Value, []string, error) {
	form := url.Values{"query": {query}, "time": {formatTime(ts)}}
	u := c.api.URL("/api/v1/query", nil)
	req, err := http.NewRequest(http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body, err := c.api.Do(ctx, req)
	if err == nil && (resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotImplemented) {
		u.RawQuery = form.Encode()
		if req, err = http.NewRequest(http.MethodGet, u.String(), nil); err != nil {
			return nil, nil, err
		}
		resp, body, err = c.api.Do(ctx, req)
	}
	if err != nil {
		return nil, nil, err
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil || r.Status == "" {
		return nil, nil, &APIError{StatusCode: resp.StatusCode, Message: "not an answer of the Prometheus HTTP API: " + snippet(body)}
	}
	if r.Status != "success" {
		return nil, r.Warnings, &APIError{StatusCode: resp.StatusCode, Type: r.ErrorType, Message: r.Error}
	}
	var v model.Value
	switch r.Data.ResultType {
	case model.ValMatrix.String():
		var m model.Matrix
		err = json.Unmarshal(r.Data.Result, &m)
		v = m
	case model.ValVector.String():
		var vec model.Vector
		err = json.Unmarshal(r.Data.Result, &vec)
		v = vec
	case model.ValScalar.String():
		var s model.Scalar
		err = json.Unmarshal(r.Data.Result, &s)
		v = &s
	default:
		err = fmt.Errorf("unknown result type %q", r.Data.ResultType)
	}
	if err != nil {
		return nil, r.Warnings, fmt.Errorf("decoding the answer: %w", err)
	}
	return v, r.Warnings, nil
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
	if len(body) > 200 {
		body = append(body[:200:200], "…"...)
	}
	if len(body) == 0 {
		return "empty body"
	}
	return strconv.Quote(string(body))
}
