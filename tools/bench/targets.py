"""The contended-workload targets of BENCHMARKS.md, judged from one run.

Each target compares two rows of the same run at one thread count: a
throughput ratio that must be at least a bound, or a p99 acquire latency
ratio that must be at most one. run_benchmarks.sh runs every row once per
round (bench.round-N.json, rows in a random order), so the two rows of a
round ran minutes apart at most, under about the same machine conditions.
So the ratio is taken per round, over the rounds in which both rows
contended, and reported as the median of those paired ratios. (Google
Benchmark's own --benchmark_repetitions shuffles every repetition of every
row together: its repetition i of two rows may have run at opposite ends
of the run, so a single bench.json is not paired at all.)

The verdict rests on a confidence interval for that median, free of any
assumption about the ratios' distribution: the order statistics
x(k)..x(n+1-k) of the n sorted ratios cover the true median with
probability 1 - 2 P(Binomial(n, 1/2) < k), and k is the largest that keeps
this at 95% or more. Up to 8 rounds that is the whole range (97% at 6, 98%
at 7, 99% at 8); at 12 rounds it leaves out the two lowest and the two
highest. With fewer than 6 rounds not even the whole range covers 95% (94%
at 5, 88% at 4, 75% at 3), and no verdict is given. A target is "met" only
when the interval is on the right side of the bound and "not met" only when
it is on the wrong side; otherwise the run cannot tell ("not resolved at
this noise"). The range over all the rounds is printed too.
"""

from math import comb, isfinite

# (workload, lock, reference, measure, bound). "throughput": lock's
# operations per second over the reference's, at least bound; "p99": lock's
# p99 acquire latency over the reference's, at most bound.
TARGETS = [
    ("cache", "lockprof:default", "std::mutex", "throughput", 1.00),
    ("cache", "lockprof:default", "std::mutex", "p99", 1.50),
    ("cache", "lockprof:default", "lockprof:off", "throughput", 0.98),
    ("cache", "lockprof:all_1", "lockprof:off", "throughput", 0.85),
    ("cache", "lockprof:lock_order", "lockprof:off", "throughput", 0.95),
    ("cache", "lockprof_shared:default", "std::shared_mutex", "throughput", 1.00),
    ("cache", "lockprof_shared:default", "lockprof_shared:off", "throughput", 0.98),
    ("cache", "lockprof_shared:all_1", "lockprof_shared:off", "throughput", 0.85),
    ("empty", "lockprof:default", "std::mutex", "throughput", 1.00),
    ("empty", "lockprof:default", "std::mutex", "p99", 1.50),
    ("empty", "lockprof:all_1", "lockprof:off", "throughput", 0.75),
    ("empty", "lockprof_shared:default", "std::shared_mutex", "throughput", 1.00),
]

# The fewest rounds whose whole range covers the median with 95%.
MIN_ROUNDS = 6


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def usable(v):
    return isinstance(v, (int, float)) and isfinite(v) and v > 0


def paired_values(a, b, key, combine):
    """combine(a's, b's) `key` in each round that both rows have (for
    contended rows, rounds in which they contended), sorted. Rows carry
    their repetitions by round in row["by_round"]."""
    out = []
    for rnd, ra in a["by_round"].items():
        rb = b["by_round"].get(rnd)
        # Missing, zero or not a number (Google Benchmark writes NaN for a
        # counter it could not compute): a NaN would leave the sort below
        # out of order, and the interval with it.
        if rb is None or not usable(ra.get(key)) or not usable(rb.get(key)):
            continue
        out.append(combine(ra[key], rb[key]))
    return sorted(out)


def paired_ratios(a, b, measure):
    """a's over b's measure in each round, sorted."""
    if measure == "throughput":
        # Throughput is inverse time: a's over b's is b's time over a's.
        return paired_values(a, b, "real_ns", lambda x, y: y / x)
    return paired_values(a, b, "p99_ns", lambda x, y: x / y)


COVERAGE = 0.95


def median_interval(ratios):
    """(lo, hi, coverage): the widest-k order-statistic interval for the
    median of the sorted `ratios` that still covers it with probability
    >= COVERAGE; the whole range when no narrower one does."""
    n = len(ratios)

    def coverage(k):
        return 1 - 2 * sum(comb(n, i) for i in range(k)) / 2 ** n

    k = 1
    while k + 1 <= (n + 1) // 2 and coverage(k + 1) >= COVERAGE:
        k += 1
    return ratios[k - 1], ratios[n - k], coverage(k)


def judge(rounds, lo, hi, bound, at_least):
    """The verdict on `rounds` paired ratios whose median's interval is lo..hi."""
    if rounds < MIN_ROUNDS:
        return "not resolved (%d rounds)" % rounds
    good, bad = (lo >= bound, hi < bound) if at_least else (hi <= bound, lo > bound)
    if good:
        return "met"
    if bad:
        return "**not met**"
    return "not resolved at this noise"


def summary(values, bound, at_least, fmt="%.3f"):
    """(median and interval as text, verdict) of sorted paired `values`
    against `bound`."""
    if not values:
        return "–", "not resolved (0 rounds)"
    lo, hi, cover = median_interval(values)
    text = (fmt + " (" + fmt + "–" + fmt + ", %.0f%%)") % (median(values), lo, hi, 100 * cover)
    return text, judge(len(values), lo, hi, bound, at_least)


def row_name(workload, lock, threads, measure):
    lat = "/lat" if measure == "p99" else ""
    return "%s/%s%s/real_time/threads:%d" % (workload, lock, lat, threads)


def print_targets(rows):
    """The targets' section of the report, from load_bench's rows."""
    threads = sorted({int(n.rsplit(":", 1)[1]) for n in rows
                      if n.startswith(("cache/", "empty/")) and "/threads:" in n})
    if not threads:
        return
    print("## Targets (contended workloads)\n")
    print("Ratio per round, over the rounds in which both rows contended: the "
          "median, a confidence interval for it of at least 95% (order statistics; the whole "
          "range up to 8 rounds; no verdict with fewer than 6, whose whole range covers less), "
          "and the range. Met: the interval on the right side of the target; not met: the "
          "interval on the wrong side; otherwise not resolved at this noise.\n")
    print("| workload | target | threads | ratio: median (interval) | range | rounds | status |")
    print("|---|---|---|---|---|---|---|")
    for workload, lock, ref, measure, bound in TARGETS:
        at_least = measure == "throughput"
        what = "%s %s %s %.2f× %s" % (
            lock, "throughput" if at_least else "p99 acquire", "≥" if at_least else "≤",
            bound, ref)
        for t in threads:
            a = rows.get(row_name(workload, lock, t, measure))
            b = rows.get(row_name(workload, ref, t, measure))
            if not a or not b:
                continue
            r = paired_ratios(a, b, measure)
            figure, status = summary(r, bound, at_least)
            spread = "%.3f–%.3f" % (r[0], r[-1]) if r else "–"
            print("| %s | %s | %d | %s | %s | %d | %s |" % (workload, what, t, figure, spread,
                                                           len(r), status))
    print()
