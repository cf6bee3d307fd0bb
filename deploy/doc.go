// Package deploy holds no code: its tests validate the deployment files
// beside them (Dockerfile, Kubernetes manifests, systemd unit, Prometheus
// rules, Grafana dashboard) with each format's own parser, and check that
// every metric they name is one scepca exports.
//
// It is a module of its own so that the parsers (Kubernetes API types,
// Prometheus, BuildKit) stay out of scepca's go.mod. `make test` runs it.
package deploy
