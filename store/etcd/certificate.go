package etcd

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/scepca/scepca/store"
)

// A certificate is stored under famCerts by serial, and indexed under
// famCertsByTime by newestKey, whose ascending key order is the list
// order (newest IssuedAt first, ties by serial descending), so
// ListCertificates reads pages in order with a limit. A second index,
// under famCertsByState by status and then newestKey, lets a listing by
// status (the CRL's REVOKED and ON_HOLD) read only those certificates
// instead of every one.

// indexOps are the puts of c's two index entries.
func (s *Store) indexOps(c *store.Certificate) []clientv3.Op {
	k := newestKey(c.IssuedAt, c.Serial)
	return []clientv3.Op{
		clientv3.OpPut(s.prefix+famCertsByTime+k, c.Serial),
		clientv3.OpPut(s.statusKey(c.Status, k), c.Serial),
	}
}

// statusKey is the key of a certificate in the status index.
func (s *Store) statusKey(status, newest string) string {
	return s.prefix + famCertsByState + status + "/" + newest
}

// newestKey inverts the index key of store/bolt: the Unix seconds with the
// sign bit flipped (so byte order is numeric order for every time), then
// nanoseconds, each complemented so that ascending order is newest first;
// then the serial through descending. Hex, so etcd keys stay printable.
func newestKey(at time.Time, serial string) string {
	var k [12]byte
	binary.BigEndian.PutUint64(k[:], ^(uint64(at.Unix()) ^ (1 << 63))) //nolint:gosec // G115: reinterpreting the sign bit is the point
	binary.BigEndian.PutUint32(k[8:], ^uint32(at.Nanosecond()))        //nolint:gosec // G115: Nanosecond is in [0, 1e9)
	return hex.EncodeToString(k[:]) + descending(serial)
}

// descending maps s to a key whose ascending order is s's descending
// order: each byte complemented, hex-encoded, then "ff" as a terminator,
// which sorts after every complemented byte but that of NUL (so a string
// sorts after every longer string it begins). s must not hold NUL.
func descending(s string) string {
	b := make([]byte, len(s))
	for i := range len(s) {
		b[i] = ^s[i]
	}
	return hex.EncodeToString(b) + "ff"
}

// PutCertificate stores a newly issued certificate, its index entry and,
// when c.TransactionID names a PENDING transaction of c.IntegrationID, that
// transaction as store.TxSuccess (store.TxIssued when claimed with Confirm)
// with this serial, all in one etcd transaction that compares the serial
// absent and the transaction unchanged. store.ErrExists if any certificate
// has the serial, across every replica; a clash writes nothing and keeps
// the claim. A transaction past PENDING keeps its first serial.
func (s *Store) PutCertificate(ctx context.Context, c *store.Certificate) error {
	if c.Serial == "" {
		return fmt.Errorf("etcd: put certificate: empty serial")
	}
	certKey := s.prefix + famCerts + c.Serial
	cert, err := putJSON(certKey, c)
	if err != nil {
		return fmt.Errorf("etcd: put certificate %s: %w", c.Serial, err)
	}
	if !keyPart(c.Status) || strings.Contains(c.Status, "/") {
		return fmt.Errorf("etcd: put certificate %s: invalid status %q", c.Serial, c.Status)
	}
	index := s.indexOps(c)
	txKey, hasTx := "", false
	if c.TransactionID != "" {
		txKey, hasTx = s.txKey(c.IntegrationID, c.TransactionID)
	}
	err = s.retry(ctx, func() error {
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(certKey), "=", 0)}
		ops := append([]clientv3.Op{cert}, index...)
		if hasTx {
			kv, err := s.get(ctx, txKey)
			if err != nil {
				return err
			}
			cmps = append(cmps, modRev(txKey, kv))
			if kv != nil {
				var t store.Transaction
				if err := json.Unmarshal(kv.Value, &t); err != nil {
					return fmt.Errorf("transaction %q: decode: %w", c.TransactionID, err)
				}
				if t.State == store.TxPending {
					t.State = store.TxSuccess
					if t.Confirm {
						t.State = store.TxIssued
					}
					t.Serial = c.Serial
					op, err := putJSON(txKey, &t, keepLease(kv)...)
					if err != nil {
						return err
					}
					ops = append(ops, op)
				}
			}
		}
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).
			Else(clientv3.OpGet(certKey, clientv3.WithCountOnly())).Commit()
		switch {
		case err != nil:
			return err
		case resp.Succeeded:
			return nil
		case resp.Responses[0].GetResponseRange().Count > 0:
			return store.ErrExists
		}
		return errRetry // the transaction changed under us
	})
	if err != nil {
		return fmt.Errorf("etcd: put certificate %s: %w", c.Serial, err)
	}
	return nil
}

// GetCertificate returns the certificate serial; store.ErrNotFound if absent.
func (s *Store) GetCertificate(ctx context.Context, serial string) (*store.Certificate, error) {
	var c store.Certificate
	if _, err := s.getJSON(ctx, s.prefix+famCerts+serial, &c); err != nil {
		return nil, fmt.Errorf("etcd: get certificate %s: %w", serial, err)
	}
	return &c, nil
}

// ListCertificates returns the certificates matching f, newest IssuedAt
// first (ties by serial, descending), at most f.Limit of them when
// f.Limit > 0, starting after f.After. It walks the index a
// page at a time at one revision and reads each page's records in one
// etcd transaction, so it stops reading once the limit is met.
func (s *Store) ListCertificates(ctx context.Context, f store.CertFilter) ([]*store.Certificate, error) {
	out, err := s.listCertificates(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("etcd: list certificates: %w", err)
	}
	return out, nil
}

func (s *Store) listCertificates(ctx context.Context, f store.CertFilter) ([]*store.Certificate, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	prefix := s.prefix + famCertsByTime
	if f.Status != "" {
		prefix = s.statusKey(f.Status, "")
	}
	end := clientv3.GetPrefixRangeEnd(prefix)
	from := prefix
	if f.After != "" {
		var last store.Certificate
		if _, err := s.getJSON(ctx, s.prefix+famCerts+f.After, &last); err != nil {
			return nil, fmt.Errorf("cursor %s: %w", f.After, err)
		}
		from = prefix + newestKey(last.IssuedAt, last.Serial) + "\x00"
	}
	var (
		rev int64
		out []*store.Certificate
	)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(maxTxnOps)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.cli.Get(ctx, from, opts...)
		if err != nil {
			return nil, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		if len(resp.Kvs) == 0 {
			return out, nil
		}
		gets := make([]clientv3.Op, len(resp.Kvs))
		for i, kv := range resp.Kvs {
			gets[i] = clientv3.OpGet(s.prefix + famCerts + string(kv.Value))
		}
		recs, err := s.cli.Txn(ctx).Then(gets...).Commit()
		if err != nil {
			return nil, err
		}
		for i, r := range recs.Responses {
			kvs := r.GetResponseRange().Kvs
			if len(kvs) == 0 {
				return nil, fmt.Errorf("index entry %s: %w", resp.Kvs[i].Value, store.ErrNotFound)
			}
			c := new(store.Certificate)
			if err := json.Unmarshal(kvs[0].Value, c); err != nil {
				return nil, fmt.Errorf("decode %s: %w", resp.Kvs[i].Value, err)
			}
			if !f.Matches(c) {
				continue
			}
			out = append(out, c)
			if f.Limit > 0 && len(out) >= f.Limit {
				return out, nil
			}
		}
		if !resp.More {
			return out, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// UpdateCertificateStatus sets the status, revocation time and reason of
// the certificate serial, and moves its status index entry, in one etcd
// transaction compared against the record it read; store.ErrNotFound if
// absent.
func (s *Store) UpdateCertificateStatus(ctx context.Context, serial, status string, at time.Time, reason int) error {
	if !keyPart(status) || strings.Contains(status, "/") {
		return fmt.Errorf("etcd: update certificate status %s: invalid status %q", serial, status)
	}
	key := s.prefix + famCerts + serial
	err := s.retry(ctx, func() error {
		var c store.Certificate
		kv, err := s.getJSON(ctx, key, &c)
		if err != nil {
			return err
		}
		if c.Status == store.CertRevoked { // final; the Txn's compare covers a revocation after this read
			return fmt.Errorf("already revoked: %w", store.ErrConflict)
		}
		var ops []clientv3.Op
		if c.Status != status { // etcd refuses two operations on one key in a transaction
			newest := newestKey(c.IssuedAt, c.Serial)
			ops = append(ops, clientv3.OpDelete(s.statusKey(c.Status, newest)), clientv3.OpPut(s.statusKey(status, newest), c.Serial))
		}
		c.Status = status
		c.RevokedAt = at
		c.RevocationReason = reason
		op, err := putJSON(key, &c)
		if err != nil {
			return err
		}
		ops = append(ops, op)
		resp, err := s.cli.Txn(ctx).If(modRev(key, kv)).Then(ops...).Commit()
		switch {
		case err != nil:
			return err
		case !resp.Succeeded:
			return errRetry
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("etcd: update certificate status %s: %w", serial, err)
	}
	return nil
}

// CountCertificates returns how many certificates are stored.
func (s *Store) CountCertificates(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("etcd: count certificates: %w", err)
	}
	resp, err := s.cli.Get(ctx, s.prefix+famCerts, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("etcd: count certificates: %w", err)
	}
	return int(resp.Count), nil
}

// keyPart refuses a key part holding NUL, the separator of composite keys.
func keyPart(s string) bool { return !strings.ContainsRune(s, 0) }
