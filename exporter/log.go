package exporter

import (
	"errors"

	"github.com/ipacct/ipacct_exporter/collector"
)

// logRead logs what a read says about its collectors: failures when they are
// new, recoveries, invalid comments, and the collectors whose first read the
// series wait for, each once. It keeps what it has logged in lastErr and
// logged; the tracked series are aggregate's.
func (e *Exporter) logRead(collectors []Collector, results []result, waiting []Collector) {
	listed := make(map[collectorKey]bool, len(collectors))
	for i, s := range collectors {
		res := results[i]
		if errors.Is(res.err, ErrCollectorGone) {
			continue
		}
		listed[collectorKey{s.Name, s.NetNS}] = true
		if res.err != nil {
			e.logFailure(s, res.err)
			continue
		}
		e.logRecovery(s)
		e.logInvalid(s, res.reading.Invalid)
	}
	// A collector not listed (its namespace deleted) starts afresh if it
	// comes back.
	for k := range e.lastErr {
		if !listed[k] {
			delete(e.lastErr, k)
		}
	}
	for _, s := range waiting {
		e.logWaiting(s)
	}
}

// logFailure logs a collector's error when it is new, and at debug level
// while it repeats, so that a scrape every 15 s does not flood the journal.
func (e *Exporter) logFailure(s Collector, err error) {
	k, msg := collectorKey{s.Name, s.NetNS}, err.Error()
	if e.lastErr[k] == msg {
		e.logger.Debug("collector still failing", e.logAttrs(s, "err", err)...)
		return
	}
	e.lastErr[k] = msg
	e.logger.Error("collector failed", e.logAttrs(s, "err", err)...)
}

func (e *Exporter) logRecovery(s Collector) {
	k := collectorKey{s.Name, s.NetNS}
	if _, failed := e.lastErr[k]; failed {
		delete(e.lastErr, k)
		e.logger.Info("collector recovered", e.logAttrs(s)...)
	}
}

// logWaiting says, once per collector, that series wait for its first read.
func (e *Exporter) logWaiting(s Collector) {
	key := "waiting\x00" + s.Name + "\x00" + s.NetNS
	if _, ok := e.logged[key]; ok {
		return
	}
	e.logged[key] = struct{}{}
	e.logger.Warn("series this collector could add to are not served until it has read once, so that their sums never drop; disable it if it cannot read", e.logAttrs(s)...)
}

// logAttrs names the collector in a log line, and its namespace when the
// exporter reads several.
func (e *Exporter) logAttrs(s Collector, attrs ...any) []any {
	head := []any{"collector", s.Name}
	if e.withNS {
		head = append(head, netnsLabel, s.NetNS)
	}
	return append(head, attrs...)
}

// logInvalid logs each distinct invalid comment once.
func (e *Exporter) logInvalid(s Collector, invalid []collector.InvalidComment) {
	for _, ic := range invalid {
		key := s.Name + "\x00" + s.NetNS + "\x00" + ic.Comment
		if _, ok := e.logged[key]; ok {
			continue
		}
		if len(e.logged) >= maxLoggedComments {
			return
		}
		e.logged[key] = struct{}{}
		e.logger.Warn("rule not counted: its tag comment does not parse", e.logAttrs(s, "rule", ic.Where, "comment", ic.Comment, "err", ic.Err)...)
	}
}
