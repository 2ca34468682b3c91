// Package monitoring holds what the NOC watches zdt with: the Prometheus
// alerting rules (alerts.yaml, unit-tested by promtool with
// alerts_test.yaml) and the Grafana dashboard (grafana/zdt.json). What each
// alert means and what to do: docs/alerts.md.
//
// Its Go code reads the two files for the tests that check them: that
// promtool accepts the rules and their unit tests (here), that every zdt_
// metric they name is registered by a real controller
// (cmd/zdt/internal/controller), and that each alert's expression fires in
// the lab situation it is for, in a real Prometheus (e2e).
package monitoring
