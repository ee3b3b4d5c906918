// Package etcdkv is a [shardkv.Backend] (and [shardkv.WatchBackend]) over
// etcd v3: cluster mode for shardkv, where every node's store keeps its data
// in one etcd cluster and sees every node's writes.
//
//	cli, err := clientv3.New(clientv3.Config{
//		Endpoints:          endpoints,
//		MaxCallSendMsgSize: etcdkv.RequestBytes(shardkv.DefaultMaxValueSize) + 512<<10,
//	})
//	...
//	store := shardkv.New(shardkv.WithBackend(etcdkv.New(cli, etcdkv.WithNamespace("app/"))))
//	defer cli.Close() // after store.Close: the backend does not own the client
//
// # How each operation maps onto etcd
//
// Each method's comment gives its etcd requests and their atomicity. In
// short: Get is a linearizable range read ([WithSerializableReads] makes
// reads serializable); Set a Put with no lease; SetWithTTL a lease grant
// then a Put attached to it; Delete a transaction that deletes the key;
// Exists a count-only range; ListKeys a keys-only prefix range, paged at
// one revision; Increment an optimistic transaction on the key's
// ModRevision, retried on conflict; CompareAndSwap one transaction; Watch a
// prefix watch with previous values, resumed where it stopped.
//
// # TTLs are etcd leases
//
// SetWithTTL grants a lease of its own for the key. etcd leases are whole
// seconds, so the TTL is rounded up to the next second (1.2 s becomes 2 s),
// and the server raises a lease shorter than its minimum (1.5 election
// timeouts, rounded up to a second: 2 s with etcd's default 1 s election
// timeout) to that minimum. A lease is revoked, deleting its key, by the
// leader's expiry loop, which runs every 500 ms, so an entry stays visible
// to every read for up to about half a second past its TTL (unlike the
// local store, where it is absent from the instant its deadline passes),
// and a leader change renews every lease, so after one an entry may live
// up to a further TTL. A TTL <= 0 stores nothing visible: SetWithTTL then
// deletes the key, and subscribers see the delete as an EventExpire, as the
// local store reclaims an entry stored already expired (the local store's
// EventSet before it has no counterpart here).
//
// # Expiry or delete
//
// etcd reports a lease's revocation as plain DELETE events, the same as a
// delete. The backend tells them apart so: its own Delete of a key that
// has a lease also writes [ReservedKey] (the key's name as the value) in
// the same transaction, so at the same revision; SetWithTTL with a TTL <= 0
// does likewise with an expiry mark. Watch then reports a DELETE as
//   - what the mark written at its revision says, if there is one for it;
//   - else, an EventExpire if the deleted key had a lease (its previous
//     version, which the watch asks for, says so): a revocation;
//   - else, an EventDelete.
//
// The rule is exact for writes made through this package. A delete of a
// leased key made some other way (etcdctl del, a transaction of another
// client) is reported as an expiry, and one whose previous version was
// already compacted away when the watch read it as a delete.
//
// # Request size
//
// A CompareAndSwap sends both its values in one transaction, so with the
// store's default 1 MiB MaxValueSize it needs about 2 MiB per request,
// more than both etcd's defaults allow: the server's --max-request-bytes
// (1.5 MiB) and the client's MaxCallSendMsgSize (2 MiB). Run the cluster
// with --max-request-bytes of at least [RequestBytes](maxValueSize) and set
// the client's MaxCallSendMsgSize to that plus gRPC's overhead (512 KiB
// will do). A plain Set of a 1 MiB value fits etcd's defaults. A request
// over a limit fails with a *[shardkv.StorageError] wrapping etcd's
// rpctypes.ErrRequestTooLarge (server) or a gRPC ResourceExhausted status
// (client); either way nothing was written.
//
// # Errors
//
// Every failure of an etcd request comes back as an error that
// [errors.As] matches as a *[shardkv.StorageError] and that [errors.Is]
// matches against its cause: the etcd error (rpctypes.ErrNoLeader, ...),
// the gRPC status, or ctx's error when ctx ended (context.DeadlineExceeded,
// context.Canceled). A write that failed in a way that does not tell
// whether etcd applied it (ctx ended after the request was sent, the
// connection broke, the leader changed, etcd's own request timeout) also
// matches [ErrAmbiguous]: it may or may not have taken effect, and a read
// will tell. A refusal by the server (an empty key, a request too large)
// does not. Nothing here retries a write whose outcome is unknown; the
// etcd client itself retries only requests it never sent.
//
// Keys are checked by the backend's rule, as the Backend contract leaves
// validation to the backend: [shardkv.ValidateKey] by default, the local
// store's default rule, or the one [WithKeyValidator] gives. A key it
// refuses fails every call with an error wrapping [shardkv.ErrInvalidKey],
// before anything is sent. The empty key and [ReservedKey] are the
// backend's own, whatever the rule: writes of either fail with a
// *[shardkv.StorageError], and reads of either find nothing.
package etcdkv
