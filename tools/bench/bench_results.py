"""Loading run_benchmarks.sh's results: Google Benchmark's rounds
(bench.round-N.json) into one row per benchmark, with its repetitions by
round for targets.py, and the key=value lines of the other parts (go.txt,
scrape.txt, memory.txt)."""
import json
import os
import re

from targets import median

UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
# Row order in the tables.
SETTINGS = ["off", "default", "all_1", "go_all_1", "lock_order"]
LOCK_ORDER = (["std::mutex", "std::shared_mutex", "pthread_rwlock:prefer_writer", "absl::Mutex"] +
              ["lockprof:" + s for s in SETTINGS] + ["lockprof_shared:" + s for s in SETTINGS])


def lock_rank(name):
    """Sort key: workload, then LOCK_ORDER (name is 'workload/lock/...' or a lock)."""
    parts = name.split("/")
    lock = parts[1] if len(parts) > 1 else parts[0]
    rank = LOCK_ORDER.index(lock) if lock in LOCK_ORDER else len(LOCK_ORDER)
    return (parts[0] if len(parts) > 1 else "", rank, name)


def own_off(lock):
    """The same lockprof type with profiling off, or None for other locks."""
    return lock.split(":")[0] + ":off" if lock.startswith("lockprof") else None


# A contended row whose lock changed hands less often than this per
# operation did not really contend: its threads took turns on one core.
MIN_HANDOFFS = 1e-3


def round_files(d):
    """run_benchmarks.sh's rounds, bench.round-N.json, as (N, path) in order of N."""
    found = []
    for f in os.listdir(d):
        m = re.match(r"^bench\.round-(\d+)\.json$", f)
        if m:
            found.append((int(m.group(1)), os.path.join(d, f)))
    return sorted(found)


def load_runs(d):
    """Google Benchmark's runs from d as (round, benchmark) pairs, and the
    first file's context. Rounds come from bench.round-N.json (N); a single
    bench.json (an older run, or --benchmark_repetitions) has none (None):
    its repetition i of two rows need not have run at the same time."""
    files = round_files(d) or [(None, os.path.join(d, "bench.json"))]
    runs, context = [], None
    for rnd, path in files:
        with open(path) as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                # A round cut short (a timeout kills the benchmark mid-write):
                # the other rounds still count.
                print("Warning: %s is not complete JSON (%s): left out.\n" %
                      (os.path.basename(path), e))
                continue
        if context is None:
            context = data.get("context", {})
        runs.extend((rnd, b) for b in data["benchmarks"])
    return runs, context or {}


def load_bench(runs):
    """run_name -> one row of medians over its repetitions (times in ns).

    On a machine shared with other work, a multi-threaded repetition may run
    while another process holds one of the cores: its threads then take turns
    on the other core and measure no contention. Such repetitions show almost
    no hand-offs; where a row has repetitions with hand-offs, only those count
    (row["reps_used"] says how many of row["reps"]), and only those are
    paired by round (row["by_round"]: round -> repetition, for targets.py).
    """
    reps = {}
    for rnd, b in runs:
        # Aggregates are recomputed here; a repetition that failed
        # (error_occurred: its times are 0) measured nothing.
        if b.get("run_type") == "aggregate" or b.get("error_occurred") or not b.get("real_time"):
            continue
        scale = UNIT_NS[b["time_unit"]]
        row = dict(b)
        row["real_ns"] = b["real_time"] * scale
        row["cpu_ns"] = b["cpu_time"] * scale
        row["round"] = rnd
        reps.setdefault(b.get("run_name", b["name"]), []).append(row)
    rows = {}
    for name, rs in reps.items():
        used = rs
        contended = rs
        if rs[0].get("threads", 1) > 1:
            contended = [r for r in rs if r.get("handoffs", 0) >= MIN_HANDOFFS]
            used = contended or rs
        row = dict(used[0])
        for k, v in used[0].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                row[k] = median([r[k] for r in used])
        row["reps"] = len(rs)
        row["reps_used"] = len(used)
        row["by_round"] = {r["round"]: r for r in contended if r["round"] is not None}
        rows[name] = row
    return dict(sorted(rows.items(), key=lambda kv: lock_rank(kv[0])))


def load_kv_lines(path, prefix):
    """Lines 'prefix k=v k=v ...' as dicts (numbers converted)."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts or not parts[0].startswith(prefix):
                continue
            d = {"name": parts[0]}
            for p in parts[1:]:
                if "=" in p:
                    k, v = p.split("=", 1)
                    try:
                        d[k] = float(v)
                    except ValueError:
                        d[k] = v
                else:
                    d["flag"] = p
            out.append(d)
    return out
