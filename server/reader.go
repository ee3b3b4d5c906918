package server

import (
	"bytes"

	"github.com/tidwall/redcon"
)

// reader splits a client's byte stream into commands with redcon's
// ReadNextCommand, which parses in place: a command's arguments are
// slices of the reader's buffer, and its args slice is reused, so reading
// a command allocates nothing. They are good only until the next fill:
// a command handler that keeps an argument past its call copies it (as
// string(arg) does). A reader is used by its client's goroutine only.
//
// Its buffer grows only for a request longer than itself (the guard
// bounds how long that may be), and a buffer grown past renewReaderAt is
// let go once it holds nothing, so that a client that once sent a large
// value does not keep that much while it idles.
type reader struct {
	src        *guard
	buf        []byte
	start, end int      // buf[start:end] is read and not yet parsed
	args       [][]byte // the last command's arguments, reused
}

const (
	// readBufSize is a reader's initial buffer: what every client holds
	// while it idles (redcon's Reader, used before, held 4 KiB and a 4 KiB
	// bufio.Reader), and enough for a pipeline of a hundred small
	// commands in one read.
	readBufSize = 4 << 10
	// renewReaderAt is the buffer size past which a reader's buffer is
	// replaced once it is empty, to let its grown memory go.
	renewReaderAt = 1 << 20
)

func newReader(src *guard) *reader {
	return &reader{src: src, buf: make([]byte, readBufSize)}
}

// next returns the next complete command read, or ok false if what is
// buffered holds none (then fill reads more). An error is a protocol
// error: the client is told and closed.
func (r *reader) next() (args [][]byte, ok bool, err error) {
	b := r.buf[r.start:r.end]
	if len(b) == 0 {
		return nil, false, nil
	}
	if b[0] == '$' {
		// ReadNextCommand reads a leading '$' as Tile38's framing;
		// Redis reads it as the start of an inline command line.
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil, false, nil
		}
		cmd, err := redcon.Parse(b[:i+1])
		if err != nil {
			return nil, false, err
		}
		r.start += i + 1
		return cmd.Args, true, nil
	}
	complete, args, _, left, err := redcon.ReadNextCommand(b, r.args[:0])
	if err != nil {
		return nil, false, err
	}
	if !complete {
		return nil, false, nil
	}
	r.args = args
	r.start = r.end - len(left)
	return args, true, nil
}

// fill reads more of the stream into the buffer, after making room: the
// buffer holds at most one partial request when fill is called, which it
// moves to the front, or grows the buffer for if it fills it. It returns
// how many bytes it read.
func (r *reader) fill() (int, error) {
	switch {
	case r.start == r.end:
		r.start, r.end = 0, 0
		if len(r.buf) > renewReaderAt {
			r.buf = make([]byte, readBufSize)
		}
	case r.start > 0:
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	case r.end == len(r.buf):
		nb := make([]byte, 2*len(r.buf))
		copy(nb, r.buf[:r.end])
		r.buf = nb
	}
	n, err := r.src.Read(r.buf[r.end:])
	r.end += n
	return n, err
}
