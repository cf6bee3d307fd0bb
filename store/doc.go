// Package store is the storage contract of scepca: record types, small role
// interfaces composed into Store, and the sentinel errors every backend
// returns. It imports none of scepca's other packages; backends live in
// store/bolt and store/etcd and all pass store/storetest.
package store
