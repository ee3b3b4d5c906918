package server

import (
	"crypto/rand"
	"io"
	"math"
	"strconv"
)

func randRead(b []byte) { rand.Read(b) }

// protoError is a request the guard refused: the client is told
// "ERR Protocol error: <msg>" and closed.
type protoError struct{ msg string }

func (e *protoError) Error() string { return "Protocol error: " + e.msg }

// guard sits between a client's connection and its reader, and bounds
// what the reader may buffer: the reader grows its buffer for a request
// longer than it, so told a bulk of 10 GB is coming it would keep growing
// for it. guard follows the framing of the bytes as they are read, using
// only the length prefixes (redcon still does the parsing), and refuses,
// before they are buffered, a bulk longer than the limit or of negative
// length, a request longer than twice the limit, a multibulk count beyond
// 2^31-1 and an inline request line longer than 64 KiB. When the bytes
// stop making sense as RESP it stops checking: redcon's parser then
// reports its own protocol error and the client is closed.
//
// A guard is used by its client's goroutine only.
type guard struct {
	r     io.Reader
	limit func() int64 // current bulk limit (CONFIG SET may change it)

	st    guardState
	hdr   [32]byte // the digits of a "*n" or "$n" header being read
	nhdr  int
	left  int64 // sBulk: bytes of the bulk and its CRLF still to come
	bulks int64 // bulks of the current request still to come
	size  int64 // bytes of the current request so far
	err   error // a refusal found in bytes already passed on
}

type guardState uint8

const (
	sStart   guardState = iota // at the start of a request
	sInline                    // in an inline request line
	sArray                     // reading "*<count>\r\n"
	sDollar                    // expecting '$'
	sBulkLen                   // reading "<len>\r\n"
	sBulk                      // skipping a bulk's bytes and CRLF
	sOff                       // not RESP any more: redcon will refuse it
)

// Read reads from the connection and checks what it read. Bytes before a
// refused request are passed on, so that the complete requests before it
// are served; the refusal is returned by the next Read.
func (g *guard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	if n > 0 {
		if k, perr := g.scan(p[:n]); perr != nil {
			g.err = perr
			if k == 0 {
				return 0, perr
			}
			return k, nil
		}
	}
	return n, err
}

// scan advances the framing over b. On a refusal it returns how many
// bytes of b may be passed on: those before the byte that broke the limit
// (the refused request is incomplete there, so the parser cannot act on
// it, while the requests before it are complete).
func (g *guard) scan(b []byte) (int, error) {
	limit := g.limit()
	reqMax := requestMax(limit)
	for i := 0; i < len(b); {
		switch g.st {
		case sOff:
			return len(b), nil
		case sStart:
			if n := plainRequest(b[i:], limit, reqMax); n > 0 {
				// Fast path: a whole request, taken in one step.
				g.size = int64(n)
				i += n
				continue
			}
			g.size = 0
			if b[i] == '*' {
				g.st, g.nhdr = sArray, 0
			} else if b[i] != '\n' {
				g.st = sInline
			}
			g.size++
			i++
		case sInline:
			// Find the end of the line in this chunk.
			j := i
			for j < len(b) && b[j] != '\n' {
				j++
			}
			g.size += int64(j - i)
			if g.size > inlineMax {
				return i, &protoError{"too big inline request"}
			}
			if j < len(b) {
				g.st = sStart
				j++
			}
			i = j
		case sArray, sBulkLen:
			c := b[i]
			i++
			g.size++
			if c != '\n' {
				if g.nhdr == len(g.hdr) {
					if g.st == sArray {
						return i - 1, &protoError{"invalid multibulk length"}
					}
					return i - 1, &protoError{"invalid bulk length"}
				}
				g.hdr[g.nhdr] = c
				g.nhdr++
				continue
			}
			line := g.hdr[:g.nhdr]
			if len(line) == 0 || line[len(line)-1] != '\r' {
				g.st = sOff // redcon refuses a bare LF
				continue
			}
			v, err := atoi(line[:len(line)-1])
			if err != nil || (v < 0 && g.st == sArray) {
				g.st = sOff // redcon refuses these
				continue
			}
			if g.st == sArray {
				if int64(v) > math.MaxInt32 {
					return i - 1, &protoError{"invalid multibulk length"}
				}
				g.bulks, g.st = int64(v), sDollar
				if v == 0 { // "*0": an empty request, which Redis ignores
					g.st = sStart
				}
				continue
			}
			if v < 0 {
				// Refused here, not left to the parser: redcon's
				// ReadNextCommand does not check a bulk's length for a
				// sign.
				return i - 1, &protoError{"invalid bulk length"}
			}
			if int64(v) > limit {
				return i - 1, &protoError{"invalid bulk length"}
			}
			g.left, g.st = int64(v)+2, sBulk
		case sDollar:
			if b[i] != '$' {
				g.st = sOff
				continue
			}
			g.st, g.nhdr = sBulkLen, 0
			g.size++
			i++
		case sBulk:
			k := int64(len(b) - i)
			if k > g.left {
				k = g.left
			}
			if g.size+k > reqMax {
				return i, &protoError{"request too large"}
			}
			g.size += k
			g.left -= k
			i += int(k)
			if g.left == 0 {
				g.bulks--
				if g.bulks == 0 {
					g.st = sStart
				} else {
					g.st = sDollar
				}
			}
		}
		if g.size > reqMax && g.st != sInline {
			return i, &protoError{"request too large"}
		}
	}
	return len(b), nil
}

// plainRequest returns the length of the request at the start of b if b
// holds all of it and it is one the byte path below would pass with
// nothing to refuse: a RESP array of one or more bulks, each header plain
// digits ending in CRLF, each bulk within limit and the whole within
// reqMax. Else it returns 0, and the byte path reads the request. Clients
// send nearly every request this way (a pipeline of small commands in one
// read), and this reads one with its position in a register rather than
// stepping the guard's state a byte at a time.
func plainRequest(b []byte, limit, reqMax int64) int {
	// header reads "<digits>\r\n" at p, and returns the number and the
	// position after it, or ok false.
	header := func(p int) (v int64, next int, ok bool) {
		start := p
		for ; p < len(b) && b[p] >= '0' && b[p] <= '9'; p++ {
			v = v*10 + int64(b[p]-'0')
		}
		if p == start || p-start > 18 || p+1 >= len(b) || b[p] != '\r' || b[p+1] != '\n' {
			return 0, 0, false
		}
		return v, p + 2, true
	}
	if len(b) == 0 || b[0] != '*' {
		return 0
	}
	n, p, ok := header(1)
	if !ok || n > math.MaxInt32 { // "*0": the byte path skips it too
		return 0
	}
	for ; n > 0; n-- {
		if p >= len(b) || b[p] != '$' {
			return 0
		}
		var v int64
		if v, p, ok = header(p + 1); !ok || v > limit || int64(len(b)-p) < v+2 {
			return 0
		}
		p += int(v) + 2
	}
	if int64(p) > reqMax {
		return 0
	}
	return p
}

// atoi is strconv.Atoi of b, with no conversion to a string for a header
// of plain digits (every header a client sends); anything else is left to
// strconv, so that what is accepted is exactly what Atoi accepts.
func atoi(b []byte) (int, error) {
	if len(b) == 0 || len(b) > 18 { // 18 digits cannot overflow an int64
		return strconv.Atoi(string(b))
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return strconv.Atoi(string(b))
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

// requestMax is the longest request allowed with a bulk limit of limit:
// twice it and a margin for the framing, saturating (proto-max-bulk-len
// may be set up to 2^63-1).
func requestMax(limit int64) int64 {
	if limit > (math.MaxInt64-64)/2 {
		return math.MaxInt64
	}
	return 2*limit + 64
}
