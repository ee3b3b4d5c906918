//go:build !linux

package server

import "net"

// loop is the event loop of Linux (loop.go). Elsewhere there is none:
// newLoops returns nil and every client has a goroutine of its own, so
// none of these methods is ever called.
type loop struct{}

func newLoops(*Server, int) []*loop { return nil }

func detach(net.Conn) (int, bool) { return -1, false }

type fdConn int

func (fdConn) Read([]byte) (int, error) { panic("server: no event loop on this OS") }

func (*loop) post(*client)       { panic("server: no event loop on this OS") }
func (*loop) wake()              { panic("server: no event loop on this OS") }
func (*loop) forceClose()        { panic("server: no event loop on this OS") }
func (*loop) run()               { panic("server: no event loop on this OS") }
func (*client) loopFlush() error { panic("server: no event loop on this OS") }
func (*client) closeFD()         { panic("server: no event loop on this OS") }

// lingerConn is Linux's (loop.go); elsewhere a connection closes at once.
func lingerConn(net.Conn) {}

// loopsSupported is false: no OS but Linux has the event loop.
const loopsSupported = false
