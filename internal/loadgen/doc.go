// Package loadgen drives a SCEP server with enrollments and measures it:
// `scepca bench` wires it to a scepca server (and to micromdm's scepserver
// for comparison) and prints its Report.
//
// What it owns: the client key pool (Identities), the PKCSReq messages
// built before the timed phase (Prepare), the timed phase itself with
// throughput and latency percentiles (Run), the verification of every
// CertRep after the timed phase, the single-core cost of the private-key
// operations one enrollment needs on the server (MeasureBound, DESIGN.md §5),
// the cost of a durable write (MeasureDurableWrite), the CPU time of a
// server process (ProcessCPU), and starting the Debian
// scepserver as a baseline (StartSCEPServer).
//
// Everything a client must do per enrollment that is not part of the
// server's work (key generation, CSR and pkiMessage signing, CertRep
// verification and decryption) happens outside the timed phase, so the
// timed phase measures the server plus HTTP on loopback.
//
// What it must not do: import scepca packages other than internal ones
// (it speaks SCEP through internal/scepclient, written from the RFC), make
// timing assertions in its tests, or print anything but a Report.
package loadgen
