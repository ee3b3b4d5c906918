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

// guard sits between a client's connection and redcon's parser and bounds
// what the parser may buffer. redcon's Reader has no size limits: told a
// bulk of 10 GB is coming it keeps growing its buffer for it. guard
// follows the framing of the bytes as they are read, using only the
// length prefixes (redcon still does the parsing), and refuses, before
// they are buffered, a bulk longer than the limit, a request longer than
// twice the limit, a multibulk count beyond 2^31-1 and an inline request
// line longer than 64 KiB. When the bytes stop making sense as RESP it
// stops checking: redcon then reports its own protocol error and the
// client is closed.
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

	// Reads are cut at request boundaries: the bytes of a read past its
	// last complete request are held back (already scanned) and passed on
	// by the next Read. redcon's Reader then finds its buffer empty after
	// each batch and rewinds it; given a partial request after the
	// complete ones it doubles its buffer instead, and keeps doing so for
	// as long as reads end mid-request, so that a client streaming large
	// pipelined requests grew it without bound, whatever the limits.
	held    []byte // scanned bytes not yet passed on (a partial request)
	holdBuf []byte // held's backing array
	cut     int    // scan: index just past the chunk's last boundary, or 0
	aligned bool   // the bytes passed on so far end at a request boundary
	peak    int64  // the longest request seen since resetPeak
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
	if len(g.held) > 0 {
		n := copy(p, g.held)
		g.held = g.held[n:]
		g.aligned = false // held bytes are a partial request
		if len(g.held) == 0 && cap(g.holdBuf) > 1<<20 {
			g.holdBuf = nil
		}
		return n, nil
	}
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	if n > 0 {
		k, perr := g.scan(p[:n])
		if perr != nil {
			g.err = perr
			g.aligned = false
			if k == 0 {
				return 0, perr
			}
			return k, nil
		}
		if err == nil && g.cut > 0 && g.cut < n && g.st != sOff {
			g.holdBuf = append(g.holdBuf[:0], p[g.cut:n]...)
			g.held = g.holdBuf
			n = g.cut
		}
		g.aligned = g.cut == n
	}
	return n, err
}

// readerIdle reports whether every byte passed on so far ends a complete
// request, so that the parser holds nothing once it has returned its
// commands, and the longest request it has buffered since the last call
// that returned true; that call resets the count.
func (g *guard) readerIdle() (bool, int64) {
	if !g.aligned {
		return false, g.peak
	}
	peak := g.peak
	g.peak = 0
	return true, peak
}

// scan advances the framing over b. On a refusal it returns how many
// bytes of b may be passed on: those before the byte that broke the limit
// (the refused request is incomplete there, so the parser cannot act on
// it, while the requests before it are complete).
func (g *guard) scan(b []byte) (int, error) {
	limit := g.limit()
	reqMax := requestMax(limit)
	g.cut = 0
	defer func() { g.peak = max(g.peak, g.size) }()
	for i := 0; i < len(b); {
		switch g.st {
		case sOff:
			return len(b), nil
		case sStart:
			g.size = 0
			if b[i] == '*' {
				g.st, g.nhdr = sArray, 0
			} else if b[i] != '\n' {
				g.st = sInline
			}
			g.size++
			i++
			if g.st == sStart { // a bare LF: redcon skips it
				g.boundary(i)
			}
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
				g.boundary(j)
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
			if g.nhdr == 0 || g.hdr[g.nhdr-1] != '\r' {
				g.st = sOff // redcon refuses a bare LF
				continue
			}
			v, err := strconv.Atoi(string(g.hdr[:g.nhdr-1]))
			if err != nil || v < 0 || (g.st == sArray && v == 0) {
				g.st = sOff // redcon refuses these
				continue
			}
			if g.st == sArray {
				if int64(v) > math.MaxInt32 {
					return i - 1, &protoError{"invalid multibulk length"}
				}
				g.bulks, g.st = int64(v), sDollar
				continue
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
					g.boundary(i)
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

// boundary records that a request ends at index i of the chunk scanned.
func (g *guard) boundary(i int) {
	g.cut = i
	g.peak = max(g.peak, g.size)
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
