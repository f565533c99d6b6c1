#!/usr/bin/env python3
"""The columnar codec against row-wise zstd and pg_dump, side by side in one run, on a TPC-H-like `lineitem`.

Starts a throwaway cluster (as benches/compare.py does, whose helpers it uses), generates `lineitem` with
--rows rows in SQL (generate_series and random() after setseed, so every run makes the same table): bigint
keys, an integer line number, numeric(15,2) quantity, price, discount and tax, one-letter flags, three dates,
low-cardinality text (ship instruction and mode) and a comment of random words. Then, --repeat times each,
it times and sizes `pg_dump -Fd` (its default compression), `pgsafe dump -Z 1` (row-wise zstd, the
default before columnar) and `pgsafe dump -Z columnar:1` (the default), all with -j JOBS, and restores
both pgsafe archives (verified, as restore always is) into an empty database under `/usr/bin/time -v` for
their peak RSS; the restored table's content is compared with the original. `benches/compare.py --data
tpch` runs the same table (with its orders) against every tool; this script is the codec's own. Prints medians and the ratios the targets are stated in:

    python3 benches/columnar.py --rows 2000000 --repeat 3

Targets (issue 15): archive size at most 0.75 of pg_dump -Fd's; dump time at most 1.1 of row-wise pgsafe's;
restore peak RSS under 100 MB.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import BIN, LINEITEM, Cluster, build_pgsafe, psql, size_of, timed  # noqa: E402



def peak_rss_mib(cmd):
    """Runs cmd under `/usr/bin/time -v`; returns (seconds, peak RSS in MiB) as time reports them."""
    out = subprocess.run(["/usr/bin/time", "-v", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    if out.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} failed:\n{out.stderr}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", out.stderr)
    seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
    return seconds, rss / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000, help="rows of lineitem (default 2,000,000)")
    ap.add_argument("--jobs", type=int, default=2, help="-j for every tool (default 2)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool, interleaved; the median is reported")
    ap.add_argument("--level", default="1", help="the zstd level of both pgsafe runs (default 1)")
    args = ap.parse_args()

    pgsafe = build_pgsafe()
    cluster = Cluster(pgsafe)
    work = Path(tempfile.mkdtemp(prefix="pgsafe-columnar-"))
    j = str(args.jobs)
    try:
        print(f"generating lineitem, {args.rows} rows...", file=sys.stderr)
        psql("postgres", "CREATE DATABASE tpch")
        psql("tpch", LINEITEM.format(rows=args.rows))
        psql("tpch", "VACUUM ANALYZE lineitem")
        table_mb = int(psql("tpch", "SELECT pg_table_size('lineitem')")) / 2**20

        tools = {
            "pg_dump -Fd": lambda out: [str(BIN / "pg_dump"), "-Fd", "-j", j, "-f", out, "tpch"],
            f"pgsafe dump -Z {args.level}": lambda out: [pgsafe, "dump", "-q", "-j", j, "-Z", args.level, "-d",
                                                         "tpch", "-f", out],
            f"pgsafe dump -Z columnar:{args.level}": lambda out: [pgsafe, "dump", "-q", "-j", j, "-Z",
                                                                  f"columnar:{args.level}", "-d", "tpch", "-f", out],
        }
        times = {name: [] for name in tools}
        sizes = {name: [] for name in tools}
        rss = {name: [] for name in tools}
        # Interleaved, so that a slow minute of a shared machine falls on every tool alike.
        for i in range(args.repeat):
            for k, (name, cmd) in enumerate(tools.items()):
                out = work / f"out{k}-{i}"
                shutil.rmtree(out, ignore_errors=True)
                t, m = timed(cmd(str(out)))
                times[name].append(t)
                sizes[name].append(size_of(out))
                rss[name].append(m)
                print(f"  {name}: run {i + 1}: {t:.2f}s {size_of(out) / 2**20:.1f} MB", file=sys.stderr)

        restores = {}
        for k, name in list(enumerate(tools))[1:]:
            runs = []
            for i in range(args.repeat):
                psql("postgres", "DROP DATABASE IF EXISTS restored")
                psql("postgres", "CREATE DATABASE restored")
                runs.append(peak_rss_mib([pgsafe, "restore", "-q", "-j", j, "-d", "restored", str(work / f"out{k}-0")]))
                print(f"  restore of {name}: run {i + 1}: {runs[-1][0]:.2f}s", file=sys.stderr)
            restores[name] = (statistics.median(t for t, _ in runs), max(m for _, m in runs))
            if not compare_tables():
                sys.exit(f"error: the table restored from `{name}`'s archive differs from the original")

        med = {name: statistics.median(v) for name, v in times.items()}
        size = {name: statistics.median(v) for name, v in sizes.items()}
        names = list(tools)
        pg, row, col = names
        print(f"\nlineitem: {args.rows} rows, {table_mb:.0f} MB on disk; -j {j}; median of {args.repeat}; "
              f"{os.cpu_count()} cores\n")
        print(f"{'command':<34} {'time':>8} {'vs row-wise':>11} {'size':>9} {'vs pg_dump':>10} {'peak RSS':>9}")
        for name in names:
            print(f"{name:<34} {med[name]:>7.2f}s {med[name] / med[row]:>11.2f} {size[name] / 2**20:>7.1f}MB "
                  f"{size[name] / size[pg]:>10.3f} {max(rss[name]):>7.0f}MB")
        for name, (t, m) in restores.items():
            print(f"{'restore of ' + name.removeprefix('pgsafe dump '):<34} {t:>7.2f}s {t / restores[row][0]:>11.2f} "
                  f"{'':>9} {'':>10} {m:>7.0f}MB")
        print()
        checks = [
            ("archive size vs pg_dump -Fd", size[col] / size[pg], "<=", 0.75),
            ("dump time vs row-wise pgsafe", med[col] / med[row], "<=", 1.1),
            ("restore peak RSS (MB)", restores[col][1], "<", 100),
        ]
        for what, value, op, target in checks:
            met = value <= target if op == "<=" else value < target
            print(f"{what:<32} {value:>8.3f}  target {op} {target}: {'met' if met else 'MISSED'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        cluster.stop()


def compare_tables():
    """The restored lineitem holds exactly the original's rows (an order-independent hash of all of them)."""
    query = "SELECT count(*), sum(hashtext(l::text)::numeric) FROM lineitem l"
    return psql("tpch", query) == psql("restored", query)


if __name__ == "__main__":
    main()
