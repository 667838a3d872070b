// Package bytesize formats byte counts for people: 512 B, 1.5 KiB, 3.0 MiB.
// Machine-readable output (JSON) carries the plain number instead.
package bytesize

import "fmt"

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
