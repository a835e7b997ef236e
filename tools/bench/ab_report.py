#!/usr/bin/env python3
"""Tables of an interleaved A/B run (tools/bench/ab.sh): per row, medians over
the repetitions with their range, B against A, and the lock-protocol targets
judged on B from the same data.

Usage: ab_report.py OUT_DIR   (A.<rep>.json, B.<rep>.json, machine.txt)

A ratio's spread is the range of its per-repetition values (both sides of a
ratio come from the same binary invocation, or, for B/A, from the same
repetition). A target is "met" only if the whole range clears it, "not met"
if none of it does, and "not resolved" otherwise.
"""
import glob
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import fmt_ns, median, read_runs  # noqa: E402

LOCKS = ["std::mutex", "std::shared_mutex", "absl::Mutex", "lockprof:off", "lockprof:default",
         "lockprof:all_1", "lockprof:go_all_1", "lockprof_shared:off", "lockprof_shared:default",
         "lockprof_shared:all_1", "lockprof_shared:go_all_1"]


def load(out):
    """side -> rep -> name -> row (real_ns, cpu_ns and counters)."""
    runs = {}
    for path in glob.glob(os.path.join(out, "[AB].*.json")):
        side, rep = os.path.basename(path).split(".")[:2]
        runs.setdefault(side, {})[int(rep)] = {r["name"]: r for r in read_runs(path)}
    return runs


def series(runs, side, name, key):
    """Per-repetition values of one row's key, in repetition order."""
    return [reps[name][key] for _, reps in sorted(runs.get(side, {}).items())
            if name in reps and key in reps[name]]


def ratio_series(runs, side_a, name_a, side_b, name_b, key, invert=False):
    """Per-repetition a/b (or b/a if invert) for the repetitions that have both."""
    out = []
    ra, rb = runs.get(side_a, {}), runs.get(side_b, {})
    for rep in sorted(set(ra) & set(rb)):
        a, b = ra[rep].get(name_a), rb[rep].get(name_b)
        if a and b and key in a and key in b and a[key] and b[key]:
            out.append(b[key] / a[key] if invert else a[key] / b[key])
    return out


def spread(v, fmt="%.2f"):
    if not v:
        return "–"
    return (fmt + " [" + fmt + "–" + fmt + "]") % (median(v), min(v), max(v))


def judge(values, bound, at_least):
    if not values:
        return "not measured"
    lo, hi = min(values), max(values)
    if (lo >= bound) if at_least else (hi <= bound):
        return "met"
    if (hi < bound) if at_least else (lo > bound):
        return "**not met**"
    return "not resolved"


def contended_tables(runs):
    pat = re.compile(r"^(empty|cache)/([^/]+)/real_time/threads:(\d+)$")
    keys = set()
    for reps in runs.get("B", {}).values():
        for name in reps:
            m = pat.match(name)
            if m:
                keys.add((m.group(1), int(m.group(3))))
    for workload, threads in sorted(keys):
        print("### %s, %d threads\n" % (workload, threads))
        print("| lock | A Mops/s | B Mops/s | B/A | A p50 / p99 / p99.9 | B p50 / p99 / p99.9 |")
        print("|---|---|---|---|---|---|")
        for lock in LOCKS:
            name = "%s/%s/real_time/threads:%d" % (workload, lock, threads)
            lat = "%s/%s/lat/real_time/threads:%d" % (workload, lock, threads)
            a = [1e3 / x for x in series(runs, "A", name, "real_ns")]
            b = [1e3 / x for x in series(runs, "B", name, "real_ns")]
            if not a and not b:
                continue
            ba = ratio_series(runs, "A", name, "B", name, "real_ns")

            def pct(side):
                vals = [series(runs, side, lat, k) for k in ("p50_ns", "p99_ns", "p999_ns")]
                return " / ".join(fmt_ns(median(v)) if v else "–" for v in vals)

            print("| %s | %s | %s | %s | %s | %s |" % (lock, spread(a, "%.1f"), spread(b, "%.1f"),
                                                      spread(ba), pct("A"), pct("B")))
        print()


def targets(runs):
    print("### Targets, judged on B\n")
    print("| target | threads | measured (median [range] over repetitions) | status |")
    print("|---|---|---|---|")
    threads = sorted({int(m.group(1)) for reps in runs.get("B", {}).values() for n in reps
                      for m in [re.search(r"threads:(\d+)$", n)] if m})

    def row(label, t, values, bound, at_least=True):
        print("| %s | %s | %s | %s |" % (label, t, spread(values, "%.3f"),
                                         judge(values, bound, at_least)))

    def thr(w, lock, t):
        return "%s/%s/real_time/threads:%d" % (w, lock, t)

    def lat(w, lock, t):
        return "%s/%s/lat/real_time/threads:%d" % (w, lock, t)

    for w in ("empty", "cache"):
        for t in threads:
            row("%s: lockprof::Mutex default ≥ 1.0× std::mutex throughput" % w, t,
                ratio_series(runs, "B", thr(w, "std::mutex", t), "B",
                             thr(w, "lockprof:default", t), "real_ns"), 1.0)
        for t in threads:
            row("%s: lockprof::Mutex default p99 acquire ≤ 1.5× std::mutex's" % w, t,
                ratio_series(runs, "B", lat(w, "lockprof:default", t), "B",
                             lat(w, "std::mutex", t), "p99_ns"), 1.5, at_least=False)
        for t in threads:
            row("%s: SharedMutex default ≥ 1.0× std::shared_mutex throughput" % w, t,
                ratio_series(runs, "B", thr(w, "std::shared_mutex", t), "B",
                             thr(w, "lockprof_shared:default", t), "real_ns"), 1.0)
    for kind, (w, bound) in (("Mutex", ("cache", 0.98)), ("SharedMutex", ("cache", 0.98))):
        lock = "lockprof" if kind == "Mutex" else "lockprof_shared"
        for t in threads:
            row("cache: %s default ≥ %.2f× off" % (kind, bound), t,
                ratio_series(runs, "B", thr(w, lock + ":off", t), "B", thr(w, lock + ":default", t),
                             "real_ns"), bound)
    for w, bound in (("cache", 0.85), ("empty", 0.75)):
        for t in threads:
            row("%s: Mutex every rate at 1 ≥ %.2f× off" % (w, bound), t,
                ratio_series(runs, "B", thr(w, "lockprof:off", t), "B", thr(w, "lockprof:all_1", t),
                             "real_ns"), bound)
    row("uncontended (2-thread process): SharedMutex lock+unlock ≤ 1.0× std::shared_mutex", "1",
        ratio_series(runs, "B", "uncontended_mt/lockprof_shared:default", "B",
                     "uncontended_mt/std::shared_mutex", "cpu_ns"), 1.0, at_least=False)
    sizes = [reps.get("sizeof/locks/iterations:1") for reps in runs.get("B", {}).values()]
    sizes = [s for s in sizes if s]
    if sizes:
        s = sizes[0]
        for mine, std in (("lockprof::Mutex", "std::mutex"),
                          ("lockprof::SharedMutex", "std::shared_mutex")):
            if mine in s:
                print("| sizeof(%s) ≤ sizeof(%s) | – | %d vs %d bytes | %s |" % (
                    mine, std, s[mine], s[std], "met" if s[mine] <= s[std] else "**not met**"))
    print()


def uncontended_table(runs):
    names = sorted({n for reps in runs.get("B", {}).values() for n in reps
                    if n.startswith("uncontended")})
    if not names:
        return
    print("### Uncontended lock+unlock, process with an idle second thread (CPU ns per pair)\n")
    print("| row | A ns | B ns | B/A |")
    print("|---|---|---|---|")
    for n in names:
        print("| %s | %s | %s | %s |" % (n, spread(series(runs, "A", n, "cpu_ns")),
                                        spread(series(runs, "B", n, "cpu_ns")),
                                        spread(ratio_series(runs, "A", n, "B", n, "cpu_ns",
                                                            invert=True))))
    print()


def main():
    out = sys.argv[1]
    runs = load(out)
    machine = os.path.join(out, "machine.txt")
    if os.path.exists(machine):
        print("Machine: " + "; ".join(l.strip() for l in open(machine)) + "\n")
    print("Repetitions: A %d, B %d. Mops/s and B/A: median [min–max] over repetitions.\n" % (
        len(runs.get("A", {})), len(runs.get("B", {}))))
    targets(runs)
    uncontended_table(runs)
    contended_tables(runs)


if __name__ == "__main__":
    main()
