package etcd

import (
	"context"
	"fmt"

	"go.etcd.io/etcd/client/v3/concurrency"
)

// Lock takes the cluster-wide mutex name under the prefix, waiting until
// it is free or ctx ends, and returns its unlock. The mutex is held by a
// session lease that the client keeps alive, so a holder that dies
// releases it when the lease runs out (about 10 s). scepca takes it around
// creating the CA, so replicas starting together on an empty prefix create
// one CA, not one each.
func (s *Store) Lock(ctx context.Context, name string) (unlock func(context.Context) error, err error) {
	sess, err := concurrency.NewSession(s.cli, concurrency.WithTTL(10), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return nil, fmt.Errorf("etcd: lock %s: %w", name, err)
	}
	m := concurrency.NewMutex(sess, s.prefix+famMeta+"locks/"+name)
	if err := m.Lock(ctx); err != nil {
		_ = sess.Close() // the lock error is the one worth reporting
		return nil, fmt.Errorf("etcd: lock %s: %w", name, err)
	}
	return func(ctx context.Context) error {
		err := m.Unlock(ctx)
		if cerr := sess.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("etcd: unlock %s: %w", name, err)
		}
		return nil
	}, nil
}
