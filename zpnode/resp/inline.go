package resp

import "bytes"

// splitArgs splits an inline request line into arguments appended to args,
// following Redis's sdssplitargs (src/sds.c of Redis 7.0.15):
//
//   - arguments are separated by blanks (C isspace: space, \t, \n, \v, \f,
//     \r), though only space, \t, \n and \r end an unquoted argument;
//   - "double quotes" take \xHH hex escapes and \n \r \t \b \a, and any
//     other escaped byte stands for itself;
//   - 'single quotes' take only \' as an escape;
//   - a quote may open inside an argument (a"b c" is `ab c`), but a closing
//     quote must be followed by a blank or the end of the line;
//   - a NUL byte ends the line, as it ends the C string Redis splits.
//
// ok is false for an unterminated quote or a closing quote followed by
// another byte ("unbalanced quotes"). Arguments are decoded in place, which
// is safe because decoding never writes ahead of what it has read; they
// alias line.
func splitArgs(args [][]byte, line []byte) (_ [][]byte, ok bool) {
	if i := bytes.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	n := len(line)
	at := func(i int) byte { // the C string's byte at i: NUL past the end
		if i < n {
			return line[i]
		}
		return 0
	}
	p := 0
	for {
		for p < n && isSpace(line[p]) {
			p++
		}
		if p == n {
			return args, true
		}
		start, o := p, p // o is where the decoded argument ends, o <= p
		inq, insq := false, false
		for done := false; !done; {
			switch {
			case inq:
				if p == n {
					return args, false
				}
				c := line[p]
				switch {
				case c == '\\' && at(p+1) == 'x' && isHex(at(p+2)) && isHex(at(p+3)):
					line[o] = unhex(line[p+2])<<4 | unhex(line[p+3])
					o++
					p += 4
				case c == '\\' && p+1 < n:
					line[o] = unescape(line[p+1])
					o++
					p += 2
				case c == '"':
					if p+1 < n && !isSpace(line[p+1]) {
						return args, false
					}
					done = true
					p++
				default:
					line[o] = c
					o++
					p++
				}
			case insq:
				if p == n {
					return args, false
				}
				c := line[p]
				switch {
				case c == '\\' && at(p+1) == '\'':
					line[o] = '\''
					o++
					p += 2
				case c == '\'':
					if p+1 < n && !isSpace(line[p+1]) {
						return args, false
					}
					done = true
					p++
				default:
					line[o] = c
					o++
					p++
				}
			default:
				if p == n {
					done = true
					break
				}
				switch c := line[p]; c {
				case ' ', '\n', '\r', '\t':
					done = true
				case '"':
					inq = true
				case '\'':
					insq = true
				default:
					line[o] = c
					o++
				}
				p++
			}
		}
		args = append(args, line[start:o:o])
	}
}

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// unescape is the byte a backslash escape in double quotes stands for.
func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}
