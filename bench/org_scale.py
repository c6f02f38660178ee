#!/usr/bin/env python3
"""The team server at organisation scale: each engine seeded in bulk, then measured through the
server (issue 22's goals).

    python3 bench/org_scale.py [--bin target/release/carbon-dash] [--sizes 1000000:2000,10000000:20000]
                               [--engines sqlite,postgres] [--pg URL] [--ingest-seconds 60]

Seeding is bulk SQL straight into the database (said as such: it is not what the server's
ingest costs; the ingest rate is measured separately over HTTP). For each size RECORDS:RUNS it
makes 10 projects (teams), RUNS runs of RECORDS/RUNS records each (one every 120 s, starting on
days spread over 2026), one run of 100,000 records (the run page), and each run's totals, as the
server keeps them. Then, through a release build of the server:
  - restart: seconds until `/` answers and /api/v1/summary counts every run; RSS then;
  - p95 of `/`, `/runs`, `/api/v1/summary` under 100 clients (wrk, 10 s each);
  - the page and the JSON of the run of 100,000 records (p50/p95 of 20 loads);
  - HTTP ingest: CodeCarbon 3.3.2's record body over 32 connections for --ingest-seconds, 0 errors,
    every 201 stored once (the store's count against wrk's 201s);
  - PostgreSQL: a record posted to replica A, seen on replica B (its run's checkpoints), quiet and
    during that flood.
Needs wrk (Debian package); PostgreSQL as bench/collect.py starts it when --pg is not given.
"""
import argparse, json, os, re, sqlite3, subprocess, sys, tempfile, threading, time, shutil
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collect import free_port, cli, value, start_postgres  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COUNTRIES = ["FRA", "DEU", "USA", "GBR", "SWE", "POL", "IND", "CAN", "NOR", "JPN"]
BIG = 100_000
YEAR_START_US = 1767225600 * 1_000_000  # 2026-01-01T00:00:00Z


def say(*a):
    print(*a, flush=True)


def psql(url, sql):
    out = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"psql: {out.stderr.strip()}\n{sql}")
    return out.stdout.strip()


def setup(binary, db):
    """Projects, experiments and one token through the command line (which also makes the schema)."""
    for i, c in enumerate(COUNTRIES):
        cli(binary, db, "project", "add", f"org-{i}", "--team", f"team-{i}")
        cli(binary, db, "experiment", "add", "--project", f"org-{i}", "--name", "train", "--country", c)
    return value(cli(binary, db, "token", "add", "--project", "org-0"), "api_key")


def seed_sql(runs, per_run, series, ts, month_parts=None):
    """The statements that seed; `series(n)` names a 0..n-1 table, `ts(expr)` formats µs."""
    base = f"({YEAR_START_US} + (r.x % 330) * 86400000000)"
    run_rows = f"""
    INSERT INTO runs (id, body_hash, experiment_id, timestamp, received_at, os, python_version, codecarbon_version,
        cpu_count, cpu_model, gpu_count, gpu_model, ram_total_size, tracking_mode)
    SELECT 'run-' || r.x, 'seed-' || r.x, e.id,
        {ts(base)}, 0, 'Linux', '3.11.7', '3.3.2', 32, 'Intel(R) Xeon(R) Platinum', 8, '8 x NVIDIA A100', 512, 'machine'
    FROM {series(runs)} r JOIN (SELECT e.id, ROW_NUMBER() OVER (ORDER BY p.name) - 1 AS i
        FROM experiments e JOIN projects p ON p.id = e.project_id) e ON e.i = r.x % 10"""
    records = lambda lo, hi, n: f"""
    INSERT INTO emissions (run_id, at_us, timestamp, seq, body_hash, received_at, duration, interval_s, emissions_sum,
        emissions_rate, cpu_power, gpu_power, ram_power, cpu_energy, gpu_energy, ram_energy, energy_consumed,
        cpu_utilization_percent, gpu_utilization_percent, ram_utilization_percent, wue, records)
    SELECT 'run-' || r.x, {base} + k.x * 120000000, {ts(f'{base} + k.x * 120000000')}, r.x * {n} + k.x + 1, 'seed', 0,
        120, 120, 0.0011, 0.0011 / 120, 150, 2400, 40, 0.005, 0.08, 0.0013, 0.0863, 40, 85, 12, 0, 1
    FROM {series(runs)} r, {series(n)} k WHERE r.x >= {lo} AND r.x < {hi}"""
    totals = lambda lo, hi, n: f"""
    UPDATE runs SET records = {n}, sum_interval = 120.0 * {n}, sum_emissions = 0.0011 * {n},
        sum_cpu_energy = 0.005 * {n}, sum_gpu_energy = 0.08 * {n}, sum_ram_energy = 0.0013 * {n},
        sum_energy = 0.0863 * {n}, last_seq = (SELECT MAX(seq) FROM emissions e WHERE e.run_id = runs.id),
        last_at = (SELECT MAX(at_us) FROM emissions e WHERE e.run_id = runs.id),
        last_timestamp = (SELECT MAX(timestamp) FROM emissions e WHERE e.run_id = runs.id),
        last_cpu_power = 150, last_gpu_power = 2400, last_ram_power = 40, last_cpu_utilization = 40,
        last_gpu_utilization = 85, last_ram_utilization = 12, last_wue = 0
    WHERE id IN (SELECT 'run-' || r.x FROM {series(runs)} r WHERE r.x >= {lo} AND r.x < {hi})"""
    return run_rows, records, totals


def seed(engine, db, runs, records_total):
    """Bulk-seeds `runs` runs (+ one of BIG records) holding `records_total` records in all."""
    per_run = max(1, (records_total - BIG) // runs)
    t0 = time.perf_counter()
    if engine == "postgres":
        series = lambda n: f"(SELECT x FROM generate_series(CAST(0 AS BIGINT), {n - 1}) AS x)"
        ts = lambda e: f"to_char(to_timestamp(({e}) / 1e6) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || '+00:00'"
        for m in range(1, 13):
            nxt = "2027-01-01" if m == 12 else f"2026-{m + 1:02d}-01"
            psql(db, f"CREATE TABLE IF NOT EXISTS emissions_y2026m{m:02d} PARTITION OF emissions FOR VALUES FROM "
                     f"(extract(epoch from timestamptz '2026-{m:02d}-01 00:00+00') * 1000000) TO "
                     f"(extract(epoch from timestamptz '{nxt} 00:00+00') * 1000000)")
        run_rows, records, totals = seed_sql(runs, per_run, series, ts)
        psql(db, run_rows)
        step = max(1, 2_000_000 // per_run)
        for lo in range(0, runs, step):
            psql(db, records(lo, min(runs, lo + step), per_run))
        for lo in range(0, runs, 5000):
            psql(db, totals(lo, min(runs, lo + 5000), per_run))
        # The big run: a run index past the others, BIG records.
        big_runs, big_records, big_totals = seed_sql(runs + 1, BIG, series, ts)
        psql(db, big_runs + f" AND r.x = {runs}")
        psql(db, big_records(runs, runs + 1, BIG))
        psql(db, big_totals(runs, runs + 1, BIG))
        psql(db, "UPDATE counters SET value = (SELECT MAX(seq) FROM emissions) WHERE name = 'seq'")
        psql(db, "ANALYZE")
    else:
        con = sqlite3.connect(db)
        con.execute("PRAGMA journal_mode = WAL")
        series = lambda n: f"(WITH RECURSIVE s(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM s WHERE x < {n - 1}) SELECT x FROM s)"
        ts = lambda e: f"strftime('%Y-%m-%dT%H:%M:%S', ({e}) / 1000000, 'unixepoch') || '+00:00'"
        run_rows, records, totals = seed_sql(runs, per_run, series, ts)
        con.execute(run_rows)
        step = max(1, 2_000_000 // per_run)
        for lo in range(0, runs, step):
            con.execute(records(lo, min(runs, lo + step), per_run))
            con.commit()
        for lo in range(0, runs, 5000):
            con.execute(totals(lo, min(runs, lo + 5000), per_run))
        big_runs, big_records, big_totals = seed_sql(runs + 1, BIG, series, ts)
        con.execute(big_runs + f" AND r.x = {runs}")
        con.execute(big_records(runs, runs + 1, BIG))
        con.execute(big_totals(runs, runs + 1, BIG))
        con.execute("UPDATE counters SET value = (SELECT MAX(seq) FROM emissions) WHERE name = 'seq'")
        con.commit()
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
    return per_run * runs + BIG, runs + 1, time.perf_counter() - t0


def stored(engine, db):
    if engine == "postgres":
        return int(psql(db, "SELECT COALESCE(SUM(records), 0) FROM runs"))
    con = sqlite3.connect(db)
    n = con.execute("SELECT COALESCE(SUM(records), 0) FROM runs").fetchone()[0]
    con.close()
    return n


def db_bytes(engine, db):
    if engine == "postgres":
        return int(psql(db, "SELECT pg_database_size(current_database())"))
    return sum(os.path.getsize(db + s) for s in ("", "-wal") if os.path.exists(db + s))


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        kb = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    return kb / 1024


def get(addr, path, timeout=30):
    return urllib.request.urlopen(f"http://{addr}{path}", timeout=timeout).read()


def start(binary, db, site, *flags):
    port = free_port()
    addr = f"127.0.0.1:{port}"
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "serve", "--addr", addr, "--db", db, "--collect", "--collect-rate", "0",
                          "--site-root", site, *flags], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return p, addr, t0


def wait_ready(addr, t0, runs, timeout=600):
    while time.perf_counter() - t0 < timeout:
        try:
            summary = json.loads(get(addr, "/api/v1/summary", timeout=5))
            if summary["totals"]["runs"] >= runs:
                get(addr, "/", timeout=30)
                return time.perf_counter() - t0
        except Exception:
            pass
        time.sleep(0.05)
    raise SystemExit(f"not ready after {timeout} s")


def wrk_p95(addr, path, clients=100, seconds=10):
    out = subprocess.run(["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s", "-s",
                          os.path.join(ROOT, "bench", "p95.lua"), f"http://{addr}{path}"], capture_output=True,
                         text=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("p50"))
    f = dict(re.findall(r"(\w+) ([\d.]+)", line))
    return float(f["p95"]), int(f["errors"]), int(f["requests"])


def timed(addr, path, n=20):
    """Milliseconds to load `path`, p50 and p95 of `n` loads."""
    xs = []
    for _ in range(n):
        t = time.perf_counter()
        get(addr, path)
        xs.append((time.perf_counter() - t) * 1000)
    xs.sort()
    return xs[len(xs) // 2], xs[int(0.95 * (len(xs) - 1))]


def ingest(addr, token, run_ids, seconds):
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "--timeout", "10s", "-s",
                          os.path.join(ROOT, "bench", "collect.lua"), f"http://{addr}", "--", ",".join(run_ids), token],
                         capture_output=True, text=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("requests "))
    return dict(re.findall(r"(\w+) ([\d.]+)", line))


def seen_on(addr, run_id, checkpoints, timeout=30):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        r = json.loads(get(addr, f"/api/v1/runs/{run_id}"))
        if r["run"]["checkpoints"] >= checkpoints:
            return time.perf_counter() - t0
        time.sleep(0.01)
    return float("inf")


def cross_replica(a, b, token, run_id, n):
    """Posts one record to A (a timestamp no other post uses) and times until B shows it."""
    body = json.dumps({"timestamp": f"2027-06-01T00:00:{n % 60:02d}.{n:06d}+00:00", "run_id": run_id, "duration": 2,
                       "emissions_sum": 1e-6, "emissions_rate": 5e-7, "cpu_power": 30.0, "energy_consumed": 1e-5,
                       "cpu_energy": 1e-5}).encode()
    before = json.loads(get(b, f"/api/v1/runs/{run_id}"))["run"]["checkpoints"]
    req = urllib.request.Request(f"http://{a}/emissions", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "x-api-token": token})
    t0 = time.perf_counter()
    urllib.request.urlopen(req, timeout=10).read()
    posted = time.perf_counter() - t0
    return posted + seen_on(b, run_id, before + 1)


def bench(binary, engine, db, site, records, runs, ingest_seconds):
    label = f"{engine} {records / 1e6:g} M records / {runs} runs"
    token = setup(binary, db)
    n_records, n_runs, seeded = seed(engine, db, runs, records)
    say(f"[{label}] seeded {n_records} records, {n_runs} runs in {seeded:.0f} s (bulk SQL); "
        f"database {db_bytes(engine, db) / 1e9:.2f} GB")
    a, addr, t0 = start(binary, db, site)
    try:
        restart = wait_ready(addr, t0, n_runs)
        rss = rss_mb(a.pid)
        say(f"[{label}] restart until / answers with every run counted: {restart:.2f} s; RSS {rss:.0f} MB")
        for path in ["/", "/runs", "/api/v1/summary"]:
            p95, errors, n = wrk_p95(addr, path)
            say(f"[{label}] GET {path}, 100 clients: p95 {p95:.1f} ms ({n} requests, {errors} errors)")
        big = f"run-{runs}"
        for path in [f"/runs/{big}", f"/api/v1/runs/{big}"]:
            t = time.perf_counter()
            get(addr, path)
            first = (time.perf_counter() - t) * 1000
            p50, p95 = timed(addr, path)
            say(f"[{label}] {path} ({BIG} records): first load {first:.0f} ms; again (the server's answer cache) "
                f"p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        say(f"[{label}] RSS after the page loads {rss_mb(a.pid):.0f} MB")
        b = None
        if engine == "postgres":
            b, baddr, bt0 = start(binary, db, site)
            wait_ready(baddr, bt0, n_runs)
            quiet = sorted(cross_replica(addr, baddr, token, "run-0", i) for i in range(10))
            say(f"[{label}] record posted to A, seen on B: median {quiet[5] * 1000:.0f} ms, max {quiet[-1] * 1000:.0f} ms")
        before = stored(engine, db)
        flood_delays = []
        flood = threading.Thread(target=lambda: flood_delays.append(
            ingest(addr, token, [f"run-{i}" for i in range(10, 1001, 10)], ingest_seconds)))
        flood.start()
        if b is not None:
            time.sleep(min(5, ingest_seconds / 3))
            during = sorted(cross_replica(addr, baddr, token, "run-0", 100 + i) for i in range(5))
        flood.join()
        f = flood_delays[0]
        n, secs, not201 = int(f["requests"]), float(f["seconds"]), int(f["not201"])
        time.sleep(1)
        landed = stored(engine, db) - before - (5 if b is not None else 0)
        say(f"[{label}] HTTP ingest, 32 connections, {secs:.0f} s: {(n - not201) / secs:.0f} records/s (201), "
            f"p95 {f['p95']} ms, not 201: {not201}, socket errors {f['socket_errors']}; stored {landed} "
            f"(wrk's 201s {n - not201}: it stops without reading the last answers)")
        if b is not None:
            say(f"[{label}] during the flood, record posted to A seen on B: median {during[2] * 1000:.0f} ms, "
                f"max {during[-1] * 1000:.0f} ms")
            b.terminate()
            b.wait()
        say(f"[{label}] RSS at the end {rss_mb(a.pid):.0f} MB")
    finally:
        a.terminate()
        a.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/carbon-dash"))
    ap.add_argument("--site", default=os.path.join(ROOT, "site"))
    ap.add_argument("--sizes", default="1000000:2000,10000000:20000,20000000:20000")
    ap.add_argument("--engines", default="sqlite,postgres")
    ap.add_argument("--pg", help="an admin URL of a PostgreSQL server (its databases are made and dropped)")
    ap.add_argument("--ingest-seconds", type=int, default=60)
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    stop = None
    pg = a.pg
    if "postgres" in a.engines and not pg:
        pg, stop = start_postgres()
    try:
        for size in a.sizes.split(","):
            records, runs = (int(float(x)) for x in size.split(":"))
            for engine in a.engines.split(","):
                if engine == "sqlite":
                    tmp = tempfile.mkdtemp()
                    try:
                        bench(a.bin, engine, os.path.join(tmp, "org.db"), a.site, records, runs, a.ingest_seconds)
                    finally:
                        shutil.rmtree(tmp, ignore_errors=True)
                else:
                    name = f"org_{records}_{runs}_{int(time.time())}"
                    psql(pg, f"CREATE DATABASE {name}")
                    url = pg.rsplit("/", 1)[0] + "/" + name
                    try:
                        bench(a.bin, engine, url, a.site, records, runs, a.ingest_seconds)
                    finally:
                        psql(pg, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        if stop:
            stop()


if __name__ == "__main__":
    main()
