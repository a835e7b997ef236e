"""What the Python end-to-end tests (contention_page_test.py,
grafana_dashboard_test.py) have in common. Standard library only; each test
imports it from its own directory.

fail(message)      records a failure (in `failures`) and prints it; the test
                   goes on, and reports them all at the end.
die_with_parent()  run in a child before exec (preexec_fn): the kernel kills
                   the child should the test be killed (a ctest timeout).
http_get(url, timeout)
                   GET: (status, headers, body).
wait_for(what, seconds, fn, interval, required)
                   polls fn until it returns a true value and returns it; on
                   timeout, exits the test if `required`, else returns None.
start_demo(demo_path, log_path, slow_ms, env, started)
                   runs the demo on a port of its choosing; returns the
                   process and the port.
start_server(cmd, log_path, env, started)
                   the same for any program that prints "admin endpoint:
                   http://127.0.0.1:PORT/".
chromium(tmp, url, *args, size)
                   headless Chromium on url; returns its stdout (--dump-dom).
attributes(dom, element_id), unescape(s)
                   an element's attributes in dumped HTML; HTML's escapes
                   undone.
"""

import ctypes
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

failures = []


def fail(message):
    failures.append(message)
    print("FAIL: " + message, flush=True)


def stop(process):
    """Kills a process the test started, if it still runs."""
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()


def verdict():
    """The test's exit status, after printing how it went."""
    if failures:
        print(f"\n{len(failures)} failure(s)")
        return 1
    print("\nOK")
    return 0


def die_with_parent():
    # Should the test be killed (a ctest timeout), the kernel kills this
    # child too (PR_SET_PDEATHSIG).
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


def http_get(url, timeout):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, dict(r.headers), r.read()


def wait_for(what, seconds, fn, interval=0.5, required=False):
    """Polls fn until it returns a true value; returns it. On timeout, raises
    SystemExit if `required`, else prints so and returns None."""
    deadline = time.monotonic() + seconds
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            message = f"timed out after {seconds} s waiting for {what}"
            if required:
                raise SystemExit(message)
            print(message, flush=True)
            return None
        time.sleep(interval)


def start_demo(demo_path, log_path, slow_ms, env=None, started=None):
    """Runs the demo (4 readers, 2 writers holding its lock `slow_ms` ms, for
    at most 300 s) with its admin endpoint on a loopback port of its own
    choosing, its output in log_path; returns (process, port). `env` (this
    process's environment if None) goes without LOCKPROF_ADMIN_ADDR and
    LOCKPROF_PYROSCOPE_URL and with hold samples every 10th acquisition, so
    that the hold histograms fill within seconds. started(process) is called
    as soon as it runs. Exits the test if the demo exits first, or does not
    report its port within 60 s."""
    env = dict(os.environ if env is None else env)
    env["LOCKPROF_HOLD_RATE"] = "10"
    return start_server([demo_path, "--addr=127.0.0.1:0", "--readers=4", "--writers=2",
                         f"--slow-ms={slow_ms}", "--duration=300"], log_path, env, started)


def start_server(cmd, log_path, env=None, started=None):
    """Runs `cmd`, a program that serves lockprof's admin endpoint on a
    loopback port of its choosing and prints it, its output in log_path;
    returns (process, port). `env` (this process's environment if None)
    goes without LOCKPROF_ADMIN_ADDR and LOCKPROF_PYROSCOPE_URL. Exits the
    test if the program exits first, or does not report its port within
    60 s."""
    log = open(log_path, "w+")
    env = dict(os.environ if env is None else env)
    env.pop("LOCKPROF_ADMIN_ADDR", None)
    env.pop("LOCKPROF_PYROSCOPE_URL", None)
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                              preexec_fn=die_with_parent)
    if started is not None:
        started(server)

    def port():
        log.seek(0)
        m = re.search(r"admin endpoint: http://127\.0\.0\.1:(\d+)/", log.read())
        if not m and server.poll() is not None:
            log.seek(0)
            raise SystemExit(f"{cmd[0]} exited:\n" + log.read())
        return int(m.group(1)) if m else None
    p = wait_for(f"{cmd[0]}'s endpoint", 60, port)
    if p is None:
        log.seek(0)
        raise SystemExit(f"{cmd[0]} did not start:\n" + log.read())
    return server, p


def chromium(tmp, url, *args, size="1280,800"):
    """Runs headless Chromium on `url`; returns its stdout. Virtual time does
    not advance while fetches are pending, so the budget is what the page's
    script gets once its data arrived; the timeout is for a loaded machine."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium is not installed (tools/deps.sh test installs it)")
    profile_dir = tempfile.mkdtemp(dir=tmp)
    cmd = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-dev-shm-usage", "--user-data-dir=" + profile_dir,
           "--virtual-time-budget=15000", "--window-size=" + size, *args, url]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=180,
                       preexec_fn=die_with_parent)
    if r.returncode != 0:
        fail(f"chromium exited {r.returncode}: {r.stderr.decode()[-2000:]}")
    return r.stdout.decode(errors="replace")


def attributes(dom, element_id):
    """The attributes of the element with id `element_id` in dumped HTML."""
    m = re.search(r'<[a-z]+ [^>]*\bid="' + element_id + r'"[^>]*>', dom)
    if not m:
        return {}
    return {k: v for k, v in re.findall(r'([\w-]+)="([^"]*)"', m.group(0))}


def unescape(s):
    return s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"') \
        .replace("&#10;", "\n").replace("&amp;", "&")
