// Package bench measures shardkv against the reference design and the Go
// caches people choose instead. It is its own module, so that the peers'
// dependencies never reach the library's go.mod.
//
//   - stores: one small interface, [stores.Store], that every contender
//     implements, with capability flags (a workload a store cannot run is
//     "n/a", never emulated);
//   - reference: a faithful Go port of the reference Rust store;
//   - workload: keys, zipfian and uniform key orders, the workloads and the
//     runners, shared by the benchmarks here and by cmd/kvbench.
//
// The benchmarks (bench_test.go) are one matrix, BenchmarkKV, named
// keys=<size>/store=<store>/workload=<workload> (and .../op=<operation>
// for single operations), so that benchstat can set the stores side by side:
//
//	cd bench && go test -run '^$' -bench . ./...     # all of it
//	cd bench && go test -run '^$' -bench 'KV/keys=1M/store=/workload=(read100|read90|write100|ttl-churn)$' \
//		-count 5 -cpu 2 > peers.txt
//	benchstat -col /store -row /workload peers.txt   # ratios to shardkv, the first column
//	SHARDKV_BENCH_10M=1 go test -run '^$' -bench 'KV/keys=10M' -timeout 2h
//
// Each store is built and prefilled only when one of its benchmarks is
// selected, once per size.
//
// The environment variables SHARDKV_BENCH_SIZES (e.g. "10k,1M"),
// SHARDKV_BENCH_STORES (e.g. "shardkv,otter") and SHARDKV_BENCH_RATE (the
// offered load of the latency cells, ops/s) narrow or change the matrix;
// -short runs only the 10k size.
package bench
