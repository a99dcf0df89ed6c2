package exporter

import (
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Handler serves /metrics: the exporter's families and those of others
// (the process's own metrics), merged in name order, as promhttp would
// serve them from one registry with OpenMetrics and its created lines
// enabled and errors logged, not fatal. The exporter's series are written
// straight into the exposition, through gzip when the scraper asks for it,
// as they are produced: a million addresses are never built as metric
// objects first, nor held as text. Only the protobuf formats, which
// Prometheus asks for when it wants native histograms, go through
// client_model's types.
//
// A family that both gather is served once, from the exporter, and the
// other copy is logged as an error.
func Handler(e *Exporter, others prometheus.Gatherer, logger *slog.Logger) http.Handler {
	return &handler{e: e, others: others, logger: logger}
}

type handler struct {
	e      *Exporter
	others prometheus.Gatherer
	logger *slog.Logger
}

// gzipWriters compress at gzip's best speed, not its default level as
// promhttp does: on an answer of a million addresses the default level
// costs more than the rest of the scrape, and saves a twentieth of the
// size.
var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ans, err := h.e.answer()
	if err != nil {
		h.logger.Error("error gathering metrics", "err", err)
	}
	var fams []metricFamily
	if ans != nil {
		fams = slices.Clone(ans.fams)
	}
	theirs, oerr := h.others.Gather()
	if oerr != nil {
		h.logger.Error("error gathering metrics", "err", oerr)
		err = oerr
	}
	ours := len(fams) // sorted by name
	for _, mf := range theirs {
		if _, dup := slices.BinarySearchFunc(fams[:ours], mf.GetName(), compareName); dup {
			h.logger.Error("error gathering metrics", "err", fmt.Errorf("metric family %s is gathered twice", mf.GetName()))
			continue
		}
		fams = append(fams, dtoFamily{mf})
	}
	if len(fams) == 0 && err != nil {
		http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
		return
	}
	slices.SortStableFunc(fams, func(a, b metricFamily) int { return strings.Compare(a.name(), b.name()) })
	if names := r.URL.Query()["name[]"]; len(names) > 0 {
		fams = slices.DeleteFunc(fams, func(f metricFamily) bool { return !slices.Contains(names, f.name()) })
	}

	format := expfmt.NegotiateIncludingOpenMetrics(r.Header)
	w.Header().Set("Content-Type", string(format))
	var out io.Writer = w
	if acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		gz := gzipWriters.Get().(*gzip.Writer)
		gz.Reset(w)
		defer func() {
			if err := gz.Close(); err != nil {
				h.logger.Debug("error sending metrics", "err", err)
			}
			gzipWriters.Put(gz)
		}()
		out = gz
	}
	if err := write(out, format, fams); err != nil {
		// Most likely the scraper went away: nothing to answer to.
		h.logger.Debug("error sending metrics", "err", err)
	}
}

func compareName(f metricFamily, name string) int { return strings.Compare(f.name(), name) }

// write writes the families in the format.
func write(out io.Writer, format expfmt.Format, fams []metricFamily) error {
	switch format.FormatType() {
	case expfmt.TypeTextPlain, expfmt.TypeOpenMetrics:
		x := newExpoWriter(out, format)
		for _, f := range fams {
			if err := f.write(x); err != nil {
				return err
			}
		}
		return x.close()
	}
	enc := expfmt.NewEncoder(out, format)
	for _, f := range fams {
		if err := enc.Encode(f.toDTO()); err != nil {
			return err
		}
	}
	if closer, ok := enc.(expfmt.Closer); ok {
		return closer.Close()
	}
	return nil
}

// acceptsGzip tells whether gzip is the content encoding to answer with,
// as promhttp negotiates it between identity and gzip: the one of higher
// quality in Accept-Encoding, identity when they tie or neither is named.
func acceptsGzip(r *http.Request) bool {
	best, bestQ := "identity", -1.0
	for _, offer := range []string{"identity", "gzip"} {
		for _, h := range r.Header.Values("Accept-Encoding") {
			for _, spec := range strings.Split(h, ",") {
				value, params, _ := strings.Cut(strings.TrimSpace(spec), ";")
				q := 1.0
				if p := strings.TrimSpace(params); p != "" {
					v, ok := strings.CutPrefix(p, "q=")
					f, err := strconv.ParseFloat(v, 64)
					if !ok || err != nil || f < 0 || f > 1 {
						continue
					}
					q = f
				}
				if q > bestQ && (strings.TrimSpace(value) == "*" || strings.TrimSpace(value) == offer) {
					best, bestQ = offer, q
				}
			}
		}
	}
	return best == "gzip" && bestQ > 0
}
