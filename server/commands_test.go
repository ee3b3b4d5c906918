package server

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shardkv/shardkv"
)

const (
	wrongArgs = "ERR wrong number of arguments for '%s' command"
	notInt    = "ERR value is not an integer or out of range"
	syntax    = "ERR syntax error"
)

func arity(name string) errReply { return errReply(fmt.Sprintf(wrongArgs, name)) }

func TestConnectionCommands(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client()
	run(t, c, []step{
		{a("PING"), "PONG"},
		{a("ping", "hello"), "hello"},
		{a("PING", "a", "b"), arity("ping")},
		{a("ECHO", "x y"), "x y"},
		{a("ECHO"), arity("echo")},
		{a("SELECT", "0"), "OK"},
		{a("SELECT", "1"), errReply("ERR DB index is out of range")},
		{a("SELECT", "x"), errReply(notInt)},
		{a("FOO", "a", "b"), errReply("ERR unknown command 'FOO', with args beginning with: 'a' 'b' ")},
		{a("foo"), errReply("ERR unknown command 'foo', with args beginning with: ")},
		{a("GET"), arity("get")},
		{a("gEt", "nokey"), nilReply},
		{a("HELLO", "3"), errReply("NOPROTO unsupported protocol version")},
		{a("HELLO", "1"), errReply("NOPROTO unsupported protocol version")},
		{a("HELLO", "x"), errReply("ERR Protocol version is not an integer or out of range")},
		{a("HELLO", "2", "FOO"), errReply("ERR Syntax error in HELLO option 'FOO'")},
		{a("HELLO", "2", "SETNAME", "bad name"), errReply("ERR Client names cannot contain spaces, newlines or special characters.")},
		{a("AUTH", "pw"), errReply("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")},
		{a("AUTH", "default", "anything"), "OK"},
		{a("AUTH", "bob", "anything"), errReply("WRONGPASS invalid username-password pair or user is disabled.")},
		{a("AUTH", "a", "b", "c"), errReply(syntax)},
		{a("CLIENT", "SETNAME", "conn1"), "OK"},
		{a("CLIENT", "GETNAME"), "conn1"},
		{a("CLIENT", "SETNAME", "a b"), errReply("ERR Client names cannot contain spaces, newlines or special characters.")},
		{a("CLIENT", "SETINFO", "LIB-NAME", "x"), "OK"},
		{a("CLIENT", "SETINFO", "FOO", "x"), errReply("ERR Unrecognized option 'FOO'")},
		{a("CLIENT", "NOPE"), errReply("ERR unknown subcommand 'NOPE'. Try CLIENT HELP.")},
		{a("CLIENT", "ID", "x"), arity("client|id")},
		{a("CLIENT"), arity("client")},
	})
	r := e.raw()
	r.send("PING\r\nQUIT\r\nPING\r\n")
	r.expect("+PONG\r\n+OK\r\n")
	if rest := r.expectClosed(); rest != "" {
		t.Errorf("after QUIT: %q", rest)
	}

	// HELLO 2 answers the RESP2 map as a flat array.
	got, err := c.Do(ctx, "HELLO", "2", "SETNAME", "h").Slice()
	if err != nil || len(got) != 14 || got[0] != "server" || got[1] != "redis" || got[4] != "proto" || got[5] != int64(2) {
		t.Fatalf("HELLO 2: %#v, %v", got, err)
	}
	if got[3] != DefaultVersion {
		t.Errorf("HELLO version %v", got[3])
	}

	id, err := c.ClientID(ctx).Result()
	if err != nil || id <= 0 {
		t.Fatalf("CLIENT ID: %v %v", id, err)
	}
	list, err := c.ClientList(ctx).Result()
	if err != nil || !strings.Contains(list, "id=") || !strings.Contains(list, "addr=127.0.0.1:") {
		t.Fatalf("CLIENT LIST: %q %v", list, err)
	}
	info, err := c.Do(ctx, "CLIENT", "INFO").Text()
	if err != nil || !strings.HasPrefix(info, "id=") || !strings.Contains(info, "cmd=client") {
		t.Fatalf("CLIENT INFO: %q %v", info, err)
	}
	tm, err := c.Time(ctx).Result()
	if err != nil || time.Since(tm).Abs() > 5*time.Second {
		t.Fatalf("TIME: %v %v", tm, err)
	}
}

func TestStringCommands(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client()
	run(t, c, []step{
		{a("SET", "k", "v"), "OK"},
		{a("GET", "k"), "v"},
		{a("GET", "missing"), nilReply},
		{a("SET", "k", "v2", "NX"), nilReply},
		{a("SET", "k2", "v", "NX"), "OK"},
		{a("SET", "k", "v3", "XX"), "OK"},
		{a("SET", "k3", "v", "XX"), nilReply},
		{a("GET", "k3"), nilReply},
		{a("SET", "k", "v4", "GET"), "v3"},
		{a("SET", "new", "v", "GET"), nilReply},
		{a("SET", "new", "w", "NX", "GET"), "v"}, // not set, old value replied
		{a("GET", "new"), "v"},
		{a("SET", "k", "v", "NX", "XX"), errReply(syntax)},
		{a("SET", "k", "v", "XX", "NX"), errReply(syntax)},
		{a("SET", "k", "v", "EX", "10", "PX", "10"), errReply(syntax)},
		{a("SET", "k", "v", "EX", "10", "KEEPTTL"), errReply(syntax)},
		{a("SET", "k", "v", "KEEPTTL", "PXAT", "10"), errReply(syntax)},
		{a("SET", "k", "v", "EX"), errReply(syntax)},
		{a("SET", "k", "v", "PERSIST"), errReply(syntax)},
		{a("SET", "k", "v", "FOO"), errReply(syntax)},
		{a("SET", "k", "v", "EX", "0"), errReply("ERR invalid expire time in 'set' command")},
		{a("SET", "k", "v", "EX", "-5"), errReply("ERR invalid expire time in 'set' command")},
		{a("SET", "k", "v", "PX", "9223372036854775807"), errReply("ERR invalid expire time in 'set' command")},
		{a("SET", "k", "v", "EX", "9223372036854775807"), errReply("ERR invalid expire time in 'set' command")},
		{a("SET", "k", "v", "EX", "abc"), errReply(notInt)},
		{a("SET", "k"), arity("set")},
		{a("SET", "past", "v", "PXAT", "1"), "OK"},
		{a("GET", "past"), nilReply},
		{a("SET", "k", "v", "EX", "5", "EX", "7"), "OK"}, // the same option twice: last wins
		{a("TTL", "k"), int64(7)},
		{a("SET", "k", "w", "KEEPTTL"), "OK"},
		{a("TTL", "k"), int64(7)},
		{a("SET", "k", "w", "XX", "KEEPTTL", "GET"), "w"},
		{a("TTL", "k"), int64(7)},
		{a("SET", "k", "x"), "OK"},
		{a("TTL", "k"), int64(-1)},
		{a("SET", "k", "x", "EXAT", strconv.FormatInt(time.Now().Unix()+100, 10)), "OK"},
		{a("SET", "k", "x", "PX", "100000", "NX"), nilReply},

		{a("SETNX", "nx", "1"), int64(1)},
		{a("SETNX", "nx", "2"), int64(0)},
		{a("GET", "nx"), "1"},
		{a("SETEX", "ex", "100", "v"), "OK"},
		{a("TTL", "ex"), int64(100)},
		{a("SETEX", "ex", "0", "v"), errReply("ERR invalid expire time in 'setex' command")},
		{a("SETEX", "ex", "x", "v"), errReply(notInt)},
		{a("PSETEX", "ex", "-1", "v"), errReply("ERR invalid expire time in 'psetex' command")},
		{a("PSETEX", "pex", "100000", "v"), "OK"},
		{a("TTL", "pex"), int64(100)},

		{a("SET", "gs", "old"), "OK"},
		{a("EXPIRE", "gs", "100"), int64(1)},
		{a("GETSET", "gs", "new"), "old"},
		{a("TTL", "gs"), int64(-1)}, // GETSET drops the TTL, as SET
		{a("GETSET", "gs-missing", "v"), nilReply},
		{a("GET", "gs-missing"), "v"},
		{a("GETDEL", "gs"), "new"},
		{a("GET", "gs"), nilReply},
		{a("GETDEL", "gs"), nilReply},

		{a("SET", "ge", "v"), "OK"},
		{a("GETEX", "ge"), "v"},
		{a("GETEX", "ge", "EX", "100"), "v"},
		{a("TTL", "ge"), int64(100)},
		{a("GETEX", "ge", "PERSIST"), "v"},
		{a("TTL", "ge"), int64(-1)},
		{a("GETEX", "ge", "PX", "50000"), "v"},
		{a("TTL", "ge"), int64(50)},
		{a("GETEX", "ge", "NX"), errReply(syntax)},
		{a("GETEX", "ge", "KEEPTTL"), errReply(syntax)},
		{a("GETEX", "ge", "EX", "1", "PERSIST"), errReply(syntax)},
		{a("GETEX", "ge", "EX", "0"), errReply("ERR invalid expire time in 'getex' command")},
		{a("GETEX", "missing", "EX", "10"), nilReply},
		{a("GETEX", "ge", "PXAT", "1"), "v"},
		{a("EXISTS", "ge"), int64(0)},

		{a("MSET", "a", "1", "b", "2"), "OK"},
		{a("MSET", "a"), arity("mset")},
		{a("MSET", "a", "1", "b"), arity("mset")},
		{a("MGET", "a", "b", "nope"), []any{"1", "2", nil}},
		{a("MSETNX", "x", "1", "y", "2"), int64(1)},
		{a("MSETNX", "x", "3", "z", "4"), int64(0)},
		{a("GET", "z"), nilReply},
		{a("MSETNX", "x"), arity("msetnx")},
		{a("STRLEN", "a"), int64(1)},
		{a("STRLEN", "nope"), int64(0)},
		{a("APPEND", "a", "xyz"), int64(4)},
		{a("GET", "a"), "1xyz"},
		{a("APPEND", "ap", "abc"), int64(3)},
		{a("GETRANGE", "a", "1", "2"), "xy"},
		{a("GETRANGE", "a", "-3", "-1"), "xyz"},
		{a("GETRANGE", "a", "5", "10"), ""},
		{a("GETRANGE", "nope", "0", "-1"), ""},
		{a("SETRANGE", "sr", "3", "ab"), int64(5)},
		{a("GET", "sr"), "\x00\x00\x00ab"},
		{a("SETRANGE", "sr", "0", "X"), int64(5)},
		{a("GET", "sr"), "X\x00\x00ab"},
		{a("SETRANGE", "sr", "-1", "X"), errReply("ERR offset is out of range")},
		{a("SETRANGE", "empty", "5", ""), int64(0)},
		{a("EXISTS", "empty"), int64(0)},

		{a("INCR", "n"), int64(1)},
		{a("INCRBY", "n", "10"), int64(11)},
		{a("DECR", "n"), int64(10)},
		{a("DECRBY", "n", "5"), int64(5)},
		{a("INCRBY", "n", "-7"), int64(-2)},
		{a("INCR", "a"), errReply(notInt)},
		{a("INCRBY", "n", "abc"), errReply(notInt)},
		{a("INCRBY", "n", "1.5"), errReply(notInt)},
		{a("SET", "big", "9223372036854775807"), "OK"},
		{a("INCR", "big"), errReply("ERR increment or decrement would overflow")},
		{a("SET", "small", "-9223372036854775808"), "OK"},
		{a("DECR", "small"), errReply("ERR increment or decrement would overflow")},
		{a("DECRBY", "n", "-9223372036854775808"), errReply("ERR decrement would overflow")},
		{a("SET", "sp", " 1"), "OK"},
		{a("INCR", "sp"), errReply(notInt)},
		{a("SET", "lz", "01"), "OK"},
		{a("INCR", "lz"), errReply(notInt)},
		{a("SET", "plus", "+1"), "OK"},
		{a("INCR", "plus"), errReply(notInt)},
		{a("SET", "ttlc", "5", "EX", "100"), "OK"},
		{a("INCR", "ttlc"), int64(6)},
		{a("TTL", "ttlc"), int64(100)}, // INCR keeps the TTL

		{a("INCRBYFLOAT", "f", "10.50"), "10.5"},
		{a("INCRBYFLOAT", "f", "0.1"), "10.6"},
		{a("INCRBYFLOAT", "f", "-5"), "5.6"},
		{a("SET", "f", "5.0e3"), "OK"},
		{a("INCRBYFLOAT", "f", "2.0e2"), "5200"},
		{a("INCRBYFLOAT", "g", "0.1"), "0.1"},
		{a("INCRBYFLOAT", "g", "0.2"), "0.3"},
		{a("INCRBYFLOAT", "g", "-0.3"), "0"},
		{a("INCRBYFLOAT", "g", "1e20"), "100000000000000000000"},
		{a("INCRBYFLOAT", "f", "abc"), errReply("ERR value is not a valid float")},
		{a("INCRBYFLOAT", "f", " 1"), errReply("ERR value is not a valid float")},
		{a("INCRBYFLOAT", "f", "nan"), errReply("ERR value is not a valid float")},
		{a("INCRBYFLOAT", "f", "inf"), errReply("ERR increment would produce NaN or Infinity")},
		{a("INCRBYFLOAT", "a", "1"), errReply("ERR value is not a valid float")},

		{a("SET", "cas", "one"), "OK"},
		{a("CAS", "cas", "two", "three"), int64(0)},
		{a("CAS", "cas", "one", "two"), int64(1)},
		{a("GET", "cas"), "two"},
		{a("CAS", "cas-missing", "", "x"), int64(0)},
		{a("CAS", "cas"), arity("cas")},
	})
}

func TestKeyCommands(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client()
	now := time.Now().Unix()
	run(t, c, []step{
		{a("MSET", "a", "1", "b", "2", "c", "3"), "OK"},
		{a("DEL", "a", "b", "nope"), int64(2)},
		{a("UNLINK", "c", "c"), int64(1)},
		{a("DEL"), arity("del")},
		{a("SET", "a", "1"), "OK"},
		{a("EXISTS", "a", "a", "b"), int64(2)},
		{a("TYPE", "a"), "string"},
		{a("TYPE", "b"), "none"},
		{a("RENAME", "a", "b"), "OK"},
		{a("GET", "b"), "1"},
		{a("EXISTS", "a"), int64(0)},
		{a("RENAME", "a", "b"), errReply("ERR no such key")},
		{a("RENAME", "b", "b"), "OK"},
		{a("RENAMENX", "b", "b"), int64(0)},
		{a("SET", "c", "3"), "OK"},
		{a("RENAMENX", "b", "c"), int64(0)},
		{a("RENAMENX", "b", "d"), int64(1)},
		{a("RENAMENX", "zz", "d"), errReply("ERR no such key")},

		{a("SET", "e", "v"), "OK"},
		{a("TTL", "e"), int64(-1)},
		{a("PTTL", "e"), int64(-1)},
		{a("TTL", "nope"), int64(-2)},
		{a("PTTL", "nope"), int64(-2)},
		{a("EXPIRETIME", "e"), int64(-1)},
		{a("EXPIRETIME", "nope"), int64(-2)},
		{a("PEXPIRETIME", "nope"), int64(-2)},
		{a("EXPIRE", "e", "100"), int64(1)},
		{a("TTL", "e"), int64(100)},
		{a("EXPIRE", "nope", "100"), int64(0)},
		{a("EXPIRE", "e", "200", "NX"), int64(0)},
		{a("EXPIRE", "e", "200", "XX"), int64(1)},
		{a("TTL", "e"), int64(200)},
		{a("EXPIRE", "e", "50", "GT"), int64(0)},
		{a("EXPIRE", "e", "300", "gt"), int64(1)},
		{a("EXPIRE", "e", "400", "LT"), int64(0)},
		{a("EXPIRE", "e", "10", "LT"), int64(1)},
		{a("TTL", "e"), int64(10)},
		{a("PERSIST", "e"), int64(1)},
		{a("PERSIST", "e"), int64(0)},
		{a("PERSIST", "nope"), int64(0)},
		{a("EXPIRE", "e", "100", "XX"), int64(0)},
		{a("EXPIRE", "e", "100", "GT"), int64(0)}, // no TTL counts as infinite
		{a("EXPIRE", "e", "100", "LT"), int64(1)},
		{a("EXPIRE", "e", "100", "NX"), int64(0)},
		{a("EXPIRE", "e", "1", "NX", "XX"), errReply("ERR NX and XX, GT or LT options at the same time are not compatible")},
		{a("EXPIRE", "e", "1", "NX", "GT"), errReply("ERR NX and XX, GT or LT options at the same time are not compatible")},
		{a("EXPIRE", "e", "1", "GT", "LT"), errReply("ERR GT and LT options at the same time are not compatible")},
		{a("EXPIRE", "e", "1", "FOO"), errReply("ERR Unsupported option FOO")},
		{a("EXPIRE", "e", "abc"), errReply(notInt)},
		{a("EXPIRE", "e", "9223372036854775807"), errReply("ERR invalid expire time in 'expire' command")},
		{a("PEXPIRE", "e", "9223372036854775807"), errReply("ERR invalid expire time in 'pexpire' command")},
		{a("EXPIRE", "e"), arity("expire")},
		{a("PEXPIRE", "e", "50000"), int64(1)},
		{a("TTL", "e"), int64(50)},
		{a("EXPIREAT", "e", strconv.FormatInt(now+1000, 10)), int64(1)},
		{a("EXPIRETIME", "e"), int64(now + 1000)},
		{a("PEXPIREAT", "e", strconv.FormatInt((now+2000)*1000, 10)), int64(1)},
		{a("PEXPIRETIME", "e"), (now + 2000) * 1000},
		{a("EXPIRE", "e", "0"), int64(1)}, // not in the future: deleted
		{a("EXISTS", "e"), int64(0)},
		{a("SET", "e", "v"), "OK"},
		{a("EXPIRE", "e", "-1", "LT"), int64(1)},
		{a("EXISTS", "e"), int64(0)},
		{a("SET", "e", "v"), "OK"},
		{a("EXPIREAT", "e", "1"), int64(1)},
		{a("EXISTS", "e"), int64(0)},

		{a("FLUSHDB"), "OK"},
		{a("DBSIZE"), int64(0)},
		{a("RANDOMKEY"), nilReply},
		{a("MSET", "user:1", "a", "user:2", "b", "user:10", "c", "other", "d", "", "empty"), "OK"},
		{a("DBSIZE"), int64(5)},
		{a("FLUSHALL", "FOO"), errReply(syntax)},
		{a("SCAN", "abc"), errReply("ERR invalid cursor")},
		{a("SCAN", "0", "COUNT", "0"), errReply(syntax)},
		{a("SCAN", "0", "COUNT", "x"), errReply(notInt)},
		{a("SCAN", "0", "MATCH"), errReply(syntax)},
		{a("SCAN", "0", "FOO", "x"), errReply(syntax)},
	})

	keys, err := c.Keys(ctx, "user:?").Result()
	sort.Strings(keys)
	if err != nil || strings.Join(keys, ",") != "user:1,user:2" {
		t.Errorf("KEYS user:? = %q %v", keys, err)
	}
	keys, _ = c.Keys(ctx, "*").Result()
	if len(keys) != 5 {
		t.Errorf("KEYS * = %q", keys)
	}
	keys, _ = c.Keys(ctx, "user:[^1]*").Result()
	if strings.Join(keys, ",") != "user:2" {
		t.Errorf("KEYS user:[^1]* = %q", keys)
	}

	// SCAN to the end collects every key; MATCH and TYPE filter.
	scanAll := func(args ...any) []string {
		var all []string
		cursor := "0"
		for {
			res, err := c.Do(ctx, append([]any{"SCAN", cursor}, args...)...).Slice()
			if err != nil || len(res) != 2 {
				t.Fatalf("SCAN: %v %v", res, err)
			}
			for _, k := range res[1].([]any) {
				all = append(all, k.(string))
			}
			cursor = res[0].(string)
			if cursor == "0" {
				break
			}
		}
		sort.Strings(all)
		return all
	}
	if got := scanAll("COUNT", "2"); strings.Join(got, ",") != ",other,user:1,user:10,user:2" {
		t.Errorf("SCAN all = %q", got)
	}
	if got := scanAll("MATCH", "user:1*"); strings.Join(got, ",") != "user:1,user:10" {
		t.Errorf("SCAN MATCH = %q", got)
	}
	if got := scanAll("TYPE", "string", "MATCH", "o*"); strings.Join(got, ",") != "other" {
		t.Errorf("SCAN TYPE string = %q", got)
	}
	if got := scanAll("TYPE", "hash"); len(got) != 0 {
		t.Errorf("SCAN TYPE hash = %q", got)
	}

	seen := map[string]bool{}
	for range 200 {
		k, err := c.RandomKey(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		seen[k] = true
	}
	if len(seen) < 2 {
		t.Errorf("RANDOMKEY returned only %v", seen)
	}
	check(t, c, "OK", "FLUSHALL", "ASYNC")
	check(t, c, int64(0), "DBSIZE")
}

func TestServerCommands(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client()
	check(t, c, "OK", "SET", "k", "v")

	n, err := c.Do(ctx, "COMMAND", "COUNT").Int64()
	if err != nil || n != int64(len(commands)) {
		t.Fatalf("COMMAND COUNT: %v %v", n, err)
	}
	infos, err := c.Command(ctx).Result() // go-redis parses Redis 7's entries
	if err != nil {
		t.Fatal(err)
	}
	if g := infos["get"]; g == nil || g.Arity != 2 || g.FirstKeyPos != 1 || !g.ReadOnly {
		t.Errorf("COMMAND get: %+v", g)
	}
	if s := infos["set"]; s == nil || s.Arity != -3 {
		t.Errorf("COMMAND set: %+v", s)
	}
	docs, err := c.Do(ctx, "COMMAND", "DOCS").Slice()
	if err != nil || len(docs) != 0 {
		t.Errorf("COMMAND DOCS: %v %v", docs, err)
	}
	ci, err := c.Do(ctx, "COMMAND", "INFO", "get", "nope").Slice()
	if err != nil || len(ci) != 2 || ci[1] != nil {
		t.Errorf("COMMAND INFO: %#v %v", ci, err)
	}

	info, err := c.Info(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Server\r\n", "redis_version:" + DefaultVersion, "# Clients\r\n", "connected_clients:1",
		"# Stats\r\n", "expired_keys:0", "# Keyspace\r\n", "db0:keys=1,expires=0,avg_ttl=0", "maxclients:10000"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO lacks %q:\n%s", want, info)
		}
	}
	ks, _ := c.Info(ctx, "keyspace").Result()
	if strings.Contains(ks, "# Server") || !strings.Contains(ks, "db0:keys=1") {
		t.Errorf("INFO keyspace: %q", ks)
	}
	if s, _ := c.Info(ctx, "nosuch").Result(); s != "" {
		t.Errorf("INFO nosuch: %q", s)
	}

	run(t, c, []step{
		{a("CONFIG", "GET", "maxclients"), []any{"maxclients", "10000"}},
		{a("CONFIG", "GET", "proto-max-bulk-len"), []any{"proto-max-bulk-len", "536870912"}},
		{a("CONFIG", "GET", "TIMEOUT"), []any{"TIMEOUT", "0"}}, // a plain name is echoed as written, as Redis 7.0
		{a("CONFIG", "GET", "nosuch"), []any{}},
		{a("CONFIG", "SET", "maxclients", "100"), "OK"},
		{a("CONFIG", "GET", "maxclients"), []any{"maxclients", "100"}},
		{a("CONFIG", "SET", "maxclients", "abc"), errReply("ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer")},
		{a("CONFIG", "SET", "maxclients", "0"), errReply("ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 4294967295 inclusive")},
		{a("CONFIG", "SET", "nosuch", "1"), errReply("ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'")},
		{a("CONFIG", "SET", "databases", "4"), errReply("ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config")},
		{a("CONFIG", "SET", "timeout", "5", "timeout", "6"), errReply("ERR CONFIG SET failed (possibly related to argument 'timeout') - duplicate parameter")},
		{a("CONFIG", "SET", "timeout", "5", "maxclients", "x"), errReply("ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer")},
		{a("CONFIG", "GET", "timeout"), []any{"timeout", "0"}}, // nothing applied
		{a("CONFIG", "SET", "timeout", "5", "maxclients", "200"), "OK"},
		{a("CONFIG", "GET", "timeout"), []any{"timeout", "5"}},
		{a("CONFIG", "SET", "proto-max-bulk-len", "2mb"), "OK"},
		{a("CONFIG", "GET", "proto-max-bulk-len"), []any{"proto-max-bulk-len", "2097152"}},
		{a("CONFIG", "SET", "proto-max-bulk-len", "10"), errReply("ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - argument must be between 1048576 and 9223372036854775807 inclusive")},
		{a("CONFIG", "SET", "notify-keyspace-events", "KEA"), "OK"},
		{a("CONFIG", "GET", "notify-keyspace-events"), []any{"notify-keyspace-events", "AKE"}},
		{a("CONFIG", "SET", "notify-keyspace-events", "Ex$g"), "OK"},
		{a("CONFIG", "GET", "notify-keyspace-events"), []any{"notify-keyspace-events", "g$xE"}},
		{a("CONFIG", "SET", "notify-keyspace-events", "Q"), errReply("ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")},
		{a("CONFIG", "SET", "notify-keyspace-events", ""), "OK"},
		{a("CONFIG", "GET", "notify-keyspace-events"), []any{"notify-keyspace-events", ""}},
		{a("CONFIG", "SET", "protected-mode", "maybe"), errReply("ERR CONFIG SET failed (possibly related to argument 'protected-mode') - argument must be 'yes' or 'no'")},
		{a("CONFIG", "SET", "timeout"), arity("config|set")},
		{a("CONFIG", "GET"), arity("config|get")},
		{a("CONFIG", "NOPE"), errReply("ERR unknown subcommand 'NOPE'. Try CONFIG HELP.")},
		{a("CONFIG", "RESETSTAT"), "OK"},
	})
	all, err := c.ConfigGet(ctx, "*").Result()
	if err != nil || len(all) != len(configParams) || all["save"] != "" || all["appendonly"] != "no" {
		t.Errorf("CONFIG GET *: %v %v", all, err)
	}
	m, _ := c.ConfigGet(ctx, "max*").Result()
	if len(m) != 2 || m["maxclients"] != "200" || m["maxmemory"] != "0" {
		t.Errorf("CONFIG GET max*: %v", m)
	}
}

// A store keeping the reference's key rule answers invalid keys with an
// ERR, never a panic; TTLs expire for real.
func TestStrictKeysAndLimits(t *testing.T) {
	st := shardkv.New(shardkv.WithMaxKeys(3), shardkv.WithMaxValueSize(16))
	e := newEnvStore(t, st, Config{})
	c := e.client()
	run(t, c, []step{
		{a("SET", "bad key", "v"), errReply("ERR invalid key format: character ' ' at byte 3")},
		{a("SET", "", "v"), errReply("ERR invalid key format: empty key")},
		{a("GET", "bad key"), errReply("ERR invalid key format: character ' ' at byte 3")},
		{a("INCR", "bad key"), errReply("ERR invalid key format: character ' ' at byte 3")},
		{a("MGET", "ok", "bad key"), []any{nil, nil}},
		{a("DEL", "bad key"), int64(0)},
		{a("EXISTS", "bad key"), int64(0)},
		{a("SET", "k1", strings.Repeat("x", 17)), errReply("ERR string exceeds maximum allowed size (16 bytes)")},
		{a("MSET", "k1", "v", "k2", strings.Repeat("x", 17)), errReply("ERR string exceeds maximum allowed size (16 bytes)")},
		{a("EXISTS", "k1"), int64(0)},
		{a("SET", "k1", strings.Repeat("x", 16)), "OK"},
		{a("APPEND", "k1", "y"), errReply("ERR string exceeds maximum allowed size (16 bytes)")},
		{a("SETRANGE", "k1", "16", "y"), errReply("ERR string exceeds maximum allowed size (16 bytes)")},
		{a("STRLEN", "k1"), int64(16)},
		{a("SET", "k2", "v"), "OK"},
		{a("SET", "k3", "v"), "OK"},
		{a("SET", "k4", "v"), errReply(errQuota)},
		{a("INCR", "k5"), errReply(errQuota)},
		{a("SET", "k3", "w"), "OK"}, // overwriting at the quota is fine
		{a("PING"), "PONG"},
	})
}

func TestExpiry(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client()
	check(t, c, "OK", "SET", "k", "v", "PX", "50")
	pttl, _ := c.PTTL(ctx, "k").Result()
	if pttl <= 0 || pttl > 50*time.Millisecond {
		t.Errorf("PTTL %v", pttl)
	}
	eventually(t, "k to expire", func() bool { return c.Exists(ctx, "k").Val() == 0 })
	eventually(t, "expired_keys:1", func() bool {
		return strings.Contains(c.Info(ctx, "stats").Val(), "expired_keys:1\r\n")
	})
}

func TestRESP2Fallback(t *testing.T) {
	e := newEnv(t, Config{})
	for _, proto := range []int{2, 3} {
		c := e.client(func(o *redis.Options) { o.Protocol = proto; o.ClientName = "named" })
		if err := c.Set(ctx, "p", proto, 0).Err(); err != nil {
			t.Fatalf("protocol %d: %v", proto, err)
		}
		if name, err := c.ClientGetName(ctx).Result(); err != nil || name != "named" {
			t.Errorf("protocol %d: name %q %v", proto, name, err)
		}
	}
}
