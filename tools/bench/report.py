#!/usr/bin/env python3
"""Prints the ratio tables of BENCHMARKS.md from run_benchmarks.sh's results.

Usage: report.py RESULTS_DIR   (bench.round-N.json, go.txt, scrape.txt,
memory.txt, machine.txt, as run_benchmarks.sh writes them; a directory with only some of
them, such as tools/bench/device/run_scaling.sh's contended rows, gets "not
measured in this run" for the other sections). Figures are medians over the
repetitions (for contended rows, over the repetitions that did contend: see
load_bench). The targets (targets.py) are judged on the ratios of the rows
of each round, with a confidence interval for their median.
"""
import os
import re
import sys

from bench_results import (MIN_HANDOFFS, load_bench, load_kv_lines, load_runs, lock_rank,
                           own_off)
from targets import (MIN_ROUNDS, median, median_interval, paired_ratios, paired_values,
                     print_targets, summary)

def verdict(ok):
    return "met" if ok else "**not met**"


def fmt_ns(ns):
    if ns >= 1e6:
        return "%.2f ms" % (ns / 1e6)
    if ns >= 1e3:
        return "%.2f µs" % (ns / 1e3)
    return "%.1f ns" % ns


def not_measured(title):
    """A section whose benchmark the results directory does not hold."""
    print("## %s\n\nNot measured in this run.\n" % title)


def sizes(context):
    """sizeof each lock, from the bench's context; lockprof's against the
    standard lock it replaces."""
    size = {k[len("sizeof:"):]: int(v) for k, v in context.items() if k.startswith("sizeof:")}
    if not size:
        return not_measured("Lock sizes")
    print("## Lock sizes (bytes)\n")
    print("| lock | bytes | target |")
    print("|---|---|---|")
    replaces = {"lockprof::Mutex": "std::mutex", "lockprof::SharedMutex": "std::shared_mutex"}
    for lock, n in size.items():
        target = ""
        if lock in replaces and replaces[lock] in size:
            std = size[replaces[lock]]
            target = "≤ %s (%d): %s" % (replaces[lock], std, verdict(n <= std))
        print("| %s | %d | %s |" % (lock, n, target))
    print()


def uncontended(rows):
    title = "Uncontended lock+unlock (CPU time per pair, median)"
    if not any(n.startswith("uncontended") for n in rows):
        return not_measured(title)
    print("## %s\n" % title)
    print("| workload | lock | ns | × std::mutex | × std::shared_mutex | target |")
    print("|---|---|---|---|---|---|")
    for workload in ("uncontended", "uncontended_nested", "uncontended_shared"):
        base_m = rows.get("%s/std::mutex" % workload) or rows.get("uncontended/std::mutex")
        base_s = rows.get("%s/std::shared_mutex" % workload)
        for name, r in rows.items():
            if not name.startswith(workload + "/"):
                continue
            lock = name.split("/", 1)[1]
            rm = r["cpu_ns"] / base_m["cpu_ns"] if base_m else float("nan")
            rs = r["cpu_ns"] / base_s["cpu_ns"] if base_s else float("nan")
            target = ""
            # Judged per round (the CPU time of the two rows of each
            # round), as the contended targets: met only when the interval
            # for the median is on the right side.
            replaces = {"lockprof:default": ("std::mutex", base_m),
                        "lockprof_shared:default": ("std::shared_mutex", base_s)}
            if lock in replaces and replaces[lock][1]:
                std_name, base = replaces[lock]
                ratios = paired_values(r, base, "cpu_ns", lambda x, y: x / y)
                text, status = summary(ratios, 1.10, False)
                target = "≤ 1.10× %s: %s, %s" % (std_name, text, status)
            elif lock == "lockprof:lock_order":
                off = rows.get("%s/lockprof:off" % workload)
                if off:
                    extra = paired_values(r, off, "cpu_ns", lambda x, y: x - y)
                    text, status = summary(extra, 5.0, False, "%+.1f")
                    target = "≤ +5 ns over lockprof:off: %s ns, %s" % (text, status)
            print("| %s | %s | %.2f | %.2f× | %.2f× | %s |" % (
                {"uncontended": "lock", "uncontended_nested": "lock, holding another",
                 "uncontended_shared": "lock_shared"}[workload], lock, r["cpu_ns"], rm,
                rs, target))
    if not any(n.startswith("uncontended_shared/lockprof") for n in rows):
        print("| lock_shared | lockprof_shared:* | – | – | – | "
              "no lockprof::SharedMutex in this tree |")
    print()


def contended(rows, workload, context):
    pat = re.compile(r"^%s/([^/]+)/real_time/threads:(\d+)$" % workload)
    by_threads = {}
    for name, r in rows.items():
        m = pat.match(name)
        if m:
            by_threads.setdefault(int(m.group(2)), []).append((m.group(1), r))
    title = {"cache": "Cache workload (9 Get : 1 Set on one map)",
             "empty": "Empty critical section",
             "think": "Work outside the lock"}[workload]
    if "workload:" + workload in context:
        title += " (%s)" % context["workload:" + workload]
    for threads in sorted(by_threads):
        print("## %s, %d threads\n" % (title, threads))
        print("| lock | Mops/s | × own profiling off | × std::mutex | handoffs/op | contended reps "
              "| p50 | p99 | p99.9 acquire |")
        print("|---|---|---|---|---|---|---|---|---|")
        entries = dict(by_threads[threads])
        std = entries.get("std::mutex")
        warn = []
        for lock, r in sorted(by_threads[threads], key=lambda e: lock_rank(e[0])):
            lat = rows.get("%s/%s/lat/real_time/threads:%d" % (workload, lock, threads), {})
            mops = 1e3 / r["real_ns"]
            off = entries.get(own_off(lock))
            vs_off = off["real_ns"] / r["real_ns"] if off else None
            vs_std = std["real_ns"] / r["real_ns"] if std else float("nan")
            h = r.get("handoffs", 0)
            if h < MIN_HANDOFFS:
                warn.append(lock)
            print("| %s | %.1f | %s | %.3f | %.3g | %d/%d | %s | %s | %s |" % (
                lock, mops, "%.3f" % vs_off if off else "–", vs_std, h,
                r["reps_used"] if h >= MIN_HANDOFFS else 0, r["reps"],
                fmt_ns(lat["p50_ns"]) if "p50_ns" in lat else "–",
                fmt_ns(lat["p99_ns"]) if "p99_ns" in lat else "–",
                fmt_ns(lat["p999_ns"]) if "p999_ns" in lat else "–"))
        print()
        if warn:
            print("Warning: handoffs/op < %g in every repetition of %s: those threads did not run "
                  "at the same time (a busy machine), so the row measured little contention.\n" %
                  (MIN_HANDOFFS, ", ".join(warn)))


def go_round_ratios(off, setting):
    """Go's throughput with `setting` over off's, per round of cache_bench.go
    (its rounds_ns), sorted; [] for an older go.txt without them."""
    a, b = str(off.get("rounds_ns", "")), str(setting.get("rounds_ns", ""))
    if not a or not b:
        return []
    pairs = zip([float(x) for x in a.split(",")], [float(x) for x in b.split(",")])
    return sorted(o / s for o, s in pairs if o > 0 and s > 0)


def overhead_verdict(lp_rounds, go_rounds):
    """lockprof's ratio to off no worse than Go's, on both intervals."""
    if len(lp_rounds) < MIN_ROUNDS or len(go_rounds) < MIN_ROUNDS:
        return "not resolved (%d and %d rounds)" % (len(lp_rounds), len(go_rounds))
    lp_lo, lp_hi, _ = median_interval(lp_rounds)
    go_lo, go_hi, _ = median_interval(go_rounds)
    if lp_lo >= min(go_hi, 1.0):
        return "met"
    if lp_hi < min(go_lo, 1.0):
        return "**not met**"
    return "not resolved at this noise"


def go_comparison(rows, go_lines):
    if not go_lines:
        return
    print("## Profiling overhead: lockprof against Go's runtime, cache workload\n")
    print("Throughput relative to profiling off, each in its own language, same run. "
          "Go-equivalent settings: Go `default` = lockprof's defaults applied to Go (mutex "
          "fraction 10, block rate 10 µs; Go's own default is off); Go `all_1` = fraction 1 "
          "and block rate 1, against lockprof `go_all_1` (mutex 1, block 1, hold at its "
          "default — Go has no hold profile) and `all_1` (hold rate 1 too).\n")
    print("| threads | setting | Go Mops/s | Go × off | lockprof Mops/s | lockprof × off | "
          "target: lockprof overhead ≤ Go's |")
    print("|---|---|---|---|---|---|---|")
    go = {}
    for g in go_lines:
        m = re.match(r"go/cache/(\w+)/threads:(\d+)", g["name"])
        go[(m.group(1), int(m.group(2)))] = g
    for (setting, threads), g in sorted(go.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if setting == "off":
            continue
        goff = go.get(("off", threads))
        lp_off = rows.get("cache/lockprof:off/real_time/threads:%d" % threads)
        for lp_setting in (["default"] if setting == "default" else ["go_all_1", "all_1"]):
            lp = rows.get("cache/lockprof:%s/real_time/threads:%d" % (lp_setting, threads))
            if not (goff and lp and lp_off):
                continue
            go_rounds = go_round_ratios(goff, g)
            lp_rounds = paired_ratios(lp, lp_off, "throughput")
            go_ratio = median(go_rounds) if go_rounds else goff["ns_per_op"] / g["ns_per_op"]
            lp_ratio = median(lp_rounds) if lp_rounds else lp_off["real_ns"] / lp["real_ns"]
            print("| %d | Go %s / lockprof %s | %.1f | %.3f | %.1f | %.3f | %s |" % (
                threads, setting, lp_setting, g["ops_per_s"] / 1e6, go_ratio,
                1e3 / lp["real_ns"], lp_ratio, overhead_verdict(lp_rounds, go_rounds)))
    print("\nA profiler cannot make a program faster: a ratio above 1 is run-to-run noise, so "
          "the target compares lockprof's ratio with min(Go's ratio, 1). Each ratio is taken "
          "per round (Go's settings run one after another in each of its rounds; lockprof's "
          "rows once per round of the C++ run); the target is met when the confidence "
          "interval for lockprof's median is above min(the upper end of Go's, 1), not met "
          "when it is below min(the lower end of Go's, 1), and otherwise not resolved.\n")
    offs = [g for (s, _), g in go.items() if s == "off"]
    for g in offs:
        if g.get("handoffs", 1) < MIN_HANDOFFS:
            print("Warning: Go %s handoffs/op %.3g: goroutines did not contend.\n" %
                  (g["name"], g["handoffs"]))


def per_round(row, key):
    """A row's `key` in each of its rounds, sorted."""
    return sorted(r[key] for r in row["by_round"].values() if r.get(key))


def costs(rows):
    title = "Recording and profile-building costs (median)"
    if not any(n.startswith(("event/", "profile/")) for n in rows):
        return not_measured(title)
    print("## %s\n" % title)
    print("| measurement | time | target |")
    print("|---|---|---|")
    for name, r in rows.items():
        if name.startswith("event/"):
            target = ""
            if name == "event/record_contention":
                text, status = summary(per_round(r, "cpu_ns"), 2000, False, "%.0f")
                target = "sampled event ≤ 2 µs: %s ns, %s" % (text, status)
            extra = " (depth %d)" % r["depth"] if "depth" in r else ""
            print("| %s%s | %s | %s |" % (name, extra, fmt_ns(r["cpu_ns"]), target))
    stages = {"4": "all stages", "0": "snapshot", "1": "resolve (merge, symbolize, trim)",
              "2": "encode profile.proto", "3": "gzip"}
    for name, r in rows.items():
        m = re.match(r"profile/10k_stacks/stage:(\d)", name)
        if m:
            target = ""
            if m.group(1) == "4":
                text, status = summary([v / 1e6 for v in per_round(r, "real_ns")], 100, False,
                                       "%.1f")
                target = "build < 100 ms: %s ms, %s" % (text, status)
            print("| build 10 000-stack mutex profile: %s | %s wall (%s CPU) | %s |" % (
                stages[m.group(1)], fmt_ns(r["real_ns"]), fmt_ns(r["cpu_ns"]), target))
    print()


def scrape(lines):
    title = "Application pauses while /debug/pprof/mutex is scraped in a loop"
    if not lines:
        return not_measured(title)
    print("## %s\n" % title)
    print("| phase | app threads | lock ops | longest op | longest op, no context switch "
          "| ops > 100 µs (no switch) | scrapes | first / median / max scrape |")
    print("|---|---|---|---|---|---|---|---|")
    for d in lines:
        if "phase" not in d:
            continue
        s = "–"
        if "scrapes" in d:
            s = "%.1f / %.1f / %.1f ms" % (d["first_scrape_ms"], d["median_scrape_ms"],
                                           d["max_scrape_ms"])
        print("| %s | %d | %.3g | %.1f µs | %.1f µs | %d (%d) | %s | %s |" % (
            d["phase"], d["threads"], d["ops"], d["max_us"], d["max_us_unswitched"],
            d["over_100us"], d["over_100us_unswitched"], int(d.get("scrapes", 0)) or "–", s))
    sc = [d for d in lines if d.get("phase") == "scraping"]
    if sc:
        d = sc[0]
        # Judged on the slowest scrape, not the median: met only if every
        # scrape was under the target; a median under it is not resolved.
        status = ("met" if d["max_scrape_ms"] < 100 else
                  "not resolved at this noise (the median is under it)"
                  if d["median_scrape_ms"] < 100 else "**not met**")
        print("\n- 10 000-stack profile serves (HTTP, median %.1f ms, slowest %.1f ms) — target "
              "< 100 ms: %s" % (d["median_scrape_ms"], d["max_scrape_ms"], status))
        phase = {b["phase"]: b for b in lines if "phase" in b}
        per_mops = {k: 1e6 * v["over_100us_unswitched"] / max(v["ops"], 1) for k, v in phase.items()}
        control = max(per_mops.get("baseline", 0), per_mops.get("busy", 0))
        print("- no application thread pauses > 100 µs because of a scrape: ops > 100 µs without a "
              "context switch, per million ops: scraping %.2f, busy control %.2f, baseline %.2f — %s"
              % (per_mops["scraping"], per_mops.get("busy", float("nan")),
                 per_mops.get("baseline", float("nan")),
                 "within the control's noise (at most 1.5× it + 0.5 per million)"
                 if per_mops["scraping"] <= 1.5 * control + 0.5
                 else "**more than the control**"))
    print()


def memory(lines):
    title = "Memory: 1 048 576 distinct call stacks contending"
    if not lines:
        return not_measured(title)
    print("## %s\n" % title)
    print("| cap (keys/profile) | RSS before → after flood | mutex keys / dropped | "
          "block keys / dropped | hold keys / dropped | overflow named | earlier samples kept |")
    print("|---|---|---|---|---|---|---|")
    run = None
    for d in lines:
        if "paths" in d:
            run = {"head": d}
            continue
        run[d["profile"]] = d
        if len(run) == 4:
            h = run["head"]
            cap = int(run["hold"]["slots"]) - 1
            named = all(run[p]["overflow_frame_in_profile"] for p in ("mutex", "block", "hold")
                        if run[p]["dropped_events"] > 0)
            print("| %d | %.1f → %.1f MiB | %d / %d | %d / %d | %d / %d | %s | %s |" % (
                cap, h["rss_before_mib"], h["rss_after_mib"],
                run["mutex"]["keys"], run["mutex"]["dropped_events"],
                run["block"]["keys"], run["block"]["dropped_events"],
                run["hold"]["keys"], run["hold"]["dropped_events"],
                "yes" if named else "**no**",
                "yes (%d/%d)" % (h["marker_holds"], h["expected"]) if h["flag"] == "OK"
                else "**LOST** (%d/%d)" % (h["marker_holds"], h["expected"])))
    print()


def main():
    d = sys.argv[1]
    runs, context = load_runs(d)
    rows = load_bench(runs)
    if os.path.exists(os.path.join(d, "machine.txt")):
        print("Machine: " + "; ".join(l.strip() for l in open(os.path.join(d, "machine.txt"))))
        print()
    sizes(context)
    uncontended(rows)
    for w in ("cache", "empty", "think"):
        contended(rows, w, context)
    print_targets(rows)
    go_comparison(rows, load_kv_lines(os.path.join(d, "go.txt"), "go/"))
    costs(rows)
    scrape(load_kv_lines(os.path.join(d, "scrape.txt"), "scrape_pause"))
    memory(load_kv_lines(os.path.join(d, "memory.txt"), "stack_memory"))


if __name__ == "__main__":
    main()
