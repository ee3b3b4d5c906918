package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseMemory(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{"0", 0, ""},
		{"1024", 1024, ""},
		{"100b", 100, ""},
		{"1k", 1000, ""},
		{"1kb", 1024, ""},
		{"1K", 1000, ""},
		{"1KB", 1024, ""},
		{"2m", 2_000_000, ""},
		{"1mb", 1 << 20, ""},
		{"512mb", 512 << 20, ""},
		{"1g", 1_000_000_000, ""},
		{"1gb", 1 << 30, ""},
		{"4GB", 4 << 30, ""},
		{"", 0, "is not a size"},
		{"mb", 0, "is not a size"},
		{"-1", 0, "is not a size"},
		{"1.5gb", 0, `unknown unit ".5gb"`},
		{"10tb", 0, `unknown unit "tb"`},
		{"1 mb", 0, `unknown unit " mb"`},
		{"99999999999999999999", 0, "too large"},
		{"9999999999999gb", 0, "too large"},
	} {
		got, err := parseMemory(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseMemory(%q) = %d, %v; want an error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatMemory(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 1000: "1000", 1024: "1kb", 512 << 20: "512mb", 1 << 30: "1gb", 1<<20 + 1: "1048577"} {
		if got := formatMemory(in); got != want {
			t.Errorf("formatMemory(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestParseArgsDefaults(t *testing.T) {
	c, err := parseArgs(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("parseArgs(nil) = %+v\nwant %+v", c, want)
	}
	if c.port != 6379 || !reflect.DeepEqual(c.bind, []string{"127.0.0.1"}) || !c.protectedMode ||
		c.maxClients != 10000 || c.maxKeys != 0 || c.maxValueSize != 512<<20 || c.protoMaxBulkLen != 512<<20 ||
		c.timeout != 0 || c.strictKeys || c.metricsAddr != "" || c.logLevel != slog.LevelInfo || c.logFormat != "text" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		check func(c config) bool
	}{
		{[]string{"--port", "6380"}, func(c config) bool { return c.port == 6380 }},
		{[]string{"--port=0"}, func(c config) bool { return c.port == 0 }},
		{[]string{"--bind", "127.0.0.1 ::1"}, func(c config) bool { return reflect.DeepEqual(c.bind, []string{"127.0.0.1", "::1"}) }},
		{[]string{"--bind", "127.0.0.1", "::1", "--port", "1"}, func(c config) bool {
			return reflect.DeepEqual(c.bind, []string{"127.0.0.1", "::1"}) && c.port == 1
		}},
		{[]string{"--requirepass", "s3cret"}, func(c config) bool { return c.requirepass == "s3cret" }},
		{[]string{"--protected-mode", "no"}, func(c config) bool { return !c.protectedMode }},
		{[]string{"--protected-mode", "YES"}, func(c config) bool { return c.protectedMode }},
		{[]string{"--maxclients", "5"}, func(c config) bool { return c.maxClients == 5 }},
		{[]string{"--event-loops", "-1"}, func(c config) bool { return c.eventLoops == -1 }},
		{[]string{"--event-loops", "3"}, func(c config) bool { return c.eventLoops == 3 }},
		{[]string{"--max-keys", "1000"}, func(c config) bool { return c.maxKeys == 1000 }},
		{[]string{"--max-value-size", "1mb"}, func(c config) bool { return c.maxValueSize == 1<<20 }},
		{[]string{"--max-value-size", "1gb"}, func(c config) bool { return c.maxValueSize == 1<<30 }},
		{[]string{"--proto-max-bulk-len", "64kb"}, func(c config) bool { return c.protoMaxBulkLen == 64<<10 }},
		{[]string{"--timeout", "30"}, func(c config) bool { return c.timeout == 30*time.Second }},
		{[]string{"--notify-keyspace-events", "KEA"}, func(c config) bool { return c.notifyKeyspaceEvents == "KEA" }},
		{[]string{"--notify-keyspace-events", ""}, func(c config) bool { return c.notifyKeyspaceEvents == "" && c.set["notify-keyspace-events"] }},
		{[]string{"--strict-keys"}, func(c config) bool { return c.strictKeys }},
		{[]string{"--strict-keys", "--port", "1"}, func(c config) bool { return c.strictKeys && c.port == 1 }},
		{[]string{"--strict-keys", "no"}, func(c config) bool { return !c.strictKeys }},
		{[]string{"--protected-mode", "no", "--protected-mode"}, func(c config) bool { return c.protectedMode }},
		{[]string{"--metrics-addr", "127.0.0.1:9121"}, func(c config) bool { return c.metricsAddr == "127.0.0.1:9121" }},
		{[]string{"--loglevel", "debug"}, func(c config) bool { return c.logLevel == slog.LevelDebug }},
		{[]string{"--loglevel", "verbose"}, func(c config) bool { return c.logLevel == slog.LevelDebug+2 }},
		{[]string{"--loglevel", "warning"}, func(c config) bool { return c.logLevel == slog.LevelWarn }},
		{[]string{"--logformat", "json"}, func(c config) bool { return c.logFormat == "json" }},
		{[]string{"--shutdown-timeout", "0"}, func(c config) bool { return c.shutdownTimeout == 0 }},
		{[]string{"--PORT", "7"}, func(c config) bool { return c.port == 7 }},
		{[]string{"--port", "1", "--port", "2"}, func(c config) bool { return c.port == 2 }},
		{[]string{"--help"}, func(c config) bool { return c.help }},
		{[]string{"-h"}, func(c config) bool { return c.help }},
		{[]string{"--version"}, func(c config) bool { return c.version }},
		{[]string{"-v"}, func(c config) bool { return c.version }},
		{[]string{"--port", "1", "--version"}, func(c config) bool { return c.version }},
	} {
		c, err := parseArgs(tc.args)
		if err != nil {
			t.Errorf("parseArgs(%q): %v", tc.args, err)
			continue
		}
		if !tc.check(c) {
			t.Errorf("parseArgs(%q) = %+v: check failed", tc.args, c)
		}
	}
}

func TestParseArgsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--port", "abc"}, "--port: invalid port: want an integer from 0 to 65535"},
		{[]string{"--port", "65536"}, "--port: invalid port"},
		{[]string{"--port", "-1"}, "--port: invalid port"},
		{[]string{"--port"}, "--port: needs an argument (port)"},
		{[]string{"--port", "1", "2"}, `--port: takes one argument (port), got 2: ["1" "2"]`},
		{[]string{"--bogus", "1"}, "unknown option --bogus (see --help)"},
		{[]string{"--max-value-size", "lots"}, `--max-value-size: invalid max-value-size: "lots" is not a size`},
		{[]string{"--max-value-size", "5gb"}, "is over the most a value can hold (4294967295)"},
		{[]string{"--max-value-size", "1tb"}, `unknown unit "tb"`},
		{[]string{"--proto-max-bulk-len", "0"}, "must be at least 1 byte"},
		{[]string{"--maxclients", "0"}, "--maxclients: invalid maxclients: want an integer of at least 1"},
		{[]string{"--event-loops", "-2"}, "--event-loops: invalid event-loops: want an integer of at least -1 (0: half the cores, -1: a goroutine per client)"},
		{[]string{"--max-keys", "-5"}, "--max-keys: invalid max-keys: want an integer of at least 0"},
		{[]string{"--max-keys", "many"}, "invalid max-keys"},
		{[]string{"--timeout", "1.5"}, "invalid timeout: want a whole number of seconds"},
		{[]string{"--protected-mode", "maybe"}, `--protected-mode: argument must be 'yes' or 'no', not "maybe"`},
		{[]string{"--loglevel", "loud"}, `invalid loglevel "loud": want debug, verbose, notice or warning`},
		{[]string{"--logformat", "xml"}, `invalid logformat "xml": want text or json`},
		{[]string{"--notify-keyspace-events", "KEQ"}, `unknown flag 'Q'`},
		{[]string{"--port", "1", "stray"}, `--port: takes one argument`},
		{[]string{"-port", "1"}, `unexpected argument "-port"`},
		{[]string{"--"}, `unexpected argument "--"`},
		{[]string{"/no/such/shardkv.conf"}, "configuration file: open /no/such/shardkv.conf: no such file or directory"},
	} {
		_, err := parseArgs(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseArgs(%q) error = %v; want one containing %q", tc.args, err, tc.want)
		}
	}
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shardkv.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigFile(t *testing.T) {
	path := writeFile(t, `# a redis.conf-style file
port 6380
   bind 127.0.0.1 ::1
requirepass "pa ss\tword"
protected-mode no

MAXCLIENTS 64
max-value-size 1mb
notify-keyspace-events ""
timeout 5
strict-keys yes
metrics-addr 'localhost:9121'
loglevel warning
`)
	c, err := parseArgs([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	if c.file != path || c.port != 6380 || !reflect.DeepEqual(c.bind, []string{"127.0.0.1", "::1"}) ||
		c.requirepass != "pa ss\tword" || c.protectedMode || c.maxClients != 64 || c.maxValueSize != 1<<20 ||
		c.notifyKeyspaceEvents != "" || c.timeout != 5*time.Second || !c.strictKeys ||
		c.metricsAddr != "localhost:9121" || c.logLevel != slog.LevelWarn {
		t.Fatalf("from the file: %+v", c)
	}

	// Options after the file override it; what they do not name stays.
	c, err = parseArgs([]string{path, "--port", "0", "--requirepass", "other", "--strict-keys", "no"})
	if err != nil {
		t.Fatal(err)
	}
	if c.port != 0 || c.requirepass != "other" || c.strictKeys || c.maxClients != 64 || c.timeout != 5*time.Second {
		t.Fatalf("file then options: %+v", c)
	}
}

func TestConfigFileErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"port 6380\nport banana\n", "line 2: port: invalid port: want an integer from 0 to 65535\n>>> port banana"},
		{"# comment\n\nsave 900 1\n", `line 3: unknown directive "save"` + "\n>>> save 900 1"},
		{"port\n", "line 1: port: needs an argument (port)"},
		{"port 1 2\n", "line 1: port: takes one argument (port), got 2"},
		{`requirepass "unterminated` + "\n", "line 1: unbalanced quotes"},
		{`requirepass "a"b` + "\n", "line 1: a closing quote must be followed by a space"},
		{"max-value-size 12parsecs\n", `line 1: max-value-size: invalid max-value-size: "12parsecs" has an unknown unit "parsecs"`},
	} {
		path := writeFile(t, tc.text)
		_, err := parseArgs([]string{path})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("file %q: error = %v; want one naming the file and containing %q", tc.text, err, tc.want)
		}
	}
}

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"port 6380", []string{"port", "6380"}},
		{"  bind   127.0.0.1\t::1  ", []string{"bind", "127.0.0.1", "::1"}},
		{`requirepass "a b"`, []string{"requirepass", "a b"}},
		{`requirepass "q\"uote\\\n\x41"`, []string{"requirepass", "q\"uote\\\nA"}},
		{`requirepass 'it\'s'`, []string{"requirepass", "it's"}},
		{`requirepass 'a\nb'`, []string{"requirepass", `a\nb`}},
		{`notify-keyspace-events ""`, []string{"notify-keyspace-events", ""}},
	} {
		got, err := splitArgs(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestUsage(t *testing.T) {
	var out bytes.Buffer
	writeUsage(&out, "shardkv-server")
	s := out.String()
	if !strings.HasPrefix(s, "Usage: shardkv-server [/path/to/shardkv.conf] [options]\n") {
		t.Errorf("usage starts %q", s[:min(len(s), 80)])
	}
	for _, d := range directives {
		if !strings.Contains(s, "--"+d.name+" ") {
			t.Errorf("usage does not list --%s", d.name)
		}
	}
}
