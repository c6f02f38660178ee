#!/usr/bin/env python3
"""What `carbon-dash track` itself costs: CPU time of the tracker around an idle command
(`sleep`), as a share of one core, at a 1 s interval (the goal: under 1 %).

    python3 bench/track_overhead.py [--bin target/release/carbon-dash] [--seconds 60] [--interval 1s]

The tracker's CPU time comes from the kernel's accounting of finished children (the tracker and
its `sleep`, which uses next to none); wall time from the clock.
"""
import argparse, os, resource, subprocess, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ap = argparse.ArgumentParser()
ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/carbon-dash"))
ap.add_argument("--seconds", type=float, default=60)
ap.add_argument("--interval", default="1s")
ap.add_argument("--tracking-mode", default="machine")
a = ap.parse_args()
out = tempfile.mkdtemp()
before = resource.getrusage(resource.RUSAGE_CHILDREN)
t0 = time.perf_counter()
subprocess.run([a.bin, "track", "--interval", a.interval, "--tracking-mode", a.tracking_mode, "--country", "FRA", "--output", out, "--",
                "sleep", str(a.seconds)], check=True, stderr=subprocess.DEVNULL)
wall = time.perf_counter() - t0
after = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
rows = len(open(os.path.join(out, "emissions.csv")).read().splitlines()) - 1
print(f"tracker CPU: {cpu:.3f} s over {wall:.1f} s = {100 * cpu / wall:.3f} % of one core "
      f"({a.tracking_mode} mode, interval {a.interval}, {rows} rows, max RSS {after.ru_maxrss / 1024:.1f} MB)")
