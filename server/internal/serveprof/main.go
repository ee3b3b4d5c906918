// Command serveprof serves a store over the Redis protocol on addr and
// writes a CPU profile of the process for the given duration: run a
// client (redis-benchmark) against it meanwhile to see where a server's
// time goes.
//
//	go run ./server/internal/serveprof -addr 127.0.0.1:7777 -for 10s -out cpu.prof &
//	redis-benchmark -p 7777 -t incr -n 2000000 -P 16 -c 50 -r 100000
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"os"
	"runtime/pprof"
	"time"

	"github.com/shardkv/shardkv"
	"github.com/shardkv/shardkv/server"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7777", "address to serve on")
	dur := flag.Duration("for", 10*time.Second, "how long to profile")
	out := flag.String("out", "cpu.prof", "CPU profile")
	wait := flag.Duration("wait", 2*time.Second, "how long to serve before profiling")
	flag.Parse()
	store := shardkv.New(server.StoreOptions()...)
	defer store.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := server.New(store, server.Config{})
	go srv.Serve(ln)
	time.Sleep(*wait)
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	pprof.StartCPUProfile(f)
	time.Sleep(*dur)
	pprof.StopCPUProfile()
	f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
}
