#!/usr/bin/env python3
"""Scale benchmark: prints each goal's figure for one generated logs folder.

    python3 bench/scale.py --rows 1000000 [--bin target/release/carbon-dash] [--no-pandas] [--no-load]

Generates the folder once (bench/gen_logs.py, seeded, under /tmp/carbon-dash-bench/), then measures with
the release server:
  start        cold (OS cache dropped, when allowed) and warm: process start until `/` answers 200;
  restart      the same with the parse cache written by the previous start;
  memory       resident memory (VmRSS) after start and its peak (VmHWM), against the CSV bytes;
  append       one checkpoint appended to one file: until the API shows it, and until the
               event stream announces it;
  load         p95 with 100 concurrent clients (wrk, 15 s) on /, /runs, /api/v1/summary,
               /api/v1/runs?limit=100, and errors;
  transfer     first visit: HTML + CSS + JS + wasm as a browser that takes gzip downloads them;
  pandas       CodeCarbon's carbonboard data path on the same files (bench/pandas_path.py, in a
               virtual environment the script makes), and the ratio to carbon-dash's cold start.
Prints one line per figure, then a JSON line with all of them.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADDR = "127.0.0.1:3998"
URL = "http://" + ADDR


def log(*a):
    print(*a, flush=True)


def drop_caches():
    try:
        subprocess.run(["sync"], check=True)
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def get(path, headers=None, timeout=5):
    req = urllib.request.Request(URL + path, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read(), r.headers


def start(binary, logs, extra):
    t0 = time.monotonic()
    proc = subprocess.Popen([binary, "serve", logs, "--addr", ADDR, "--site-root", os.path.join(ROOT, "site")] + extra,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    while True:
        if proc.poll() is not None:
            sys.exit("server ended: " + "".join(lines))
        try:
            if get("/", timeout=30)[0] == 200:
                break
        except OSError:
            time.sleep(0.02)
    proc.t0 = t0
    return proc, time.monotonic() - t0, lines


def until(proc, lines, text, timeout=300):
    """Seconds from the process start until a line of its output contains `text`."""
    while time.monotonic() - proc.t0 < timeout:
        if any(text in l for l in list(lines)):
            return time.monotonic() - proc.t0
        time.sleep(0.01)
    return None


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def memory(pid):
    status = open("/proc/%d/status" % pid).read()
    kb = lambda k: int(re.search(k + r":\s+(\d+) kB", status).group(1))
    return kb("VmRSS") * 1024, kb("VmHWM") * 1024


def append_target(logs):
    """The file an append goes to, found before the server starts: walking the tree while it
    watches would flood its watcher with events (a rescan), which is not what an append costs."""
    path = None
    for d, _, files in os.walk(logs):
        for f in files:
            p = os.path.join(d, f)
            # A checkpoint file with run ids (not a task file, not the v1 layout).
            if f == "emissions.csv" and open(p).readline().startswith("timestamp,project_name,run_id,"):
                path = p
                break
        if path:
            break
    return path


def append_latency(path):
    """Appends a checkpoint to the run of the file `path`; times the API and the event stream."""
    text = open(path).read().splitlines()
    header, last = text[0].split(","), text[-1].split(",")
    run_id = last[header.index("run_id")]
    before = json.loads(get("/api/v1/runs/" + run_id)[1])["run"]["checkpoints"]
    row = list(last)
    d = header.index("duration")
    row[d] = str(float(row[d]) * 2)
    events = []

    def listen():
        req = urllib.request.Request(URL + "/api/v1/events")
        with urllib.request.urlopen(req, timeout=30) as r:
            for line in r:
                if line.startswith(b"data:"):
                    events.append(time.monotonic())
                    return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    with open(path, "a") as f:
        f.write(",".join(row) + "\n")
    while True:
        n = json.loads(get("/api/v1/runs/" + run_id + "?t=%f" % time.monotonic())[1])["run"]["checkpoints"]
        if n > before:
            api = time.monotonic() - t0
            break
        if time.monotonic() - t0 > 60:
            return None
        time.sleep(0.005)
    t.join(30)
    return api, (events[0] - t0) if events else None


def wrk_p95(path, seconds):
    script = os.path.join(ROOT, "bench", "p95.lua")
    out = subprocess.run(["wrk", "-t2", "-c100", "-d%ds" % seconds, "--timeout", "10s", "-s", script, URL + path],
                         capture_output=True, text=True).stdout
    m = re.search(r"p50 ([\d.]+) ms\s+p95 ([\d.]+) ms.*requests (\d+)\s+errors (\d+)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {"p50_ms": float(m.group(1)), "p95_ms": float(m.group(2)), "requests": int(m.group(3)),
            "errors": int(m.group(4)), "req_per_s": float(rps.group(1))}


def transfer():
    gz = {"Accept-Encoding": "gzip, deflate, br"}
    total = {}
    status, html, _ = get("/", gz)
    raw = get("/")[1]
    total["html"] = len(html)
    for name, path in [("css", "/pkg/carbon-dash.css"), ("js", "/pkg/carbon-dash.js"), ("wasm", "/pkg/carbon-dash_bg.wasm")]:
        try:
            total[name] = len(get(path, gz)[1])
        except OSError:
            total[name] = None
    total["html_uncompressed"] = len(raw)
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/carbon-dash"))
    ap.add_argument("--no-pandas", action="store_true")
    ap.add_argument("--no-load", action="store_true")
    ap.add_argument("--load-seconds", type=int, default=15)
    a = ap.parse_args()
    logs = "/tmp/carbon-dash-bench/logs-%d" % a.rows
    if not os.path.isdir(logs):
        gen = subprocess.run([sys.executable, os.path.join(ROOT, "bench/gen_logs.py"), "--rows", str(a.rows), "--out", logs],
                             capture_output=True, text=True, check=True).stdout
        open(logs + ".json", "w").write(gen)
    info = json.loads(open(logs + ".json").read())
    res = {"rows": info["rows"], "files": info["files"], "runs": info["runs"], "csv_bytes": info["bytes"]}
    log("logs: %(rows)d rows, %(files)d files, %(runs)d runs, %(csv_bytes)d bytes (%(dir)s)" % dict(res, dir=logs))
    cache = "/tmp/carbon-dash-bench/cache-%d" % a.rows
    shutil.rmtree(cache, ignore_errors=True)
    target = append_target(logs)
    env_cache = ["--cache-dir", cache]

    cold = drop_caches()
    proc, t, _ = start(a.bin, logs, env_cache + ["--no-cache"])
    res["start_cold_s" if cold else "start_first_s"] = t
    stop(proc)
    proc, t, out = start(a.bin, logs, env_cache + ["--no-cache"])
    res["start_warm_s"] = t
    res["rss_bytes"], res["peak_rss_bytes"] = memory(proc.pid)
    stop(proc)
    log("start: cold %s, warm %.2f s" % ("%.2f s" % res["start_cold_s"] if cold else "n/a (cannot drop caches)",
                                           res["start_warm_s"]))
    log("memory (no cache): %.0f MB resident, %.0f MB peak = %.2fx / %.2fx the CSV bytes" % (
        res["rss_bytes"] / 1e6, res["peak_rss_bytes"] / 1e6, res["rss_bytes"] / res["csv_bytes"],
        res["peak_rss_bytes"] / res["csv_bytes"]))

    # With the parse cache: the first start writes it (after its check of the folder), a restart
    # answers from it, then checks the folder for files changed since.
    proc, t, out = start(a.bin, logs, env_cache)
    res["start_writing_cache_s"] = t
    until(proc, out, "parse cache written")
    stop(proc)
    if drop_caches():
        proc, t, out = start(a.bin, logs, env_cache)
        res["restart_cold_s"], res["restart_cold_checked_s"] = t, until(proc, out, "checked ")
        stop(proc)
    proc, t, out = start(a.bin, logs, env_cache)
    res["restart_warm_s"], res["restart_warm_checked_s"] = t, until(proc, out, "checked ")
    fmt = lambda k: "%.2f s" % res[k] if res.get(k) is not None else "n/a"
    log("restart with the cache: cold %s, warm %s (folder checked for changes after %s / %s; first start, "
        "writing it: %.2f s)" % (fmt("restart_cold_s"), fmt("restart_warm_s"), fmt("restart_cold_checked_s"),
                                 fmt("restart_warm_checked_s"), res["start_writing_cache_s"]))

    lat = append_latency(target)
    if lat:
        res["append_api_s"], res["append_event_s"] = lat
        log("one appended row: in the API after %.3f s, announced to pages after %s" % (
            lat[0], "%.3f s" % lat[1] if lat[1] is not None else "n/a"))
    if not a.no_load:
        if not shutil.which("wrk"):
            subprocess.run("apt-get update -qq && apt-get install -y -qq wrk", shell=True, check=True)
        for path in ["/", "/runs", "/api/v1/summary", "/api/v1/runs?limit=100"]:
            r = wrk_p95(path, a.load_seconds)
            res["load " + path] = r
            log("100 clients on %s: p50 %.1f ms, p95 %.1f ms, %.0f req/s, %d errors" % (
                path, r["p50_ms"], r["p95_ms"], r["req_per_s"], r["errors"]))
    t = transfer()
    res["first_visit_bytes"] = t
    known = [v for k, v in t.items() if k != "html_uncompressed" and v]
    log("first visit (compressed as a browser takes it: br or gzip): html %s, css %s, js %s, wasm %s = %.0f KB" % (
        t["html"], t["css"], t["js"], t["wasm"], sum(known) / 1024))
    res["rss_after_load_bytes"], res["peak_rss_after_load_bytes"] = memory(proc.pid)
    log("memory after all that: %.0f MB resident, %.0f MB peak" % (
        res["rss_after_load_bytes"] / 1e6, res["peak_rss_after_load_bytes"] / 1e6))
    stop(proc)

    if not a.no_pandas:
        py = subprocess.run([os.path.join(ROOT, "bench/pandas_venv.sh")], capture_output=True, text=True,
                            check=True).stdout.strip()
        drop_caches()
        t0 = time.monotonic()
        out = subprocess.run([py, os.path.join(ROOT, "bench/pandas_path.py"), logs], capture_output=True, text=True)
        wall = time.monotonic() - t0
        p = json.loads(out.stdout.strip().splitlines()[-1])
        res["pandas_s"], res["pandas_wall_s"], res["pandas_peak_rss_mb"] = p["seconds"], wall, p["peak_rss_mb"]
        base = res.get("start_cold_s", res.get("start_first_s"))
        log("pandas (carbonboard's path): %.2f s reading and aggregating (%.2f s with interpreter start), "
            "%.0f MB peak; carbon-dash cold start is %.1fx faster" % (p["seconds"], wall, p["peak_rss_mb"], wall / base))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
