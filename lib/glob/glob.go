// Package glob matches keys against Redis's glob patterns (KEYS, SCAN
// MATCH), for the RESP front and for zpctl keys alike.
package glob

// Match reports whether s matches pattern as Redis's stringmatchlen
// (src/util.c, 7.0.15) matches it, case-sensitively: '*', '?', '[abc]',
// '[^a]', '[a-z]' and '\' escapes; an unclosed '[' takes the rest of the
// pattern as its set. It is a port of that function, with the reads of the
// C string's terminating NUL made explicit (at returns 0 past the end).
func Match(pattern, s []byte) bool {
	skip := false
	return matchAt(pattern, 0, s, 0, &skip)
}

func matchAt(pat []byte, p int, str []byte, i int, skipLonger *bool) bool {
	at := func(b []byte, k int) byte {
		if k < len(b) {
			return b[k]
		}
		return 0
	}
	for p < len(pat) && i < len(str) {
		switch pat[p] {
		case '*':
			for p < len(pat) && at(pat, p+1) == '*' {
				p++
			}
			if p == len(pat)-1 {
				return true
			}
			for i < len(str) {
				if matchAt(pat, p+1, str, i, skipLonger) {
					return true
				}
				if *skipLonger {
					return false
				}
				i++
			}
			// Nothing after this '*' matches from anywhere in the rest:
			// an earlier '*' taking more cannot help either.
			*skipLonger = true
			return false
		case '?':
			i++
		case '[':
			p++
			not := at(pat, p) == '^'
			if not {
				p++
			}
			match := false
			for {
				if at(pat, p) == '\\' && len(pat)-p >= 2 {
					p++
					if pat[p] == str[i] {
						match = true
					}
				} else if at(pat, p) == ']' {
					break
				} else if p >= len(pat) {
					p-- // unclosed: the step below ends the pattern
					break
				} else if len(pat)-p >= 3 && pat[p+1] == '-' {
					lo, hi := pat[p], pat[p+2]
					if lo > hi {
						lo, hi = hi, lo
					}
					p += 2
					if str[i] >= lo && str[i] <= hi {
						match = true
					}
				} else if pat[p] == str[i] {
					match = true
				}
				p++
			}
			if not {
				match = !match
			}
			if !match {
				return false
			}
			i++
		case '\\':
			if len(pat)-p >= 2 {
				p++
			}
			if pat[p] != str[i] {
				return false
			}
			i++
		default:
			if pat[p] != str[i] {
				return false
			}
			i++
		}
		p++
		if i == len(str) {
			for p < len(pat) && pat[p] == '*' {
				p++
			}
			break
		}
	}
	return p == len(pat) && i == len(str)
}
