// Package fuzz holds the fuzz targets for shardkv: a differential fuzzer
// that drives a Store and a plain model side by side on a fake clock
// (FuzzOps), a concurrent fuzzer that checks the invariants any
// interleaving keeps (FuzzConcurrent), and small targets for the key rule
// (FuzzValidateKey) and Increment's parsing (FuzzIncrement). Everything is
// in the _test.go files; see README.md for how to run them.
package fuzz
