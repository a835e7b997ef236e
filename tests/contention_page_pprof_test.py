#!/usr/bin/env python3
"""The contention page's filters against go tool pprof's, on a real profile.

Runs tests/page/labels_program.cc (a lock without a name, one named "", a
ShardedMap's shard labels, a label whose value is 20 digits), which contends
for 2 s and then serves the same cumulative profiles. For each filtered view
headless Chromium draws, the page must draw a flame graph and the
go tool pprof command the page prints (its -http=: replaced by -raw) must
select samples of the same total: the lock "(unnamed)" as /metrics names it
(no lock label or an empty one), shard=1 (a numeric label: pprof's regular
expressions match string labels only), the 20-digit value (pprof panicked
parsing it as an int64), a lock and a label at once. Also: the lock list
has no blank entry (the lock named "" was one, whose value was "all"'s),
and a click on the "(other)" row of the top-locks table (the locks the
per-lock table had no room for) does not filter the flame graph by a lock
no sample has.

Usage: contention_page_pprof_test.py --program PATH
Standard library only.
"""

import argparse
import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

from lockprof_testlib import attributes, chromium, fail, http_get, start_server, stop, verdict, wait_for

DIGITS = "12345678901234567890"

# Fragments of the page's URL (#lock=...&label=...), one view each.
VIEWS = ["lock=(unnamed)", "label=shard=1", "label=req=" + DIGITS, "lock=sessions&label=shard=2",
         "lock=(unnamed)&label=req=" + DIGITS, "lock=page.labelled&label=req=" + DIGITS]


def pprof_total(command, tmp):
    """Runs the page's command with -raw for -http=:; returns the sum of its
    samples' second values (the page's default value, delay), or None."""
    command = command.replace("'-http=:'", "-raw")
    env = dict(os.environ, PPROF_TMPDIR=tmp, HOME=tmp)
    r = subprocess.run(["bash", "-c", command], cwd=tmp, capture_output=True, env=env,
                       timeout=300)
    out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    if r.returncode != 0 or "panic" in err:
        fail(f"{command}: exit {r.returncode}: {err[-1500:]}")
        return None
    return sum(int(m.group(1)) for m in re.finditer(r"^\s*\d+\s+(\d+): ", out, re.M))


def check_view(page, fragment, tmp):
    dom = chromium(tmp, page + "#" + urllib.parse.quote(fragment, safe="=&()"), "--dump-dom")
    if 'data-state="rendered"' not in dom:
        fail(f"{fragment}: the page did not render")
        return 0
    flame = attributes(dom, "flame")
    frames, total = int(flame.get("data-frames", "0")), int(flame.get("data-total", "0"))
    code = re.search(r'<div id="links">.*?go tool pprof: <code>(.*?)</code>', dom, re.S)
    command = html.unescape(code.group(1)) if code else ""
    got = pprof_total(command, tmp)
    print(f"{fragment}: page total {total} in {frames} frames, pprof total {got}\n  {command}",
          flush=True)
    if frames < 2 or total <= 0:
        fail(f"{fragment}: the page draws no flame graph")
    if got != total:
        fail(f"{fragment}: go tool pprof selects {got}, the page shows {total}: {command}")
    return total


def check_lock_list(page, tmp):
    dom = chromium(tmp, page, "--dump-dom")
    select = re.search(r'<select id="lock">(.*?)</select>', dom, re.S)
    options = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select.group(1)) \
        if select else []
    print(f"lock list: {options}", flush=True)
    if not options or options[0] != ("", "all"):
        fail(f"the lock list does not start with all: {options}")
    if any(value == "" or text == "" for value, text in options[1:]):
        fail(f"the lock list has a blank entry, which selects all: {options}")
    if ("(unnamed)", "(unnamed)") not in options:
        fail(f"the lock list has no (unnamed): {options}")


OTHER_ROW_USER = """<script>
// The server, stubbed: /metrics lists a lock and "(other)"; the profile has
// samples of both lock "a" and a lock "(other)" stood for.
window.fetch = async (path) => {
  if (path.includes('metrics')) {
    return new Response('lockprof_lock_waits_total{lock="(other)"} 9\\n' +
                        'lockprof_lock_waits_total{lock="a"} 3\\n', {status: 200});
  }
  return new Response(JSON.stringify({profile: 'mutex', duration_nanos: 0, funcs: ['f'],
    types: [['contentions', 'count'], ['delay', 'nanoseconds']],
    samples: [{v: [1, 10], s: [0], l: {lock: 'a'}}, {v: [1, 20], s: [0], l: {lock: 'b'}}]}),
    {status: 200});
};
setTimeout(() => {
  document.querySelector('tr[data-lock="(other)"]').click();
  document.body.dataset.checked = 'lock:' + document.getElementById('lock').value + ' total:' +
    document.getElementById('flame').dataset.total;
}, 2000);
</script>
"""


def check_other_row(page_html, tmp):
    path = os.path.join(tmp, "other.html")
    with open(path, "w") as f:
        f.write(page_html.replace("<script>", OTHER_ROW_USER + "<script>", 1))
    dom = chromium(tmp, "file://" + path, "--dump-dom")
    checked = re.search(r'data-checked="([^"]*)"', dom)
    print(f"after a click on (other): {checked and checked.group(1)}", flush=True)
    if not checked or checked.group(1) != "lock: total:30":
        fail(f"a click on (other) filtered the flame graph: {checked and checked.group(1)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--program", required=True)
    args = ap.parse_args()
    if shutil.which("go") is None:
        raise SystemExit("go is not installed (tools/deps.sh test installs it)")
    tmp = tempfile.mkdtemp(prefix="lockprof-page-pprof-")
    program = None
    try:
        program, port = start_server([args.program, "2"], os.path.join(tmp, "program.log"))
        base = f"http://127.0.0.1:{port}"
        time.sleep(3)  # The 2 s of contention, after which the profiles stay as they are.
        wait_for("(unnamed) in /metrics", 30,
                 lambda: b'lock="(unnamed)"' in http_get(base + "/metrics", timeout=30)[2],
                 required=True)
        page = base + "/debug/lockprof/"
        check_lock_list(page, tmp)
        totals = {fragment: check_view(page, fragment, tmp) for fragment in VIEWS}
        # The lock named "" is (unnamed) too: only the lock without a name
        # has the label.
        if not totals[VIEWS[0]] > totals[VIEWS[4]]:
            fail(f"(unnamed) does not take the lock named \"\": {totals}")
        check_other_row(http_get(page, timeout=30)[2].decode(), tmp)
    finally:
        stop(program)
        shutil.rmtree(tmp, ignore_errors=True)
    return verdict()


if __name__ == "__main__":
    sys.exit(main())
