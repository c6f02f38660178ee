#!/usr/bin/env python3
"""Hostile inputs against a running server: for each attack, the server's peak memory and the p95
of /healthz while it lasts.

    python3 bench/attacks.py [--bin target/release/carbon-dash] [--site site] [--only NAME,...]
    (NAME: hostile-folder, day-series, wide-upload, many-names, streams, never-reading, slow-headers,
     upload-slots, headers, results-1m, mlflow-1g, wandb-corrupt, tracker, dns-rebinding)

The attackers connect from 127.0.0.2 and /healthz is asked from 127.0.0.1: two client addresses,
as a hostile client and everyone else would be.

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


SITE = os.path.join(ROOT, "site")
ATTACKER = "127.0.0.2"


def start(binary, logs, extra=(), host="127.0.0.1"):
    args = [binary, "serve"] + ([logs] if logs else []) + ["--addr", "%s:%d" % (host, PORT), "--site-root", SITE,
                                                           "--no-cache"]
    if host != "127.0.0.1":
        args.append("--public")
    proc = subprocess.Popen(args + list(extra),
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
        return {"healthz_p95_ms": round(p95, 1), "healthz_ok": len(lat), "healthz_failures": self.fail,
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
            s = attacker_socket(rcvbuf=65536)
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


def attacker_socket(rcvbuf=4096):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((ATTACKER, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", PORT))
    return s


def established_from_attacker():
    """Attacker connections the server holds open (ss: the server's side, established, to
    127.0.0.2; a socket the server closed with data still unsent is the kernel's, not held)."""
    out = subprocess.run(["ss", "-Htn", "state", "established", "dst", ATTACKER, "sport", "= :%d" % PORT],
                         capture_output=True, text=True).stdout
    return len([l for l in out.splitlines() if l.strip()])


def never_reading(n=4200, hold=20):
    """n connections from one address, each sending 30 pipelined GET /map and reading nothing."""
    socks, refused = [], 0
    pipelined = b"GET /map HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 30
    for _ in range(n):
        try:
            s = attacker_socket()
            s.sendall(pipelined)
            socks.append(s)
        except OSError:
            refused += 1
    t0 = time.monotonic()
    time.sleep(hold)
    left = established_from_attacker()
    for s in socks:
        s.close()
    return "%d connected, %d refused; after %d s %d still open" % (len(socks), refused, hold, left)


def slow_headers(n=4200, hold=20):
    """n connections from one address trickling a header byte a second, never ending the head;
    each one the server cuts is opened again at once."""
    socks, refused, reopened = [], 0, 0

    def opened():
        s = attacker_socket()
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        return s

    for _ in range(n):
        try:
            socks.append(opened())
        except OSError:
            refused += 1
    t0 = time.monotonic()
    while time.monotonic() - t0 < hold:
        for i, s in enumerate(socks):
            try:
                s.send(b"a")
            except OSError:
                s.close()
                try:
                    socks[i] = opened()
                    reopened += 1
                except OSError:
                    refused += 1
        time.sleep(1)
    left = established_from_attacker()
    for s in socks:
        s.close()
    return "%d kept open (%d reopened after a cut), %d refused; at the end %d open" % (len(socks), reopened, refused,
                                                                                       left)


def upload_from(source, name):
    import http.client
    kind, body = multipart([(name, (HEADER + row("u-" + name, 5)).encode())])
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30, source_address=(source, 0))
    try:
        c.request("POST", "/upload", body=body, headers={"Content-Type": kind, "Accept": "application/json"})
        return c.getresponse().status
    except OSError as e:
        return str(e)
    finally:
        c.close()


def upload_slots():
    """64 tiny uploads from one address, then one from another."""
    statuses = [upload_from(ATTACKER, "t%d.csv" % i) for i in range(64)]
    other = upload_from("127.0.0.1", "mine.csv")
    return "attacker: %d of 64 taken; another address's upload: %s" % (statuses.count(200), other)


def headers_of(path):
    try:
        with urllib.request.urlopen(URL + path, timeout=30) as r:
            h = r.headers
    except urllib.error.HTTPError as e:
        h = e.headers
    names = ["X-Content-Type-Options", "Content-Security-Policy", "X-Frame-Options", "Referrer-Policy"]
    return [n for n in names if h.get(n)]


def security_headers():
    """Which security headers a page, the report and JSON carry."""
    got = {p: headers_of(p) for p in ["/", "/api/v1/report?format=html", "/api/v1/summary"]}
    return "; ".join("%s: %s" % (p, ", ".join(h) or "none") for p, h in got.items())


def cli(binary, db, *args):
    return subprocess.run([binary] + list(args) + ["--db", db], capture_output=True, text=True).stdout


def collect_setup(binary, db):
    cli(binary, db, "project", "add", "p")
    exp = [l.split("=", 1)[1].strip() for l in cli(binary, db, "experiment", "add", "--project", "p", "--name", "e",
                                                   "--country", "FRA").splitlines() if "experiment_id" in l][0]
    token = [l.split("=", 1)[1].strip() for l in cli(binary, db, "token", "add", "--project", "p").splitlines()
             if "api_key" in l][0]
    return exp, token


def post_json(path, token, body):
    req = urllib.request.Request(URL + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "x-api-token": token})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None


def tracker_records(exp, token):
    """A run whose cpu_model is a formula behind U+202E, then impossible records."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    run = {"timestamp": now, "experiment_id": exp, "cpu_model": '=HYPERLINK("http://evil","x")\u202efdp.exe',
           "cpu_count": 2, "gpu_count": 0, "ram_total_size": 16, "tracking_mode": "machine"}
    status, body = post_json("/runs", token, run)
    run_id = (body or {}).get("id", "none")
    base = {"timestamp": now, "run_id": run_id, "duration": 2, "energy_consumed": 0.001, "emissions_sum": 0.00005}
    tiny = dict(base, duration=1e-300, energy_consumed=1e12)
    far = dict(base, timestamp="9999-12-31T00:00:00+00:00")
    old = dict(base, timestamp="0001-01-01T00:00:00+00:00")
    later = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 2))
    good = dict(base, timestamp=later)
    got = [post_json("/emissions", token, b)[0] for b in (tiny, far, old, good)]
    time.sleep(6)
    runs = json.loads(urllib.request.urlopen(URL + "/api/v1/runs?limit=all", timeout=30).read())
    shown = next((r for r in runs if r.get("run_id") == run_id), {})
    csv = urllib.request.urlopen(URL + "/api/v1/projects/p/emissions.csv", timeout=30).read().decode()
    return ("1e-300 s with 1e12 kWh: %s; year 9999: %s; year 0001: %s; a good record: %s; energy shown %s kWh; "
            "U+202E shown: %s; formula cell in the export: %s" % (
                got[0], got[1], got[2], got[3], shown.get("energy_kwh"), "\u202e" in json.dumps(shown, ensure_ascii=False),
                "neutralised ('=)" if "\"'=HYPERLINK" in csv else ("as is" if "\"=HYPERLINK" in csv else "absent")))


def dns_rebinding():
    """An upload from a page of evil.example whose name now points at this server (0.0.0.0)."""
    kind, body = multipart([("e.csv", (HEADER + row("r", 5)).encode())])
    req = urllib.request.Request(URL + "/upload", data=body, method="POST", headers={
        "Content-Type": kind, "Accept": "application/json", "Host": "evil.example:%d" % PORT,
        "Origin": "http://evil.example:%d" % PORT})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return "upload from the rebound name: %d" % r.status
    except urllib.error.HTTPError as e:
        return "upload from the rebound name: %d" % e.code


def measured(name, binary, logs, attack, results, extra=(), host="127.0.0.1", before=None):
    proc, why = start(binary, logs, extra, host)
    if not proc:
        results[name] = {"error": why[-300:]}
        print("%s: did not start: %s" % (name, why[-300:]), flush=True)
        return
    if before:
        before()
    base = rss_kb(proc.pid)[0]
    w = Watch(proc.pid)
    what = attack()
    time.sleep(0.5)
    results[name] = dict(w.finish(), result=what, rss_before_mb=round(base / 1024, 1))
    print("%s: %s" % (name, results[name]), flush=True)
    stop(proc)


def results_table_1m():
    """A results table of a million rows beside the logs: the server's start and its memory."""
    d = tempfile.mkdtemp(prefix="attack-results-")
    with open(os.path.join(d, "emissions.csv"), "w") as f:
        f.write(HEADER + "".join(row("r%d" % i, 10 + i) for i in range(3)))
    with open(os.path.join(d, "results.csv"), "w") as f:
        f.write("model,co2_kg,accuracy,loss\n")
        f.write("".join("m%d,%g,%g,%g\n" % (i, i * 1e-7 + 0.5, (i % 1000) / 1000, 1 - (i % 1000) / 1000)
                        for i in range(1000000)))
    size = os.path.getsize(os.path.join(d, "results.csv"))
    return d, size


def mlflow_db_1g():
    """An MLflow database of over 1 GiB beside the logs: 100,001 runs (one over what is read),
    4 million final metrics, and 900 MB of artifacts' padding, as a long-lived server's grows."""
    import sqlite3
    d = tempfile.mkdtemp(prefix="attack-mlflow-")
    with open(os.path.join(d, "emissions.csv"), "w") as f:
        f.write(HEADER + "".join(row("r%d" % i, 10 + i) for i in range(3)))
    db = sqlite3.connect(os.path.join(d, "mlflow.db"))
    with open(os.path.join(ROOT, "core/tests/fixtures/mlflow_schema.sql")) as schema:
        db.executescript(schema.read())
    db.execute("CREATE TABLE padding (b BLOB)")
    db.executemany("INSERT INTO runs VALUES (?, ?, 'active', 1, ?)",
                   (("%032x" % i, "r%d" % i, i) for i in range(100001)))
    db.executemany("INSERT INTO latest_metrics VALUES (?, ?, 0, 0, 0, ?)",
                   (("m%d" % (i % 40), (i % 1000) / 1000, "%032x" % (i // 40)) for i in range(4000000)))
    db.executemany("INSERT INTO tags VALUES ('codecarbon.run_id', ?, ?)", (("r%d" % i, "%032x" % i) for i in range(3)))
    db.executemany("INSERT INTO padding VALUES (zeroblob(1048576))", (() for _ in range(900)))
    db.commit()
    db.close()
    return d, os.path.getsize(os.path.join(d, "mlflow.db"))


def wandb_corrupt():
    """A W&B run file of about 100 MB (200,000 history records), every tenth 32 KiB block
    damaged, and the final summary last."""
    import zlib

    def varint(n):
        out = b""
        while True:
            b = n & 0x7F
            n >>= 7
            if n:
                out += bytes([b | 0x80])
            else:
                return out + bytes([b])

    def field(num, payload):
        return varint(num << 3 | 2) + varint(len(payload)) + payload

    def record(kind, items):
        body = b"".join(field(1, field(1, k.encode()) + field(16, v.encode())) for k, v in items)
        return field(kind, body)

    d = tempfile.mkdtemp(prefix="attack-wandb-")
    with open(os.path.join(d, "emissions.csv"), "w") as f:
        f.write(HEADER + row("r0", 10))
    run_dir = os.path.join(d, "wandb", "offline-run-20261205_000000-abc123")
    os.makedirs(run_dir)
    out = bytearray(b":W&B\xe1\xbe\x00")
    BLOCK = 32768
    records = [record(2, [("accuracy", "%g" % (i / 200000)), ("loss", "%g" % (1 - i / 200000))] +
                      [("extra_%d" % k, "%d" % i) for k in range(10)]) for i in range(200000)]
    records.append(record(3, [("accuracy", "0.97"), ("codecarbon_run_id", '"r0"')]))
    for r in records:
        first = True
        while True:
            left = BLOCK - len(out) % BLOCK
            if left < 7:
                out += b"\0" * left
                continue
            take = min(len(r), left - 7)
            last = take == len(r)
            kind = (1 if last else 2) if first else (4 if last else 3)
            piece = r[:take]
            out += (zlib.crc32(bytes([kind]) + piece) & 0xFFFFFFFF).to_bytes(4, "little")
            out += take.to_bytes(2, "little") + bytes([kind]) + piece
            r = r[take:]
            first = False
            if last:
                break
    blocks = len(out) // BLOCK
    for b in range(5, blocks - 1, 10):
        out[b * BLOCK + 1000] ^= 0xFF
    with open(os.path.join(run_dir, "run-abc123.wandb"), "wb") as f:
        f.write(out)
    return d, len(out)


def store_start(binary, name, make, path, results):
    d, size = make()
    t0 = time.monotonic()
    proc, why = start(binary, d)
    took = time.monotonic() - t0
    if proc:
        files = json.loads(urllib.request.urlopen(URL + "/api/v1/files?limit=100", timeout=60).read())
        f = next((f for f in files if f["path"] == path), {})
        peak = rss_kb(proc.pid)[1]
        health = urllib.request.urlopen(URL + "/healthz", timeout=10).status
        results[name] = {"bytes": size, "start_s": round(took, 2), "peak_rss_mb": round(peak / 1024, 1),
                         "join": f.get("join"), "problems": [p["reason"] for p in f.get("problems", [])][:2],
                         "healthz": health}
        print("%s (%d MB): answering after %.2f s, peak %.1f MB; %s; %s" % (
            name, size >> 20, took, peak / 1024, f.get("join"), results[name]["problems"]), flush=True)
        stop(proc)
    else:
        results[name] = {"error": why[-300:]}
        print("%s: did not start: %s" % (name, why[-300:]), flush=True)
    shutil.rmtree(d, ignore_errors=True)


def main():
    global SITE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/carbon-dash"))
    ap.add_argument("--site", default=SITE)
    ap.add_argument("--only", default="", help="comma-separated attack names (default: all)")
    a = ap.parse_args()
    SITE = a.site
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
    only = set(x for x in a.only.split(",") if x)
    results = {}
    want = lambda name: not only or name in only
    if want("hostile-folder"):
        logs = logs_folder(hostile=True)
        proc, why = start(a.bin, logs)
        first = next((l for l in why.splitlines() if l.strip()), "")
        results["hostile folder"] = {"starts": proc is not None, "why_not": first[:200]}
        print("hostile folder (dangling link, link to /dev/zero, FIFO, 1 GiB file): %s" % (
            "starts" if proc else "does not start: " + first[:200]), flush=True)
        if proc:
            stop(proc)
        shutil.rmtree(logs, ignore_errors=True)
    if want("day-series"):
        logs = logs_folder(odd_dates=True)
        measured("day series 1600-2100", a.bin, logs, day_series, results)
        shutil.rmtree(logs, ignore_errors=True)
    plain = [("wide upload (4 MB)", "wide-upload", wide_upload), ("1,000 files named a.csv", "many-names", many_names),
             ("2,000 event streams", "streams", stream_flood),
             ("4,200 never-reading clients (30 pipelined /map each, 20 s)", "never-reading", never_reading),
             ("4,200 slow-header clients (20 s)", "slow-headers", slow_headers),
             ("64 uploads from one address", "upload-slots", upload_slots),
             ("security headers", "headers", security_headers)]
    for name, key, attack in plain:
        if want(key):
            logs = logs_folder()
            measured(name, a.bin, logs, attack, results)
            shutil.rmtree(logs, ignore_errors=True)
    if want("results-1m"):
        d, size = results_table_1m()
        t0 = time.monotonic()
        proc, why = start(a.bin, d)
        took = time.monotonic() - t0
        if proc:
            files = json.loads(urllib.request.urlopen(URL + "/api/v1/files?limit=100", timeout=60).read())
            note = next((f.get("join") for f in files if f["path"] == "results.csv"), None)
            peak = rss_kb(proc.pid)[1]
            results["results table, 1,000,000 rows"] = {"bytes": size, "start_s": round(took, 2),
                                                       "peak_rss_mb": round(peak / 1024, 1), "join": note}
            print("results table, 1,000,000 rows (%d MB): answering after %.2f s, peak %.1f MB; %s" % (
                size >> 20, took, peak / 1024, note), flush=True)
            stop(proc)
        shutil.rmtree(d, ignore_errors=True)
    if want("mlflow-1g"):
        store_start(a.bin, "mlflow.db over 1 GiB", mlflow_db_1g, "mlflow.db", results)
    if want("wandb-corrupt"):
        store_start(a.bin, "W&B run file with damaged blocks", wandb_corrupt,
                    "wandb/offline-run-20261205_000000-abc123/run-abc123.wandb", results)
    if want("tracker"):
        d = tempfile.mkdtemp(prefix="attack-db-")
        db = os.path.join(d, "store.db")
        setup = {}
        measured("hostile tracker records", a.bin, None, lambda: tracker_records(*setup["v"]), results,
                 extra=["--collect", "--collect-rate", "0", "--db", db],
                 before=lambda: setup.update(v=collect_setup(a.bin, db)))
        shutil.rmtree(d, ignore_errors=True)
    if want("dns-rebinding"):
        logs = logs_folder()
        measured("DNS rebinding on 0.0.0.0 without --allow-host", a.bin, logs, dns_rebinding, results, host="0.0.0.0")
        shutil.rmtree(logs, ignore_errors=True)
    print(json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
