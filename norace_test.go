//go:build !race

package shardkv

const raceEnabled = false
