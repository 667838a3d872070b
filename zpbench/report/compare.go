package report

import (
	"fmt"
	"io"
)

// Comparison is two targets measured in alternation, with A/B ratios.
type Comparison struct {
	A      Report `json:"a"`
	B      Report `json:"b"`
	Ratios Ratios `json:"ratios"`
}

// Ratios are A's figures divided by B's: above 1 means A had more
// throughput, or slower latency.
type Ratios struct {
	OpsPerSec float64 `json:"ops_per_sec"`
	P50       float64 `json:"p50"`
	P95       float64 `json:"p95"`
	P99       float64 `json:"p99"`
	P999      float64 `json:"p999"`
}

// Ratio is a/b, 0 when b is 0.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Compare pairs two reports.
func Compare(a, b Report) Comparison {
	return Comparison{A: a, B: b, Ratios: Ratios{
		OpsPerSec: Ratio(a.OpsPerSec, b.OpsPerSec),
		P50:       Ratio(a.Latency.P50, b.Latency.P50),
		P95:       Ratio(a.Latency.P95, b.Latency.P95),
		P99:       Ratio(a.Latency.P99, b.Latency.P99),
		P999:      Ratio(a.Latency.P999, b.Latency.P999),
	}}
}

// WriteText writes both reports and the ratios.
func (c Comparison) WriteText(w io.Writer) {
	fmt.Fprint(w, "A: ")
	c.A.WriteText(w)
	fmt.Fprint(w, "\nB: ")
	c.B.WriteText(w)
	fmt.Fprintf(w, "\nA/B  throughput %.2fx   p50 %.2fx  p95 %.2fx  p99 %.2fx  p99.9 %.2fx   (latency: below 1 means A is faster)\n",
		c.Ratios.OpsPerSec, c.Ratios.P50, c.Ratios.P95, c.Ratios.P99, c.Ratios.P999)
}
