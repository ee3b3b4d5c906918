// Package shardkv is an embedded, sharded, concurrent key-value store with
// per-key TTLs, an exact key quota, atomic increment and compare-and-swap,
// and a broadcast watch of every change. It keeps the behaviour and API of
// the reference Rust store (one lock over a map, a sweep of every entry on
// each read) while scaling with cores and never paying for other keys'
// expiry on a read.
//
// # Basics
//
// [New] makes a [Store]; every method is safe for concurrent use. Values are
// copied in and out: mutating a slice passed to Set, or returned by Get,
// never changes what the store holds. [Store.View] and [Store.AppendValue]
// read without allocating.
//
// # Design
//
// Keys are hashed with xxhash onto a power-of-two number of shards. A shard
// keeps its records (key, value and deadline) back to back in a few large
// pointer-free byte chunks, and indexes them with a directory of small
// open-addressing tables whose slots hold integers only (extendible
// hashing: a full table splits in two, a few slots per insert as it
// fills). The garbage collector so marks one object per chunk or table,
// never one per entry, and no write copies more than one table. Reads take no lock: they load
// the slot and the chunk with atomic loads and compare the record's
// deadline with the monotonic clock, which is not read at all for a key
// without a TTL. A write appends its record under the shard lock and
// publishes it with one atomic store; overwritten records are reclaimed by
// a compaction whose work is bounded per lock hold.
//
// Expiry is reclaimed by a hierarchical timing wheel per shard (7 levels of
// 64 slots from a 1 ms tick up to 139 years, and an overflow list), with
// O(1) schedule and cancel. One background goroutine sleeps until the next
// non-empty slot is due, reclaims what is due at most 512 timers per lock
// hold, and publishes one [EventExpire] per reclaimed entry. An expired
// entry is absent to every operation from its deadline on and is reclaimed
// within two ticks of it.
//
// The key quota is one atomic counter, taken with a compare-and-swap when a
// key is created and released when one is deleted, reclaimed or cleared, so
// the store never holds more than MaxKeys entries and never refuses a key
// while it holds fewer.
//
// Events go through a bounded ring that writers append to with one atomic
// add and one atomic store, under the key's shard lock (so one key's events
// are in order), and never wait on a subscriber. With no subscriber a write
// does no event work at all.
//
// # Caveats
//
// ListKeys, Keys and All visit the store a table (at most 3072 keys) at a
// time, and Clear a shard at a time: none is a snapshot of the store. A key
// present for a whole ListKeys, Keys or All is listed exactly once. An event's
// value is shared by every subscriber and must not be written. Testing TTLs:
// a Store made inside a testing/synctest bubble runs on the bubble's fake
// clock, reaper included, so TTL tests need no sleeping.
package shardkv
