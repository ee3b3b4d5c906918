package server

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

func cmdPing(c *client, args [][]byte) {
	if len(args) > 2 {
		c.errArity("ping")
		return
	}
	if c.subscribed() { // RESP2 subscribe mode: ["pong", message]
		c.writeArray(2)
		c.writeBulkString("pong")
		if len(args) == 2 {
			c.writeBulk(args[1])
		} else {
			c.writeBulk(nil)
		}
		return
	}
	if len(args) == 2 {
		c.writeBulk(args[1])
		return
	}
	c.writeSimple("PONG")
}

func cmdEcho(c *client, args [][]byte) { c.writeBulk(args[1]) }

func cmdQuit(c *client, args [][]byte) {
	c.writeOK()
	c.quit = true
}

// RESET: out of subscribe mode, name cleared, authentication reset.
func cmdReset(c *client, args [][]byte) {
	c.s.hub.removeClient(c) // silently, as Redis
	c.name.Store(nil)
	c.authed = c.s.password.Load() == nil
	c.writeSimple("RESET")
}

func cmdSelect(c *client, args [][]byte) {
	n, ok := parseInt(args[1])
	if !ok {
		c.writeError(errNotInt)
		return
	}
	if n < math.MinInt32 || n > math.MaxInt32 { // Redis' getIntFromObjectOrReply
		c.writeError("ERR value is out of range, value must between -2147483648 and 2147483647")
		return
	}
	if n != 0 {
		c.writeError(errDBIndex)
		return
	}
	c.writeOK()
}

func cmdTime(c *client, args [][]byte) {
	now := time.Now()
	c.writeArray(2)
	c.writeBulkString(strconv.FormatInt(now.Unix(), 10))
	c.writeBulkString(strconv.FormatInt(int64(now.Nanosecond()/1000), 10))
}

const wrongPass = "WRONGPASS invalid username-password pair or user is disabled."

// authenticate checks user (nil: the one-argument AUTH) and pass against
// the password. It answers the error itself and reports success.
func (c *client) authenticate(user, pass []byte) bool {
	sec := c.s.password.Load()
	if user != nil && string(user) != "default" { // ACL user names are case-sensitive
		c.writeError(wrongPass)
		return false
	}
	if sec == nil {
		if user == nil {
			c.writeError("ERR AUTH <password> called without any password configured " +
				"for the default user. Are you sure your configuration is correct?")
			return false
		}
		c.authed = true // the default user has no password: any is right
		return true
	}
	if !sec.check(pass) {
		c.writeError(wrongPass)
		return false
	}
	c.authed = true
	return true
}

func cmdAuth(c *client, args [][]byte) {
	var ok bool
	switch len(args) {
	case 2:
		ok = c.authenticate(nil, args[1])
	case 3:
		ok = c.authenticate(args[1], args[2])
	default:
		c.errSyntax()
		return
	}
	if ok {
		c.writeOK()
	}
}

// HELLO [protover [AUTH username password] [SETNAME clientname]]. Only
// RESP2 is spoken (redcon has no RESP3 encoder): HELLO 3 is NOPROTO, which
// makes RESP3-first clients (go-redis) fall back to RESP2.
func cmdHello(c *client, args [][]byte) {
	if len(args) >= 2 {
		v, ok := parseInt(args[1])
		if !ok {
			c.writeError("ERR Protocol version is not an integer or out of range")
			return
		}
		if v != 2 {
			c.writeError("NOPROTO unsupported protocol version")
			return
		}
	}
	var user, pass, name []byte
	for i := 2; i < len(args); i++ {
		more := len(args) - 1 - i
		switch {
		case equalFold(args[i], "auth") && more >= 2:
			user, pass = args[i+1], args[i+2]
			i += 2
		case equalFold(args[i], "setname") && more >= 1:
			name = args[i+1]
			if msg := validateName(name); msg != "" {
				c.writeError(msg)
				return
			}
			i++
		default:
			c.writeError("ERR Syntax error in HELLO option '" + string(args[i]) + "'")
			return
		}
	}
	if user != nil && !c.authenticate(user, pass) {
		return
	}
	if !c.authed {
		c.writeError("NOAUTH HELLO must be called with the client already authenticated, " +
			"otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate " +
			"the client and select the RESP protocol version at the same time")
		return
	}
	if name != nil {
		c.setName(name)
	}
	c.writeArray(14)
	c.writeBulkString("server")
	c.writeBulkString("redis")
	c.writeBulkString("version")
	c.writeBulkString(c.s.version)
	c.writeBulkString("proto")
	c.writeInt(2)
	c.writeBulkString("id")
	c.writeInt(int64(c.id))
	c.writeBulkString("mode")
	c.writeBulkString("standalone")
	c.writeBulkString("role")
	c.writeBulkString("master")
	c.writeBulkString("modules")
	c.writeArray(0)
}

// validateName is Redis' validateClientName: "" if name is acceptable.
func validateName(name []byte) string {
	for _, ch := range name {
		if ch < '!' || ch > '~' {
			return "ERR Client names cannot contain spaces, newlines or special characters."
		}
	}
	return ""
}

func (c *client) setName(name []byte) {
	if len(name) == 0 {
		c.name.Store(nil)
		return
	}
	s := string(name)
	c.name.Store(&s)
}

func loadString(p interface{ Load() *string }) string {
	if v := p.Load(); v != nil {
		return *v
	}
	return ""
}

func cmdClient(c *client, args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	switch sub {
	case "id":
		if len(args) != 2 {
			c.errArity("client|id")
			return
		}
		c.writeInt(int64(c.id))
	case "setname":
		if len(args) != 3 {
			c.errArity("client|setname")
			return
		}
		if msg := validateName(args[2]); msg != "" {
			c.writeError(msg)
			return
		}
		c.setName(args[2])
		c.writeOK()
	case "getname":
		if len(args) != 2 {
			c.errArity("client|getname")
			return
		}
		if v := c.name.Load(); v != nil {
			c.writeBulkString(*v)
		} else {
			c.writeNull()
		}
	case "setinfo":
		if len(args) != 4 {
			c.errArity("client|setinfo")
			return
		}
		v := string(args[3])
		switch {
		case equalFold(args[2], "lib-name"):
			c.libName.Store(&v)
		case equalFold(args[2], "lib-ver"):
			c.libVer.Store(&v)
		default:
			c.writeError("ERR Unrecognized option '" + string(args[2]) + "'")
			return
		}
		c.writeOK()
	case "list":
		if len(args) != 2 {
			c.errSyntax()
			return
		}
		c.s.mu.Lock()
		cs := make([]*client, 0, len(c.s.clients))
		for o := range c.s.clients {
			cs = append(cs, o)
		}
		c.s.mu.Unlock()
		sort.Slice(cs, func(i, j int) bool { return cs[i].id < cs[j].id })
		var b strings.Builder
		for _, o := range cs {
			b.WriteString(o.info())
			b.WriteByte('\n')
		}
		c.writeBulkString(b.String())
	case "info":
		if len(args) != 2 {
			c.errArity("client|info")
			return
		}
		c.writeBulkString(c.info() + "\n")
	case "help":
		c.writeArray(len(clientHelp))
		for _, l := range clientHelp {
			c.writeSimple(l)
		}
	default:
		c.errSubcommand(args[1], "CLIENT")
	}
}

var clientHelp = []string{
	"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"GETNAME", "    Return the name of the current connection.",
	"ID", "    Return the ID of the current connection.",
	"INFO", "    Return information about the current client connection.",
	"LIST", "    Return information about client connections.",
	"SETINFO <option> <value>", "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
	"SETNAME <name>", "    Assign the name <name> to the current connection.",
	"HELP", "    Print this help.",
}

func (c *client) errSubcommand(sub []byte, cmd string) {
	c.writeError("ERR unknown subcommand '" + truncate(sub, 128) + "'. Try " + cmd + " HELP.")
}

// info is the client's CLIENT LIST line. It may run on another client's
// goroutine: it reads only atomics and immutable fields.
func (c *client) info() string {
	now := time.Now()
	flags := "N"
	if c.subscribed() {
		flags = "P"
	}
	cmd := "NULL"
	if p := c.lastCmd.Load(); p != nil {
		cmd = *p
	}
	// omem: the replies an event loop holds for the client because its
	// socket did not take them (0 with a goroutine per client, which
	// waits in the write instead); events=w while they wait, as Redis.
	omem := c.omem.Load()
	events := "r"
	if omem > 0 {
		events = "w"
	}
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=-1 name=%s age=%d idle=%d flags=%s db=0 sub=%d psub=%d ssub=0 "+
		"multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 obl=0 oll=0 omem=%d tot-mem=0 events=%s cmd=%s "+
		"user=default redir=-1 resp=2 lib-name=%s lib-ver=%s",
		c.id, c.raddr, c.laddr, loadString(&c.name), int64(now.Sub(c.created).Seconds()),
		int64(now.Sub(time.Unix(0, c.lastActive.Load())).Seconds()), flags,
		c.nsub.Load(), c.npsub.Load(), omem, events, cmd, loadString(&c.libName), loadString(&c.libVer))
}

// COMMAND [COUNT | DOCS | INFO name... | LIST | HELP].
func cmdCommand(c *client, args [][]byte) {
	if len(args) == 1 {
		list := sortedCommands()
		c.writeArray(len(list))
		for _, cmd := range list {
			c.writeCommandInfo(cmd)
		}
		return
	}
	switch strings.ToLower(string(args[1])) {
	case "count":
		if len(args) != 2 {
			c.errArity("command|count")
			return
		}
		c.writeInt(int64(len(commands)))
	case "docs":
		// No docs: redis-cli then has no hints, and works.
		c.writeArray(0)
	case "info":
		if len(args) == 2 { // no names: every command, as Redis 7
			list := sortedCommands()
			c.writeArray(len(list))
			for _, cmd := range list {
				c.writeCommandInfo(cmd)
			}
			return
		}
		c.writeArray(len(args) - 2)
		for _, n := range args[2:] {
			if cmd := commands[strings.ToLower(string(n))]; cmd != nil {
				c.writeCommandInfo(cmd)
			} else {
				c.writeNullArray()
			}
		}
	case "list":
		list := sortedCommands()
		c.writeArray(len(list))
		for _, cmd := range list {
			c.writeBulkString(cmd.name)
		}
	case "help":
		c.writeArray(3)
		c.writeSimple("COMMAND [<subcommand> [<arg> [value] [opt] ...]]. Subcommands are:")
		c.writeSimple("(no subcommand)")
		c.writeSimple("    Return details about all Redis commands.")
	default:
		c.errSubcommand(args[1], "COMMAND")
	}
}

// writeCommandInfo writes Redis 7's ten-field command entry.
func (c *client) writeCommandInfo(cmd *command) {
	c.writeArray(10)
	c.writeBulkString(cmd.name)
	c.writeInt(int64(cmd.arity))
	var flags []string
	for i, n := range flagNames {
		if n != "" && cmd.flags&(1<<i) != 0 {
			flags = append(flags, n)
		}
	}
	c.writeArray(len(flags))
	for _, f := range flags {
		c.writeSimple(f)
	}
	c.writeInt(int64(cmd.firstKey))
	c.writeInt(int64(cmd.lastKey))
	c.writeInt(int64(cmd.step))
	acl := strings.Fields(cmd.acl)
	c.writeArray(len(acl))
	for _, a := range acl {
		c.writeSimple(a)
	}
	c.writeArray(0) // tips
	c.writeArray(0) // key specs
	c.writeArray(0) // subcommands
}

// INFO [section ...]: server, clients, stats, keyspace (all by default).
func cmdInfo(c *client, args [][]byte) {
	want := map[string]bool{}
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	all := len(want) == 0 || want["all"] || want["everything"] || want["default"]
	s := c.s
	var b strings.Builder
	section := func(name string, lines ...string) {
		if !all && !want[strings.ToLower(name)] {
			return
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + name + "\r\n")
		for _, l := range lines {
			b.WriteString(l)
			b.WriteString("\r\n")
		}
	}
	up := time.Since(s.started)
	s.mu.Lock()
	nclients := len(s.clients)
	cmds := s.closedCmds.Load()
	pubsubClients := 0
	for o := range s.clients {
		cmds += o.ncmds.Load()
		if o.subscribed() {
			pubsubClients++
		}
	}
	port := s.port
	s.mu.Unlock()
	section("Server",
		"redis_version:"+s.version,
		"redis_mode:standalone",
		"shardkv_server:1",
		"os:"+runtime.GOOS+" "+runtime.GOARCH,
		"arch_bits:"+strconv.Itoa(strconv.IntSize),
		"go_version:"+runtime.Version(),
		"process_id:"+strconv.Itoa(pid),
		"run_id:"+s.runID,
		"tcp_port:"+strconv.Itoa(port),
		"server_time_usec:"+strconv.FormatInt(time.Now().UnixMicro(), 10),
		"uptime_in_seconds:"+strconv.FormatInt(int64(up.Seconds()), 10),
		"uptime_in_days:"+strconv.FormatInt(int64(up.Hours()/24), 10),
	)
	section("Clients",
		"connected_clients:"+strconv.Itoa(nclients),
		"blocked_clients:0",
		"pubsub_clients:"+strconv.Itoa(pubsubClients),
		"maxclients:"+strconv.FormatInt(s.maxClients.Load(), 10),
	)
	channels, patterns := s.hub.counts()
	section("Stats",
		"total_connections_received:"+strconv.FormatUint(s.totalConns.Load(), 10),
		"total_commands_processed:"+strconv.FormatUint(cmds, 10),
		"rejected_connections:"+strconv.FormatUint(s.rejected.Load(), 10),
		"expired_keys:"+strconv.FormatUint(s.store.Stats().Expired, 10),
		"evicted_keys:0",
		"pubsub_channels:"+strconv.Itoa(channels),
		"pubsub_patterns:"+strconv.Itoa(patterns),
		"client_query_buffer_limit_disconnections:"+strconv.FormatUint(s.queryDrops.Load(), 10),
		"client_output_buffer_limit_disconnections:"+strconv.FormatUint(s.pubsubDrops.Load(), 10),
		"keyspace_notifications_lost:"+strconv.FormatUint(s.notifyLost.Load(), 10),
	)
	var ks []string
	n := s.store.Len()
	if s.cluster {
		n = s.clusterKeyCount()
	}
	if n > 0 {
		ks = append(ks, "db0:keys="+strconv.Itoa(n)+",expires=0,avg_ttl=0")
	}
	section("Keyspace", ks...)
	c.writeBulkString(b.String())
}

// configParam is one CONFIG GET/SET parameter. set is nil for the
// read-only ones; it validates and returns the change to apply, so that a
// CONFIG SET of several parameters applies none if one is invalid.
type configParam struct {
	name string
	get  func(s *Server) string
	set  func(s *Server, v string) (apply func(), err string)
}

var configParams []configParam

func init() {
	configParams = []configParam{
		{"notify-keyspace-events",
			func(s *Server) string { return formatNotifyFlags(s.notify.flags.Load()) },
			func(s *Server, v string) (func(), string) {
				f, ok := parseNotifyFlags(v)
				if !ok {
					return nil, "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
				}
				return func() { s.notify.set(f) }, ""
			}},
		{"maxclients",
			func(s *Server) string { return strconv.FormatInt(s.maxClients.Load(), 10) },
			func(s *Server, v string) (func(), string) {
				n, err := boundedInt(v, 1, math.MaxUint32)
				if err != "" {
					return nil, err
				}
				return func() { s.maxClients.Store(n) }, ""
			}},
		{"proto-max-bulk-len",
			func(s *Server) string { return strconv.FormatInt(s.maxRequest.Load(), 10) },
			func(s *Server, v string) (func(), string) {
				n, ok := parseMemory(v)
				if !ok {
					return nil, "argument must be a memory value"
				}
				if n < 1<<20 {
					return nil, "argument must be between 1048576 and 9223372036854775807 inclusive"
				}
				return func() { s.maxRequest.Store(n) }, ""
			}},
		{"timeout",
			func(s *Server) string { return strconv.FormatInt(int64(time.Duration(s.idle.Load())/time.Second), 10) },
			func(s *Server, v string) (func(), string) {
				n, err := boundedInt(v, 0, math.MaxInt32)
				if err != "" {
					return nil, err
				}
				return func() { s.idle.Store(int64(time.Duration(n) * time.Second)) }, ""
			}},
		{"requirepass",
			func(s *Server) string {
				if p := s.password.Load(); p != nil {
					return p.plain
				}
				return ""
			},
			func(s *Server, v string) (func(), string) {
				// Clients already authenticated stay so, as in Redis.
				return func() { s.password.Store(newSecret(v)) }, ""
			}},
		{"protected-mode",
			func(s *Server) string { return yesNo(s.protected.Load()) },
			func(s *Server, v string) (func(), string) {
				switch strings.ToLower(v) {
				case "yes":
					return func() { s.protected.Store(true) }, ""
				case "no":
					return func() { s.protected.Store(false) }, ""
				}
				return nil, "argument must be 'yes' or 'no'"
			}},
		{"databases", func(*Server) string { return "1" }, nil},
		{"maxmemory", func(*Server) string { return "0" }, nil},
		{"save", func(*Server) string { return "" }, nil},
		{"appendonly", func(*Server) string { return "no" }, nil},
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func boundedInt(v string, lo, hi int64) (int64, string) {
	n, ok := parseInt([]byte(v))
	if !ok {
		return 0, "argument couldn't be parsed into an integer"
	}
	if n < lo || n > hi {
		return 0, fmt.Sprintf("argument must be between %d and %d inclusive", lo, hi)
	}
	return n, ""
}

// parseMemory parses Redis' memory values: an integer with an optional
// unit, k/m/g (powers of 1000) or kb/mb/gb (powers of 1024).
func parseMemory(v string) (int64, bool) {
	l := strings.ToLower(v)
	mul := int64(1)
	for _, u := range []struct {
		suffix string
		mul    int64
	}{{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}, {"g", 1e9}, {"m", 1e6}, {"k", 1e3}, {"b", 1}} {
		if strings.HasSuffix(l, u.suffix) {
			l, mul = strings.TrimSuffix(l, u.suffix), u.mul
			break
		}
	}
	n, ok := parseInt([]byte(l))
	if !ok || n < 0 || n > math.MaxInt64/mul {
		return 0, false
	}
	return n * mul, true
}

func cmdConfig(c *client, args [][]byte) {
	switch strings.ToLower(string(args[1])) {
	case "get":
		if len(args) < 3 {
			c.errArity("config|get")
			return
		}
		var out []string
		seen := map[string]bool{}
		for _, p := range args[2:] {
			pat := string(p)
			if !strings.ContainsAny(pat, "[*?") {
				// A plain name is looked up, and answered as it was
				// written ("MAXCLIENTS"), as Redis does.
				for _, cp := range configParams {
					if !seen[cp.name] && strings.EqualFold(pat, cp.name) {
						seen[cp.name] = true
						out = append(out, pat, cp.get(c.s))
					}
				}
				continue
			}
			for _, cp := range configParams {
				if !seen[cp.name] && globMatch(pat, cp.name, true) {
					seen[cp.name] = true
					out = append(out, cp.name, cp.get(c.s))
				}
			}
		}
		c.writeBulkStrings(out...)
	case "set":
		if len(args) < 4 {
			c.errArity("config|set")
			return
		}
		if len(args)%2 != 0 { // a parameter without its value
			c.errSyntax()
			return
		}
		// As Redis' configSetCommand: the names first (the first unknown,
		// immutable or repeated one is the error), then the values;
		// nothing is applied unless all are valid. Errors name the
		// parameter as it was written.
		fail := func(name []byte, msg string) {
			c.writeError("ERR CONFIG SET failed (possibly related to argument '" + string(name) + "') - " + msg)
		}
		params := make([]*configParam, 0, (len(args)-2)/2)
		for i := 2; i < len(args); i += 2 {
			var cp *configParam
			for j := range configParams {
				if strings.EqualFold(configParams[j].name, string(args[i])) {
					cp = &configParams[j]
				}
			}
			switch {
			case cp == nil:
				c.writeError("ERR Unknown option or number of arguments for CONFIG SET - '" + string(args[i]) + "'")
				return
			case cp.set == nil:
				fail(args[i], "can't set immutable config")
				return
			case slices.Contains(params, cp):
				fail(args[i], "duplicate parameter")
				return
			}
			params = append(params, cp)
		}
		applies := make([]func(), 0, len(params))
		for i, cp := range params {
			apply, msg := cp.set(c.s, string(args[3+2*i]))
			if msg != "" {
				fail(args[2+2*i], msg)
				return
			}
			applies = append(applies, apply)
		}
		for _, apply := range applies {
			apply()
		}
		c.writeOK()
	case "resetstat":
		if len(args) != 2 {
			c.errArity("config|resetstat")
			return
		}
		s := c.s
		s.totalConns.Store(0)
		s.rejected.Store(0)
		s.pubsubDrops.Store(0)
		s.queryDrops.Store(0)
		s.notifyLost.Store(0)
		c.writeOK()
	case "rewrite":
		c.writeError("ERR The server is running without a config file")
	case "help":
		lines := []string{
			"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
			"SET <directive> <value>", "    Set the configuration <directive> to <value>.",
			"RESETSTAT", "    Reset statistics reported by the INFO command.",
			"HELP", "    Print this help.",
		}
		c.writeArray(len(lines))
		for _, l := range lines {
			c.writeSimple(l)
		}
	default:
		c.errSubcommand(args[1], "CONFIG")
	}
}
