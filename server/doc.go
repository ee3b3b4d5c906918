// Package server serves a shardkv.Store over the Redis protocol, so that
// redis-cli, redis-benchmark and Redis client libraries (go-redis and the
// like) work with it unchanged.
//
// An embedding service exposes its own store in a few lines:
//
//	store := shardkv.New(server.StoreOptions()...)
//	ln, _ := net.Listen("tcp", "127.0.0.1:6379")
//	srv := server.New(store, server.Config{})
//	go srv.Serve(ln)
//	...
//	srv.Shutdown(ctx) // then store.Close(): the server never closes the store
//
// # Protocol
//
// Requests are parsed with github.com/tidwall/redcon's ReadNextCommand,
// in place in each connection's read buffer (parsing a RESP request
// allocates nothing), and replies encoded with redcon's Append functions;
// RESP requests and inline (telnet-style) requests are accepted, and pipelining
// is answered in order with one write per batch. A pipeline is parsed up
// to 64 requests at a time, and their keys are given to Store.Prefetch
// before the first runs, so that the store's cache misses for them overlap
// (MGET, MSET, DEL and EXISTS do the same with their keys). The server
// speaks RESP2 only: redcon has no RESP3 encoder, so HELLO 3 is answered
// "NOPROTO unsupported protocol version", which makes RESP3-first clients
// (go-redis' default) fall back to RESP2. Commands are case-insensitive;
// error texts are Redis 7's.
//
// redcon's parser has no size limits, so each connection's bytes go
// through a guard that follows the length prefixes and refuses, before they
// are buffered, a bulk longer than Config.MaxRequestBytes or of negative
// length ("ERR Protocol error: invalid bulk length"), a request longer than
// twice that ("ERR Protocol error: request too large"), a multibulk count
// beyond 2^31-1 ("ERR Protocol error: invalid multibulk length") and an
// inline line over 64 KiB ("ERR Protocol error: too big inline request");
// the client is then closed, after the replies to the complete requests
// before it. Other malformed input gets redcon's protocol error (also
// Redis' texts) and the client is closed, after the replies to the
// requests before it. A request of zero arguments ("*0") is ignored, as
// Redis does; an inline line that starts with '$' is an inline command,
// as in Redis (redcon's parser would read it as Tile38's framing).
//
// # Commands
//
// Connection and server: PING, ECHO, QUIT, RESET, SELECT (0 only: "ERR DB
// index is out of range"), HELLO [2 [AUTH user pass] [SETNAME name]],
// AUTH [default] pass, CLIENT ID|SETNAME|GETNAME|SETINFO|LIST|INFO|HELP,
// COMMAND [COUNT|DOCS|INFO|LIST] (DOCS is an empty array: redis-cli then
// shows no hints), INFO [server|clients|stats|keyspace|all ...], TIME,
// DBSIZE, FLUSHDB and FLUSHALL [ASYNC|SYNC], CONFIG GET|SET|RESETSTAT
// (notify-keyspace-events, maxclients, proto-max-bulk-len, timeout,
// requirepass, protected-mode; databases, maxmemory, save and appendonly
// read only; CONFIG GET takes glob patterns; CONFIG SET of several
// parameters applies none if one is invalid).
//
// Strings: GET, SET [NX|XX] [GET] [EX|PX|EXAT|PXAT|KEEPTTL], SETNX, SETEX,
// PSETEX, GETSET, GETDEL, GETEX [EX|PX|EXAT|PXAT|PERSIST], MGET, MSET,
// MSETNX, STRLEN, APPEND, GETRANGE (SUBSTR), SETRANGE, INCR, INCRBY, DECR,
// DECRBY, INCRBYFLOAT. INCRBYFLOAT computes with 64-bit-mantissa floats
// (math/big), as Redis' long double does on x86, and prints as Redis does
// ("%.17Lf" without trailing zeros): 0.1 + 0.2 is "0.3".
//
// Keys: DEL, UNLINK, EXISTS (duplicates counted), TYPE ("string" or
// "none"), RENAME, RENAMENX, EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (with
// NX|XX|GT|LT; a key without TTL counts as infinite; a time not in the
// future deletes the key), TTL, PTTL, EXPIRETIME, PEXPIRETIME, PERSIST,
// KEYS, SCAN cursor [MATCH p] [COUNT n] [TYPE t], RANDOMKEY. Patterns follow
// Redis' glob rules (* ? [abc] [^a] [a-z] and backslash escapes). SCAN's
// cursor is Store.Scan's, in decimal: every key present for a whole walk
// is returned at least once. KEYS, SCAN and DBSIZE are not snapshots;
// DBSIZE counts expired entries not yet reclaimed (Store.Len), as Redis.
//
// Pub/sub: SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, with
// Redis' reply shapes; a subscribed client may only use those, PING
// (answered ["pong", message]), QUIT and RESET.
//
// Extension: CAS key expected newvalue runs Store.CompareAndSwap and
// replies 1 if the value was expected (and is now newvalue), else 0.
// expected is always a value, possibly empty; to create a key only if it
// is absent use SET NX or SETNX.
//
// Not provided: other data types, MULTI/EXEC/WATCH, scripting, blocking
// commands, replication, persistence, ACL users other than "default",
// RESP3, sharded pub/sub (SSUBSCRIBE).
//
// # Atomicity
//
// Every single-key command is one store call, so it is atomic against
// every other operation on the key; read-modify-write commands (GETSET,
// GETDEL, GETEX, APPEND, SETRANGE, SET with NX/XX/GET/KEEPTTL, INCR and its
// kin, INCRBYFLOAT, EXPIRE with NX/XX/GT/LT) go through one Store.Update,
// never a read followed by a write. SETNX and a plain SET NX are
// Store.CompareAndSwap from absent; PERSIST is Store.Persist; RENAME and
// RENAMENX are one Store.Rename, holding both keys' locks.
//
// Multi-key commands (MGET, MSET, DEL, UNLINK, EXISTS, MSETNX) are atomic
// per key only: each key is its own store call, and another client may see
// some keys of an MSET written and others not yet. MSET checks every value
// against the store's limit before writing any, but a quota or closed-store
// error stops it with the earlier keys written.
//
// MSETNX is not atomic across keys: it first checks that none of its keys
// exists (replying 0, and writing nothing, if one does), then creates each
// key with NX semantics through its own Update. A key that another client
// creates between the check and that key's Update keeps the other client's
// value; MSETNX still creates the other keys and then replies 0. It replies
// 1 only if it created every key. Readers may see some of its keys before
// the others.
//
// # Keys and errors
//
// StoreOptions gives a store Redis' rules: any bytes as a key (the empty
// key included, up to 512 MiB), values up to 512 MiB, no key quota. The
// server also serves a store that keeps shardkv's default key rule
// (shardkv.ValidateKey): that is what the command's --strict-keys flag
// means. Then a command on an invalid key is answered "ERR invalid key
// format: <why>" (the store's error), never a panic; MGET reports an
// invalid key as missing (nil) and DEL, UNLINK and EXISTS count it as
// absent, since it cannot exist. Other store errors: a value longer than
// the store's MaxValueSize is "ERR string exceeds maximum allowed size (N
// bytes)", a new key beyond the store's MaxKeys is "OOM command not allowed
// when the store's key quota (maxkeys) is reached." (the OOM prefix
// clients know from Redis' maxmemory refusal), a closed store is "ERR
// store closed". The client and the server go on in each case. A panic in
// a command is recovered, logged at error, and answered "ERR internal
// error".
//
// # Keyspace notifications
//
// With notify-keyspace-events set (Config.NotifyKeyspaceEvents or CONFIG
// SET; Redis' flags K, E, g, $, x, n, A and the others, parsed and shown as
// Redis does) the server subscribes to the store's watch (only then: a
// subscription makes every write copy its event) and publishes each event
// on "__keyspace@0__:<key>" (message: the event) and/or
// "__keyevent@0__:<event>" (message: the key). The event is Event.Op:
// set, setrange, incrby (INCR, INCRBY, DECR, DECRBY), incrbyfloat, append
// (class $), del, expire, persist, rename_from, rename_to (class g),
// expired (class x); "new" (class n) precedes the event that created a key.
// Differences from Redis: SET with EX/PX and SETEX publish only "set"
// (Redis also publishes "expire"); FLUSHDB and FLUSHALL publish nothing
// (Store.Clear has no events). If the watch falls behind the store's
// writers (its capacity is WithWatchCapacity; StoreOptions sets 65536),
// the lost events are logged at warn and counted in INFO stats as
// keyspace_notifications_lost.
//
// # Pub/sub delivery
//
// Publishing (PUBLISH, and the notification goroutine) never waits for a
// subscriber: it appends the encoded message to the subscriber's queue,
// which the subscriber's event loop (or, with a goroutine per client, its
// own writer goroutine) writes out. A subscriber
// with Config.PubSubBacklog messages still queued is disconnected (logged
// at warn, counted as client_output_buffer_limit_disconnections in INFO
// stats), as Redis' client-output-buffer-limit for pubsub does. redcon's
// PubSub type is not used: it writes to the subscriber's socket under its
// locks, so a stalled subscriber would stall every publisher.
//
// # Connections and limits
//
// On Linux, clients are served by epoll event loops (Config.EventLoops,
// by default half of GOMAXPROCS): each loop is one goroutine that reads
// whichever of its clients have sent something, runs the complete
// requests read, in order, and writes each client's replies with one
// write(2); a client whose replies its socket does not take is not read
// again until they are written. Elsewhere, for a clustered store, for a
// connection with no file descriptor (TLS, net.Pipe) and with EventLoops
// below 0, each client has a goroutine of its own doing the same (and a
// writer goroutine in subscribe mode). Replies and behaviour are the same
// on both engines; the tests run on each. A command runs on its client's
// loop, so a slow one (KEYS over a large store) delays that loop's other
// clients, as in Redis. Config.MaxClients bounds
// the clients served ("ERR max number of clients reached", then close);
// with no password and protected mode on (the default), clients not on a
// loopback address get Redis 7's DENIED message and are closed.
// Config.IdleTimeout closes idle clients, except subscribers. Clients must
// AUTH (or HELLO ... AUTH) when a password is set: "NOAUTH Authentication
// required." before, "WRONGPASS invalid username-password pair or user is
// disabled." for a wrong one; the password is compared in constant time.
// CONFIG SET requirepass applies to clients that connect afterwards;
// once it is removed (set to ""), clients that had not authenticated run
// commands too, as in Redis (HELLO still asks them for AUTH).
// Connection errors are logged at debug, limit breaches at warn.
//
// Shutdown stops accepting, lets every client finish the requests it has
// already read (their replies are written), then closes it, waiting at
// most until its context ends; Close closes everything at once. Both wait
// for the server's goroutines to end. A client closed while it is still
// sending (at a Shutdown, or pipelining past QUIT) gets its last replies:
// rather than close a socket with unread input, which makes the kernel
// reset the connection and drop what it has not delivered, the server
// shuts its write side and discards the input until the replies are
// acknowledged, for at most 2 s (a lingering close, as HTTP servers do).
//
// # Cluster mode
//
// A store built with shardkv.WithBackend (for example an etcdkv.Backend,
// so that every node of a deployment sees one keyspace) is served in
// cluster mode: each key command becomes calls of the store's Context
// methods, each bounded by Config.ClusterTimeout, and is as atomic as
// those calls are. Keyspace notifications come from the store's watch,
// which a shardkv.WatchBackend feeds with every node's writes: a server's
// subscribers see the writes made through every server of the cluster.
// Events carry the kinds' names (set, del, expired), since the backend's
// stream does not say which command made a write: an INCR is a "set".
//
//   - GET, MGET, STRLEN, GETRANGE, GETEX (no options), EXISTS, TYPE: one
//     Get or Exists per key.
//   - SET, SET EX/PX/EXAT/PXAT, SETEX, PSETEX: one Set or SetWithTTL;
//     MSET: one Set per key; DEL, UNLINK: one Delete per key.
//   - SET NX, SETNX: one CompareAndSwap from absent.
//   - SET XX, SET GET, GETSET: read, then CompareAndSwap from the value
//     read, again while another writer gets in between (at most 100
//     times, then an error): atomic. They drop the key's TTL, as in Redis.
//   - INCR, DECR, INCRBY, DECRBY: one Increment, which keeps the key's
//     TTL. At the int64 bounds it saturates, where Redis answers "ERR
//     increment or decrement would overflow".
//   - CAS: one CompareAndSwap.
//   - KEYS, SCAN, DBSIZE, RANDOMKEY: one ListKeys (of the pattern's literal
//     prefix), so each reads the whole matching key list. SCAN answers
//     every matching key in one reply, with cursor 0.
//   - FLUSHDB, FLUSHALL: ListKeys, then a Delete of each key: not atomic,
//     a key written meanwhile may survive.
//
// The other key commands answer "ERR '<name>' is not supported in cluster
// mode", because a Backend has no call that does them atomically: APPEND,
// SETRANGE, INCRBYFLOAT, GETDEL, GETEX with options, MSETNX, SET with
// KEEPTTL or with NX, XX or GET together with an expire time, RENAME,
// RENAMENX, EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT, PERSIST, TTL, PTTL,
// EXPIRETIME and PEXPIRETIME. INFO's expired_keys counts only the serving
// store's own reclaims (none, in cluster mode).
package server
