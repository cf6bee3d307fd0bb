package bolt_test

import (
	"path/filepath"
	"testing"

	"github.com/scepca/scepca/store/bolt"
)

func TestCheckWritable(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "scepca.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CheckWritable(t.Context()); err != nil {
		t.Fatalf("CheckWritable() = %v, want nil", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.CheckWritable(t.Context()); err == nil {
		t.Error("CheckWritable() on a closed database = nil, want an error")
	}
}
