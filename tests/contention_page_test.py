#!/usr/bin/env python3
"""The contention page (/debug/lockprof/), rendered by a real browser.

Runs the demo, lets its lock contend for a few seconds, then has headless
Chromium (Debian's chromium) load the page from the demo's endpoint and
checks the DOM the page's script built: the flame graph rendered, its
function with the largest self value (what `go tool pprof -top` lists first)
is demo::Cache::Set, in the cumulative view, in a 2-second window and in a
comparison of two consecutive windows (#diff=1); the top-locks table lists
the demo's lock (read from /metrics, so a rename of the lock does not break
the test), with its waits, and draws its wait and hold histograms. With a token set and none
entered, the page loads and says it needs one, and shows no data. Also: the
page is self-contained (no absolute URL in it, a Content-Security-Policy
that forbids loading anything from elsewhere). Saves screenshots of the
page, its flame graph and its top-locks table into --screenshots (README's
docs/contention-page*.png come from here).

Usage: contention_page_test.py --demo PATH --screenshots DIR
Standard library only.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from lockprof_testlib import attributes, chromium, fail, http_get, stop, unescape, verdict, wait_for
import lockprof_testlib


def start_demo(demo_path, tmp, token=None):
    env = dict(os.environ)
    env.pop("LOCKPROF_ADMIN_TOKEN", None)
    if token:
        env["LOCKPROF_ADMIN_TOKEN"] = token
    # Few readers and a long update, as demo_test: on 2 busy cores, readers
    # preempted inside Get must not rival the writers' 20 ms holds.
    return lockprof_testlib.start_demo(
        demo_path, os.path.join(tmp, f"demo{'-token' if token else ''}.log"), slow_ms=20, env=env)


def top_lock(base):
    """The lock with the most wait in /metrics, once it has waited."""
    _, _, body = http_get(base + "/metrics", timeout=30)
    best = None
    for m in re.finditer(r'^lockprof_lock_wait_seconds_sum\{lock="([^"]*)"[^}]*\} (\S+)$',
                         body.decode(), re.M):
        if float(m.group(2)) > 0 and (best is None or float(m.group(2)) > best[1]):
            best = (m.group(1), float(m.group(2)))
    return best and best[0]


def check_rendered(dom, view, lock, want_window=False, want_base=False):
    body = re.search(r"<body[^>]*>", dom)
    state = body and re.search(r'data-state="(\w+)"', body.group(0))
    if not state or state.group(1) != "rendered":
        status = re.search(r'<span id="status"[^>]*>(.*?)</span>', dom, re.S)
        fail(f"{view}: the page did not render (state {state and state.group(1)}, "
             f"status {status and status.group(1)!r})")
        return
    flame = attributes(dom, "flame")
    top = unescape(flame.get("data-top-self", ""))
    print(f"{view}: flame graph of {flame.get('data-profile')}, {flame.get('data-frames')} "
          f"frames, largest self value: {top}", flush=True)
    if flame.get("data-profile") != "mutex" or int(flame.get("data-frames", "0")) < 2:
        fail(f"{view}: no mutex flame graph drawn: {flame}")
    if "Cache::Set" not in top:
        fail(f"{view}: the widest frame by self value is {top!r}, not demo::Cache::Set")
    if want_window and int(flame.get("data-duration-nanos", "0")) < 1_000_000_000:
        fail(f"{view}: not a window of 2 s: {flame}")
    if want_base and int(flame.get("data-base-total") or "0") <= 0:
        fail(f"{view}: not compared with a base: {flame}")
    locks = unescape(attributes(dom, "locks").get("data-locks", "")).split("\n")
    print(f"{view}: top locks {locks}", flush=True)
    if lock not in locks:
        fail(f"{view}: the top-locks table does not list {lock!r}: {locks}")
    hist = unescape(attributes(dom, "hist").get("data-lock", ""))
    if hist != lock or dom.count('class="hist"') != 2:
        fail(f"{view}: no wait and hold histograms of {lock!r} (shown: {hist!r})")
    rows = {unescape(name): dict(re.findall(r'([\w-]+)="([^"]*)"', attrs))
            for attrs, name in re.findall(r"<tr ([^>]*)><td>([^<]*)</td>", dom)}
    if lock not in rows:
        fail(f"{view}: no table row shows {lock!r}: {list(rows)}")
        return
    # The demo's readers wait behind 20 ms writes: the waits column (from
    # lockprof_lock_waits_total) counts them, however each wait ended.
    waits = rows[lock].get("data-waits", "")
    print(f"{view}: {lock!r} waits {waits}", flush=True)
    if not waits.isdigit() or int(waits) < 1:
        fail(f"{view}: the row of {lock!r} shows no waits: {rows[lock]}")


def check_page_source(base):
    """Returns the page's HTML."""
    status, headers, html = http_get(base + "/debug/lockprof/", timeout=30)
    text = html.decode()
    print(f"page: {len(html)} bytes", flush=True)
    if status != 200 or not headers.get("Content-Type", "").startswith("text/html"):
        fail(f"/debug/lockprof/: {status} {headers.get('Content-Type')}")
    csp = headers.get("Content-Security-Policy", "")
    if "default-src 'none'" not in csp or "connect-src 'self'" not in csp:
        fail(f"the page's Content-Security-Policy lets it load from elsewhere: {csp!r}")
    external = re.findall(r"""(?:src|href|url)\s*[=(]\s*["']?(?:https?:)?//""", text)
    if external:
        fail(f"the page refers to other sites: {external}")
    return text


def check_metrics_parser(tmp):
    """The page's /metrics parser, run by Chromium on lines whose lock names
    hold '}' and an escaped quote: each lock must come out whole."""
    source = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "server", "page",
                               "contention.js")).read()
    start = source.index("function unescapeLabel")
    end = source.index("\nfunction ", source.index("function parseMetrics"))
    lines = ('lockprof_lock_contentions_total{lock="map{shard}",mode="write"} 5\\n'
             'lockprof_lock_waits_total{lock="a\\\\"}b"} 2\\n')
    harness = os.path.join(tmp, "parser.html")
    with open(harness, "w") as f:
        f.write("<html><body><pre id=out></pre><script>\n" + source[start:end] +
                "\nconst locks = parseMetrics('" + lines + "');\n"
                "document.getElementById('out').textContent = "
                "JSON.stringify(locks.map(l => [l.lock, l.contentions, l.waits]));\n"
                "</script></body></html>\n")
    dom = chromium(tmp, "file://" + harness, "--dump-dom")
    out = re.search(r'<pre id="out">(.*?)</pre>', dom, re.S)
    got = unescape(out.group(1)) if out else None
    print(f"metrics parser: {got}", flush=True)
    if got != '[["map{shard}",5,0],["a\\"}b",0,2]]':
        fail(f"the page's /metrics parser lost a lock whose name holds '}}': {got!r}")


GO_TAGFOCUS = r"""
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// As go tool pprof reads -tagfocus=key=value (internal/driver's
// compileTagFilter): regular expressions split at commas, any one matching.
func main() {
	var in struct{ Names, Values []string }
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		panic(err)
	}
	for i, value := range in.Values {
		var matched []string
		for _, name := range in.Names {
			for _, part := range strings.Split(value, ",") {
				if regexp.MustCompile(part).MatchString(name) {
					matched = append(matched, name)
					break
				}
			}
		}
		fmt.Printf("%q selects %q\n", in.Names[i], matched)
	}
}
"""


def check_pprof_filter(tmp):
    """The go tool pprof command the page prints selects what the page shows:
    -tagfocus's values, made by the page and read as pprof reads them (Go's
    regexp), select each lock name and no other."""
    source = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "server", "page",
                               "pprof_command.js")).read()
    start = source.index("function pprofExactly")
    end = source.index("\nfunction ", start)
    names = ["db", "db.pool", "q,r", "r", "a+b", "5", "x(y)", "[z]", "back\\slash", "d$", "^c",
             "<img src=x>", "\u00fcn\u00efcode", "12345678901234567890", "a" + "0123456789" * 5]
    harness = os.path.join(tmp, "filter.html")
    with open(harness, "w") as f:
        f.write("<html><body><pre id=out></pre><script>\n" + source[start:end] +
                "\nconst names = " + json.dumps(names) + ";\n"
                "document.getElementById('out').textContent = "
                "JSON.stringify({Names: names, Values: names.map(pprofExactly)});\n"
                "</script></body></html>\n")
    dom = chromium(tmp, "file://" + harness, "--dump-dom")
    out = re.search(r'<pre id="out">(.*?)</pre>', dom, re.S)
    if not out:
        fail("the page's pprof filter did not run")
        return
    program = os.path.join(tmp, "tagfocus.go")
    with open(program, "w") as f:
        f.write(GO_TAGFOCUS)
    r = subprocess.run(["go", "run", program], input=unescape(out.group(1)).encode(),
                       capture_output=True, timeout=300)
    got = r.stdout.decode()
    print(f"pprof filters: {got}", flush=True)
    if r.returncode != 0:
        fail(f"go run failed: {r.stderr.decode()[-2000:]}")
    for name in names:
        if f"{go_quote(name)} selects [{go_quote(name)}]\n" not in got:
            fail(f"pprof's -tagfocus from the page selects more or less than {name!r}: {got!r}")


SUPERSEDING_USER = """<script>
// The server, stubbed: a window's answer comes once the window has passed.
function answer(dur, fn) {
  return new Response(JSON.stringify({profile: 'mutex', duration_nanos: dur, funcs: [fn],
    types: [['contentions', 'count'], ['delay', 'nanoseconds']],
    samples: [{v: [1, 1000], s: [0], l: {lock: 'x'}}]}), {status: 200});
}
window.fetch = async (path) => {
  if (path.includes('metrics')) return new Response('', {status: 200});
  if (path.includes('seconds=')) {
    await new Promise((r) => setTimeout(r, 3000));
    return answer(5e9, 'FROM_THE_WINDOW');
  }
  return answer(0, 'CUMULATIVE');
};
// The user picks "last 5 s", then goes back to cumulative 200 ms later.
const pick = (v) => { const w = document.getElementById('window'); w.value = v; w.onchange(); };
setTimeout(() => pick('5'), 500);
setTimeout(() => pick(''), 700);
setTimeout(() => { document.body.dataset.checked = 'shown:' +
  document.getElementById('flame').dataset.topSelf; }, 6000);
</script>
"""


def check_superseded_answers(tmp, html):
    """A view's answer that arrives after the user asked for another view is
    dropped: the page keeps showing what its controls say."""
    page = os.path.join(tmp, "superseded.html")
    with open(page, "w") as f:
        f.write(html.replace("<script>", SUPERSEDING_USER + "<script>", 1))
    dom = chromium(tmp, "file://" + page, "--dump-dom")
    checked = re.search(r'data-checked="([^"]*)"', dom)
    print(f"superseded answer: {checked and checked.group(1)}", flush=True)
    if not checked or checked.group(1) != "shown:CUMULATIVE":
        fail(f"a late window answer replaced the cumulative view the user went back to: "
             f"{checked and checked.group(1)}")


def go_quote(s):
    """Go's %q of a string of printable characters."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo", required=True)
    ap.add_argument("--screenshots", required=True)
    args = ap.parse_args()
    os.makedirs(args.screenshots, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="lockprof-page-")
    demo = None
    try:
        check_metrics_parser(tmp)
        check_pprof_filter(tmp)
        demo, port = start_demo(args.demo, tmp)
        base = f"http://127.0.0.1:{port}"
        lock = wait_for("the demo's lock to wait", 60, lambda: top_lock(base), required=True)
        print(f"demo on port {port}, its lock: {lock!r}", flush=True)
        time.sleep(3)  # A few seconds of contention in the cumulative profile.
        check_superseded_answers(tmp, check_page_source(base))
        page = base + "/debug/lockprof/"
        check_rendered(chromium(tmp, page, "--dump-dom"), "cumulative", lock)
        check_rendered(chromium(tmp, page + "#window=2", "--dump-dom"), "2 s window", lock,
                       want_window=True)
        # The -base workflow: two consecutive 2 s windows, the first as base.
        check_rendered(chromium(tmp, page + "#window=2&diff=1", "--dump-dom"), "diff of 2 s windows",
                       lock, want_window=True, want_base=True)
        for name, fragment, size in (("contention-page", "", "1280,620"),
                                     ("contention-page-flame", "#show=flame", "1280,420"),
                                     ("contention-page-locks", "#show=locks", "1280,270")):
            path = os.path.join(args.screenshots, name + ".png")
            if os.path.exists(path):
                os.remove(path)
            chromium(tmp, page + fragment, "--screenshot=" + path, size=size)
            ok = os.path.exists(path) and open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
            print(f"screenshot {path}: {'saved' if ok else 'MISSING'}", flush=True)
            if not ok:
                fail(f"no screenshot {path}")
        demo.kill()
        demo.wait()
        # With a token: the page loads (it holds no data), its own requests
        # are refused until the user enters the token, and it says so.
        demo, port = start_demo(args.demo, tmp, token="page-test-token")
        dom = chromium(tmp, f"http://127.0.0.1:{port}/debug/lockprof/", "--dump-dom")
        status = re.search(r'<span id="status"[^>]*>(.*?)</span>', dom, re.S)
        print(f"with a token, none entered: status {status and status.group(1)!r}", flush=True)
        if 'data-state="error"' not in dom or not status or "token" not in status.group(1):
            fail("with a token and none entered, the page should say it needs one: "
                 f"{status and status.group(1)!r}")
        if "Cache::Set" in dom:
            fail("with a token and none entered, the page shows profile data")
    finally:
        stop(demo)
        shutil.rmtree(tmp, ignore_errors=True)
    return verdict()


if __name__ == "__main__":
    sys.exit(main())
