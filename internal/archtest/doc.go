// Package archtest holds only a test: it reads the import graph of scepca's
// packages with `go list` and fails on an edge that points upward in the
// layering of STYLE.md §1 (cmd → {scep, admin} → {challenge, attest, ca} →
// store; internal/* imports only internal/*). golangci-lint's depguard rules
// in .golangci.yml enforce the same graph file by file. It has no code and
// nothing imports it.
package archtest
