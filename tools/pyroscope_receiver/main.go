// pyroscope-receiver: a strict stand-in for Pyroscope's POST /ingest, for
// testing uploaders where the real server cannot run.
//
// It enforces the protocol as Pyroscope's own Go client (pyroscope-go) speaks
// it and as the server validates it: method, path, the exact set of query
// parameters and their formats (name=app{k=v,...}, from/until in Unix
// nanoseconds), multipart field and file names, the sample_type_config JSON,
// and authentication headers. Anything else gets a 4xx with a message, as the
// real server answers. Each accepted profile is decoded with
// `go tool pprof -raw` (a profile it cannot read is a 400) and stored in
// -dir as NNNNNN.pb.gz (the bytes received), NNNNNN.raw (pprof's dump) and
// NNNNNN.meta (key=value lines), the .meta written last. Every request is
// logged to -dir/requests.log as "<unix ms> <status> <message>".
//
// Faults for tests: -mode ok|500|hang|401 (switchable at run time with
// POST /-/mode?set=MODE) and -fail-first N (answer 500 to the first N).
//
// Standard library only: go build -o receiver main.go
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

const (
	maxBodyBytes     = 16 << 20
	maxProfileBytes  = 4 << 20 // Uncompressed, Pyroscope's default limit.
	maxSamples       = 16000
	maxLabelNames    = 30
	maxLabelNameLen  = 1024
	maxLabelValueLen = 2048
)

var (
	promLabelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	promMetricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	knownUnits     = map[string]bool{"": true, "samples": true, "objects": true, "goroutines": true,
		"bytes": true, "lock_samples": true, "lock_nanoseconds": true, "trace_spans": true}
	knownAggregations = map[string]bool{"": true, "sum": true, "average": true}
	allowedParams     = map[string]bool{"name": true, "from": true, "until": true, "spyName": true,
		"sampleRate": true, "units": true, "aggregationType": true}
)

type receiver struct {
	dir, prefix, basicAuth, bearer, tenant string
	requiredHeaders                        map[string]string

	mu        sync.Mutex
	mode      string
	failFirst int
	seq       int
	logFile   *os.File
}

type httpError struct {
	status int
	msg    string
}

func fail(status int, format string, args ...interface{}) *httpError {
	return &httpError{status, fmt.Sprintf(format, args...)}
}

func (s *receiver) logRequest(status int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.logFile, "%d %d %s\n", time.Now().UnixMilli(), status, strings.ReplaceAll(msg, "\n", " "))
}

func (s *receiver) control(w http.ResponseWriter, r *http.Request) {
	mode := r.URL.Query().Get("set")
	switch mode {
	case "ok", "500", "hang", "401":
	default:
		http.Error(w, "mode must be ok, 500, hang or 401", http.StatusBadRequest)
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
	if e := s.ingest(w, r); e != nil {
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

// meta holds the validated query: key=value lines for the .meta file.
type meta struct {
	service string
	labels  map[string]string
	lines   []string
}

func parseQuery(raw string) (*meta, *httpError) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fail(400, "malformed query: %v", err)
	}
	for k, vs := range q {
		if !allowedParams[k] {
			return nil, fail(400, "unexpected query parameter %q (multipart uploads send no format)", k)
		}
		if len(vs) != 1 {
			return nil, fail(400, "query parameter %q repeated", k)
		}
	}
	for _, k := range []string{"name", "from", "until", "spyName"} {
		if _, ok := q[k]; !ok {
			return nil, fail(400, "missing query parameter %q", k)
		}
	}
	m := &meta{}
	var e *httpError
	if m.service, m.labels, e = parseName(q.Get("name")); e != nil {
		return nil, e
	}
	from, e := parseNanos("from", q.Get("from"))
	if e != nil {
		return nil, e
	}
	until, e := parseNanos("until", q.Get("until"))
	if e != nil {
		return nil, e
	}
	if from > until {
		return nil, fail(400, "from %d is after until %d", from, until)
	}
	if q.Get("spyName") == "" {
		return nil, fail(400, "empty spyName")
	}
	if sr := q.Get("sampleRate"); sr != "" {
		if _, err := strconv.ParseUint(sr, 10, 32); err != nil {
			return nil, fail(400, "sampleRate %q is not an integer", sr)
		}
	}
	if !knownUnits[q.Get("units")] || !knownAggregations[q.Get("aggregationType")] {
		return nil, fail(400, "unknown units or aggregationType")
	}
	keys := make([]string, 0, len(m.labels))
	for k := range m.labels {
		keys = append(keys, k+"="+m.labels[k])
	}
	sort.Strings(keys)
	m.lines = append(m.lines, "name="+q.Get("name"), "service_name="+m.service,
		"labels="+strings.Join(keys, ","), fmt.Sprintf("from=%d", from),
		fmt.Sprintf("until=%d", until), "spy="+q.Get("spyName"))
	return m, nil
}

// parseNanos accepts only what pyroscope-go sends: 19-digit Unix nanoseconds
// within a day of now (the server would read 10 digits as seconds, 13 as ms).
func parseNanos(key, v string) (int64, *httpError) {
	if len(v) != 19 {
		return 0, fail(400, "%s=%q: want Unix nanoseconds (19 digits)", key, v)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fail(400, "%s=%q: %v", key, v, err)
	}
	if d := time.Since(time.Unix(0, n)); d > 24*time.Hour || d < -time.Hour {
		return 0, fail(400, "%s=%q is not within a day of now", key, v)
	}
	return n, nil
}

// parseName follows Pyroscope's labelset.Parse (app{k=v,...}), then the
// server's label validation.
func parseName(name string) (string, map[string]string, *httpError) {
	open := strings.IndexByte(name, '{')
	if open < 0 || !strings.HasSuffix(name, "}") {
		return "", nil, fail(400, "name %q: want app{k=v,...}", name)
	}
	service := strings.TrimSpace(name[:open])
	if service == "" {
		return "", nil, fail(400, "name: service name is required")
	}
	for _, r := range service {
		if !(r == '-' || r == '.' || r == '/' || r == '_' || (r >= '0' && r <= '9') ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')) {
			return "", nil, fail(400, "name: invalid service name: %s: character is not allowed: %q", service, r)
		}
	}
	labels := map[string]string{}
	if body := name[open+1 : len(name)-1]; body != "" {
		for _, kv := range strings.Split(body, ",") {
			eq := strings.IndexByte(kv, '=')
			if eq < 0 {
				return "", nil, fail(400, "name: label %q has no value", kv)
			}
			k, v := strings.TrimSpace(kv[:eq]), strings.TrimSpace(kv[eq+1:])
			switch {
			case !promLabelName.MatchString(k) || strings.HasPrefix(k, "__"):
				return "", nil, fail(400, "name: invalid label name %q", k)
			case k == "service_name" || k == "pyroscope_spy":
				return "", nil, fail(400, "duplicate label name: %q", k)
			case len(k) > maxLabelNameLen || len(v) > maxLabelValueLen:
				return "", nil, fail(400, "label %q: name or value too long", k)
			case v == "" || !utf8.ValidString(v) || strings.ContainsAny(v, "{}"):
				return "", nil, fail(400, "label %q: invalid label value %q", k, v)
			}
			if _, dup := labels[k]; dup {
				return "", nil, fail(400, "duplicate label name: %q", k)
			}
			labels[k] = v
		}
	}
	if len(labels)+4 > maxLabelNames {
		return "", nil, fail(400, "profile series has %d label names; limit %d", len(labels)+4, maxLabelNames)
	}
	return service, labels, nil
}

type sampleType struct {
	Units       string `json:"units"`
	Aggregation string `json:"aggregation"`
	DisplayName string `json:"display-name"`
	Sampled     bool   `json:"sampled"`
	Cumulative  bool   `json:"cumulative"`
}

func parseForm(contentType string, body []byte) ([]byte, map[string]sampleType, *httpError) {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil || mediaType != "multipart/form-data" || params["boundary"] == "" {
		return nil, nil, fail(400, "Content-Type %q: want multipart/form-data with a boundary", contentType)
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	files := map[string]string{"profile": "profile.pprof", "sample_type_config": "sample_type_config.json"}
	parts := map[string][]byte{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fail(400, "malformed multipart body: %v", err)
		}
		field := p.FormName()
		if field == "prev_profile" {
			return nil, nil, fail(400, "unsupported client version. Please update github.com/grafana/pyroscope-go to the latest version")
		}
		if want, ok := files[field]; !ok || p.FileName() != want {
			return nil, nil, fail(400, "unexpected form part %q (file %q)", field, p.FileName())
		}
		if ct := p.Header.Get("Content-Type"); ct != "application/octet-stream" {
			return nil, nil, fail(400, "form part %q: Content-Type %q", field, ct)
		}
		if _, dup := parts[field]; dup {
			return nil, nil, fail(400, "form part %q repeated", field)
		}
		if parts[field], err = io.ReadAll(p); err != nil {
			return nil, nil, fail(400, "form part %q: %v", field, err)
		}
	}
	profile, ok := parts["profile"]
	if !ok || len(profile) == 0 {
		return nil, nil, fail(400, "no profile in the form")
	}
	config := map[string]sampleType{}
	if raw, ok := parts["sample_type_config"]; ok {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&config); err != nil {
			return nil, nil, fail(400, "sample_type_config: %v", err)
		}
	}
	return profile, config, nil
}

// pprofRaw decodes a profile with `go tool pprof -raw`; returns its sample
// types and number of samples.
func pprofRaw(file string) (string, []string, int, error) {
	out, err := exec.Command("go", "tool", "pprof", "-raw", file).CombinedOutput()
	if err != nil {
		return "", nil, 0, fmt.Errorf("%v: %s", err, out)
	}
	var types []string
	samples := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for state := 0; sc.Scan(); {
		line := sc.Text()
		switch {
		case line == "Samples:":
			state = 1
		case state == 1:
			types, state = strings.Fields(line), 2
		case state == 2 && strings.HasPrefix(line, " "):
			samples++
		case state == 2:
			state = 3
		}
	}
	if len(types) == 0 {
		return "", nil, 0, fmt.Errorf("no sample types in: %s", out)
	}
	return string(out), types, samples, nil
}

// metricName is how Pyroscope names the series (its __name__).
func metricName(types []string, config map[string]sampleType) string {
	st := ""
	for _, t := range types {
		st = strings.SplitN(t, "/", 2)[0]
		if c, ok := config[st]; ok && c.DisplayName != "" {
			st = c.DisplayName
		}
		for _, m := range []struct{ sub, name string }{{"cpu", "process_cpu"}, {"alloc_", "memory"},
			{"inuse_", "memory"}, {"mutex_", "mutex"}, {"block_", "block"}, {"goroutines", "goroutines"}} {
			if strings.Contains(st, m.sub) {
				return m.name
			}
		}
	}
	return st
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
	flag.StringVar(&s.mode, "mode", "ok", "ok, 500, hang or 401")
	flag.IntVar(&s.failFirst, "fail-first", 0, "answer 500 to the first N ingest requests")
	flag.StringVar(&s.basicAuth, "basic-auth", "", "require basic auth user:password")
	flag.StringVar(&s.bearer, "bearer", "", "require this bearer token")
	flag.StringVar(&s.tenant, "tenant", "", "require this X-Scope-OrgID")
	headers := flag.String("require-headers", "", "Name=value,... headers required on uploads")
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
	fmt.Printf("pyroscope-receiver listening on http://%s\n", ln.Addr())
	os.Stdout.Sync()
	fmt.Fprintln(os.Stderr, http.Serve(ln, s))
}
