package backup

import (
	"context"
	"encoding/json"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeBackup writes backup name into dir by hand: partitions with the
// given files (name -> content), and a manifest built by edit from the
// true one.
func writeBackup(t *testing.T, dir, name string, parts []map[string]string, edit func(*Manifest)) {
	t.Helper()
	m := Manifest{Format: FormatVersion, Name: name, Table: TableSettings{Name: "t", PartitionCount: uint32(len(parts))}}
	for id, files := range parts {
		p := Partition{ID: uint32(id), Dir: partitionDir(uint32(id))}
		pd := filepath.Join(dir, name, filepath.FromSlash(p.Dir))
		if err := os.MkdirAll(pd, 0o755); err != nil {
			t.Fatal(err)
		}
		for fn, content := range files {
			if err := os.WriteFile(filepath.Join(pd, fn), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			p.Files = append(p.Files, File{Name: fn, Size: uint64(len(content)), CRC32C: crc32.Checksum([]byte(content), castagnoli)})
		}
		m.Partitions = append(m.Partitions, p)
	}
	if edit != nil {
		edit(&m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := Dir(dir).WriteManifest(context.Background(), name, b); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	two := []map[string]string{{"CURRENT": "MANIFEST-1\n", "000001.sst": "data0"}, {"CURRENT": "MANIFEST-1\n", "000002.sst": "data1"}}
	tests := []struct {
		name    string
		edit    func(*Manifest)
		damage  func(dir string)
		wantErr error
		want    string // in the first problem
	}{
		{name: "good"},
		{name: "partition missing", edit: func(m *Manifest) { m.Partitions = m.Partitions[:1] }, wantErr: ErrCorrupt, want: "partition 1: missing from the manifest"},
		{name: "partition twice", edit: func(m *Manifest) { m.Partitions[1] = m.Partitions[0] }, wantErr: ErrCorrupt, want: "listed twice"},
		{name: "no CURRENT", edit: func(m *Manifest) {
			m.Partitions[0].Files = m.Partitions[0].Files[:0]
		}, wantErr: ErrCorrupt, want: "no CURRENT file"},
		{name: "size", damage: func(dir string) {
			os.WriteFile(filepath.Join(dir, "partitions/0001/000002.sst"), []byte("data1+"), 0o644)
		}, wantErr: ErrCorrupt, want: "6 bytes, the manifest says 5"},
		{name: "format", edit: func(m *Manifest) { m.Format = 99 }, wantErr: ErrBadManifest},
		{name: "file outside", edit: func(m *Manifest) { m.Partitions[0].Files[0].Name = "../../x" }, wantErr: ErrCorrupt, want: "bad file name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeBackup(t, dir, "b", two, tt.edit)
			if tt.damage != nil {
				tt.damage(filepath.Join(dir, "b"))
			}
			rep, err := Verify(context.Background(), Dir(dir), "b")
			if tt.wantErr == nil {
				if err != nil || rep.Files != 4 {
					t.Fatalf("Verify = %+v, %v", rep, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error %v, want %v", err, tt.wantErr)
			}
			if tt.want != "" && (rep == nil || !slices.ContainsFunc(rep.Problems, func(p Problem) bool { return strings.Contains(p.String(), tt.want) })) {
				t.Fatalf("problems %+v, want one with %q", rep, tt.want)
			}
		})
	}
}

// TestDirNames: a backup name is one path element; an incomplete backup
// (no manifest) and a missing one are told apart; List sees both.
func TestDirNames(t *testing.T) {
	ctx := context.Background()
	d := Dir(t.TempDir())
	for _, bad := range []string{"", ".", "..", "a/b", "../x"} {
		if _, err := d.Prepare(ctx, bad); err == nil {
			t.Errorf("Prepare(%q) accepted", bad)
		}
	}
	if complete, err := d.Prepare(ctx, "half"); err != nil || complete {
		t.Fatalf("Prepare(half) = %v, %v", complete, err)
	}
	if _, err := d.ReadManifest(ctx, "half"); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("manifest of an incomplete backup: %v", err)
	}
	if _, err := d.ReadManifest(ctx, "none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("manifest of no backup: %v", err)
	}
	writeBackup(t, string(d), "full", []map[string]string{{"CURRENT": "x"}}, nil)
	if complete, err := d.Prepare(ctx, "full"); err != nil || !complete {
		t.Fatalf("Prepare(full) = %v, %v", complete, err)
	}
	entries, err := List(ctx, d)
	if err != nil || len(entries) != 2 || entries[0].Name != "full" || entries[0].Manifest == nil || entries[1].Manifest != nil || !errors.Is(entries[1].Err, ErrIncomplete) {
		t.Fatalf("List = %+v, %v", entries, err)
	}
}
