package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// record replaces the file system operations with ones that log their
// order (and run the real operation) until the test ends.
func record(t *testing.T) *[]string {
	t.Helper()
	var ops []string
	origSync, origRename, origDir := syncFile, rename, syncDir
	t.Cleanup(func() { syncFile, rename, syncDir = origSync, origRename, origDir })
	syncFile = func(f *os.File) error {
		ops = append(ops, "fsync "+filepath.Base(f.Name()))
		return origSync(f)
	}
	rename = func(from, to string) error {
		ops = append(ops, "rename "+filepath.Base(from)+" "+filepath.Base(to))
		return origRename(from, to)
	}
	syncDir = func(dir string) error {
		ops = append(ops, "fsync dir "+dir)
		return origDir(dir)
	}
	return &ops
}

func TestDurableOrder(t *testing.T) {
	tests := []struct {
		name string
		do   func(path string) error
		want string // content of path afterwards
	}{
		{"Write", func(p string) error { return Write(p, []byte("new"), 0o644) }, "new"},
		{"WriteFunc", func(p string) error {
			return WriteFunc(p, 0o644, func(w io.Writer) error {
				_, err := io.WriteString(w, "streamed")
				return err
			})
		}, "streamed"},
		{"OpenAppend", func(p string) error {
			f, err := OpenAppend(p, 0o644, func(w io.Writer) error {
				_, err := io.WriteString(w, "head")
				return err
			})
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteString("+tail")
			return err
		}, "head+tail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			ops := record(t)
			if err := tt.do(path); err != nil {
				t.Fatal(err)
			}
			// The data is synced before it takes the name, and the
			// name is synced (the directory) after the rename.
			want := []string{"fsync f" + TempSuffix, "rename f" + TempSuffix + " f", "fsync dir " + dir}
			if !slices.Equal(*ops, want) {
				t.Errorf("operations\n got %q\nwant %q", *ops, want)
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != tt.want {
				t.Errorf("content %q, %v; want %q", got, err, tt.want)
			}
			if _, err := os.Stat(path + TempSuffix); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("temporary file left: %v", err)
			}
		})
	}
}

func TestFailureKeepsOldContent(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name   string
		fill   error
		inject func()
	}{
		{name: "fill fails", fill: boom},
		{name: "fsync fails", inject: func() { syncFile = func(*os.File) error { return boom } }},
		{name: "rename fails", inject: func() { rename = func(string, string) error { return boom } }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			record(t)
			if tt.inject != nil {
				tt.inject()
			}
			err := WriteFunc(path, 0o644, func(w io.Writer) error {
				io.WriteString(w, "partial")
				return tt.fill
			})
			if !errors.Is(err, boom) {
				t.Fatalf("err %v, want %v", err, boom)
			}
			if got, _ := os.ReadFile(path); string(got) != "old" {
				t.Errorf("content %q after a failed write, want the old one", got)
			}
			if _, err := os.Stat(path + TempSuffix); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("temporary file left: %v", err)
			}
		})
	}
}

func TestDirSyncFailureIsReported(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	boom := errors.New("boom")
	record(t)
	syncDir = func(string) error { return boom }
	if err := Write(path, []byte("x"), 0o644); !errors.Is(err, boom) {
		t.Errorf("Write: err %v, want %v", err, boom)
	}
	if f, err := OpenAppend(path, 0o644, func(io.Writer) error { return nil }); !errors.Is(err, boom) || f != nil {
		t.Errorf("OpenAppend: %v, %v; want nil, %v", f, err, boom)
	}
}

func TestRemove(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ops := record(t)
	if err := Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("still there: %v", err)
	}
	if err := Remove(path); err != nil {
		t.Errorf("removing a missing file: %v", err)
	}
	// Only the removal that happened needs the directory synced.
	if want := []string{"fsync dir " + dir}; !slices.Equal(*ops, want) {
		t.Errorf("operations %q, want %q", *ops, want)
	}
}
