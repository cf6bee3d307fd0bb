package etcd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/scepca/scepca/store"
)

// Export and Import move records between backends (`scepca store
// migrate`). A record travels as the name store/bolt gives its bucket, its
// key and its JSON value, exactly as both backends store it; derived
// indexes do not travel (Import rebuilds them), nor does meta.

// Record is one exported record.
type Record struct {
	Bucket     string
	Key, Value []byte
}

// families maps store/bolt's bucket names to key families.
var families = map[string]string{
	"bindings":     famBindings,
	"cas":          famCAs,
	"certificates": famCerts,
	"devices":      famDevices,
	"events":       famEvents,
	"integrations": famIntegrations,
	"onetime":      famOneTime,
	"tokens":       famTokens,
	"transactions": famTransactions,
}

// recordKey is the etcd key of an exported record: the family and the key,
// except for events, keyed by descending(ID).
func (s *Store) recordKey(bucket string, key []byte) (string, error) {
	fam, ok := families[bucket]
	if !ok {
		return "", fmt.Errorf("unknown bucket %q", bucket)
	}
	if bucket == "events" {
		if !keyPart(string(key)) {
			return "", fmt.Errorf("event id holds NUL")
		}
		return s.prefix + fam + descending(string(key)), nil
	}
	return s.prefix + fam + string(key), nil
}

// buckets are the bucket names in order, as store/bolt exports them.
func buckets() []string {
	out := make([]string, 0, len(families))
	for b := range families {
		out = append(out, b)
	}
	sort.Strings(out)
	return out
}

// Export calls fn for every record, bucket by bucket (in name order, as
// store/bolt exports), all read at one revision: a consistent snapshot
// while replicas keep writing. Within a bucket records come in key order,
// except events, which come newest first.
func (s *Store) Export(ctx context.Context, fn func(Record) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("etcd: export: %w", err)
	}
	resp, err := s.cli.Get(ctx, s.prefix+famMeta+"schema")
	if err != nil {
		return fmt.Errorf("etcd: export: %w", err)
	}
	rev := resp.Header.Revision
	for _, b := range buckets() {
		p := s.prefix + families[b]
		err := s.scanAt(ctx, p, rev, func(kv *mvccpb.KeyValue) error {
			key := kv.Key[len(p):]
			if b == "events" {
				id, err := eventID(string(key))
				if err != nil {
					return err
				}
				key = []byte(id)
			}
			return fn(Record{Bucket: b, Key: key, Value: kv.Value})
		})
		if err != nil {
			return fmt.Errorf("etcd: export %s: %w", b, err)
		}
	}
	return nil
}

// Import stores exported records whose keys are free, a batch per etcd
// transaction, with the index entry of each certificate and leases for
// one-time values and transactions. A record already there with the same
// value is skipped (a migration may run again); one with another value is
// store.ErrExists. An unknown bucket is an error: nothing is dropped
// silently.
func (s *Store) Import(ctx context.Context, recs []Record) error {
	for len(recs) > 0 {
		batch := recs[:min(len(recs), maxTxnOps/3)]
		recs = recs[len(batch):]
		if err := s.importBatch(ctx, batch); err != nil {
			return fmt.Errorf("etcd: import: %w", err)
		}
	}
	return nil
}

func (s *Store) importBatch(ctx context.Context, batch []Record) error {
	for len(batch) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		cmps := make([]clientv3.Cmp, 0, len(batch))
		gets := make([]clientv3.Op, 0, len(batch))
		var puts []clientv3.Op
		for _, r := range batch {
			key, err := s.recordKey(r.Bucket, r.Key)
			if err != nil {
				return err
			}
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
			gets = append(gets, clientv3.OpGet(key))
			ops, err := s.importOps(ctx, r, key)
			if err != nil {
				return fmt.Errorf("%s: %w", r.Bucket, err)
			}
			puts = append(puts, ops...)
		}
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(puts...).Else(gets...).Commit()
		if isLeaseNotFound(err) {
			s.forgetLeases()
			continue
		}
		if err != nil {
			return err
		}
		if resp.Succeeded {
			return nil
		}
		// Some keys are taken: skip those holding the same value, refuse
		// any other, and write the rest.
		var rest []Record
		for i, r := range batch {
			kvs := resp.Responses[i].GetResponseRange().Kvs
			switch {
			case len(kvs) == 0:
				rest = append(rest, r)
			case !bytes.Equal(kvs[0].Value, r.Value):
				return fmt.Errorf("%s: %w", r.Bucket, store.ErrExists)
			}
		}
		batch = rest
	}
	return nil
}

// importOps are the puts of one record under key.
func (s *Store) importOps(ctx context.Context, r Record, key string) ([]clientv3.Op, error) {
	switch r.Bucket {
	case "certificates":
		var c store.Certificate
		if err := json.Unmarshal(r.Value, &c); err != nil {
			return nil, fmt.Errorf("decode certificate: %w", err)
		}
		if c.Serial != string(r.Key) {
			return nil, fmt.Errorf("certificate %q holds serial %q", r.Key, c.Serial)
		}
		if !keyPart(c.Status) || strings.Contains(c.Status, "/") {
			return nil, fmt.Errorf("certificate %q: invalid status %q", r.Key, c.Status)
		}
		return append([]clientv3.Op{clientv3.OpPut(key, string(r.Value))}, s.indexOps(&c)...), nil
	case "onetime", "transactions":
		var v struct {
			ExpiresAt time.Time `json:"expiresAt"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			return nil, fmt.Errorf("decode: %w", err)
		}
		lease, err := s.leaseFor(ctx, v.ExpiresAt)
		if err != nil {
			return nil, err
		}
		return []clientv3.Op{clientv3.OpPut(key, string(r.Value), lease...)}, nil
	}
	return []clientv3.Op{clientv3.OpPut(key, string(r.Value))}, nil
}
