#!/usr/bin/env python3
"""The Grafana dashboard and the alerting rules, checked against real data.

Runs the demo, has a real Prometheus (Debian's prometheus) scrape it every
second with tools/prometheus/lockprof-rules.yml loaded, then evaluates every
PromQL expression of tools/grafana/lockprof.json (panels and variables) and
every alerting rule's expression through Prometheus's HTTP query API: each
must evaluate without error and return data. Parsing is not enough: a
misspelled metric or label parses and returns nothing, and a panel showing
nothing is the failure users would see. Also: the dashboard's structure
(what Grafana's import needs), the flame-graph panels' profile types against
the demo's own profiles, `promtool check rules`, and that README's rules
block is the rules file.

Usage: grafana_dashboard_test.py --demo PATH --source-dir DIR
Standard library only.
"""

import argparse
import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse

from lockprof_testlib import die_with_parent, fail, failures, http_get, wait_for
import lockprof_testlib

PROMETHEUS_UID = "${datasource}"
PYROSCOPE_UID = "${pyroscope}"
PROMETHEUS_TYPE = "prometheus"
PYROSCOPE_TYPE = "grafana-pyroscope-datasource"

# Substitutions for Grafana's built-in variables, for a 1 s scrape interval.
# Grafana's $__rate_interval is max($__interval + scrape, 4 * scrape) = 4 s
# here; 10 s leaves room for a late scrape on a loaded machine while still
# needing two scrapes of real contention. $__range is the dashboard's time
# range: the test's whole life fits in a minute.
BUILTINS = {
    "$__rate_interval": "10s",
    "$__interval": "2s",
    "$__range": "1m",
}

def free_port():
    # The kernel picks a free port; Prometheus binds it a moment later (it
    # cannot report a port it chose itself), so start-up is retried.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- structure


def check_structure(dash):
    """What Grafana's import and its panels need, and what keeps panels apart."""
    inputs = {i.get("pluginId"): i.get("name") for i in dash.get("__inputs", [])}
    if inputs.get(PROMETHEUS_TYPE) is None or inputs.get(PYROSCOPE_TYPE) is None:
        fail(f"__inputs must ask for a Prometheus and a Pyroscope data source: {inputs}")
    for key in ("title", "uid", "schemaVersion", "panels", "templating"):
        if key not in dash:
            fail(f"dashboard has no {key!r}")
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    for name, plugin in (("datasource", PROMETHEUS_TYPE), ("pyroscope", PYROSCOPE_TYPE)):
        v = variables.get(name, {})
        if v.get("type") != "datasource" or v.get("query") != plugin:
            fail(f"variable {name!r} must be a {plugin} data source variable: {v}")
        # Import replaces ${DS_...} with the data source the user picks.
        want = "${" + inputs.get(plugin, "?") + "}"
        if v.get("current", {}).get("value") != want:
            fail(f"variable {name!r} should default to {want}")
    for name in ("job", "instance", "lock"):
        v = variables.get(name, {})
        if v.get("type") != "query" or "label_values(" not in v.get("definition", ""):
            fail(f"variable {name!r} must be a label_values() query variable")

    ids, rects = set(), []
    for p in dash.get("panels", []):
        title = p.get("title", "?")
        if p.get("id") in ids or not isinstance(p.get("id"), int):
            fail(f"panel {title!r}: id {p.get('id')!r} missing or not unique")
        ids.add(p.get("id"))
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in "xywh") or g["w"] <= 0 or g["h"] <= 0 \
                or g["x"] < 0 or g["x"] + g["w"] > 24:
            fail(f"panel {title!r}: bad gridPos {g}")
            continue
        for other_title, o in rects:
            if g["x"] < o["x"] + o["w"] and o["x"] < g["x"] + g["w"] and \
                    g["y"] < o["y"] + o["h"] and o["y"] < g["y"] + g["h"]:
                fail(f"panels {title!r} and {other_title!r} overlap: {g} {o}")
        rects.append((title, g))
        ds = p.get("datasource") or {}
        if (ds.get("type"), ds.get("uid")) not in ((PROMETHEUS_TYPE, PROMETHEUS_UID),
                                                   (PYROSCOPE_TYPE, PYROSCOPE_UID)):
            fail(f"panel {title!r}: datasource {ds} is not one of the dashboard's variables")
        targets = p.get("targets") or []
        if not targets:
            fail(f"panel {title!r} has no targets")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs) or None in refs:
            fail(f"panel {title!r}: refIds {refs} missing or repeated")
        for t in targets:
            if t.get("datasource", ds) != ds:
                fail(f"panel {title!r}: target {t.get('refId')} has another datasource")
            if ds.get("type") == PROMETHEUS_TYPE and not t.get("expr"):
                fail(f"panel {title!r}: target {t.get('refId')} has no expr")
            if ds.get("type") == PYROSCOPE_TYPE:
                if p.get("type") != "flamegraph" or t.get("queryType") != "profile" or \
                        not t.get("profileTypeId") or "labelSelector" not in t:
                    fail(f"panel {title!r}: Pyroscope targets belong in flamegraph panels "
                         "with queryType profile, a profileTypeId and a labelSelector")
    if not any(p.get("type") == "flamegraph" for p in dash.get("panels", [])):
        fail("no flamegraph panel")

    # Every $variable used anywhere (Pyroscope selectors included) is defined.
    defined = set(variables) | set(inputs.values()) | {b[1:] for b in BUILTINS} | {"__all"}
    for name in sorted(set(re.findall(r"\$\{?(\w+)", json.dumps(dash))) - defined):
        fail(f"${name} is used but is not a variable of the dashboard")


# -------------------------------------------------------------- pprof types


def varint(buf, i):
    v, shift = 0, 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return v, i


def fields(buf):
    """(field number, wire type, value) of a protobuf message, top level."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wt}")
        yield num, wt, v


def pyroscope_profile_types(name, gz):
    """Pyroscope's ids for a pprof profile's sample types:
    <name>:<sample type>:<unit>:<period type>:<period unit>."""
    profile = gzip.decompress(gz)
    strings, sample_types, period = [], [], None
    for num, _, v in fields(profile):
        if num == 6:  # string_table
            strings.append(v.decode())
        elif num == 1:  # sample_type: ValueType{type = 1, unit = 2}
            sample_types.append({n: x for n, _, x in fields(v)})
        elif num == 11:  # period_type
            period = {n: x for n, _, x in fields(v)}
    s = lambda vt, n: strings[vt.get(n, 0)]
    return {f"{name}:{s(t, 1)}:{s(t, 2)}:{s(period, 1)}:{s(period, 2)}" for t in sample_types}


# ------------------------------------------------------------- expressions


def substitute(expr, values):
    for k, v in BUILTINS.items():
        expr = expr.replace(k, v)
    for name, value in values.items():
        expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
    if "$" in expr:
        fail(f"unsubstituted variable in {expr}")
    return expr


# A rule's expression compared at its top level with a constant:
# "<expr> > 0.05". Such an expression returns nothing while the alert does not
# fire (the demo's p99 or failed uploads may well be below the threshold),
# so "returns data" is checked on what is compared: the expression with the
# comparison stripped, whose series must exist for the alert to ever fire.
# A misspelled metric or label there returns nothing and fails the test.
TRAILING_COMPARISON = re.compile(r"\s*(==|!=|>=|<=|>|<)\s*(bool\s+)?[-+]?[0-9.eE+]+\s*$")


def strip_comparison(expr):
    return TRAILING_COMPARISON.sub("", expr)


def metric_names(expr):
    return set(re.findall(r"\b(lockprof_[a-z0-9_]+)", expr))


class Prometheus:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def api(self, path, **params):
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        try:
            _, _, body = http_get(url, timeout=5)
        except urllib.error.HTTPError as e:  # 400/422: the query's error.
            body = e.read()
        except (OSError, urllib.error.URLError) as e:
            return {"status": "error", "error": str(e)}
        return json.loads(body)

    def query(self, expr):
        return self.api("/api/v1/query", query=expr)


def has_data(answer):
    """A successful answer with at least one sample that is a number (a
    quantile over an empty window is NaN: the panel would show nothing)."""
    if answer.get("status") != "success":
        return False
    data = answer["data"]
    if data["resultType"] == "scalar":
        return data["result"][1] not in ("NaN",)
    return any(r["value"][1] != "NaN" for r in data["result"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--timeout", type=float, default=90,
                    help="seconds to wait for every expression to return data")
    args = ap.parse_args()
    src = os.path.abspath(args.source_dir)  # Prometheus reads rule_files from its config's dir.
    dashboard_path = os.path.join(src, "tools/grafana/lockprof.json")
    rules_path = os.path.join(src, "tools/prometheus/lockprof-rules.yml")

    with open(dashboard_path, encoding="utf-8") as f:
        dash = json.load(f)
    check_structure(dash)

    # README shows the rules file itself: its rules block must be the file.
    with open(rules_path, encoding="utf-8") as f:
        rules_text = f.read()
    with open(os.path.join(src, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    m = re.search(r"```yaml\n(groups:\n.*?)```", readme, re.S)
    if not m or m.group(1) != rules_text:
        fail("README's rules block (```yaml starting with groups:) differs from "
             "tools/prometheus/lockprof-rules.yml")
    check = subprocess.run(["promtool", "check", "rules", rules_path],
                           capture_output=True, text=True)
    print(check.stdout + check.stderr, end="", flush=True)
    if check.returncode != 0:
        fail("promtool check rules failed")

    # Every Prometheus expression of the dashboard, with where it is from.
    panel_exprs = []
    for p in dash.get("panels", []):
        for t in p.get("targets", []):
            if (t.get("datasource") or p.get("datasource") or {}).get("type") == PROMETHEUS_TYPE:
                panel_exprs.append((f"panel {p.get('title')!r} {t.get('refId')}", t["expr"]))
    variables = [v for v in dash["templating"]["list"]
                 if v.get("type") == "query" and v.get("datasource", {}).get("type") == PROMETHEUS_TYPE]
    flame_types = {(p["title"], t["profileTypeId"]) for p in dash["panels"]
                   for t in p.get("targets", []) if "profileTypeId" in t}

    # SIGTERM (ctest, a user) ends the run through the cleanup below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    procs = []
    with tempfile.TemporaryDirectory(prefix="lockprof_grafana_") as tmp:
        try:
            run(args, tmp, procs, rules_path, panel_exprs, variables, flame_types)
        finally:
            for p in reversed(procs):
                if p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(10)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
    if failures:
        print(f"\n{len(failures)} failure(s):")
        for f in failures:
            print("  " + f)
        return 1
    print("\nOK")
    return 0


def start_demo(args, tmp, procs):
    # A short hold: the hold histogram fills within seconds.
    _, port = lockprof_testlib.start_demo(args.demo, os.path.join(tmp, "demo.log"), slow_ms=2,
                                          started=procs.append)
    return port


def start_prometheus(tmp, procs, demo_port, rules_path):
    config = os.path.join(tmp, "prometheus.yml")
    with open(config, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "  evaluation_interval: 1s\n"
                f"rule_files: ['{rules_path}']\n"
                "scrape_configs:\n  - job_name: lockprof\n    static_configs:\n"
                f"      - targets: ['127.0.0.1:{demo_port}']\n")
    for attempt in range(3):
        port = free_port()
        log_path = os.path.join(tmp, f"prometheus{attempt}.log")
        log = open(log_path, "w")
        prom = subprocess.Popen(["prometheus", f"--config.file={config}",
                                 f"--storage.tsdb.path={tmp}/data{attempt}",
                                 f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=die_with_parent)
        procs.append(prom)

        def ready():
            if prom.poll() is not None:
                return "exited"
            try:
                return http_get(f"http://127.0.0.1:{port}/-/ready", timeout=2)[0] == 200
            except (OSError, urllib.error.URLError):
                return False
        if wait_for("Prometheus to be ready", 60, ready) is True:
            return Prometheus(port)
        prom.terminate()
        prom.wait()
        with open(log_path) as f:
            print(f.read()[-2000:], flush=True)
    raise SystemExit("Prometheus did not start")


def run(args, tmp, procs, rules_path, panel_exprs, variables, flame_types):
    demo_port = start_demo(args, tmp, procs)

    # The flame-graph panels name profile types as Pyroscope ids them; the
    # ids come from the demo's own profiles, as the uploader sends them.
    known = set()
    for name in ("mutex", "block"):
        _, _, gz = http_get(f"http://127.0.0.1:{demo_port}/debug/pprof/{name}", timeout=5)
        known |= pyroscope_profile_types(name, gz)
    print(f"profile types the demo's profiles carry: {sorted(known)}", flush=True)
    for title, t in sorted(flame_types):
        if t not in known:
            fail(f"panel {title!r}: profile type {t} is not one lockprof sends ({sorted(known)})")

    prom = start_prometheus(tmp, procs, demo_port, rules_path)

    # The demo's series, scraped: then metric names can be checked at once.
    if not wait_for("the first scrape", 60, lambda: has_data(
            prom.query('lockprof_lock_contentions_total{job="lockprof"}'))):
        raise SystemExit("Prometheus never scraped the demo: " +
                         json.dumps(prom.query("up")))
    names = set(prom.api("/api/v1/label/__name__/values").get("data", []))

    # The variables first: their values stand in for $job, $instance and
    # $lock below (one value each, as a user would pick; "All" is .*).
    # label_values(<selector>, <label>) is evaluated as what Grafana asks:
    # the label's values on the selector's series.
    returned = []
    values = {}
    for v in variables:
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", v["definition"].strip())
        if not m:
            fail(f"variable {v['name']}: cannot read {v['definition']!r}")
            continue
        selector, label = substitute(m.group(1), values), m.group(2)
        expr = f"group by ({label}) ({selector})"
        answer = wait_for(f"variable {v['name']}", 30,
                          lambda: (lambda a: has_data(a) and a)(prom.query(expr)))
        got = sorted(r["metric"].get(label, "") for r in (answer or {}).get("data", {}).get("result", []))
        if not got:
            fail(f"variable {v['name']}: {v['definition']} returned no values")
            values[v["name"]] = ".*"
            continue
        # The demo's one lock, else the first value.
        pick = "cache" if "cache" in got else got[0]
        # Regex-quoted, then quoted for a PromQL string, as Grafana does.
        values[v["name"]] = re.escape(pick).replace("\\", "\\\\")
        print(f"variable {v['name']}: {got} -> {pick}", flush=True)
        returned.append(((f"variable {v['name']!r}", expr), len(got)))

    # The rules as Prometheus loaded them: each evaluated, without error.
    groups = wait_for("the rules to be evaluated", 30, lambda: (lambda r: r if r and all(
        rule.get("health") == "ok" for g in r for rule in g["rules"]) else None)(
        prom.api("/api/v1/rules").get("data", {}).get("groups")))
    rule_exprs = []
    for g in prom.api("/api/v1/rules").get("data", {}).get("groups", []):
        for rule in g["rules"]:
            where = f"rule {rule.get('name')}"
            if rule.get("health") != "ok":
                fail(f"{where}: health {rule.get('health')}: {rule.get('lastError')}")
            rule_exprs.append((where, strip_comparison(rule["query"])))
    if not rule_exprs:
        fail("Prometheus loaded no rules from " + rules_path)
    elif not groups:
        print("rules:", json.dumps(prom.api("/api/v1/rules")), flush=True)

    checks = [(w, substitute(e, values)) for w, e in panel_exprs] + rule_exprs
    pending = {}
    for where, expr in checks:
        unknown = metric_names(expr) - names
        if unknown:
            fail(f"{where}: no such metric {sorted(unknown)} in: {expr}")
        else:
            pending[(where, expr)] = None

    # rate() needs two scrapes within its window, quantiles a window with
    # observations: poll until each returns data (or errors) or time is up.
    deadline = time.monotonic() + args.timeout
    while pending and time.monotonic() < deadline:
        for key in list(pending):
            answer = prom.query(key[1])
            if answer.get("status") != "success":
                fail(f"{key[0]}: error {answer.get('errorType')}: {answer.get('error')}: {key[1]}")
                del pending[key]
            elif has_data(answer):
                returned.append((key, len(answer["data"]["result"])))
                del pending[key]
            else:
                pending[key] = answer
        if pending:
            time.sleep(1)
    for (where, expr), answer in pending.items():
        fail(f"{where}: no data after {args.timeout:.0f} s: {expr}\n    {json.dumps(answer)}")

    # In the dashboard's order (variables, panels, rules), not the order they
    # first returned data in.
    order = {key: i for i, key in enumerate(checks)}
    returned.sort(key=lambda r: order.get(r[0], -1))
    print(f"\n{len(returned)} expressions returned data:", flush=True)
    for (where, expr), n in returned:
        print(f"  [{n} series] {where}\n      {expr}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
