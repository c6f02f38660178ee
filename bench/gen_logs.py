#!/usr/bin/env python3
"""Seeded generator of CodeCarbon logs for the scale benchmark.

    python3 bench/gen_logs.py --rows 1000000 --out /tmp/logs-1m [--seed 1]

Writes about --rows checkpoint rows as CodeCarbon would: `<team>/<project>/<experiment>/<n>/emissions.csv`
files of 1-4 runs each, 10-40 cumulative checkpoints per run, every header generation CodeCarbon has
written (v1 12 columns to v3.2 38 columns; v3.2 and v2.7 most often), a few task files and `.bak`
rotations, teams, projects, countries, regions and cloud regions. The same seed and size always give
the same files. Prints one JSON line: files, rows, runs, bytes.
"""
import argparse
import json
import os
import random

BASE = ["timestamp", "project_name", "run_id", "experiment_id", "duration", "emissions", "emissions_rate",
        "cpu_power", "gpu_power", "ram_power", "cpu_energy", "gpu_energy", "ram_energy", "energy_consumed",
        "water_consumed", "country_name", "country_iso_code", "region", "cloud_provider", "cloud_region", "os",
        "python_version", "codecarbon_version", "cpu_count", "cpu_model", "gpu_count", "gpu_model", "longitude",
        "latitude", "ram_total_size", "tracking_mode", "cpu_utilization_percent", "gpu_utilization_percent",
        "ram_utilization_percent", "ram_used_gb", "on_cloud", "pue", "wue"]


def without(*names):
    return [c for c in BASE if c not in names]


UTIL = ("cpu_utilization_percent", "gpu_utilization_percent", "ram_utilization_percent", "ram_used_gb")
# (label, columns, codecarbon_version, weight)
GENERATIONS = [
    ("v1", ["timestamp", "experiment_id", "project_name", "duration", "emissions", "energy_consumed",
            "country_name", "country_iso_code", "region", "on_cloud", "cloud_provider", "cloud_region"], None, 1),
    ("v2.0", without("experiment_id", "water_consumed", "codecarbon_version", "pue", "wue", *UTIL), None, 1),
    ("v2.2", without("experiment_id", "water_consumed", "pue", "wue", *UTIL), "2.2.1", 1),
    ("v2.2.3", without("experiment_id", "water_consumed", "wue", *UTIL), "2.3.4", 2),
    ("v2.7", without("water_consumed", "wue", *UTIL), "2.8.3", 30),
    ("v3.0.8", without(*UTIL), "3.0.8", 5),
    ("v3.2", BASE, "3.2.1", 60),
]
PLACES = [  # country, iso, region, provider, cloud region, lon, lat
    ("France", "FRA", "ile-de-france", "", "", 2.35, 48.85),
    ("United States", "USA", "virginia", "aws", "us-east-1", -77.4, 39.0),
    ("United States", "USA", "oregon", "gcp", "us-west1", -121.2, 45.6),
    ("Norway", "NOR", "", "", "", 10.7, 59.9),
    ("Germany", "DEU", "hesse", "azure", "germanywestcentral", 8.7, 50.1),
    ("India", "IND", "", "", "", 77.2, 28.6),
    ("Canada", "CAN", "quebec", "", "", -73.6, 45.5),
    ("Brazil", "BRA", "", "gcp", "southamerica-east1", -46.6, -23.5),
]
CPUS = ["AMD EPYC 7B13", "Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", "Apple M2"]
GPUS = ["8 x NVIDIA A100-SXM4-40GB", "1 x NVIDIA GeForce RTX 3090", ""]


def run_rows(rng, cols, version, project, experiment, place, start, n, task_file):
    """The rows of one run: cumulative checkpoints (or one delta per task)."""
    run_id = "%08x-%04x-4%03x-a%03x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12),
                                               rng.getrandbits(12), rng.getrandbits(48))
    country, iso, region, provider, cloud_region, lon, lat = place
    cpu_w, gpu_w, ram_w = rng.uniform(20, 120), rng.choice([0.0, rng.uniform(50, 2400)]), rng.uniform(5, 40)
    intensity = rng.uniform(0.02, 0.7)  # kg/kWh
    step = rng.choice([15, 60, 300, 900])
    rows = []
    for i in range(1, n + 1):
        d = step * (1 if task_file else i)
        ce, ge, re_ = cpu_w * d / 3.6e6, gpu_w * d / 3.6e6, ram_w * d / 3.6e6
        e = ce + ge + re_
        t = start + step * i
        v = {
            "timestamp": "%04d-%02d-%02dT%02d:%02d:%02d" % time_parts(t), "project_name": project,
            "run_id": run_id, "experiment_id": experiment if "run_id" in cols else run_id, "duration": d,
            "emissions": e * intensity, "emissions_rate": e * intensity / d, "cpu_power": cpu_w, "gpu_power": gpu_w,
            "ram_power": ram_w, "cpu_energy": ce, "gpu_energy": ge, "ram_energy": re_, "energy_consumed": e,
            "water_consumed": 0.0, "country_name": country, "country_iso_code": iso, "region": region,
            "cloud_provider": provider, "cloud_region": cloud_region, "os": "Linux-5.15.0-x86_64-with-glibc2.35",
            "python_version": "3.10.12", "codecarbon_version": version, "cpu_count": 32,
            "cpu_model": CPUS[sum(project.encode()) % 3], "gpu_count": 8 if gpu_w > 0 else "",
            "gpu_model": GPUS[sum(project.encode()) % 3] if gpu_w > 0 else "", "longitude": lon, "latitude": lat,
            "ram_total_size": 251.5, "tracking_mode": "machine", "cpu_utilization_percent": rng.uniform(5, 100),
            "gpu_utilization_percent": rng.uniform(0, 100), "ram_utilization_percent": rng.uniform(5, 90),
            "ram_used_gb": rng.uniform(4, 200), "on_cloud": "Y" if provider else "N", "pue": 1.0, "wue": 0.0,
        }
        row = [fmt(v[c]) for c in cols]
        if task_file:
            row = ["task_%d" % i] + row
        rows.append(",".join(row))
    return rows


def time_parts(t):
    days, s = divmod(int(t), 86400)
    # Days since 2022-01-01, in 30-day months of a 360-day year: simple and always valid.
    y, rest = divmod(days, 336)
    m, d = divmod(rest, 28)
    return 2022 + y, m + 1, d + 1, s // 3600, s % 3600 // 60, s % 60


def fmt(x):
    if isinstance(x, float):
        return repr(x)
    return str(x) if x is not None else ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    weights = [g[3] for g in GENERATIONS]
    teams = ["vision", "nlp", "speech", "robotics", "infra", "research"]
    files = rows = runs = size = 0
    start = 0
    while rows < a.rows:
        team = rng.choice(teams)
        project = "%s-p%d" % (team, rng.randrange(12))
        experiment = "exp-%d" % rng.randrange(40)
        label, cols, version, _ = rng.choices(GENERATIONS, weights)[0]
        task_file = rng.random() < 0.005
        place = rng.choice(PLACES)
        header = (["task_name"] if task_file else []) + cols
        lines = [",".join(header)]
        for _ in range(rng.randint(1, 4)):
            n = rng.randint(10, 40)
            start += rng.randrange(600, 7200)
            lines += run_rows(rng, cols, version, project, experiment, place, start, n, task_file)
            runs += 1
        name = "emissions.csv" if rng.random() > 0.02 else "emissions.csv_%d.bak" % rng.randint(1, 3)
        folder = os.path.join(a.out, team, project, experiment, "%06d" % files)
        os.makedirs(folder, exist_ok=True)
        text = "\n".join(lines) + "\n"
        with open(os.path.join(folder, name), "w") as f:
            f.write(text)
        files += 1
        rows += len(lines) - 1
        size += len(text)
    print(json.dumps({"files": files, "rows": rows, "runs": runs, "bytes": size, "seed": a.seed}))


if __name__ == "__main__":
    main()
