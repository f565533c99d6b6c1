#!/usr/bin/env python3
"""Side-by-side benchmark of pgsafe against pg_dump / pg_restore on databases of many small tables.

Each table has a primary key, an index, a foreign key (to the table made before it), a comment and five
rows: the shape of schema-per-tenant applications and of years of daily partitions, where the work is in
the catalog, not in the rows. For each size (--tables, default 1000,10000,50000) the script makes a
database of that many tables in a throwaway cluster (as benches/compare.py does, with a lock table big
enough for both tools to lock every table), then times, --repeat times each, median reported:

    dump:    pg_dump -Fd -j J, pg_dump -Fc, pg_dump -Fc --schema-only,
             pgsafe dump -j J, pgsafe dump -j J --schema-only
    restore: pg_restore -j J (of the -Fd dump) and pgsafe restore -j J, each into an empty database;
             pgsafe's run is made with -v, and the time of each phase it logs is printed too

    python3 benches/many_tables.py --tables 1000,10000,50000 --jobs 2 --repeat 1

--lock-check makes a database of --lock-check-tables tables (default 20,000), dumps it with both tools,
then sets max_locks_per_transaction to PostgreSQL's default of 64 and prints what each tool's dump and
restore then do (SQLSTATE 53200, "out of shared memory", for those that need a lock per table at once).

Nothing here is a test: numbers depend on the machine. Run it on a quiet machine, read the ratios.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare  # noqa: E402  (the throwaway cluster, psql, sizes)

ROOT = compare.ROOT
BIN = compare.BIN
psql = compare.psql

# Tables made per transaction while generating: each locks a few objects until it commits.
BATCH = 500


def as_postgres(command):
    """`command` as the OS user the cluster runs as: `pgsafe cluster` runs it as `postgres` when started by root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def restart_with(cluster, settings):
    """Sets server parameters that need a restart (the lock table's size) and restarts the cluster."""
    for name, value in settings.items():
        psql("postgres", f"ALTER SYSTEM SET {name} = '{value}'")
    data = Path(cluster.dir) / "data"
    subprocess.run(as_postgres([str(BIN / "pg_ctl"), "-D", str(data), "-w", "-m", "fast",
                                        "-l", str(Path(cluster.dir) / "server.log"), "restart"]),
                   check=True, stdout=subprocess.DEVNULL)


def generate(db, tables):
    """`tables` tables t1..tN: each with a primary key, an index, a foreign key to the one before it (the
    first to itself), a comment and five rows."""
    started = time.monotonic()
    psql("postgres", f"DROP DATABASE IF EXISTS {db}")
    psql("postgres", f"CREATE DATABASE {db}")
    for first in range(1, tables + 1, BATCH):
        last = min(first + BATCH - 1, tables)
        psql(db, f"""
            DO $$
            BEGIN
              FOR i IN {first}..{last} LOOP
                EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, parent int NOT NULL REFERENCES t%s (id),
                                                   name text, created date DEFAULT current_date)',
                               i, greatest(i - 1, 1));
                EXECUTE format('CREATE INDEX t%s_name ON t%s (name)', i, i);
                EXECUTE format('COMMENT ON TABLE t%s IS %L', i, 'tenant table ' || i);
                EXECUTE format('INSERT INTO t%s (id, parent, name) SELECT g, g, ''row '' || g
                                FROM generate_series(1, 5) g', i);
              END LOOP;
            END $$""")
        print(f"  {last} tables", end="\r", file=sys.stderr, flush=True)
    psql(db, "VACUUM ANALYZE")
    print(f"  {tables} tables made in {time.monotonic() - started:.0f}s", file=sys.stderr)


def timed(cmd):
    """Runs cmd; returns (seconds, peak RSS in MiB, stderr)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - start
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"error: {' '.join(map(str, cmd))} failed:\n{err}")
    return elapsed, usage.ru_maxrss / 1024, err


# The phases `pgsafe restore -v` logs, as (label, pattern of its log line).
PHASES = [
    ("pre-data", re.compile(r"pre-data: \d+ objects in ([\d.]+)s")),
    ("data", re.compile(r"data: \d+ rows on \d+ sessions in ([\d.]+)s")),
    ("post-data", re.compile(r"post-data: \d+ objects in ([\d.]+)s")),
    ("privileges etc.", re.compile(r"later objects .* in ([\d.]+)s")),
    ("verification", re.compile(r"verification: \d+ tables in ([\d.]+)s")),
]


# What `pgsafe dump -v` logs of the schema engine.
SCHEMA = re.compile(r"schema: \d+ objects in ([\d.]+)s")


def phases_of(log):
    out = {}
    for label, pattern in PHASES:
        m = pattern.search(log)
        if m:
            out[label] = float(m.group(1))
    return out


def measure(label, repeat, run):
    times, rss, logs = [], [], []
    for i in range(repeat):
        t, m, err = run(i)
        times.append(t)
        rss.append(m)
        logs.append(err)
        print(f"  {label}: run {i + 1}: {t:.2f}s", file=sys.stderr)
    best = times.index(statistics.median_low(times))
    return statistics.median(times), max(rss), logs[best]


def empty_target(name):
    psql("postgres", f"DROP DATABASE IF EXISTS {name}")
    psql("postgres", f"CREATE DATABASE {name}")


def bench_size(n, args, pgsafe, work):
    db = f"many_{n}"
    print(f"{n} tables:", file=sys.stderr)
    generate(db, n)
    j = str(args.jobs)
    rows = []

    def pg_dump(extra, fmt):
        def run(i):
            out = work / f"pgdump-{n}-{i}"
            shutil.rmtree(out, ignore_errors=True)
            if out.exists():
                out.unlink()
            return timed([str(BIN / "pg_dump"), *fmt, *extra, "-f", str(out), db])
        return run

    def pgsafe_dump(extra):
        def run(i):
            out = work / f"pgsafe-{n}-{i}.pgsafe"
            return timed([pgsafe, "dump", "-q", "-v", "-j", j, *extra, "-d", db, "-f", str(out)])
        return run

    dump_base = measure("pg_dump -Fd", args.repeat, pg_dump([], ["-Fd", "-j", j]))
    rows.append((f"pg_dump -Fd -j {j}", dump_base))
    rows.append(("pg_dump -Fc", measure("pg_dump -Fc", args.repeat, pg_dump([], ["-Fc"]))))
    rows.append(("pg_dump -Fc --schema-only",
                 measure("pg_dump -Fc -s", args.repeat, pg_dump(["--schema-only"], ["-Fc"]))))
    rows.append((f"pgsafe dump -j {j} --schema-only",
                 measure("pgsafe dump -s", args.repeat, pgsafe_dump(["--schema-only"]))))
    rows.append((f"pgsafe dump -j {j}", measure("pgsafe dump", args.repeat, pgsafe_dump([]))))

    restores = []
    if not args.skip_restore:
        # One archive of each for the restores.
        pg_dump([], ["-Fd", "-j", j])("r")
        pgsafe_dump([])("r")

        def pg_restore(i):
            empty_target("target")
            return timed([str(BIN / "pg_restore"), "-j", j, "-d", "target", str(work / f"pgdump-{n}-r")])

        def pgsafe_restore(i):
            empty_target("target")
            return timed([pgsafe, "restore", "-q", "-v", "-j", j, "-d", "target",
                          str(work / f"pgsafe-{n}-r.pgsafe")])

        restores.append((f"pg_restore -j {j}", measure("pg_restore", args.repeat, pg_restore)))
        restores.append((f"pgsafe restore -j {j}", measure("pgsafe restore", args.repeat, pgsafe_restore)))
        psql("postgres", "DROP DATABASE IF EXISTS target")
    psql("postgres", f"DROP DATABASE IF EXISTS {db}")
    for f in work.iterdir():
        shutil.rmtree(f, ignore_errors=True) if f.is_dir() else f.unlink()
    return rows, restores


def lock_check(args, pgsafe):
    """What pgsafe and pg_dump / pg_restore do when the lock table cannot hold a lock on every table: a
    database of --lock-check-tables tables, dumped by both tools while max_locks_per_transaction is big,
    then dumped and restored again with max_locks_per_transaction = 64 (PostgreSQL's default)."""
    cluster = compare.Cluster(pgsafe)
    work = Path(tempfile.mkdtemp(prefix="pgsafe-locks-"))
    try:
        restart_with(cluster, {"max_locks_per_transaction": args.max_locks})
        generate("locks", args.lock_check_tables)
        archive, directory = work / "locks.pgsafe", work / "locks.dir"
        timed([pgsafe, "dump", "-q", "-d", "locks", "-f", str(archive)])
        timed([str(BIN / "pg_dump"), "-Fd", "-j", "2", "-f", str(directory), "locks"])
        restart_with(cluster, {"max_locks_per_transaction": 64})
        print(f"{args.lock_check_tables} tables, max_locks_per_transaction = 64, max_connections = "
              f"{psql('postgres', 'SHOW max_connections')}:")
        runs = [
            ("pgsafe dump", [pgsafe, "dump", "-q", "-d", "locks", "-f", str(work / "again.pgsafe")], None),
            ("pg_dump -Fc", [str(BIN / "pg_dump"), "-Fc", "-f", str(work / "again.dump"), "locks"], None),
            ("pgsafe restore -j 2", [pgsafe, "restore", "-q", "-j", "2", "-d", "target", str(archive)], "target"),
            ("pg_restore -j 2", [str(BIN / "pg_restore"), "-j", "2", "-d", "target", str(directory)], "target"),
        ]
        for label, cmd, target in runs:
            if target:
                empty_target(target)
            proc = subprocess.run(cmd, capture_output=True, text=True)
            err = "\n    ".join(proc.stderr.strip().splitlines()[:4])
            print(f"  {label}: exit {proc.returncode}" + (f"\n    {err}" if err else ""))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        cluster.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tables", default="1000,10000,50000", help="sizes, comma-separated (default 1000,10000,50000)")
    ap.add_argument("--jobs", type=int, default=2, help="-j for every tool (default 2)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool; the median is reported (default 1)")
    ap.add_argument("--max-locks", type=int, default=4096,
                    help="max_locks_per_transaction of the cluster (default 4096: 50,000 tables need more than "
                         "the default 64 x max_connections)")
    ap.add_argument("--skip-restore", action="store_true")
    ap.add_argument("--lock-check", action="store_true", help="only show the error of a lock table too small")
    ap.add_argument("--lock-check-tables", type=int, default=20000)
    args = ap.parse_args()
    sizes = [int(s) for s in args.tables.split(",") if s]

    pgsafe = compare.build_pgsafe()
    if args.lock_check:
        lock_check(args, pgsafe)
        return
    cluster = compare.Cluster(pgsafe)
    work = Path(tempfile.mkdtemp(prefix="pgsafe-many-"))
    results = []
    try:
        restart_with(cluster, {"max_locks_per_transaction": args.max_locks})
        for n in sizes:
            results.append((n, *bench_size(n, args, pgsafe, work)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        cluster.stop()

    print(f"\nmedian of {args.repeat}, {os.cpu_count()} cores; ratio: against pg_dump -Fd -j {args.jobs} "
          f"and pg_restore -j {args.jobs}\n")
    print(f"{'tables':>7} {'command':<34} {'time':>9} {'ratio':>6} {'peak RSS':>9}")
    for n, rows, restores in results:
        for name, (t, m, _) in rows:
            print(f"{n:>7} {name:<34} {t:>8.2f}s {t / rows[0][1][0]:>6.2f} {m:>7.0f}MB")
        for name, (t, m, _) in restores:
            print(f"{n:>7} {name:<34} {t:>8.2f}s {t / restores[0][1][0]:>6.2f} {m:>7.0f}MB")
        for name, (_, _, log) in rows:
            m = SCHEMA.search(log)
            if m:
                print(f"{'':>7}   {name}: schema read in {float(m.group(1)):.1f}s")
        if restores:
            phases = phases_of(restores[-1][1][2])
            print(f"{'':>7} {'  phases: ' + ', '.join(f'{k} {v:.1f}s' for k, v in phases.items())}")
    # Growth: how much longer each size takes than the one before, against how many more tables it has.
    if len(results) > 1:
        print("\ngrowth (time ratio / table ratio; 1.0 is linear):")
        for (n0, rows0, res0), (n1, rows1, res1) in zip(results, results[1:]):
            for (name, (t0, _, _)), (_, (t1, _, _)) in zip(rows0 + res0, rows1 + res1):
                print(f"  {n0:>6} -> {n1:<6} {name:<34} {t1 / t0:>7.1f}x time, {n1 / n0:.0f}x tables: "
                      f"{(t1 / t0) / (n1 / n0):.2f}")


if __name__ == "__main__":
    main()
