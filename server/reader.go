package server

import (
	"bytes"
	"unsafe"

	"github.com/tidwall/redcon"
)

// reader splits a client's byte stream into commands with redcon's
// ReadNextCommand, which parses in place: a command's arguments are
// slices of the reader's buffer, and the slices that hold them are reused,
// so reading a command allocates nothing. They are good only until the
// next fill:
// a command handler that keeps an argument past its call copies it (as
// string(arg) does). A reader is used by its client's goroutine only.
//
// Its buffer grows only for a request longer than itself (the guard
// bounds how long that may be), and a buffer grown past renewReaderAt is
// let go once it holds nothing, so that a client that once sent a large
// value does not keep that much while it idles.
//
// It parses the complete commands its buffer holds all at once, up to
// batchMax, and hands them out one by one, so that before the first of
// them runs hint can be told the key of each (Store.Prefetch): the store's
// cache misses for a pipeline then overlap instead of adding up.
type reader struct {
	src        *guard
	buf        []byte
	start, end int // buf[start:end] is read and not yet parsed

	// The batch: args holds the arguments of its commands one after
	// another, command i's end at cmds[i], and at is the command to hand
	// out next. All reused.
	args [][]byte
	cmds []int
	at   int
	keys []string // hint's argument, reused

	// hint, if set, is given the first argument of each command of a
	// batch of two or more, before the batch runs, and the keys of a
	// multi-key command (hintArgs): views of the buffer, valid only during
	// the call.
	hint func(keys ...string)
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

	// batchMax is how many commands a batch holds at most.
	batchMax = 64

	// hintMax is the longest first argument hinted: a key longer than
	// this costs more to hash twice than a miss saves.
	hintMax = 256
)

func newReader(src *guard) *reader {
	return &reader{src: src, buf: make([]byte, readBufSize)}
}

// next returns the next complete command read, or ok false if what is
// buffered holds none (then fill reads more). An error is a protocol
// error: the client is told and closed. The commands before the one in
// error are handed out first.
func (r *reader) next() (args [][]byte, ok bool, err error) {
	if r.at == len(r.cmds) {
		if err := r.parse(); err != nil || len(r.cmds) == 0 {
			return nil, false, err
		}
	}
	from := 0
	if r.at > 0 {
		from = r.cmds[r.at-1]
	}
	to := r.cmds[r.at]
	args = r.args[from:to:to]
	r.at++
	return args, true, nil
}

// parse starts a new batch with the complete commands buffered, up to
// batchMax. It reports a protocol error only when the batch would be
// empty: a command in error ends the batch before it, and is parsed again
// (and its error returned) once the batch is handed out.
func (r *reader) parse() error {
	r.args, r.cmds, r.at = r.args[:0], r.cmds[:0], 0
	for len(r.cmds) < batchMax {
		b := r.buf[r.start:r.end]
		if len(b) == 0 {
			break
		}
		if b[0] == '$' {
			// ReadNextCommand reads a leading '$' as Tile38's framing;
			// Redis reads it as the start of an inline command line.
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				break
			}
			cmd, err := redcon.Parse(b[:i+1])
			if err != nil {
				if len(r.cmds) == 0 {
					return err
				}
				break
			}
			r.start += i + 1
			r.args = append(r.args, cmd.Args...)
			r.cmds = append(r.cmds, len(r.args))
			continue
		}
		// ReadNextCommand appends to its buffer's empty start: give it
		// what follows the batch's arguments (then the append below
		// copies them onto themselves, unless they outgrew it).
		complete, args, _, left, err := redcon.ReadNextCommand(b, r.args[len(r.args):])
		if err != nil {
			if len(r.cmds) == 0 {
				return err
			}
			break
		}
		if !complete {
			break
		}
		r.args = append(r.args, args...)
		r.cmds = append(r.cmds, len(r.args))
		r.start = r.end - len(left)
	}
	if len(r.cmds) > 1 && r.hint != nil {
		r.hintKeys()
	}
	return nil
}

// hintKeys gives hint the first argument of each command of the batch.
func (r *reader) hintKeys() {
	from := 0
	for _, to := range r.cmds {
		if to-from > 1 {
			r.addKey(r.args[from+1])
		}
		from = to
	}
	r.hintAdded()
}

// hintArgs is called by a multi-key command (MGET, MSET, DEL, EXISTS)
// before it runs the key at args[i], where args are its arguments from the
// first key on and every step-th one is a key. At the start of each window
// of batchMax keys (i a multiple of batchMax*step) it gives hint the
// window's keys, args[i], args[i+step] and so on, so that what is
// prefetched is used before it is evicted; elsewhere it does nothing. It
// inlines, so that a key not at a window's start costs its handler only
// this test.
func (r *reader) hintArgs(args [][]byte, i, step int) {
	if r != nil && r.hint != nil && i%(batchMax*step) == 0 {
		r.hintWindow(args, i, step)
	}
}

// hintWindow is hintArgs at a window's start. A window of one key is not
// hinted (hintAdded).
func (r *reader) hintWindow(args [][]byte, i, step int) {
	for ; i < len(args) && len(r.keys) < batchMax; i += step {
		r.addKey(args[i])
	}
	r.hintAdded()
}

// addKey adds a to the keys for hint, unless it is empty or too long.
func (r *reader) addKey(a []byte) {
	if len(a) > 0 && len(a) <= hintMax {
		// The store reads the key during the call only, and the buffer
		// is not written meanwhile.
		r.keys = append(r.keys, unsafe.String(unsafe.SliceData(a), len(a)))
	}
}

// hintAdded gives hint the keys added, if there are two or more, and
// empties them.
func (r *reader) hintAdded() {
	if len(r.keys) > 1 {
		r.hint(r.keys...)
	}
	clear(r.keys) // no string views of the buffer left behind
	r.keys = r.keys[:0]
}

// fill reads more of the stream into the buffer, after making room. It is
// called once next has handed out the whole batch and found no complete
// command, so the buffer holds at most one partial request, which it
// moves to the front, or grows the buffer for if it fills it. It returns
// how many bytes it read.
func (r *reader) fill() (int, error) {
	if r.at < len(r.cmds) {
		// The batch's arguments point into the bytes that would move.
		panic("server: reader.fill with commands of its batch not handed out")
	}
	switch {
	case r.start == r.end:
		r.start, r.end = 0, 0
		if len(r.buf) > renewReaderAt {
			r.buf = make([]byte, readBufSize)
			// The arguments' slice still holds views of the old buffer
			// past its length (earlier batches, partial parses): drop
			// it, or it would keep the old buffer alive.
			r.args = nil
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
