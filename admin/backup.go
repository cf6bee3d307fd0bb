package admin

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/scepca/scepca/internal/reqlog"
)

// Backup writes a consistent copy of the store to w while it stays in use
// (store/bolt's WriteBackup), calling begin with the copy's size before
// the first byte.
type Backup func(ctx context.Context, w io.Writer, begin func(size int64)) (int64, error)

// backup serves GET /api/v1/backup: the hot backup of a bbolt store, a
// file that `scepca serve` opens as <data>/scepca.db with the same KEK
// (docs/operations.md, Backup and restore). Its private keys stay sealed
// under the KEK. A store without it (etcd) answers 501: etcd is backed up
// with an etcd snapshot.
func (a *API) backup(w http.ResponseWriter, r *http.Request) error {
	if a.backupTo == nil {
		return problemf(http.StatusNotImplemented, "this store has no backup over the API: back etcd up with an etcd snapshot (docs/operations.md, Backup and restore)")
	}
	started := false
	n, err := a.backupTo(r.Context(), w, func(size int64) {
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		h.Set("Content-Disposition", `attachment; filename="scepca-`+a.now().UTC().Format("20060102T150405Z")+`.db"`)
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		started = true
	})
	if err != nil && !started {
		return err
	}
	if err != nil {
		// The status is out; the body stops short of its Content-Length,
		// which the client sees. The log says why.
		reqlog.Add(r.Context(), slog.String(reqlog.KeyError, err.Error()))
		a.audit.WarnContext(r.Context(), "store backup failed", "bytes", n)
		return nil
	}
	a.audit.InfoContext(r.Context(), "store backup", "bytes", n)
	return nil
}
