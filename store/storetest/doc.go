// Package storetest is the conformance suite of the storage contract: Run
// checks every behaviour of store.Store that scepca relies on (put-if-absent,
// consume-once and claim-once under concurrency, expiry against an injected
// clock, not-found errors, canceled contexts), and every backend calls it
// from its own test, as testing/fstest serves io/fs.
//
// It owns the definition of "a correct backend", and nothing else. It must
// not know any backend (no imports of store/bolt or store/etcd), must not
// pin behaviour the contract in package store leaves open (list order, for
// one; where a test reads an unstated case, its comment says how), must not
// share a store between subtests, and must not sleep: time is always passed
// in explicitly.
package storetest
