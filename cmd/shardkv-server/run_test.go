package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardkv/shardkv"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is an io.Writer that tests read while run writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// records returns the JSON log records written so far.
func (b *syncBuffer) records() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(b.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

// instance is one run of the command inside the test process.
type instance struct {
	addrs      []string // from the "Ready to accept connections tcp" records
	metricsURL string
	stdout     *syncBuffer
	stderr     *syncBuffer
	cancel     context.CancelFunc
	done       chan error
}

// start runs the command with args plus JSON logging and waits until it
// has logged every address it serves (want of them).
func start(t *testing.T, want int, args ...string) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		in.done <- run(ctx, append(args, "--logformat", "json"), in.stdout, in.stderr)
	}()
	t.Cleanup(func() { in.stop(t) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		in.addrs = in.addrs[:0]
		for _, rec := range in.stdout.records() {
			switch rec["msg"] {
			case "Ready to accept connections tcp":
				in.addrs = append(in.addrs, rec["addr"].(string))
			case "Serving Prometheus metrics":
				in.metricsURL = rec["url"].(string)
			}
		}
		if len(in.addrs) >= want {
			return in
		}
		select {
		case err := <-in.done:
			in.done <- err
			t.Fatalf("run returned %v before it was ready\nstdout:\n%s\nstderr:\n%s", err, in.stdout, in.stderr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 10s\nstdout:\n%s", in.stdout)
		}
	}
}

// stop cancels the run's context and returns what run returned. It may be
// called more than once.
func (in *instance) stop(t *testing.T) error {
	t.Helper()
	in.cancel()
	select {
	case err := <-in.done:
		in.done <- err
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("run did not return within 20s of its context's cancel\nstdout:\n%s", in.stdout)
		return nil
	}
}

// client speaks just enough RESP2 for the tests, and writes replies as
// redis-cli does.
type client struct {
	conn net.Conn
	r    *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &client{conn: conn, r: bufio.NewReader(conn)}
}

func (c *client) do(t *testing.T, args ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.conn, b.String()); err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	reply, err := c.read()
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	return reply
}

func (c *client) read() (string, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply line")
	}
	switch body := line[1:]; line[0] {
	case '+':
		return body, nil
	case '-':
		return "(error) " + body, nil
	case ':':
		return "(integer) " + body, nil
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return "(nil)", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return "(nil)", err
		}
		var items []string
		for range n {
			s, err := c.read()
			if err != nil {
				return "", err
			}
			items = append(items, s)
		}
		return "[" + strings.Join(items, " ") + "]", nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

func expect(t *testing.T, c *client, want string, args ...string) {
	t.Helper()
	if got := c.do(t, args...); got != want {
		t.Errorf("%q = %q, want %q", args, got, want)
	}
}

func TestRunServesAndExits(t *testing.T) {
	in := start(t, 1, "--port", "0", "--bind", "127.0.0.1")
	addr := in.addrs[0]
	if host, port, _ := net.SplitHostPort(addr); host != "127.0.0.1" || port == "0" || port == "" {
		t.Fatalf("serving on %q, want 127.0.0.1 and the port picked", addr)
	}
	c := dial(t, addr)
	expect(t, c, "OK", "SET", "greeting", "hello")
	expect(t, c, "hello", "GET", "greeting")
	expect(t, c, "(integer) 1", "INCR", "visits")
	expect(t, c, "(integer) 2", "INCR", "visits")

	// The client stays connected through the shutdown.
	began := time.Now()
	if err := in.stop(t); err != nil {
		t.Fatalf("run = %v after its context was cancelled, want nil\nstdout:\n%s", err, in.stdout)
	}
	t.Logf("shut down in %v with a client connected", time.Since(began).Round(time.Millisecond))
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Errorf("%s still accepts connections after run returned", addr)
	}

	var banner, limits, bye bool
	for _, rec := range in.stdout.records() {
		switch rec["msg"] {
		case "shardkv-server starting":
			banner = rec["pid"] == float64(os.Getpid()) && rec["version"] != ""
		case "limits":
			limits = rec["maxclients"] == float64(10000) && rec["max_value_size"] == "512mb" && rec["max_keys"] == "none"
		case "shardkv-server is now ready to exit, bye bye...":
			bye = true
		}
	}
	if !banner || !limits || !bye {
		t.Errorf("banner %v, limits %v, goodbye %v in the log:\n%s", banner, limits, bye, in.stdout)
	}
	if s := in.stderr.String(); s != "" {
		t.Errorf("stderr: %q", s)
	}
}

func TestRunEveryBindAddress(t *testing.T) {
	// Port 0 gives each address a port of its own.
	in := start(t, 2, "--port", "0", "--bind", "127.0.0.1 127.0.0.1")
	if in.addrs[0] == in.addrs[1] {
		t.Fatalf("two binds, one address: %q", in.addrs)
	}
	a, b := dial(t, in.addrs[0]), dial(t, in.addrs[1])
	expect(t, a, "OK", "SET", "k", "v")
	expect(t, b, "v", "GET", "k") // one store behind both
	if err := in.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestRunOptionalBindAddress(t *testing.T) {
	// 192.0.2.1 (TEST-NET-1) is on no interface here: listening on it fails,
	// and the leading "-" makes that a warning.
	in := start(t, 1, "--port", "0", "--bind", "127.0.0.1 -192.0.2.1")
	if len(in.addrs) != 1 || !strings.HasPrefix(in.addrs[0], "127.0.0.1:") {
		t.Fatalf("serving on %q", in.addrs)
	}
	if !strings.Contains(in.stdout.String(), "could not listen on an optional bind address") {
		t.Errorf("no warning for the optional address:\n%s", in.stdout)
	}
	if err := in.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestRunRequirePass(t *testing.T) {
	// From a configuration file, whose port an option overrides.
	conf := writeFile(t, "# test\nrequirepass s3cret\nport 6379\n")
	in := start(t, 1, conf, "--port", "0")
	if strings.HasSuffix(in.addrs[0], ":6379") {
		t.Fatalf("serving on %s: --port 0 did not override the file's port", in.addrs[0])
	}
	c := dial(t, in.addrs[0])
	if got := c.do(t, "GET", "k"); !strings.HasPrefix(got, "(error) NOAUTH") {
		t.Errorf("GET before AUTH = %q, want a NOAUTH error", got)
	}
	if got := c.do(t, "AUTH", "wrong"); !strings.HasPrefix(got, "(error) WRONGPASS") {
		t.Errorf("AUTH wrong = %q, want a WRONGPASS error", got)
	}
	expect(t, c, "OK", "AUTH", "s3cret")
	expect(t, c, "OK", "SET", "k", "v")
	expect(t, c, "v", "GET", "k")
	// Another connection is not authenticated by the first's AUTH.
	d := dial(t, in.addrs[0])
	if got := d.do(t, "GET", "k"); !strings.HasPrefix(got, "(error) NOAUTH") {
		t.Errorf("GET on a second connection = %q, want a NOAUTH error", got)
	}
	if err := in.stop(t); err != nil {
		t.Fatal(err)
	}
}

// scrape fetches the metrics page without keeping a connection (which
// goleak would report).
func scrape(t *testing.T, url string) string {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return string(body)
}

// metricValue finds one sample, written "name{labels} value" (or "name
// value") in the text format.
func metricValue(page, series string) (float64, bool) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(page)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

func TestRunMetrics(t *testing.T) {
	in := start(t, 1, "--port", "0", "--metrics-addr", "127.0.0.1:0")
	if !strings.HasPrefix(in.metricsURL, "http://127.0.0.1:") || !strings.HasSuffix(in.metricsURL, "/metrics") {
		t.Fatalf("metrics URL %q", in.metricsURL)
	}
	c := dial(t, in.addrs[0])
	for i := range 3 {
		expect(t, c, "OK", "SET", fmt.Sprint("k", i), "v")
	}
	expect(t, c, "v", "GET", "k0")
	expect(t, c, "v", "GET", "k1")
	if got := c.do(t, "INCR", "k0"); !strings.HasPrefix(got, "(error) ") {
		t.Fatalf("INCR on a non-integer = %q, want an error", got)
	}

	want := map[string]float64{
		`shardkv_commands_total{cmd="set"}`:                           3,
		`shardkv_commands_total{cmd="get"}`:                           2,
		`shardkv_commands_total{cmd="incr"}`:                          1,
		`shardkv_command_errors_total{cmd="incr"}`:                    1,
		`shardkv_command_duration_seconds_count{cmd="set"}`:           3,
		`shardkv_command_duration_seconds_count{cmd="get"}`:           2,
		`shardkv_connected_clients`:                                   1,
		`shardkv_keys`:                                                3,
		`shardkv_expired_keys_total`:                                  0,
		`shardkv_rejected_connections_total{reason="maxclients"}`:     0,
		`shardkv_rejected_connections_total{reason="protected-mode"}`: 0,
	}
	// A command is counted after its reply is written, so the counts may
	// trail the replies for a moment.
	var page string
	var wrong []string
	for deadline := time.Now().Add(5 * time.Second); ; {
		page = scrape(t, in.metricsURL)
		wrong = wrong[:0]
		for series, v := range want {
			if got, ok := metricValue(page, series); !ok || got != v {
				wrong = append(wrong, fmt.Sprintf("%s = %v (found %v), want %v", series, got, ok, v))
			}
		}
		if len(wrong) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, w := range wrong {
		t.Error(w)
	}
	if _, ok := metricValue(page, `shardkv_command_errors_total{cmd="set"}`); ok {
		// Present at 0 is fine too; a value above 0 is not.
		if v, _ := metricValue(page, `shardkv_command_errors_total{cmd="set"}`); v != 0 {
			t.Errorf("SET errors = %v, want 0", v)
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_start_time_seconds", `shardkv_command_duration_seconds_bucket{cmd="set",le="1e-06"}`} {
		if _, ok := metricValue(page, name); !ok && !strings.Contains(page, name+" ") {
			t.Errorf("no %s in the metrics page", name)
		}
	}
	if t.Failed() {
		t.Logf("metrics page:\n%s", page)
	}
	if err := in.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestRunListenFails(t *testing.T) {
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, port, _ := net.SplitHostPort(busy.Addr().String())
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"--port", port}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "could not create server TCP listening socket 127.0.0.1:"+port) {
		t.Fatalf("run on a busy port = %v", err)
	}
	if !strings.Contains(stderr.String(), err.Error()) {
		t.Errorf("stderr %q does not say %q", stderr.String(), err)
	}
}

func TestRunBadArguments(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"--port", "http"}, &stdout, &stderr)
	var u *errUsage
	if !errors.As(err, &u) {
		t.Fatalf("run = %v, want an *errUsage", err)
	}
	if want := "shardkv-server: --port: invalid port: want an integer from 0 to 65535\n"; stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q", stdout.String())
	}
}

func TestRunHelpAndVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, &stdout, &stderr); err != nil || !strings.HasPrefix(stdout.String(), "Usage: shardkv-server ") {
		t.Errorf("--help: %v, %q", err, stdout.String())
	}
	stdout.Reset()
	if err := run(context.Background(), []string{"--version"}, &stdout, &stderr); err != nil || !strings.HasPrefix(stdout.String(), "shardkv-server v=") {
		t.Errorf("--version: %v, %q", err, stdout.String())
	}
}

// TestRunGlobalStore checks, in a child process (SetGlobal is once per
// process), that run serves the store published by shardkv.SetGlobal and
// leaves it open.
func TestRunGlobalStore(t *testing.T) {
	if os.Getenv("SHARDKV_SERVER_GLOBAL_CHILD") == "1" {
		globalStoreChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunGlobalStore$", "-test.v")
	cmd.Env = append(os.Environ(), "SHARDKV_SERVER_GLOBAL_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestRunGlobalStore")) {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func globalStoreChild(t *testing.T) {
	store := shardkv.New()
	defer store.Close()
	shardkv.SetGlobal(store)
	in := start(t, 1, "--port", "0", "--max-keys", "5")
	if !strings.Contains(in.stdout.String(), "these options do not apply to it") {
		t.Errorf("no warning that --max-keys does not apply:\n%s", in.stdout)
	}
	if err := store.SetString("from-go", "1"); err != nil {
		t.Fatal(err)
	}
	c := dial(t, in.addrs[0])
	expect(t, c, "1", "GET", "from-go")
	expect(t, c, "OK", "SET", "from-client", "2")
	if err := in.stop(t); err != nil {
		t.Fatal(err)
	}
	// Still open after run returned, and it holds what the client wrote.
	if v, ok, err := store.GetString("from-client"); err != nil || !ok || v != "2" {
		t.Errorf("after run: GetString = %q, %v, %v", v, ok, err)
	}
}

func TestRunMaxClients(t *testing.T) {
	in := start(t, 1, "--port", "0", "--maxclients", "1", "--metrics-addr", "127.0.0.1:0")
	first := dial(t, in.addrs[0])
	expect(t, first, "PONG", "PING")
	second := dial(t, in.addrs[0])
	second.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if got, err := second.read(); err != nil || got != "(error) ERR max number of clients reached" {
		t.Errorf("second client of --maxclients 1 read %q, %v; want the maxclients error", got, err)
	}
	series := `shardkv_rejected_connections_total{reason="maxclients"}`
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		v, _ := metricValue(scrape(t, in.metricsURL), series)
		if v == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%s = %v, want 1", series, v)
			break
		}
	}
	if err := in.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestRunIdleTimeout(t *testing.T) {
	in := start(t, 1, "--port", "0", "--timeout", "1")
	c := dial(t, in.addrs[0])
	expect(t, c, "PONG", "PING")
	began := time.Now()
	c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.read(); !errors.Is(err, io.EOF) {
		t.Fatalf("an idle client read %v, want EOF (closed by --timeout 1)", err)
	}
	if d := time.Since(began); d < 900*time.Millisecond {
		t.Errorf("closed after %v, before the 1 s timeout", d)
	}
	if err := in.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestRunStrictKeys(t *testing.T) {
	loose := start(t, 1, "--port", "0")
	expect(t, dial(t, loose.addrs[0]), "OK", "SET", "a key with spaces", "v")
	if err := loose.stop(t); err != nil {
		t.Fatal(err)
	}

	strict := start(t, 1, "--port", "0", "--strict-keys", "--max-value-size", "4", "--max-keys", "1")
	c := dial(t, strict.addrs[0])
	if got := c.do(t, "SET", "a key with spaces", "v"); !strings.HasPrefix(got, "(error) ERR invalid key") {
		t.Errorf("SET of a key shardkv.ValidateKey refuses, under --strict-keys = %q, want an invalid-key error", got)
	}
	if got := c.do(t, "SET", "k", "12345"); !strings.HasPrefix(got, "(error) ") {
		t.Errorf("SET of 5 bytes under --max-value-size 4 = %q, want an error", got)
	}
	expect(t, c, "OK", "SET", "k", "1234")
	if got := c.do(t, "SET", "k2", "v"); !strings.HasPrefix(got, "(error) ") {
		t.Errorf("a second key under --max-keys 1 = %q, want an error", got)
	}
	if err := strict.stop(t); err != nil {
		t.Fatal(err)
	}
}
