package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// config is what the command line and the configuration file set. Its zero
// value is not the defaults: start from defaultConfig.
type config struct {
	file string // the configuration file named on the command line, if any

	port                 int
	bind                 []string
	requirepass          string
	protectedMode        bool
	maxClients           int
	eventLoops           int
	maxKeys              int   // 0: no limit
	maxValueSize         int64 // bytes
	protoMaxBulkLen      int64 // bytes
	timeout              time.Duration
	notifyKeyspaceEvents string
	strictKeys           bool
	metricsAddr          string
	logLevel             slog.Level
	logLevelName         string
	logFormat            string
	shutdownTimeout      time.Duration

	// Cluster mode: the store keeps its data in etcd (cluster.go).
	etcdEndpoints    []string
	etcdNamespace    string
	etcdDialTimeout  time.Duration
	etcdTimeout      time.Duration
	etcdSerializable bool
	etcdUser         string
	etcdPassword     string
	etcdCACert       string
	etcdCert         string
	etcdKey          string

	// set records each directive given, by the file or the command line,
	// so that run can warn about the ones a shared store makes moot.
	set map[string]bool

	help, version bool
}

// maxValueSizeLimit is the longest value a shardkv record can hold.
const maxValueSizeLimit = 1<<32 - 1

func defaultConfig() config {
	return config{
		port:            6379,
		bind:            []string{"127.0.0.1"},
		protectedMode:   true,
		maxClients:      10000,
		maxValueSize:    512 << 20,
		protoMaxBulkLen: 512 << 20,
		logLevel:        slog.LevelInfo,
		logLevelName:    "notice",
		logFormat:       "text",
		shutdownTimeout: 10 * time.Second,
		etcdNamespace:   "shardkv/",
		etcdDialTimeout: 5 * time.Second,
		etcdTimeout:     5 * time.Second,
		set:             map[string]bool{},
	}
}

// directive is one configuration directive: its name as written in the
// file (and, after "--", on the command line), whether it takes a list,
// its value in the usage text, and how to apply its arguments.
type directive struct {
	name  string
	list  bool   // takes one or more arguments (bind); otherwise exactly one
	flag  bool   // a yes/no directive: "--name" alone on the command line means yes
	arg   string // the argument's name in the usage text
	def   string // the default, as the usage text shows it
	usage string
	apply func(c *config, args []string) error
}

var directives = []directive{
	{name: "port", arg: "port", def: "6379", usage: "TCP port to listen on; 0 picks a free one (its address is logged)",
		apply: func(c *config, a []string) error {
			n, err := strconv.Atoi(a[0])
			if err != nil || n < 0 || n > 65535 {
				return errors.New("invalid port: want an integer from 0 to 65535")
			}
			c.port = n
			return nil
		}},
	{name: "bind", list: true, arg: "addr ...", def: "127.0.0.1", usage: `addresses to listen on ("127.0.0.1 ::1"; * is every IPv4 address, ::* every IPv6 one, a leading - makes one optional)`,
		apply: func(c *config, a []string) error {
			var addrs []string
			for _, s := range a {
				addrs = append(addrs, strings.Fields(s)...)
			}
			if len(addrs) == 0 {
				return errors.New("bind needs at least one address")
			}
			c.bind = addrs
			return nil
		}},
	{name: "requirepass", arg: "password", usage: "password clients must give with AUTH",
		apply: func(c *config, a []string) error { c.requirepass = a[0]; return nil }},
	{name: "protected-mode", flag: true, arg: "yes|no", def: "yes", usage: "with no password, refuse clients that are not on a loopback address",
		apply: func(c *config, a []string) (err error) { c.protectedMode, err = parseYesNo(a[0]); return err }},
	{name: "maxclients", arg: "n", def: "10000", usage: "most clients connected at once",
		apply: func(c *config, a []string) error {
			n, err := strconv.Atoi(a[0])
			if err != nil || n < 1 {
				return errors.New("invalid maxclients: want an integer of at least 1")
			}
			c.maxClients = n
			return nil
		}},
	{name: "event-loops", arg: "n", def: "0", usage: "epoll event loops serving the clients; 0: half the cores, at least one; -1: a goroutine per client",
		apply: func(c *config, a []string) error {
			n, err := strconv.Atoi(a[0])
			if err != nil || n < -1 {
				return errors.New("invalid event-loops: want an integer of at least -1 (0: half the cores, -1: a goroutine per client)")
			}
			c.eventLoops = n
			return nil
		}},
	{name: "max-keys", arg: "n", def: "0", usage: "most keys the store holds; 0: no limit",
		apply: func(c *config, a []string) error {
			n, err := strconv.Atoi(a[0])
			if err != nil || n < 0 {
				return errors.New("invalid max-keys: want an integer of at least 0 (0: no limit)")
			}
			c.maxKeys = n
			return nil
		}},
	{name: "max-value-size", arg: "bytes", def: "512mb", usage: "longest value (units: b, k, kb, m, mb, g, gb; at most 4gb-1 bytes)",
		apply: func(c *config, a []string) error {
			n, err := parseMemory(a[0])
			if err != nil {
				return fmt.Errorf("invalid max-value-size: %w", err)
			}
			if n > maxValueSizeLimit {
				return fmt.Errorf("invalid max-value-size: %d bytes is over the most a value can hold (%d)", n, int64(maxValueSizeLimit))
			}
			c.maxValueSize = n
			return nil
		}},
	{name: "proto-max-bulk-len", arg: "bytes", def: "512mb", usage: "longest bulk string (argument) a request may carry; a whole request may be twice that (same units)",
		apply: func(c *config, a []string) error {
			n, err := parseMemory(a[0])
			if err != nil {
				return fmt.Errorf("invalid proto-max-bulk-len: %w", err)
			}
			if n < 1 {
				return errors.New("invalid proto-max-bulk-len: must be at least 1 byte")
			}
			c.protoMaxBulkLen = n
			return nil
		}},
	{name: "timeout", arg: "seconds", def: "0", usage: "close a client idle this long; 0: never",
		apply: func(c *config, a []string) error {
			d, err := parseSeconds(a[0], 0)
			if err != nil {
				return fmt.Errorf("invalid timeout: %w", err)
			}
			c.timeout = d
			return nil
		}},
	{name: "notify-keyspace-events", arg: "flags", def: `""`, usage: `keyspace events to publish, as Redis' flags ("KEA": all; "": none)`,
		apply: func(c *config, a []string) error {
			if i := strings.IndexFunc(a[0], func(r rune) bool { return !strings.ContainsRune(keyspaceEventFlags, r) }); i >= 0 {
				return fmt.Errorf("invalid notify-keyspace-events: unknown flag %q (known: %s)", a[0][i], keyspaceEventFlags)
			}
			c.notifyKeyspaceEvents = a[0]
			return nil
		}},
	{name: "strict-keys", flag: true, arg: "yes|no", def: "no", usage: "accept only keys that shardkv.ValidateKey accepts, instead of any binary-safe key",
		apply: func(c *config, a []string) (err error) { c.strictKeys, err = parseYesNo(a[0]); return err }},
	{name: "metrics-addr", arg: "host:port", def: `""`, usage: "serve Prometheus metrics at http://host:port/metrics; empty: off",
		apply: func(c *config, a []string) error { c.metricsAddr = a[0]; return nil }},
	{name: "loglevel", arg: "level", def: "notice", usage: "debug, verbose, notice or warning",
		apply: func(c *config, a []string) error {
			l, ok := logLevels[strings.ToLower(a[0])]
			if !ok {
				return fmt.Errorf("invalid loglevel %q: want debug, verbose, notice or warning", a[0])
			}
			c.logLevel, c.logLevelName = l, strings.ToLower(a[0])
			return nil
		}},
	{name: "logformat", arg: "format", def: "text", usage: "text or json",
		apply: func(c *config, a []string) error {
			switch f := strings.ToLower(a[0]); f {
			case "text", "json":
				c.logFormat = f
				return nil
			}
			return fmt.Errorf("invalid logformat %q: want text or json", a[0])
		}},
	{name: "shutdown-timeout", arg: "seconds", def: "10", usage: "on SIGINT or SIGTERM, how long to wait for clients' commands before closing their connections",
		apply: func(c *config, a []string) error {
			d, err := parseSeconds(a[0], 0)
			if err != nil {
				return fmt.Errorf("invalid shutdown-timeout: %w", err)
			}
			c.shutdownTimeout = d
			return nil
		}},
	{name: "etcd-endpoints", list: true, arg: "url ...", def: `""`, usage: `cluster mode: keep the data in this etcd cluster ("http://10.0.0.1:2379 http://10.0.0.2:2379", or comma-separated); every server given the same cluster and namespace serves one keyspace`,
		apply: func(c *config, a []string) error {
			var eps []string
			for _, s := range a {
				eps = append(eps, strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })...)
			}
			c.etcdEndpoints = eps
			return nil
		}},
	{name: "etcd-namespace", arg: "prefix", def: "shardkv/", usage: "cluster mode: the prefix of the store's keys in etcd, so that several stores share one cluster",
		apply: func(c *config, a []string) error { c.etcdNamespace = a[0]; return nil }},
	{name: "etcd-dial-timeout", arg: "seconds", def: "5", usage: "cluster mode: how long to wait for etcd at start-up",
		apply: func(c *config, a []string) (err error) { c.etcdDialTimeout, err = parseSeconds(a[0], 1); return err }},
	{name: "etcd-timeout", arg: "seconds", def: "5", usage: "cluster mode: the most one etcd request of a command may take; a write that times out may or may not have been applied",
		apply: func(c *config, a []string) (err error) { c.etcdTimeout, err = parseSeconds(a[0], 1); return err }},
	{name: "etcd-serializable-reads", flag: true, arg: "yes|no", def: "no", usage: "cluster mode: serve reads from the etcd member the client talks to (faster, may be stale) instead of linearizable reads",
		apply: func(c *config, a []string) (err error) { c.etcdSerializable, err = parseYesNo(a[0]); return err }},
	{name: "etcd-user", arg: "name", usage: "cluster mode: etcd user name (etcd auth); the password comes from --etcd-password or $SHARDKV_ETCD_PASSWORD",
		apply: func(c *config, a []string) error { c.etcdUser = a[0]; return nil }},
	{name: "etcd-password", arg: "password", usage: "cluster mode: etcd user's password",
		apply: func(c *config, a []string) error { c.etcdPassword = a[0]; return nil }},
	{name: "etcd-cacert", arg: "file", usage: "cluster mode: PEM CA certificate to verify etcd's TLS certificate with (https:// endpoints)",
		apply: func(c *config, a []string) error { c.etcdCACert = a[0]; return nil }},
	{name: "etcd-cert", arg: "file", usage: "cluster mode: PEM client certificate for etcd (with --etcd-key)",
		apply: func(c *config, a []string) error { c.etcdCert = a[0]; return nil }},
	{name: "etcd-key", arg: "file", usage: "cluster mode: PEM private key of --etcd-cert",
		apply: func(c *config, a []string) error { c.etcdKey = a[0]; return nil }},
}

// parseSeconds parses a whole number of seconds, at least least.
func parseSeconds(s string, least int64) (time.Duration, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < least || n > math.MaxInt64/int64(time.Second) {
		return 0, fmt.Errorf("want a whole number of seconds, at least %d", least)
	}
	return time.Duration(n) * time.Second, nil
}

// keyspaceEventFlags are the characters Redis accepts in
// notify-keyspace-events.
const keyspaceEventFlags = "KEg$lshzxeAtmnd"

var logLevels = map[string]slog.Level{
	"debug":   slog.LevelDebug,
	"verbose": slog.LevelDebug + 2,
	"notice":  slog.LevelInfo,
	"warning": slog.LevelWarn,
}

func lookupDirective(name string) (*directive, bool) {
	name = strings.ToLower(name)
	for i := range directives {
		if directives[i].name == name {
			return &directives[i], true
		}
	}
	return nil, false
}

func parseYesNo(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	return false, fmt.Errorf("argument must be 'yes' or 'no', not %q", s)
}

// parseMemory parses a size as redis.conf writes it: a whole number of
// bytes with an optional unit, k = 1000, kb = 1024, m = 1000², mb = 1024²,
// g = 1000³, gb = 1024³ (case-insensitive).
func parseMemory(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	i := strings.IndexFunc(t, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(t)
	}
	digits, unit := t[:i], t[i:]
	if digits == "" {
		return 0, fmt.Errorf("%q is not a size (want a whole number of bytes with an optional unit: 1024, 64kb, 512mb, 1gb)", s)
	}
	mul, ok := map[string]int64{
		"": 1, "b": 1,
		"k": 1000, "kb": 1 << 10,
		"m": 1000 * 1000, "mb": 1 << 20,
		"g": 1000 * 1000 * 1000, "gb": 1 << 30,
	}[unit]
	if !ok {
		return 0, fmt.Errorf("%q has an unknown unit %q (want b, k, kb, m, mb, g or gb)", s, unit)
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n > math.MaxInt64/mul {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mul, nil
}

// formatMemory writes n in the largest binary unit that divides it.
func formatMemory(n int64) string {
	switch {
	case n != 0 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "gb"
	case n != 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "mb"
	case n != 0 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "kb"
	}
	return strconv.FormatInt(n, 10)
}

// errUsage is returned for a command line that parseArgs cannot read; its
// message says what was wrong.
type errUsage struct{ msg string }

func (e *errUsage) Error() string { return e.msg }

// parseArgs reads the command line in redis-server's style: an optional
// configuration file first, then "--directive arg..." pairs, which override
// the file. "--name=value" is also accepted, and a yes/no directive alone
// means yes.
func parseArgs(args []string) (config, error) {
	c := defaultConfig()
	if len(args) > 0 {
		switch args[0] {
		case "-h", "--help", "-help":
			c.help = true
			return c, nil
		case "-v", "--version", "-version":
			c.version = true
			return c, nil
		}
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		c.file = args[0]
		if err := readConfigFile(&c, c.file); err != nil {
			return c, err
		}
		args = args[1:]
	}
	for len(args) > 0 {
		a := args[0]
		args = args[1:]
		switch a {
		case "-h", "--help", "-help":
			c.help = true
			return c, nil
		case "-v", "--version", "-version":
			c.version = true
			return c, nil
		}
		if !strings.HasPrefix(a, "--") || len(a) == 2 {
			return c, &errUsage{fmt.Sprintf("unexpected argument %q: options are written --name value (the configuration file, if any, comes first)", a)}
		}
		name, vals := a[2:], []string(nil)
		if n, v, ok := strings.Cut(name, "="); ok {
			name, vals = n, []string{v}
		}
		d, ok := lookupDirective(name)
		if !ok {
			return c, &errUsage{fmt.Sprintf("unknown option --%s (see --help)", name)}
		}
		if vals == nil {
			for len(args) > 0 && !strings.HasPrefix(args[0], "--") {
				vals = append(vals, args[0])
				args = args[1:]
			}
		}
		if vals == nil && d.flag {
			vals = []string{"yes"}
		}
		if err := applyDirective(&c, d, vals); err != nil {
			return c, &errUsage{fmt.Sprintf("--%s: %v", d.name, err)}
		}
	}
	return c, nil
}

func applyDirective(c *config, d *directive, args []string) error {
	switch {
	case len(args) == 0:
		return fmt.Errorf("needs an argument (%s)", d.arg)
	case !d.list && len(args) > 1:
		return fmt.Errorf("takes one argument (%s), got %d: %q", d.arg, len(args), args)
	}
	if err := d.apply(c, args); err != nil {
		return err
	}
	c.set[d.name] = true
	return nil
}

// readConfigFile applies a redis.conf-style file: one directive a line,
// "name arg...", arguments split at spaces unless quoted ("..." with
// backslash escapes, or '...'), blank lines and lines starting with #
// ignored.
func readConfigFile(c *config, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("configuration file: %w", err)
	}
	defer f.Close()
	return readConfig(c, path, f)
}

func readConfig(c *config, name string, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		fail := func(msg string) error {
			return fmt.Errorf("configuration file %s, line %d: %s\n>>> %s", name, line, msg, text)
		}
		fields, err := splitArgs(text)
		if err != nil {
			return fail(err.Error())
		}
		d, ok := lookupDirective(fields[0])
		if !ok {
			return fail(fmt.Sprintf("unknown directive %q", fields[0]))
		}
		if err := applyDirective(c, d, fields[1:]); err != nil {
			return fail(d.name + ": " + err.Error())
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("configuration file %s: %w", name, err)
	}
	return nil
}

// splitArgs splits a configuration line as Redis' sdssplitargs does:
// at spaces, with "double quotes" (escapes \n \r \t \b \a \\ \" \xHH) and
// 'single quotes' (only \' escaped); a closing quote must be followed by a
// space or the end of the line.
func splitArgs(line string) ([]string, error) {
	var out []string
	for i := 0; ; {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i == len(line) {
			return out, nil
		}
		var arg string
		var err error
		if q := line[i]; q == '"' || q == '\'' {
			arg, i, err = quoted(line, i)
			if err != nil {
				return nil, err
			}
		} else {
			start := i
			for i < len(line) && line[i] != ' ' && line[i] != '\t' {
				i++
			}
			arg = line[start:i]
		}
		out = append(out, arg)
	}
}

// quoted reads the quoted argument that starts at line[i] and returns it
// and the index just past its closing quote.
func quoted(line string, i int) (string, int, error) {
	q := line[i]
	var b strings.Builder
	for i++; i < len(line); {
		ch := line[i]
		switch {
		case ch == q:
			i++
			if i < len(line) && line[i] != ' ' && line[i] != '\t' {
				return "", 0, errors.New("a closing quote must be followed by a space")
			}
			return b.String(), i, nil
		case ch == '\\' && i+1 < len(line) && q == '\'':
			if line[i+1] == '\'' {
				b.WriteByte('\'')
				i += 2
			} else {
				b.WriteByte(ch)
				i++
			}
		case ch == '\\' && i+1 < len(line):
			e := line[i+1]
			i += 2
			if e == 'x' && i+2 <= len(line) {
				if v, err := strconv.ParseUint(line[i:i+2], 16, 8); err == nil {
					b.WriteByte(byte(v))
					i += 2
					continue
				}
			}
			if r, ok := escapes[e]; ok {
				b.WriteByte(r)
			} else {
				b.WriteByte(e) // \\, \" and any other: the character itself
			}
		default:
			b.WriteByte(ch)
			i++
		}
	}
	return "", 0, errors.New("unbalanced quotes")
}

var escapes = map[byte]byte{'n': '\n', 'r': '\r', 't': '\t', 'b': '\b', 'a': '\a'}

// writeUsage prints the help text, in redis-server's layout.
func writeUsage(w io.Writer, prog string) {
	fmt.Fprintf(w, `Usage: %[1]s [/path/to/shardkv.conf] [options]
       %[1]s -v or --version
       %[1]s -h or --help

Examples:
       %[1]s (run the server with the default configuration)
       %[1]s /etc/shardkv/6379.conf
       %[1]s --port 7777
       %[1]s --port 0 --bind "127.0.0.1 ::1" (a free port on each address)
       %[1]s /etc/shardkv.conf --loglevel verbose --requirepass secret

The configuration file takes the same directives as the options, one a
line, without the dashes ("port 6380", "requirepass secret"; # starts a
comment line). Options on the command line override the file.

Options:
`, prog)
	for _, d := range directives {
		def := ""
		if d.def != "" {
			def = " (default " + d.def + ")"
		}
		fmt.Fprintf(w, "       --%s %s\n            %s%s\n", d.name, d.arg, d.usage, def)
	}
}
