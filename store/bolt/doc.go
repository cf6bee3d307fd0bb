// Package bolt is scepca's embedded storage backend: one bbolt file, one
// process. It implements store.Store and passes store/storetest.
//
// It owns the on-disk layout: the bucket names, the key encodings
// (transactions under integrationID + "\x00" + transactionID, one-time
// values under kind + "\x00" + key, a newest-first certificate index) and
// the JSON encoding of values, with a schema version in the meta bucket.
//
// It must not know what the records mean beyond the store contract: no
// issuance, challenge or SCEP logic, and no imports of scepca's other
// packages. Every write is one durable (fsync'd) Update, every
// check-then-write (put-if-absent, consume-once, claim) happens inside that
// same Update, and no transaction is held across other I/O, Backup aside,
// whose read transaction is the snapshot it copies.
package bolt
