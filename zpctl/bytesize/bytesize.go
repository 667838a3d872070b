// Package bytesize formats byte counts for people: 512 B, 1.5 KiB, 3.0 MiB,
// and reads them back (Parse). Machine-readable output (JSON) carries the
// plain number instead.
package bytesize

import (
	"fmt"
	"strconv"
	"strings"
)

// Format is n in the largest binary unit (KiB, MiB, ... EiB) it reaches,
// with one decimal; below 1 KiB, whole bytes.
func Format(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Parse reads a byte count: a whole number with an optional binary unit,
// K, KiB, M, MiB, G or GiB (any case, "B" alone or none for bytes).
func Parse(s string) (uint64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := uint64(1)
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil || n > (1<<64-1)/mult {
		return 0, fmt.Errorf("%q: want a byte count such as 65536, 512KiB or 64MiB", s)
	}
	return n * mult, nil
}
