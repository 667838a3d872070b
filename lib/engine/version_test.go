package engine

import (
	"regexp"
	"testing"
)

func TestRocksDBVersion(t *testing.T) {
	if v := RocksDBVersion(); !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(v) {
		t.Fatalf("RocksDBVersion() = %q, want major.minor.patch", v)
	}
}
