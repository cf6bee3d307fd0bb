package etcd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/scepca/scepca/store"
)

var _ store.Store = (*Store)(nil)

// schemaVersion is written once under the prefix; Open refuses a prefix
// written by another layout rather than misreading it.
const schemaVersion = "1"

// DefaultPrefix is the key prefix when Config.Prefix is empty.
const DefaultPrefix = "/scepca/"

// Key families under the prefix. No family name is a prefix of another
// followed by the separator, so a range over one never reaches another.
const (
	famMeta         = "meta/"
	famIntegrations = "integrations/"
	famCAs          = "cas/"
	famCerts        = "certs/"
	famCertsByTime  = "certs-by-issued/"
	famCertsByState = "certs-by-status/"
	famTransactions = "transactions/"
	famOneTime      = "onetime/"
	famDevices      = "devices/"
	famBindings     = "bindings/"
	famEvents       = "events/"
	famTokens       = "tokens/"
)

// leaseGrace is how long after its ExpiresAt a record's lease keeps it:
// the explicit sweeps (which use the callers' clock) come first, and a
// used value stays ErrUsed rather than ErrNotFound until then.
const leaseGrace = time.Hour

// leaseBucket rounds lease ends up, so that records expiring close
// together share one lease (one grant per bucket and process, not one per
// record).
const leaseBucket = 10 * time.Minute

// pageSize bounds one range read; maxTxnOps stays under etcd's default
// --max-txn-ops of 128.
const (
	pageSize  = 500
	maxTxnOps = 100
)

// Config selects the etcd cluster and this deployment's prefix.
type Config struct {
	// Endpoints are client URLs, e.g. https://10.0.0.1:2379.
	Endpoints []string
	// Prefix is this deployment's key prefix (default DefaultPrefix); a
	// trailing "/" is added when missing. Deployments sharing a cluster
	// must use different prefixes.
	Prefix string
	// TLS, when set, is used for every connection (server verification
	// and client-certificate authentication); see TLSConfig.
	TLS *tls.Config
	// DialTimeout bounds connecting and Open's first read; default 5 s.
	DialTimeout time.Duration
}

// TLSConfig builds a client TLS configuration from PEM files: caFile
// verifies the server (empty: the system pool), certFile and keyFile are
// the client certificate for etcd's --client-cert-auth (both or neither).
func TLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("etcd: ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("etcd: ca %s: no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	switch {
	case certFile != "" && keyFile != "":
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("etcd: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	case certFile != "" || keyFile != "":
		return nil, errors.New("etcd: a client certificate needs both its certificate and key file")
	}
	return tc, nil
}

// Store is a store.Store kept in etcd under one key prefix. Its methods are
// safe for concurrent use, and several Stores (in several processes) may
// share a prefix: that is the point.
type Store struct {
	cli    *clientv3.Client
	prefix string
	leases leases
}

// Open connects to cfg.Endpoints, checks that the cluster answers within
// the dial timeout, and writes or checks the schema version under the
// prefix.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	for _, e := range cfg.Endpoints {
		if strings.TrimSpace(e) == "" {
			return nil, errors.New("etcd: empty endpoint")
		}
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	timeout := cfg.DialTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: timeout,
		TLS:         cfg.TLS,
		Logger:      zap.NewNop(),
		Context:     context.WithoutCancel(ctx),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: connect %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	s := &Store{cli: cli, prefix: prefix}
	octx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := s.initSchema(octx); err != nil {
		_ = cli.Close() // the schema error is the one worth reporting
		return nil, fmt.Errorf("etcd: open %s prefix %q: %w", strings.Join(cfg.Endpoints, ","), prefix, err)
	}
	return s, nil
}

func (s *Store) initSchema(ctx context.Context) error {
	k := s.prefix + famMeta + "schema"
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, schemaVersion)).
		Else(clientv3.OpGet(k)).Commit()
	if err != nil {
		return err
	}
	if resp.Succeeded {
		return nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 1 && string(kvs[0].Value) != schemaVersion {
		return fmt.Errorf("unsupported schema version %q, want %q", kvs[0].Value, schemaVersion)
	}
	return nil
}

// Close releases the connections. Leases are left to run out: they are
// garbage collection, not liveness.
func (s *Store) Close() error {
	if err := s.cli.Close(); err != nil {
		return fmt.Errorf("etcd: close: %w", err)
	}
	return nil
}

// Prefix is the key prefix the store works under.
func (s *Store) Prefix() string { return s.prefix }

// CheckWritable writes a timestamp under the meta family in one durable
// write and reads it back: the readiness probe's store check. Each process
// writes its own health key value; all replicas share the key.
func (s *Store) CheckWritable(ctx context.Context) error {
	k := s.prefix + famMeta + "health"
	v := strconv.FormatInt(time.Now().UnixNano(), 10)
	resp, err := s.cli.Txn(ctx).Then(clientv3.OpPut(k, v), clientv3.OpGet(k)).Commit()
	if err != nil {
		return fmt.Errorf("etcd: health write: %w", err)
	}
	kvs := resp.Responses[1].GetResponseRange().Kvs
	if len(kvs) != 1 || string(kvs[0].Value) != v {
		return errors.New("etcd: health key did not read back")
	}
	return nil
}

// errRetry: a compare lost against a concurrent writer; read again.
var errRetry = errors.New("etcd: retry")

// retry runs fn until it returns anything but errRetry, or ctx ends. Every
// lost compare means another writer committed, so the loop makes
// progress. A write under a lease that etcd no longer knows (it ran out
// with its records, or was revoked) is retried once the cached leases are
// dropped: a fresh read sees those records gone.
func (s *Store) retry(ctx context.Context, fn func() error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := fn()
		if isLeaseNotFound(err) {
			s.forgetLeases()
			continue
		}
		if !errors.Is(err, errRetry) {
			return err
		}
	}
}

func isLeaseNotFound(err error) bool {
	return err != nil && (errors.Is(err, rpctypes.ErrLeaseNotFound) ||
		strings.Contains(err.Error(), rpctypes.ErrGRPCLeaseNotFound.Error()))
}

// get returns the key-value under key, or nil when absent.
func (s *Store) get(ctx context.Context, key string) (*mvccpb.KeyValue, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return resp.Kvs[0], nil
}

// getJSON decodes the value under key into v, or returns store.ErrNotFound.
func (s *Store) getJSON(ctx context.Context, key string, v any) (*mvccpb.KeyValue, error) {
	kv, err := s.get(ctx, key)
	if err != nil {
		return nil, err
	}
	if kv == nil {
		return nil, store.ErrNotFound
	}
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return kv, nil
}

// create puts v under key if no value is there; store.ErrExists otherwise.
func (s *Store) create(ctx context.Context, key string, v any, opts ...clientv3.OpOption) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(data), opts...)).Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return store.ErrExists
	}
	return nil
}

// replace puts v under key if a value is there; store.ErrNotFound otherwise.
func (s *Store) replace(ctx context.Context, key string, v any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), ">", 0)).
		Then(clientv3.OpPut(key, string(data))).Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return store.ErrNotFound
	}
	return nil
}

// remove deletes key; store.ErrNotFound if absent.
func (s *Store) remove(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	resp, err := s.cli.Delete(ctx, key)
	if err != nil {
		return err
	}
	if resp.Deleted == 0 {
		return store.ErrNotFound
	}
	return nil
}

// scan calls fn for every key-value under prefix, in key order, reading
// page by page at the revision of the first page, so the walk is one
// snapshot.
func (s *Store) scan(ctx context.Context, prefix string, fn func(kv *mvccpb.KeyValue) error) error {
	return s.scanAt(ctx, prefix, 0, fn)
}

// scanAt is scan at revision rev (0: the current one).
func (s *Store) scanAt(ctx context.Context, prefix string, rev int64, fn func(kv *mvccpb.KeyValue) error) error {
	return s.scanRange(ctx, prefix, prefix, rev, fn)
}

// scanFrom is scan from the key from on (inside prefix).
func (s *Store) scanFrom(ctx context.Context, prefix, from string, fn func(kv *mvccpb.KeyValue) error) error {
	return s.scanRange(ctx, prefix, from, 0, fn)
}

// errStop ends a walk early without an error.
var errStop = errors.New("etcd: stop")

func (s *Store) scanRange(ctx context.Context, prefix, from string, rev int64, fn func(kv *mvccpb.KeyValue) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	end := clientv3.GetPrefixRangeEnd(prefix)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(pageSize)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.cli.Get(ctx, from, opts...)
		if err != nil {
			return err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			if err := fn(kv); err != nil {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// list decodes every value under prefix, in key order.
func list[T any](ctx context.Context, s *Store, prefix string) ([]*T, error) {
	var out []*T
	err := s.scan(ctx, prefix, func(kv *mvccpb.KeyValue) error {
		r := new(T)
		if err := json.Unmarshal(kv.Value, r); err != nil {
			return fmt.Errorf("decode %q: %w", kv.Key, err)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// sweep deletes the values under prefix whose expiry is <= now, each only
// if unchanged since it was read (a value rewritten meanwhile is decided
// again), and returns how many it deleted.
func (s *Store) sweep(ctx context.Context, prefix string, expiry func(v []byte) (time.Time, error), now time.Time) (int, error) {
	type dead struct {
		key string
		rev int64
	}
	var victims []dead
	err := s.scan(ctx, prefix, func(kv *mvccpb.KeyValue) error {
		exp, err := expiry(kv.Value)
		if err != nil {
			return fmt.Errorf("decode %q: %w", kv.Key, err)
		}
		if !exp.After(now) {
			victims = append(victims, dead{string(kv.Key), kv.ModRevision})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for len(victims) > 0 {
		batch := victims[:min(len(victims), maxTxnOps)]
		victims = victims[len(batch):]
		cmps := make([]clientv3.Cmp, len(batch))
		ops := make([]clientv3.Op, len(batch))
		for i, d := range batch {
			cmps[i] = clientv3.Compare(clientv3.ModRevision(d.key), "=", d.rev)
			ops[i] = clientv3.OpDelete(d.key)
		}
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err != nil {
			return n, err
		}
		if resp.Succeeded {
			n += len(batch)
			continue
		}
		// Something in the batch changed (or went): decide each alone.
		for _, d := range batch {
			m, err := s.sweepOne(ctx, d.key, expiry, now)
			if err != nil {
				return n, err
			}
			n += m
		}
	}
	return n, nil
}

// sweepOne deletes key if its value has expired, and returns 1 if it did.
func (s *Store) sweepOne(ctx context.Context, key string, expiry func(v []byte) (time.Time, error), now time.Time) (int, error) {
	n := 0
	err := s.retry(ctx, func() error {
		n = 0
		kv, err := s.get(ctx, key)
		if err != nil || kv == nil {
			return err
		}
		exp, err := expiry(kv.Value)
		if err != nil {
			return fmt.Errorf("decode %q: %w", key, err)
		}
		if exp.After(now) {
			return nil
		}
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
			Then(clientv3.OpDelete(key)).Commit()
		switch {
		case err != nil:
			return err
		case !resp.Succeeded:
			return errRetry
		}
		n = 1
		return nil
	})
	return n, err
}

// leases hands out shared leases by bucket of end time (leaseBucket).
type leases struct {
	mu sync.Mutex
	m  map[int64]clientv3.LeaseID // bucket end, Unix seconds → lease
}

// leaseFor returns the put option that attaches a lease ending some time
// after expiresAt + leaseGrace, or none when that end is too close to
// bother (the sweeps delete the record) or absurdly far.
func (s *Store) leaseFor(ctx context.Context, expiresAt time.Time) ([]clientv3.OpOption, error) {
	now := time.Now()
	end := expiresAt.Add(leaseGrace).Truncate(leaseBucket).Add(leaseBucket)
	ttl := end.Sub(now)
	if ttl < time.Minute || ttl > 50*365*24*time.Hour {
		return nil, nil
	}
	bucket := end.Unix()
	s.leases.mu.Lock()
	id, ok := s.leases.m[bucket]
	s.leases.mu.Unlock()
	if ok {
		return []clientv3.OpOption{clientv3.WithLease(id)}, nil
	}
	resp, err := s.cli.Grant(ctx, int64(ttl/time.Second))
	if err != nil {
		return nil, fmt.Errorf("lease: %w", err)
	}
	s.leases.mu.Lock()
	defer s.leases.mu.Unlock()
	if s.leases.m == nil {
		s.leases.m = map[int64]clientv3.LeaseID{}
	}
	for b := range s.leases.m {
		if b <= now.Unix() {
			delete(s.leases.m, b)
		}
	}
	if id, ok := s.leases.m[bucket]; ok { // a concurrent grant won; ours runs out unused
		return []clientv3.OpOption{clientv3.WithLease(id)}, nil
	}
	s.leases.m[bucket] = resp.ID
	return []clientv3.OpOption{clientv3.WithLease(resp.ID)}, nil
}

// forgetLeases drops the cached leases once etcd did not know one (revoked
// by hand, or run out early on a clock far off), so the next put grants a
// fresh one.
func (s *Store) forgetLeases() {
	s.leases.mu.Lock()
	s.leases.m = nil
	s.leases.mu.Unlock()
}

// keepLease is the put option that keeps kv's lease on a rewrite.
func keepLease(kv *mvccpb.KeyValue) []clientv3.OpOption {
	if kv == nil || kv.Lease == 0 {
		return nil
	}
	return []clientv3.OpOption{clientv3.WithLease(clientv3.LeaseID(kv.Lease))}
}

// modRev is the compare that what was read (kv, or nothing) is unchanged.
func modRev(key string, kv *mvccpb.KeyValue) clientv3.Cmp {
	var rev int64
	if kv != nil {
		rev = kv.ModRevision
	}
	return clientv3.Compare(clientv3.ModRevision(key), "=", rev)
}

// putJSON is the put of v under key.
func putJSON(key string, v any, opts ...clientv3.OpOption) (clientv3.Op, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return clientv3.Op{}, fmt.Errorf("encode: %w", err)
	}
	return clientv3.OpPut(key, string(data), opts...), nil
}
