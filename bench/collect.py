#!/usr/bin/env python3
"""Collection API bench: records a second held, with latency, on SQLite and on PostgreSQL, and
what a flood from one token does (429s) while pages are asked for.

    python3 bench/collect.py [--bin target/release/carbon-dash] [--seconds 15] [--pg URL]

Without --pg it starts a private PostgreSQL cluster (Debian's packages, as `./x test` does).
Each engine: a project, an experiment, 100 runs; then wrk posts CodeCarbon 3.3.2's record body
over 32 connections (no rate limit) while one client loads `/` every 50 ms; then the same flood
on one token at the default --collect-rate (100 a second). The stored count is checked against
the 201s. Needs wrk (Debian package).
"""
import argparse, json, os, re, shutil, socket, statistics, subprocess, sys, tempfile, threading, time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cli(binary, db, *args):
    out = subprocess.run([binary, *args, "--db", db], check=True, capture_output=True, text=True).stdout
    return out


def value(out, key):
    return next(l.split(" = ", 1)[1] for l in out.splitlines() if l.startswith(key + " = "))


def start_postgres():
    bins = sorted(d for d in os.listdir("/usr/lib/postgresql") if os.path.isdir(f"/usr/lib/postgresql/{d}/bin"))
    bin_dir = f"/usr/lib/postgresql/{bins[-1]}/bin"
    d = tempfile.mkdtemp()
    run_as = []
    if os.getuid() == 0:
        shutil.chown(d, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run(run_as + [f"{bin_dir}/initdb", "-D", f"{d}/data", "-A", "trust", "-U", "postgres"], check=True,
                   capture_output=True)
    subprocess.run(run_as + [f"{bin_dir}/pg_ctl", "-D", f"{d}/data", "-l", f"{d}/log", "-w", "-o",
                             f"-k {d} -p {port} -c listen_addresses=127.0.0.1 -c max_connections=200", "start"],
                   check=True, capture_output=True)
    stop = lambda: (subprocess.run(run_as + [f"{bin_dir}/pg_ctl", "-D", f"{d}/data", "-m", "fast", "stop"],
                                   capture_output=True), shutil.rmtree(d, ignore_errors=True))
    return f"postgres://postgres@127.0.0.1:{port}/postgres", stop


def page_latencies(addr, stop, out):
    while not stop.is_set():
        t = time.perf_counter()
        try:
            urllib.request.urlopen(f"http://{addr}/", timeout=10).read()
            out.append((time.perf_counter() - t) * 1000)
        except Exception:
            out.append(float("inf"))
        time.sleep(0.05)


def p95(xs):
    return sorted(xs)[int(0.95 * (len(xs) - 1))] if xs else float("nan")


def post(addr, path, token, body):
    req = urllib.request.Request(f"http://{addr}{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "x-api-token": token})
    return json.load(urllib.request.urlopen(req, timeout=10))


def stored(addr):
    runs = json.load(urllib.request.urlopen(f"http://{addr}/api/v1/runs?limit=all", timeout=60))
    return sum(r["checkpoints"] for r in runs if r.get("source") == "collected")


def bench(binary, db, label, seconds):
    cli(binary, db, "project", "add", "bench", "--team", "ml")
    exp = value(cli(binary, db, "experiment", "add", "--project", "bench", "--name", "load", "--country", "FRA"),
                "experiment_id")
    token = value(cli(binary, db, "token", "add", "--project", "bench"), "api_key")
    results = {}
    for mode, rate in (("unlimited", "0"), ("flood, one token at the default rate", "100")):
        port = free_port()
        addr = f"127.0.0.1:{port}"
        server = subprocess.Popen([binary, "serve", "--addr", addr, "--db", db, "--collect", "--collect-rate", rate,
                                   "--site-root", os.path.join(ROOT, "site")], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"http://{addr}/healthz", timeout=1)
                    break
                except Exception:
                    time.sleep(0.1)
            before = stored(addr)
            before_db = len(cli(binary, db, "export", "--project", "bench").splitlines()) - 1
            runs = [post(addr, "/runs", token, {"timestamp": f"2026-11-29T18:{i // 60:02d}:{i % 60:02d}.{len(mode)}+00:00",
                                                 "experiment_id": exp, "os": "Linux", "codecarbon_version": "3.3.2",
                                                 "cpu_count": 2, "gpu_count": 0, "ram_total_size": 23.5,
                                                 "tracking_mode": "machine"})["id"] for i in range(100)] \
                if rate == "0" else [post(addr, "/runs", token, {"timestamp": "2026-11-30T00:00:00+00:00",
                                                                   "experiment_id": exp})["id"]]
            pages, stop = [], threading.Event()
            watcher = threading.Thread(target=page_latencies, args=(addr, stop, pages))
            watcher.start()
            wrk = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "--timeout", "10s", "-s",
                                  os.path.join(ROOT, "bench", "collect.lua"), f"http://{addr}", "--",
                                  ",".join(runs), token], capture_output=True, text=True)
            stop.set()
            watcher.join()
            line = next(l for l in wrk.stdout.splitlines() if l.startswith("requests "))
            f = dict(re.findall(r"(\w+) ([\d.]+)", line))
            n, secs, refused = int(f["requests"]), float(f["seconds"]), int(f["not201"])
            ok = n - refused
            in_db = len(cli(binary, db, "export", "--project", "bench").splitlines()) - 1 - before_db
            # Pages show the records once read back (at most a fifth of the time, see collect.rs).
            t0, landed = time.perf_counter(), 0
            while time.perf_counter() - t0 < 120:
                landed = stored(addr) - before
                if landed >= in_db:
                    break
                time.sleep(0.2)
            caught_up = time.perf_counter() - t0
            print(f"{label}, {mode}: {ok / secs:.0f} records/s stored (201), {refused / secs:.0f}/s refused; "
                  f"p50 {f['p50']} ms, p95 {f['p95']} ms, p99 {f['p99']} ms, max {f['max']} ms; "
                  f"socket errors {f['socket_errors']}; in the database {in_db} (acknowledged {ok}: wrk stops without "
                  f"reading the last answers); on the pages {landed}, {caught_up:.1f} s after the last post; "
                  f"page / meanwhile: p95 {p95(pages):.1f} ms over {len(pages)} loads", flush=True)
        finally:
            server.terminate()
            server.wait()
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/carbon-dash"))
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--pg")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    tmp = tempfile.mkdtemp()
    bench(a.bin, os.path.join(tmp, "bench.db"), "SQLite (WAL, synchronous=FULL)", a.seconds)
    stop = None
    pg = a.pg
    if not pg:
        pg, stop = start_postgres()
    try:
        bench(a.bin, pg, "PostgreSQL 15", a.seconds)
    finally:
        if stop:
            stop()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
