// Package dashboards holds no code: it is the folder of ipacct_exporter's
// Grafana dashboards (*.json) and Prometheus rules (rules.yml), and of the
// tests that check them:
//
//   - dashboards_test.go: each dashboard against Grafana's own schemas
//     (schema/), and the rules a dashboard must keep that no schema says;
//   - rules_test.go: promtool check rules and promtool test rules, and that
//     every alert is documented and tested both ways;
//   - prometheus_test.go: a real Prometheus server, with the rules loaded,
//     scraping the real exporter in a network namespace with traffic,
//     answers every query of every panel.
package dashboards
