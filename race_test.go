//go:build race

package shardkv

const raceEnabled = true
