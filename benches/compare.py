#!/usr/bin/env python3
"""Side-by-side benchmark of pgsafe against pg_dump / pg_restore on the same data, in one run.

Starts a throwaway PostgreSQL cluster (`pgsafe cluster start`, with the server binaries of PGSAFE_PG_BIN,
pg_config --bindir or the newest /usr/lib/postgresql/*/bin; or uses PGHOST/PGPORT/PGUSER with --use-server),
builds pgsafe in release mode where cargo puts it (CARGO_TARGET_DIR is followed) and generates one of two
data sets in SQL (the same rows on every run):

- `--data bench` (the default): pgbench data at --scale plus a wide table of mixed types with --wide-rows
  rows (and, with --big-table-gb, one more single table of that size);
- `--data tpch`: an analytical database after TPC-H: `lineitem` with --rows rows (bigint keys, numeric
  prices, dates, one-letter flags, low-cardinality text, comments of random words) and its `orders`
  (a quarter as many), with their primary keys and an index on the ship date.

Then it times each tool --repeat times, interleaved (a slow minute of a shared machine falls on every tool
alike), and prints the median time, the archive size, the peak memory of the tool's process and the ratios
against pg_dump / pg_restore. The dumps: `pg_dump -Fd` (its default compression, and -Z0), `pgsafe dump`
(its default, and each --also-z level given), and the limit a dump can reach here: --jobs parallel
`psql -c "COPY (...) TO STDOUT (FORMAT binary)" | zstd -1` pipelines over every table cut into page (ctid)
ranges. The restores, from the first run's archives: data-only into a copy of the schema (pgsafe's
verified, the default, and with `--verify none`, as pg_restore, which verifies nothing), and whole into an
empty database, pgsafe's at each `--verify` level.

    python3 benches/compare.py --data bench --scale 50 --wide-rows 3000000 --jobs 2 --repeat 3
    python3 benches/compare.py --data tpch --rows 4000000 --jobs 2 --repeat 3

The cluster runs with the server's default `maintenance_work_mem`, as a user's would: pg_restore builds
indexes with it, pgsafe with its own (README, "Restore"). Nothing here is a test: numbers depend on the
machine. Run it on a quiet machine, read the ratios.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import shlex
import tempfile
import threading
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

    SETTINGS = ["synchronous_commit=off", "shared_buffers=1GB", "max_wal_size=8GB", "max_connections=50"]

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


LINEITEM = """
SELECT setseed(0.15);
CREATE TABLE lineitem (
    l_orderkey bigint NOT NULL, l_partkey bigint NOT NULL, l_suppkey bigint NOT NULL, l_linenumber integer NOT NULL,
    l_quantity numeric(15,2) NOT NULL, l_extendedprice numeric(15,2) NOT NULL, l_discount numeric(15,2) NOT NULL,
    l_tax numeric(15,2) NOT NULL, l_returnflag char(1) NOT NULL, l_linestatus char(1) NOT NULL,
    l_shipdate date NOT NULL, l_commitdate date NOT NULL, l_receiptdate date NOT NULL,
    l_shipinstruct text NOT NULL, l_shipmode text NOT NULL, l_comment text NOT NULL,
    PRIMARY KEY (l_orderkey, l_linenumber));
INSERT INTO lineitem
SELECT i / 4 + 1, p, 1 + (p + i % 4 * 2500) % 10000, i % 4 + 1, q, round(q * (900 + p % 1000 + 0.01 * (p % 100)), 2),
       floor(random() * 11) / 100, floor(random() * 9) / 100,
       CASE WHEN s > date '1995-06-17' THEN 'N' WHEN random() < 0.5 THEN 'R' ELSE 'A' END,
       CASE WHEN s > date '1995-06-17' THEN 'O' ELSE 'F' END,
       s, s + (floor(random() * 61) - 30)::int, s + 1 + floor(random() * 30)::int,
       (ARRAY['DELIVER IN PERSON', 'COLLECT COD', 'NONE', 'TAKE BACK RETURN'])[1 + floor(random() * 4)::int],
       (ARRAY['REG AIR', 'AIR', 'RAIL', 'SHIP', 'TRUCK', 'MAIL', 'FOB'])[1 + floor(random() * 7)::int],
       c
FROM (SELECT i, 1 + floor(random() * 200000)::bigint AS p, (1 + floor(random() * 50))::numeric AS q,
             date '1992-01-02' + floor(random() * 2400)::int AS s,
             -- `g` in the argument keeps the aggregate in the subquery, a word per row of it.
             (SELECT string_agg(w[1 + floor(random() * 24)::int + 0 * g], ' ')
                FROM generate_series(1, 2 + i % 5) g) AS c
        FROM generate_series(0, {rows} - 1) i,
             LATERAL (SELECT ARRAY['furiously', 'carefully', 'quickly', 'slyly', 'blithely', 'ironic', 'final',
                                   'regular', 'express', 'pending', 'bold', 'even', 'special', 'unusual',
                                   'deposits', 'requests', 'accounts', 'packages', 'theodolites', 'pinto beans',
                                   'foxes', 'instructions', 'asymptotes', 'dependencies'] AS w) words) r;
"""

ORDERS = """
SELECT setseed(0.25);
CREATE TABLE orders (
    o_orderkey bigint PRIMARY KEY, o_custkey bigint NOT NULL, o_orderstatus char(1) NOT NULL,
    o_totalprice numeric(15,2) NOT NULL, o_orderdate date NOT NULL, o_orderpriority text NOT NULL,
    o_clerk text NOT NULL, o_shippriority integer NOT NULL, o_comment text NOT NULL);
INSERT INTO orders
SELECT o, 1 + floor(random() * 150000)::bigint, (ARRAY['O', 'F', 'P'])[1 + floor(random() * 3)::int],
       round((1000 + random() * 400000)::numeric, 2), date '1992-01-01' + floor(random() * 2400)::int,
       (ARRAY['1-URGENT', '2-HIGH', '3-MEDIUM', '4-NOT SPECIFIED', '5-LOW'])[1 + floor(random() * 5)::int],
       'Clerk#' || lpad((1 + floor(random() * 1000))::int::text, 9, '0'), 0,
       (SELECT string_agg(w[1 + floor(random() * 12)::int + 0 * g], ' ') FROM generate_series(1, 3 + o % 6) g)
FROM generate_series(1, {orders}) o,
     LATERAL (SELECT ARRAY['furiously', 'carefully', 'quickly', 'slyly', 'blithely', 'ironic', 'final',
                           'regular', 'express', 'pending', 'bold', 'even'] AS w) words;
CREATE INDEX lineitem_shipdate ON lineitem (l_shipdate);
"""


def describe(args):
    if args.data == "tpch":
        return f"TPC-H-like: lineitem {args.rows} rows + orders {args.rows // 4} rows"
    return (f"pgbench scale {args.scale} + wide {args.wide_rows} rows"
            + (f" + big {args.big_table_gb} GB" if args.big_table_gb else ""))


def generate(args):
    print(f"generating: {describe(args)}", file=sys.stderr)
    psql("postgres", "CREATE DATABASE bench")
    if args.data == "tpch":
        psql("bench", LINEITEM.format(rows=args.rows))
        psql("bench", ORDERS.format(orders=args.rows // 4))
    else:
        generate_bench(args)
    psql("bench", "VACUUM ANALYZE")
    size = int(psql("bench", "SELECT pg_database_size('bench')"))
    print(f"database: {size / 2**20:.0f} MiB", file=sys.stderr)
    # The data-only restores load into a copy of the schema with no rows.
    schema = subprocess.run([str(BIN / "pg_dump"), "--schema-only", "bench"], check=True, capture_output=True).stdout
    psql("postgres", "CREATE DATABASE schema_template")
    subprocess.run([str(BIN / "psql"), "-X", "-q", "-d", "schema_template"], input=schema, check=True,
                   stdout=subprocess.DEVNULL)
    return size


def generate_bench(args):
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


def copy_zstd_limit(work, jobs):
    """The limit of a binary dump here: `jobs` parallel `psql -c "COPY (...) TO STDOUT (FORMAT binary)" |
    zstd -1` pipelines over every table of `bench` cut into page ranges (a table's share of a quarter of
    each job's pages, at least 1024), in one snapshot-less pass, biggest first. Returns (seconds, bytes)."""
    tables = [line.split("|") for line in psql("bench", """
        SELECT format('%I.%I', n.nspname, c.relname), pg_relation_size(c.oid) / current_setting('block_size')::int
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')""").splitlines()]
    total = sum(int(p) for _, p in tables)
    step = max(1024, total // (jobs * 4))
    pieces = []
    for name, pages in tables:
        pages = int(pages)
        for start in range(0, max(pages, 1), step):
            last = start + step >= pages
            where = f"ctid >= '({start},0)'::tid" + ("" if last else f" AND ctid < '({start + step},0)'::tid")
            pieces.append((min(step, pages - start), f"COPY (SELECT * FROM {name} WHERE {where}) TO STDOUT (FORMAT binary)"))
    pieces.sort(key=lambda p: -p[0])
    out = work / "limit"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    queue = list(enumerate(pieces))
    lock = threading.Lock()
    failures = []

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                k, (_, sql) = queue.pop(0)
            pipe = f"{BIN / 'psql'} -X -q -d bench -c {shlex.quote(sql)} | zstd -1 -q -c > {out / f'{k}.zst'}"
            r = subprocess.run(["bash", "-o", "pipefail", "-c", pipe], stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                failures.append(r.stderr)

    start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    if failures:
        sys.exit(f"error: a COPY | zstd pipeline failed:\n{failures[0]}")
    return elapsed, size_of(out)


def fresh_target(name):
    psql("postgres", f"DROP DATABASE IF EXISTS {name}")
    psql("postgres", f"CREATE DATABASE {name} TEMPLATE schema_template")
    settle()


def empty_target(name):
    psql("postgres", f"DROP DATABASE IF EXISTS {name}")
    psql("postgres", f"CREATE DATABASE {name}")
    settle()


def settle():
    """Starts every timed restore from the same state: the previous run's writes flushed by a checkpoint,
    so that no tool pays for the writes of the one before it (a time-based checkpoint would otherwise land
    inside whichever run it falls in)."""
    psql("postgres", "CHECKPOINT")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=["bench", "tpch"], default="bench", help="the data set (default bench)")
    ap.add_argument("--scale", type=int, default=50, help="bench: pgbench scale (default 50)")
    ap.add_argument("--wide-rows", type=int, default=3_000_000, help="bench: rows of the mixed-type table")
    ap.add_argument("--big-table-gb", type=float, default=0, help="bench: add one single table of this many GB")
    ap.add_argument("--rows", type=int, default=4_000_000, help="tpch: rows of lineitem (default 4,000,000)")
    ap.add_argument("--jobs", type=int, default=2, help="-j for every tool (default 2)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool, interleaved; the median is reported")
    ap.add_argument("--also-z", action="append", default=[], metavar="Z",
                    help="also time `pgsafe dump -Z Z` (repeatable), e.g. 1 for row-wise zstd, columnar:3")
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

        def pg_dump(extra):
            return lambda out: [str(BIN / "pg_dump"), "-Fd", "-j", j, *extra, "-f", out, "bench"]

        def pgsafe_dump(extra):
            return lambda out: [pgsafe, "dump", "-q", "-j", j, *extra, "-d", "bench", "-f", out]

        dumps = [(f"pg_dump -Fd -j {j}", pg_dump([])), (f"pg_dump -Fd -j {j} -Z0", pg_dump(["-Z0"])),
                 (f"pgsafe dump -j {j}", pgsafe_dump([]))]
        dumps += [(f"pgsafe dump -j {j} -Z {z}", pgsafe_dump(["-Z", z])) for z in args.also_z]
        dumps.append((f"{j} x psql COPY binary | zstd -1 (limit)", None))
        results = {name: [] for name, _ in dumps}
        print("dump:", file=sys.stderr)
        for i in range(args.repeat):
            for k, (name, cmd) in enumerate(dumps):
                if cmd is None:
                    t, size = copy_zstd_limit(work, args.jobs)
                    m = 0
                else:
                    # The first run's archives are kept: the restores read pg_dump's and pgsafe's defaults.
                    out = work / (f"dump{k}" if i == 0 else "scratch")
                    shutil.rmtree(out, ignore_errors=True)
                    if out.exists():
                        out.unlink()
                    t, m = timed(cmd(str(out)))
                    size = size_of(out)
                results[name].append((t, m, size))
                print(f"  {name}: run {i + 1}: {t:.2f}s {size / 2**20:.0f}MB", file=sys.stderr)
        rows = [(name, *summarize(results[name])) for name, _ in dumps]

        restore_rows, full_rows = [], []
        if not args.skip_restore:
            pg_archive, pgsafe_archive = str(work / "dump0"), str(work / "dump2")
            data_only = [
                (f"pg_restore --data-only -j {j}", fresh_target,
                 [str(BIN / "pg_restore"), "--data-only", "-j", j, "-d", "target", pg_archive]),
                (f"pgsafe restore --data-only -j {j} (--verify full)", fresh_target,
                 [pgsafe, "restore", "-q", "--data-only", "-j", j, "-d", "target", pgsafe_archive]),
                # pg_restore verifies nothing: this is the like-for-like row.
                (f"pgsafe restore --data-only -j {j} --verify none", fresh_target,
                 [pgsafe, "restore", "-q", "--data-only", "-j", j, "--verify", "none", "-d", "target",
                  pgsafe_archive]),
            ]
            whole = [(f"pg_restore -j {j}", empty_target,
                      [str(BIN / "pg_restore"), "-j", j, "-d", "target", pg_archive])]
            whole += [(f"pgsafe restore -j {j} --verify {level}" + (" (default)" if level == "full" else ""),
                       empty_target,
                       [pgsafe, "restore", "-q", "-j", j, "--verify", level, "-d", "target", pgsafe_archive])
                      for level in ("full", "count", "none")]
            for label, runs, out in (("data-only restore", data_only, restore_rows),
                                     ("whole restore into an empty database", whole, full_rows)):
                print(f"{label}:", file=sys.stderr)
                times = {name: [] for name, _, _ in runs}
                for i in range(args.repeat):
                    for name, prepare, cmd in runs:
                        prepare("target")
                        t, m = timed(cmd)
                        times[name].append((t, m, None))
                        print(f"  {name}: run {i + 1}: {t:.2f}s", file=sys.stderr)
                out.extend((name, *summarize(times[name])) for name, _, _ in runs)

        single = []
        if args.single_table:
            table = "big" if args.big_table_gb else ("lineitem" if args.data == "tpch" else "wide")
            print(f"single table `{table}`:", file=sys.stderr)
            for jobs in ("1", j):
                def one(jobs=jobs):
                    out = work / "single.pgsafe"
                    t, m = timed([pgsafe, "dump", "-q", "-j", jobs, "-t", f"public.{table}", "-d", "bench",
                                  "-f", str(out)])
                    return t, m, size_of(out)
                single.append((f"pgsafe dump -t {table} -j {jobs}", *summarize([one() for _ in range(args.repeat)])))

        print(f"\ndatabase {db_size / 2**20:.0f} MiB ({describe(args)}), median of {args.repeat}, "
              f"{os.cpu_count()} cores\n")
        print(f"{'command':<52} {'time':>8} {'ratio':>6} {'size':>10} {'ratio':>6} {'peak RSS':>9}")
        base = rows[0]
        for name, t, m, s in rows:
            print(f"{name:<52} {t:>7.2f}s {t / base[1]:>6.2f} {s / 2**20:>8.0f}MB {s / base[3]:>6.3f} "
                  + (f"{m:>7.0f}MB" if m else f"{'':>9}"))
        for group in (restore_rows, single, full_rows):
            for name, t, m, s in group:
                size = f"{s / 2**20:>8.0f}MB" if s else f"{'':>10}"
                print(f"{name:<52} {t:>7.2f}s {t / group[0][1]:>6.2f} {size} {'':>6} {m:>7.0f}MB")
        print()
        ours = rows[2]
        checks = [("pgsafe dump: archive size vs pg_dump -Fd", ours[3] / base[3], 0.75),
                  ("pgsafe dump: peak RSS (MB)", ours[2], 100)]
        if full_rows:
            checks += [("whole restore, --verify full, vs pg_restore", full_rows[1][1] / full_rows[0][1], 0.8),
                       ("whole restore, --verify count, vs pg_restore", full_rows[2][1] / full_rows[0][1], 0.6),
                       ("pgsafe restore: peak RSS (MB)", max(r[2] for r in full_rows[1:] + restore_rows[1:]), 100)]
        for what, value, target in checks:
            print(f"{what:<48} {value:>8.3f}  target <= {target}: {'met' if value <= target else 'MISSED'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if cluster:
            cluster.stop()


def summarize(runs):
    """(median time, peak RSS over the runs, median size or None) of a tool's (time, RSS, size) runs."""
    sizes = [s for _, _, s in runs if s is not None]
    return (statistics.median(t for t, _, _ in runs), max(m for _, m, _ in runs),
            statistics.median(sizes) if sizes else None)


if __name__ == "__main__":
    main()
