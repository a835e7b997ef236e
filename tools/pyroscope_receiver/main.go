// pyroscope-receiver: a strict stand-in for Pyroscope's POST /ingest, for
// testing uploaders where the real server cannot run.
//
// It enforces the protocol as Pyroscope's own Go client (pyroscope-go) speaks
// it and as the server validates it: method, path, the exact set of query
// parameters and their formats (name=app{k=v,...}, from/until in Unix
// nanoseconds), multipart field and file names, the sample_type_config JSON,
// each sample's string labels (labels.go), and authentication headers.
// Anything else gets a 4xx with a message, as the real server answers. Each
// accepted profile is decoded with `go tool pprof -raw` (a profile it cannot
// read is a 400) and stored in -dir as NNNNNN.pb.gz (the bytes received),
// NNNNNN.raw (pprof's dump) and NNNNNN.meta (key=value lines), the .meta
// written last. Every request is
// logged to -dir/requests.log as "<unix ms> <status> <message>".
//
// Faults for tests: -mode ok|500|hang|reset|401|400|408|429 (switchable at run
// time with POST /-/mode?set=MODE) and -fail-first N (answer 500 to the first
// N). reset reads the request and resets the connection (TCP RST, no answer).
//
// -tls-cert and -tls-key (PEM files) serve HTTPS instead of HTTP.
//
// Standard library only: go build -o receiver *.go
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Returned by ingest when it reset the connection: nothing more to answer.
var errReset = &httpError{0, "connection reset"}

type receiver struct {
	dir, prefix, basicAuth, bearer, tenant string
	requiredHeaders                        map[string]string

	mu        sync.Mutex
	mode      string
	failFirst int
	seq       int
	logFile   *os.File
}

func (s *receiver) logRequest(status int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.logFile, "%d %d %s\n", time.Now().UnixMilli(), status, strings.ReplaceAll(msg, "\n", " "))
}

func (s *receiver) control(w http.ResponseWriter, r *http.Request) {
	mode := r.URL.Query().Get("set")
	switch mode {
	case "ok", "500", "hang", "reset", "401", "400", "408", "429":
	default:
		http.Error(w, "mode must be ok, 500, hang, reset, 401, 400, 408 or 429", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.mode = mode
	s.mu.Unlock()
	fmt.Fprintln(w, "mode", mode)
}

func (s *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/-/mode" {
		s.control(w, r)
		return
	}
	if r.URL.Path != s.prefix+"/ingest" {
		s.logRequest(404, "no such path "+r.URL.Path)
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	status, msg := 200, "accepted"
	if e := s.ingest(w, r); e == errReset {
		return // Logged by ingest, before the reset.
	} else if e != nil {
		status, msg = e.status, e.msg
		http.Error(w, e.msg, e.status)
	}
	s.logRequest(status, msg)
}

// The injected fault for this request, if any.
func (s *receiver) fault() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failFirst > 0 {
		s.failFirst--
		return "500"
	}
	return s.mode
}

func (s *receiver) checkAuth(r *http.Request) *httpError {
	if s.basicAuth != "" {
		user, pass, ok := r.BasicAuth()
		if !ok || user+":"+pass != s.basicAuth {
			return fail(401, "invalid credentials: basic auth required")
		}
	}
	if s.bearer != "" && r.Header.Get("Authorization") != "Bearer "+s.bearer {
		return fail(401, "invalid credentials: bearer token required")
	}
	if s.tenant != "" && r.Header.Get("X-Scope-OrgID") != s.tenant {
		return fail(401, "no org id")
	}
	for k, v := range s.requiredHeaders {
		if r.Header.Get(k) != v {
			return fail(400, "missing header %s", k)
		}
	}
	return nil
}

func (s *receiver) ingest(w http.ResponseWriter, r *http.Request) *httpError {
	if r.Method != http.MethodPost {
		return fail(405, "method %s not allowed: POST only", r.Method)
	}
	switch s.fault() {
	case "500":
		return fail(500, "injected failure")
	case "401":
		return fail(401, "invalid credentials: injected")
	case "400":
		return fail(400, "injected bad request")
	case "408":
		return fail(408, "injected request timeout")
	case "429":
		return fail(429, "injected rate limit")
	case "reset":
		// Read the whole request first, so that the client has sent it and
		// sees the reset while it waits for the answer.
		io.Copy(io.Discard, r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return fail(500, "%v", err)
		}
		if tcp, ok := conn.(*net.TCPConn); ok {
			tcp.SetLinger(0) // Close with RST, not FIN.
		}
		// Logged before the reset: once the client has seen it (and, after
		// its last attempt, the test reads the log), the request is there.
		s.logRequest(0, "connection reset")
		conn.Close()
		return errReset
	case "hang":
		// Consume the request first: only then does net/http watch the
		// connection and cancel the context when the client gives up.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Minute):
		}
		return fail(504, "hung until the client gave up")
	}
	if e := s.checkAuth(r); e != nil {
		return e
	}
	meta, e := parseQuery(r.URL.RawQuery)
	if e != nil {
		return e
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return fail(413, "request body too large: %v", err)
	}
	profile, config, e := parseForm(r.Header.Get("Content-Type"), body)
	if e != nil {
		return e
	}
	return s.store(meta, profile, config, r)
}

func (s *receiver) store(m *meta, profile []byte, config map[string]sampleType, r *http.Request) *httpError {
	raw := profile
	if len(profile) > 2 && profile[0] == 0x1f && profile[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(profile))
		if err != nil {
			return fail(400, "bad gzip: %v", err)
		}
		if raw, err = io.ReadAll(io.LimitReader(zr, maxProfileBytes+1)); err != nil {
			return fail(400, "bad gzip: %v", err)
		}
	}
	if len(raw) > maxProfileBytes {
		return fail(400, "the profile exceeds the size limit (%d bytes)", maxProfileBytes)
	}
	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.mu.Unlock()
	base := filepath.Join(s.dir, fmt.Sprintf("%06d", seq))
	if err := os.WriteFile(base+".pb.gz", profile, 0o644); err != nil {
		return fail(500, "%v", err)
	}
	dump, types, samples, err := pprofRaw(base + ".pb.gz")
	if err != nil {
		os.Remove(base + ".pb.gz")
		return fail(400, "failed to parse pprof: %v", err)
	}
	if samples > maxSamples {
		return fail(400, "the profile exceeds the samples count limit (%d)", maxSamples)
	}
	// The name's labels and the 4 the server adds (__name__, service_name,
	// pyroscope_spy and __delta__), as parseName counts.
	if e := validateSampleLabels(raw, len(m.labels)+4); e != nil {
		os.Remove(base + ".pb.gz")
		return e
	}
	var names, display, units []string
	for _, t := range types {
		st := strings.SplitN(t, "/", 2)[0]
		if strings.Contains(st, "-") {
			return fail(400, "sample type contains -")
		}
		c, ok := config[st]
		if !ok {
			return fail(400, "sample_type_config has no entry for sample type %q", st)
		}
		if !knownUnits[c.Units] || !knownAggregations[c.Aggregation] || c.Cumulative {
			return fail(400, "sample_type_config[%q]: bad units/aggregation or cumulative for a delta", st)
		}
		names = append(names, st)
		display = append(display, st+":"+c.DisplayName)
		units = append(units, st+":"+c.Units)
	}
	if len(config) != len(types) {
		return fail(400, "sample_type_config names sample types the profile does not have")
	}
	metric := metricName(types, config)
	if !promMetricName.MatchString(metric) {
		return fail(400, "invalid labels: invalid metric name %q", metric)
	}
	lines := append(m.lines, "metric="+metric, "sample_types="+strings.Join(types, " "),
		"display_names="+strings.Join(display, ","), "units="+strings.Join(units, ","),
		fmt.Sprintf("samples=%d", samples), "authorization="+r.Header.Get("Authorization"),
		"tenant="+r.Header.Get("X-Scope-OrgID"), "content_type="+r.Header.Get("Content-Type"))
	for k := range s.requiredHeaders {
		lines = append(lines, "header."+k+"="+r.Header.Get(k))
	}
	if err := os.WriteFile(base+".raw", []byte(dump), 0o644); err != nil {
		return fail(500, "%v", err)
	}
	if err := os.WriteFile(base+".tmp", []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return fail(500, "%v", err)
	}
	if err := os.Rename(base+".tmp", base+".meta"); err != nil {
		return fail(500, "%v", err)
	}
	return nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	s := &receiver{requiredHeaders: map[string]string{}}
	flag.StringVar(&s.dir, "dir", "", "where accepted uploads are stored (required)")
	flag.StringVar(&s.prefix, "prefix", "", "path prefix before /ingest")
	flag.StringVar(&s.mode, "mode", "ok", "ok, 500, hang, reset, 401, 400, 408 or 429")
	flag.IntVar(&s.failFirst, "fail-first", 0, "answer 500 to the first N ingest requests")
	flag.StringVar(&s.basicAuth, "basic-auth", "", "require basic auth user:password")
	flag.StringVar(&s.bearer, "bearer", "", "require this bearer token")
	flag.StringVar(&s.tenant, "tenant", "", "require this X-Scope-OrgID")
	headers := flag.String("require-headers", "", "Name=value,... headers required on uploads")
	tlsCert := flag.String("tls-cert", "", "serve HTTPS with this PEM certificate (with -tls-key)")
	tlsKey := flag.String("tls-key", "", "the PEM key of -tls-cert")
	flag.Parse()
	if s.dir == "" {
		fmt.Fprintln(os.Stderr, "-dir is required")
		os.Exit(2)
	}
	for _, kv := range strings.Split(*headers, ",") {
		if eq := strings.IndexByte(kv, '='); eq > 0 {
			s.requiredHeaders[kv[:eq]] = kv[eq+1:]
		}
	}
	var err error
	if s.logFile, err = os.OpenFile(filepath.Join(s.dir, "requests.log"),
		os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *tlsCert != "" || *tlsKey != "" {
		fmt.Printf("pyroscope-receiver listening on https://%s\n", ln.Addr())
		os.Stdout.Sync()
		fmt.Fprintln(os.Stderr, http.ServeTLS(ln, s, *tlsCert, *tlsKey))
		return
	}
	fmt.Printf("pyroscope-receiver listening on http://%s\n", ln.Addr())
	os.Stdout.Sync()
	fmt.Fprintln(os.Stderr, http.Serve(ln, s))
}
