#!/usr/bin/env python3
"""Side-by-side benchmark of pgsafe against pg_dump / pg_restore on the same data, in one run.

Starts a throwaway PostgreSQL cluster (`pgsafe cluster start`, with the server binaries of PGSAFE_PG_BIN,
pg_config --bindir or the newest /usr/lib/postgresql/*/bin; or uses PGHOST/PGPORT/PGUSER with --use-server),
builds pgsafe in release mode where cargo puts it (CARGO_TARGET_DIR is followed), generates
pgbench data at --scale plus a wide table of mixed types with --wide-rows rows (and, with --big-table-gb,
one more single table of that size), then times each tool --repeat times and prints the median time,
the archive size, the peak memory of the tool's process, and ratios against pg_dump / pg_restore.

    python3 benches/compare.py --scale 50 --wide-rows 3000000 --jobs 2 --repeat 3

Nothing here is a test: numbers depend on the machine. Run it on a quiet machine, read the ratios.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pg_bin():
    for env in ("PGSAFE_PG_BIN",):
        if os.environ.get(env):
            return Path(os.environ[env])
    try:
        return Path(subprocess.check_output(["pg_config", "--bindir"], text=True).strip())
    except (OSError, subprocess.CalledProcessError):
        pass
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if found:
        return found[-1]
    sys.exit("error: no PostgreSQL binaries found; set PGSAFE_PG_BIN")


BIN = pg_bin()


def build_pgsafe():
    """Builds pgsafe in release mode and returns the executable cargo names (it knows the target folder)."""
    out = subprocess.run(["cargo", "build", "--release", "--quiet", "--locked", "--bin", "pgsafe",
                          "--message-format=json-render-diagnostics"], cwd=ROOT, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message.get("executable"):
            return message["executable"]
    sys.exit("error: cargo named no pgsafe executable")


class Cluster:
    """The throwaway cluster of `pgsafe cluster start`, stopped when this script ends, however it ends."""

    SETTINGS = ["synchronous_commit=off", "shared_buffers=1GB", "max_wal_size=8GB", "maintenance_work_mem=512MB",
                "max_connections=50"]

    def __init__(self, pgsafe):
        self.pgsafe = pgsafe
        self.dir = tempfile.mkdtemp(prefix="pgsafe-bench-")
        settings = [arg for s in self.SETTINGS for arg in ("--set", s)]
        out = subprocess.run([pgsafe, "cluster", "start", self.dir, "--json", "--bin", str(BIN),
                              "--stop-with", str(os.getpid()), *settings],
                             check=True, stdout=subprocess.PIPE, text=True).stdout
        started = json.loads(out)
        os.environ.update(PGHOST=started["host"], PGPORT=str(started["port"]), PGUSER=started["user"])

    def stop(self):
        subprocess.run([self.pgsafe, "cluster", "stop", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def psql(db, sql):
    return subprocess.run([str(BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-d", db, "-c", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def timed(cmd, **kw):
    """Runs cmd; returns (seconds, peak RSS of the process in MiB)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"error: {' '.join(map(str, cmd))} failed:\n{err}")
    return elapsed, usage.ru_maxrss / 1024


def size_of(path):
    p = Path(path)
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return p.stat().st_size


def generate(args):
    print(f"generating: pgbench scale {args.scale}, wide table {args.wide_rows} rows"
          + (f", big table {args.big_table_gb} GB" if args.big_table_gb else ""), file=sys.stderr)
    psql("postgres", "CREATE DATABASE bench")
    subprocess.run([str(BIN / "pgbench"), "-i", "-q", "-s", str(args.scale), "bench"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    psql("bench", f"""
        CREATE TABLE wide (id bigint PRIMARY KEY, created timestamptz, name text, email text,
                           score numeric(10,2), ratio float8, active boolean, tags text[], payload jsonb,
                           ref uuid, note text);
        INSERT INTO wide SELECT i, timestamptz '2024-01-01' - i * interval '1 second', 'name ' || (i % 1000),
               'user' || i || '@example.com', (i % 100000) / 100.0, (i % 9973) / 9973.0, i % 3 = 0,
               ARRAY['t' || (i % 10), 't' || (i % 7)], jsonb_build_object('k', i, 'v', md5(i::text)),
               md5(i::text)::uuid, repeat('x', (i % 50)::int)
        FROM generate_series(1, {args.wide_rows}) i;""")
    if args.big_table_gb:
        rows = int(args.big_table_gb * 1024**3 / 140)
        psql("bench", f"""CREATE TABLE big (id bigint, a int, b text, c float8);
            INSERT INTO big SELECT i, (i % 100000)::int, md5(i::text) || md5((i * 7)::text), i / 3.0
            FROM generate_series(1, {rows}) i;""")
    psql("bench", "VACUUM ANALYZE")
    size = int(psql("bench", "SELECT pg_database_size('bench')"))
    print(f"database: {size / 2**20:.0f} MiB", file=sys.stderr)
    # The data-only restores load into a copy of the schema with no rows.
    schema = subprocess.run([str(BIN / "pg_dump"), "--schema-only", "bench"], check=True, capture_output=True).stdout
    psql("postgres", "CREATE DATABASE schema_template")
    subprocess.run([str(BIN / "psql"), "-X", "-q", "-d", "schema_template"], input=schema, check=True,
                   stdout=subprocess.DEVNULL)
    return size


def fresh_target(name):
    psql("postgres", f"DROP DATABASE IF EXISTS {name}")
    psql("postgres", f"CREATE DATABASE {name} TEMPLATE schema_template")


def empty_target(name):
    psql("postgres", f"DROP DATABASE IF EXISTS {name}")
    psql("postgres", f"CREATE DATABASE {name}")


def median_of(label, repeat, run):
    times, rss, sizes = [], [], []
    for i in range(repeat):
        t, m, s = run(i)
        times.append(t)
        rss.append(m)
        sizes.append(s)
        print(f"  {label}: run {i + 1}: {t:.2f}s", file=sys.stderr)
    return statistics.median(times), max(rss), statistics.median(sizes) if sizes[0] is not None else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=50, help="pgbench scale (default 50)")
    ap.add_argument("--wide-rows", type=int, default=3_000_000, help="rows of the mixed-type table")
    ap.add_argument("--big-table-gb", type=float, default=0, help="add one single table of this many GB")
    ap.add_argument("--jobs", type=int, default=2, help="-j for every tool (default 2)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool; the median is reported")
    ap.add_argument("--use-server", action="store_true", help="use PGHOST/PGPORT/PGUSER instead of a new cluster")
    ap.add_argument("--skip-restore", action="store_true")
    ap.add_argument("--single-table", action="store_true",
                    help="also time pgsafe dump of the largest table alone at -j 1 and -j JOBS")
    args = ap.parse_args()

    pgsafe = build_pgsafe()
    cluster = None if args.use_server else Cluster(pgsafe)
    work = Path(tempfile.mkdtemp(prefix="pgsafe-bench-out-"))
    try:
        db_size = generate(args)
        j = str(args.jobs)
        rows = []

        def pg_dump_run(extra):
            def run(i):
                out = work / f"pgdump{i}"
                shutil.rmtree(out, ignore_errors=True)
                t, m = timed([str(BIN / "pg_dump"), "-Fd", "-j", j, *extra, "-f", str(out), "bench"])
                return t, m, size_of(out)
            return run

        def pgsafe_run(i):
            out = work / f"bench{i}.pgsafe"
            t, m = timed([pgsafe, "dump", "-q", "-j", j, "-d", "bench", "-f", str(out)])
            return t, m, size_of(out)

        print("dump:", file=sys.stderr)
        base = median_of("pg_dump -Fd", args.repeat, pg_dump_run([]))
        rows.append(("pg_dump -Fd -j " + j, *base))
        rows.append(("pg_dump -Fd -j " + j + " -Z0", *median_of("pg_dump -Z0", args.repeat, pg_dump_run(["-Z0"]))))
        rows.append(("pgsafe dump -j " + j, *median_of("pgsafe dump", args.repeat, pgsafe_run)))

        restore_rows = []
        full_rows = []
        if not args.skip_restore:
            # Keep one archive of each for the restores.
            pg_dump_run([])(0)
            pgsafe_run(0)
            print("data-only restore:", file=sys.stderr)

            def pg_restore_run(i):
                fresh_target("target")
                t, m = timed([str(BIN / "pg_restore"), "--data-only", "-j", j, "-d", "target", str(work / "pgdump0")])
                return t, m, None

            def pgsafe_restore_run(i):
                fresh_target("target")
                t, m = timed([pgsafe, "restore", "-q", "--data-only", "-j", j, "-d", "target",
                              str(work / "bench0.pgsafe")])
                return t, m, None

            rbase = median_of("pg_restore", args.repeat, pg_restore_run)
            restore_rows.append(("pg_restore --data-only -j " + j, *rbase))
            restore_rows.append(("pgsafe restore --data-only -j " + j + " (verified)",
                                 *median_of("pgsafe restore", args.repeat, pgsafe_restore_run)))

            print("whole restore into an empty database:", file=sys.stderr)

            def pg_restore_full(i):
                empty_target("target")
                t, m = timed([str(BIN / "pg_restore"), "-j", j, "-d", "target", str(work / "pgdump0")])
                return t, m, None

            def pgsafe_restore_full(i):
                empty_target("target")
                t, m = timed([pgsafe, "restore", "-q", "-j", j, "-d", "target", str(work / "bench0.pgsafe")])
                return t, m, None

            full_rows.append(("pg_restore -j " + j, *median_of("pg_restore", args.repeat, pg_restore_full)))
            full_rows.append(("pgsafe restore -j " + j + " (verified)",
                              *median_of("pgsafe restore", args.repeat, pgsafe_restore_full)))

        single = []
        if args.single_table:
            table = "big" if args.big_table_gb else "wide"
            print(f"single table `{table}`:", file=sys.stderr)
            for jobs in ("1", j):
                def one(i, jobs=jobs):
                    out = work / f"single{i}.pgsafe"
                    t, m = timed([pgsafe, "dump", "-q", "-j", jobs, "-t", f"public.{table}", "-d", "bench",
                                  "-f", str(out)])
                    return t, m, size_of(out)
                single.append((f"pgsafe dump -t {table} -j {jobs}", *median_of(f"-j {jobs}", args.repeat, one)))

        print(f"\ndatabase {db_size / 2**20:.0f} MiB (pgbench scale {args.scale} + wide {args.wide_rows} rows"
              + (f" + big {args.big_table_gb} GB" if args.big_table_gb else "") + f"), median of {args.repeat}, "
              f"{os.cpu_count()} cores\n")
        print(f"{'command':<48} {'time':>8} {'ratio':>6} {'size':>10} {'ratio':>6} {'peak RSS':>9}")
        for name, t, m, s in rows:
            print(f"{name:<48} {t:>7.2f}s {t / base[0]:>6.2f} {s / 2**20:>8.0f}MB {s / base[2]:>6.2f} {m:>7.0f}MB")
        for name, t, m, _ in restore_rows:
            print(f"{name:<48} {t:>7.2f}s {t / restore_rows[0][1]:>6.2f} {'':>10} {'':>6} {m:>7.0f}MB")
        for name, t, m, _ in full_rows:
            print(f"{name:<48} {t:>7.2f}s {t / full_rows[0][1]:>6.2f} {'':>10} {'':>6} {m:>7.0f}MB")
        for name, t, m, s in single:
            print(f"{name:<48} {t:>7.2f}s {t / single[0][1]:>6.2f} {s / 2**20:>8.0f}MB {'':>6} {m:>7.0f}MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if cluster:
            cluster.stop()


if __name__ == "__main__":
    main()
