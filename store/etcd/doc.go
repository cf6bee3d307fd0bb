// Package etcd is the store.Store backend for running several scepca
// replicas on one etcd cluster (issue 9). Every record is a JSON value
// under a key prefix of its own deployment, and every check-then-write of
// the contract is one etcd transaction that compares what it read:
// put-if-absent compares CreateRevision with 0, consume-once and claims
// compare ModRevision, and a lost compare re-reads and decides again. So
// serials, one-time challenges, nonces and transaction claims hold across
// replicas exactly as store/bolt holds them inside one process; PENDING
// claims are durable records here, not process memory.
//
// Expiry follows the explicit now every call passes in. Leases are only
// garbage collection: a one-time value or transaction is put under a
// shared lease that ends an hour after its ExpiresAt, so records that no
// sweep reached (every replica down, say) still go away.
//
// It uses only the KV, Txn and Lease APIs that etcd 3.4 (Debian bookworm's
// etcd-server) serves. It must not import scepca's other packages.
package etcd
