package server

// globMatch reports whether s matches pattern with Redis' glob rules (its
// stringmatchlen): '*' any run of bytes, '?' any one byte, '[abc]' a set,
// '[^abc]' its complement, '[a-z]' a range (either order), '\x' the byte
// x, inside sets too; an unterminated '[' set ends at the pattern's end.
// nocase folds ASCII case. Matching works on bytes, not runes, as Redis.
// Range ends compare as unsigned bytes, as Redis built where C's char is
// unsigned (arm64); Redis on x86-64 compares signed chars, so there a
// range with one end below 0x80 and one above matches other bytes.
// Like Redis, "*" does not match the empty string here: KEYS and SCAN
// special-case the pattern "*".
func globMatch(pattern, s string, nocase bool) bool {
	skip := false
	return globImpl(pattern, s, nocase, &skip, 0)
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// globImpl is a transcription of Redis' stringmatchlen_impl; skip
// carries its skipLongerMatches, which keeps patterns with many '*'
// from taking exponential time.
func globImpl(p, s string, nocase bool, skip *bool, nesting int) bool {
	if nesting > 1000 {
		return false
	}
	for len(p) > 0 && len(s) > 0 {
		advance := true
		switch p[0] {
		case '*':
			for len(p) > 1 && p[1] == '*' {
				p = p[1:]
			}
			if len(p) == 1 {
				return true
			}
			for len(s) > 0 {
				if globImpl(p[1:], s, nocase, skip, nesting+1) {
					return true
				}
				if *skip {
					return false
				}
				s = s[1:]
			}
			*skip = true
			return false
		case '?':
			s = s[1:]
		case '[':
			p = p[1:]
			not := len(p) > 0 && p[0] == '^'
			if not {
				p = p[1:]
			}
			match := false
			for {
				if len(p) >= 2 && p[0] == '\\' {
					p = p[1:]
					if p[0] == s[0] {
						match = true
					}
				} else if len(p) > 0 && p[0] == ']' {
					break
				} else if len(p) == 0 {
					// Unterminated set: the pattern is used up.
					advance = false
					break
				} else if len(p) >= 3 && p[1] == '-' {
					start, end, ch := p[0], p[2], s[0]
					if start > end {
						start, end = end, start
					}
					if nocase {
						start, end, ch = lowerByte(start), lowerByte(end), lowerByte(ch)
					}
					p = p[2:]
					if ch >= start && ch <= end {
						match = true
					}
				} else if p[0] == s[0] || (nocase && lowerByte(p[0]) == lowerByte(s[0])) {
					match = true
				}
				p = p[1:]
			}
			if not {
				match = !match
			}
			if !match {
				return false
			}
			s = s[1:]
		case '\\':
			if len(p) >= 2 {
				p = p[1:]
			}
			fallthrough
		default:
			if p[0] != s[0] && (!nocase || lowerByte(p[0]) != lowerByte(s[0])) {
				return false
			}
			s = s[1:]
		}
		if advance {
			p = p[1:]
		}
		if len(s) == 0 {
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			break
		}
	}
	return len(p) == 0 && len(s) == 0
}
