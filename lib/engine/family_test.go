package engine

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/linxGnu/grocksdb"
)

// dataFamilyKeys lists the keys of the data family that are not data keys.
func dataFamilyKeys(t *testing.T, d *DB) (other [][]byte) {
	t.Helper()
	it := d.db.NewIteratorCF(d.ro, d.data)
	defer it.Close()
	for it.SeekToFirst(); it.Valid(); it.Next() {
		if k := it.Key().Data(); len(k) == 0 || k[0] != dataPrefix {
			other = append(other, bytes.Clone(k))
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return other
}

// TestMetadataHasItsOwnFamily checks that the applied position is not
// among the data, in the memtable or in table files, and survives a
// reopen.
func TestMetadataHasItsOwnFamily(t *testing.T) {
	dir, s := filepath.Join(t.TempDir(), "db"), newShared(t)
	d := openTestDB(t, dir, s)
	for _, k := range []string{"a", "b", "c"} {
		d.apply(put(k, "v", 0))
	}
	if other := dataFamilyKeys(t, d.DB); len(other) != 0 {
		t.Fatalf("data family holds %q before a flush", other)
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	if term, lsn, err := d.PersistedApplied(); err != nil || lsn != 3 || term != 1 {
		t.Fatalf("PersistedApplied after Flush = (%d, %d), %v; want (1, 3)", term, lsn, err)
	}
	if other := dataFamilyKeys(t, d.DB); len(other) != 0 {
		t.Fatalf("data family holds %q after a flush", other)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = openTestDB(t, dir, s)
	if term, lsn := d.Applied(); lsn != 3 || term != 1 {
		t.Fatalf("Applied after reopen = (%d, %d), want (1, 3)", term, lsn)
	}
}

// TestOpenMovesMetadataOutOfTheData opens a DB laid out as before the
// metadata family: Open moves the position there and keeps the data.
func TestOpenMovesMetadataOutOfTheData(t *testing.T) {
	dir, s := filepath.Join(t.TempDir(), "db"), newShared(t)
	o := grocksdb.NewDefaultOptions()
	o.SetCreateIfMissing(true)
	old, err := grocksdb.OpenDb(o, dir)
	if err != nil {
		t.Fatal(err)
	}
	wo := grocksdb.NewDefaultWriteOptions()
	for k, v := range map[string][]byte{
		string(keyFormat):            encodeUint64(layoutVersion),
		string(keyApplied):           encodeApplied(4, 7),
		string(dataKey([]byte("k"))): encodeValue([]byte("v"), 0),
	} {
		if err := old.Put(wo, []byte(k), v); err != nil {
			t.Fatal(err)
		}
	}
	wo.Destroy()
	old.Close()
	o.Destroy()

	d := openTestDB(t, dir, s)
	if term, lsn := d.Applied(); term != 4 || lsn != 7 {
		t.Fatalf("Applied after the move = (%d, %d), want (4, 7)", term, lsn)
	}
	if other := dataFamilyKeys(t, d.DB); len(other) != 0 {
		t.Fatalf("data family still holds %q", other)
	}
	if got := d.mustGet("k", 0); got != "v" {
		t.Fatalf("k = %q after the move, want v", got)
	}
}
