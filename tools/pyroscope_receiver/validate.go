// Validation of uploads, as Pyroscope's /ingest handler and its
// distributor validate them (see main.go).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
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

type httpError struct {
	status int
	msg    string
}

func fail(status int, format string, args ...interface{}) *httpError {
	return &httpError{status, fmt.Sprintf(format, args...)}
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
