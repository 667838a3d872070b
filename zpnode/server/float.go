package server

import (
	"math/big"
	"strings"
)

// INCRBYFLOAT computes as Redis does on x86-64: in a C long double (x87
// extended precision: a 64-bit mantissa, exponents up to 2^16383), which
// big.Float with 64 bits of precision reproduces, and formats with
// "%.17Lf" with the trailing zeros cut (ld2string, LD_STR_HUMAN). float64
// would answer 10.5+0.1 as "10.59999999999999964" where Redis says "10.6".

const (
	longDoublePrec = 64
	// Exponents (big.Float.MantExp: x = mant * 2^exp, 0.5 <= |mant| < 1)
	// beyond a long double: strtold fails on them with ERANGE, which Redis
	// rejects, and a sum that reaches them is infinite.
	longDoubleMaxExp = 16384
	longDoubleMinExp = -16444
	// Redis parses at most MAX_LONG_DOUBLE_CHARS-1 bytes.
	maxFloatChars = 5*1024 - 1
)

// parseLongDouble parses s as Redis's string2ld does (strtold, the whole
// string, no leading space, no NaN, no overflow or underflow to zero).
// Infinities parse; adding to them fails later, as in Redis.
func parseLongDouble(s string) (*big.Float, bool) {
	if len(s) == 0 || len(s) > maxFloatChars {
		return nil, false
	}
	unsigned := strings.TrimLeft(s[:1], "+-") + s[1:]
	switch strings.ToLower(unsigned) {
	case "inf", "infinity":
		f := new(big.Float).SetInf(s[0] == '-')
		return f, true
	}
	// strtold's grammar: decimal, or hexadecimal with a 0x prefix and a
	// binary exponent. big.ParseFloat also takes '_', 0b and 0o, and a
	// binary exponent on decimals, which strtold does not.
	allowed := "0123456789.eE+-"
	if l := strings.ToLower(unsigned); strings.HasPrefix(l, "0x") {
		allowed = "0123456789abcdefABCDEFxXpP.+-"
	}
	if strings.Trim(s, allowed) != "" {
		return nil, false
	}
	f, _, err := big.ParseFloat(s, 0, longDoublePrec, big.ToNearestEven)
	if err != nil {
		return nil, false
	}
	if f.Sign() != 0 {
		if exp := f.MantExp(nil); exp > longDoubleMaxExp || exp < longDoubleMinExp {
			return nil, false
		}
	}
	return f, true
}

// addLongDouble returns a+b as a long double; false when the sum is NaN or
// infinite.
func addLongDouble(a, b *big.Float) (*big.Float, bool) {
	if a.IsInf() || b.IsInf() {
		return nil, false // inf+x is infinite, inf-inf is NaN
	}
	sum := new(big.Float).SetPrec(longDoublePrec).SetMode(big.ToNearestEven).Add(a, b)
	if sum.Sign() != 0 && sum.MantExp(nil) > longDoubleMaxExp {
		return nil, false
	}
	return sum, true
}

// formatLongDouble formats f as Redis's ld2string in LD_STR_HUMAN mode.
func formatLongDouble(f *big.Float) string {
	s := f.Text('f', 17)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}
