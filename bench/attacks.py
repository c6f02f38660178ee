#!/usr/bin/env python3
"""Hostile inputs against a running server: for each attack, the server's peak memory and the p95
of /healthz while it lasts.

    python3 bench/attacks.py [--bin target/release/carbon-dash]

Each attack gets a fresh server (release build: ./x build --release) on a small logs folder
written here; /healthz is asked 20 times a second from another thread during the attack, and the
server's resident memory is sampled as often (peak = the largest sample, or VmHWM). Prints one
line per attack and a JSON summary. Nothing here runs in CI.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORT = 3917
URL = "http://127.0.0.1:%d" % PORT
HEADER = "timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code\n"


def row(run, secs, day="2026-10-01"):
    return "%sT10:%02d:%02d,p,%s,%d,%g,%g,FRA\n" % (day, secs // 60 % 60, secs % 60, run, secs, secs * 1e-5, secs * 2e-4)


def logs_folder(hostile=False, odd_dates=False):
    d = tempfile.mkdtemp(prefix="attack-logs-")
    os.makedirs(os.path.join(d, "team"))
    with open(os.path.join(d, "team", "emissions.csv"), "w") as f:
        f.write(HEADER + "".join(row("r%d" % i, 10 + i) for i in range(50)))
    if odd_dates:
        # A run dated 1600 and one dated 2100 (a day-by-day series would span 182,000 days).
        with open(os.path.join(d, "team", "odd-dates.csv"), "w") as f:
            f.write(HEADER + row("old", 5, "1600-01-01") + row("future", 5, "2100-12-31"))
    if hostile:
        bad = os.path.join(d, "bad")
        os.makedirs(bad)
        os.symlink("/nonexistent/emissions.csv", os.path.join(bad, "dangling.csv"))
        os.symlink("/dev/zero", os.path.join(bad, "zero.csv"))
        os.mkfifo(os.path.join(bad, "pipe.csv"))
        with open(os.path.join(bad, "huge.csv"), "wb") as f:
            f.truncate((1 << 30) + 1)
    return d


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            fields = dict(l.split(":", 1) for l in f if ":" in l)
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
    except (OSError, KeyError, ValueError):
        return 0, 0


def start(binary, logs, extra=()):
    proc = subprocess.Popen([binary, "serve", logs, "--addr", "127.0.0.1:%d" % PORT, "--site-root",
                             os.path.join(ROOT, "site"), "--no-cache"] + list(extra),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = []
    threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True).start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        if proc.poll() is not None:
            return None, "".join(out)
        try:
            urllib.request.urlopen(URL + "/healthz", timeout=2).read()
            return proc, ""
        except OSError:
            time.sleep(0.05)
    proc.kill()
    return None, "did not answer within 60 s: " + "".join(out)[-300:]


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Watch:
    """Asks /healthz 20 times a second and samples memory while an attack runs."""

    def __init__(self, pid):
        self.pid, self.lat, self.fail, self.peak = pid, [], 0, 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.is_set():
            t = time.monotonic()
            try:
                urllib.request.urlopen(URL + "/healthz", timeout=10).read()
                self.lat.append(time.monotonic() - t)
            except OSError:
                self.fail += 1
            self.peak = max(self.peak, rss_kb(self.pid)[0])
            time.sleep(max(0.0, 0.05 - (time.monotonic() - t)))

    def finish(self):
        self.done.set()
        self.thread.join()
        lat = sorted(self.lat)
        p95 = lat[int(len(lat) * 0.95)] * 1000 if lat else float("nan")
        return {"healthz_p95_ms": round(p95, 1), "healthz_failures": self.fail,
                "peak_rss_mb": round(max(self.peak, rss_kb(self.pid)[1]) / 1024, 1)}


def multipart(files):
    boundary = "attack-" + uuid.uuid4().hex
    body = b""
    for name, data in files:
        body += ("--%s\r\nContent-Disposition: form-data; name=\"files\"; filename=\"%s\"\r\n"
                 "Content-Type: text/csv\r\n\r\n" % (boundary, name)).encode() + data + b"\r\n"
    body += ("--%s--\r\n" % boundary).encode()
    return "multipart/form-data; boundary=" + boundary, body


def post(path, files, timeout=120):
    kind, body = multipart(files)
    req = urllib.request.Request(URL + path, data=body, method="POST",
                                 headers={"Content-Type": kind, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError as e:
        return str(e)


def wide_upload():
    """4 MB: 990 user columns with 200-character names, 2,000 rows, each its own run."""
    names = ["%03d%s" % (i, "x" * 197) for i in range(990)]
    lines = ["run_id,duration,energy_consumed," + ",".join(names)]
    values = ",".join(["v"] * 990)
    lines += ["run-%d,%d,0.5,%s" % (r, r + 1, values) for r in range(2000)]
    return "status %s" % post("/upload", [("wide.csv", ("\n".join(lines) + "\n").encode())])


def many_names():
    """1,000 files all named a.csv in one upload."""
    return "status %s" % post("/upload", [("a.csv", (HEADER + row("x", 5)).encode())] * 1000)


def day_series():
    """The day-by-day series of runs dated 1600 and 2100."""
    t = time.monotonic()
    try:
        with urllib.request.urlopen(URL + "/api/v1/timeseries?group_by=day&by=project", timeout=120) as r:
            n = len(r.read())
        return "%d bytes in %.2f s" % (n, time.monotonic() - t)
    except OSError as e:
        return str(e)


def stream_flood():
    """2,000 open live-update streams (each a connection a page would hold)."""
    socks, refused = [], 0
    for _ in range(2000):
        try:
            s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
            s.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            socks.append(s)
        except OSError:
            refused += 1
    time.sleep(2)
    answered = 0
    for s in socks[-50:]:
        s.settimeout(2)
        try:
            if s.recv(12).startswith(b"HTTP/1.1 503"):
                answered += 1
        except OSError:
            pass
    for s in socks:
        s.close()
    return "%d opened, %d refused to connect, %d of the last 50 told 503" % (len(socks), refused, answered)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/carbon-dash"))
    a = ap.parse_args()
    results = {}
    # The hostile folder: does the server start at all?
    logs = logs_folder(hostile=True)
    proc, why = start(a.bin, logs)
    first = next((l for l in why.splitlines() if l.strip()), "")
    results["hostile folder"] = {"starts": proc is not None, "why_not": first[:200]}
    print("hostile folder (dangling link, link to /dev/zero, FIFO, 1 GiB file): %s" % (
        "starts" if proc else "does not start: " + first[:200]), flush=True)
    if proc:
        stop(proc)
    shutil.rmtree(logs, ignore_errors=True)
    logs = logs_folder(odd_dates=True)
    proc, why = start(a.bin, logs)
    if proc:
        w = Watch(proc.pid)
        what = day_series()
        results["day series 1600-2100"] = dict(w.finish(), result=what)
        print("day series 1600-2100: %s" % results["day series 1600-2100"], flush=True)
        stop(proc)
    shutil.rmtree(logs, ignore_errors=True)
    for name, attack in [("wide upload (4 MB)", wide_upload), ("1,000 files named a.csv", many_names),
                         ("2,000 event streams", stream_flood)]:
        logs = logs_folder()
        proc, why = start(a.bin, logs)
        if not proc:
            results[name] = {"error": why}
            continue
        base = rss_kb(proc.pid)[0]
        w = Watch(proc.pid)
        what = attack()
        time.sleep(0.5)
        results[name] = dict(w.finish(), result=what, rss_before_mb=round(base / 1024, 1))
        print("%s: %s" % (name, results[name]), flush=True)
        stop(proc)
        shutil.rmtree(logs, ignore_errors=True)
    print(json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
