package server_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/shardkv/shardkv"
	"github.com/shardkv/shardkv/server"
)

// A Go service exposes its own store over the Redis protocol: redis-cli,
// redis-benchmark and any Redis client can then read and write it while
// the service keeps using the store directly.
func Example() {
	store := shardkv.New(server.StoreOptions()...)
	defer store.Close()

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := server.New(store, server.Config{})
	go srv.Serve(ln)

	store.SetString("greeting", "hello from Go") // the service's own write

	// A Redis client (here a raw connection speaking RESP).
	conn, _ := net.Dial("tcp", ln.Addr().String())
	r := bufio.NewReader(conn)
	fmt.Fprint(conn, "*2\r\n$3\r\nGET\r\n$8\r\ngreeting\r\n")
	r.ReadString('\n') // $13
	value, _ := r.ReadString('\n')
	fmt.Println(strings.TrimSpace(value))
	fmt.Fprint(conn, "INCRBY visits 41\r\nINCR visits\r\n") // inline commands work too
	r.ReadString('\n')
	n, _ := r.ReadString('\n')
	fmt.Println(strings.TrimSpace(n))
	conn.Close()

	visits, _, _ := store.GetString("visits") // and the service sees the client's writes
	fmt.Println(visits)

	srv.Shutdown(context.Background())
	// Output:
	// hello from Go
	// :42
	// 42
}
