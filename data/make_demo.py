#!/usr/bin/env python3
"""Writes the demo CodeCarbon logs under data/demo/ (deterministic: same output every run).

Realistic on purpose: several projects and experiments, three countries, a GCP region,
checkpointed runs, a task file, an older-layout .bak rotation and one row of the kind
CodeCarbon 3.2.9 writes when it drops empty fields (so the Files page has something to say).
Run from the repository root: python3 data/make_demo.py
"""
import csv
import datetime as dt
import os
import random
import uuid

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo")
rng = random.Random(42)

V32 = ("timestamp,project_name,run_id,experiment_id,duration,emissions,emissions_rate,cpu_power,gpu_power,ram_power,"
       "cpu_energy,gpu_energy,ram_energy,energy_consumed,water_consumed,country_name,country_iso_code,region,"
       "cloud_provider,cloud_region,os,python_version,codecarbon_version,cpu_count,cpu_model,gpu_count,gpu_model,"
       "longitude,latitude,ram_total_size,tracking_mode,cpu_utilization_percent,gpu_utilization_percent,"
       "ram_utilization_percent,ram_used_gb,on_cloud,pue,wue").split(",")
V27 = ("timestamp,project_name,run_id,experiment_id,duration,emissions,emissions_rate,cpu_power,gpu_power,ram_power,"
       "cpu_energy,gpu_energy,ram_energy,energy_consumed,country_name,country_iso_code,region,cloud_provider,"
       "cloud_region,os,python_version,codecarbon_version,cpu_count,cpu_model,gpu_count,gpu_model,longitude,"
       "latitude,ram_total_size,tracking_mode,on_cloud,pue").split(",")
V223 = [c for c in V27 if c != "experiment_id"]
TASK = ["task_name"] + [c for c in V223 if c != "pue"]


def uid():
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def rows_for_run(start, minutes, every, site, project, experiment, version, gpus, gpu_w, extra=None):
    run_id = uid()
    out = []
    elapsed = 0.0
    e_cpu = e_gpu = e_ram = 0.0
    total = minutes * 60.0
    while total - elapsed > 30:
        step = min(every * 60.0, total - elapsed) + rng.uniform(-2, 2)
        elapsed += step
        cpu_w = site["cpu_w"] * rng.uniform(0.85, 1.1)
        g_w = gpu_w * gpus * rng.uniform(0.7, 1.05)
        ram_w = site["ram_w"]
        e_cpu += cpu_w * step / 3.6e6
        e_gpu += g_w * step / 3.6e6
        e_ram += ram_w * step / 3.6e6
        energy = e_cpu + e_gpu + e_ram
        co2 = energy * site["kg_per_kwh"]
        ts = start + dt.timedelta(seconds=elapsed)
        row = {
            "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S"),
            "project_name": project, "run_id": run_id, "experiment_id": experiment,
            "duration": f"{elapsed:.6f}", "emissions": repr(co2), "emissions_rate": repr(co2 / elapsed),
            "cpu_power": f"{cpu_w:.4f}", "gpu_power": f"{g_w:.4f}", "ram_power": f"{ram_w:.1f}",
            "cpu_energy": repr(e_cpu), "gpu_energy": repr(e_gpu), "ram_energy": repr(e_ram),
            "energy_consumed": repr(energy), "water_consumed": "0.0",
            "country_name": site["country"], "country_iso_code": site["iso"], "region": site["region"],
            "cloud_provider": site.get("provider", ""), "cloud_region": site.get("cloud_region", ""),
            "os": site["os"], "python_version": "3.11.9", "codecarbon_version": version,
            "cpu_count": str(site["cpus"]), "cpu_model": site["cpu"], "gpu_count": str(gpus),
            "gpu_model": f"{gpus} x {site['gpu']}", "longitude": site["lon"], "latitude": site["lat"],
            "ram_total_size": "251.5", "tracking_mode": "machine",
            "cpu_utilization_percent": f"{rng.uniform(20, 60):.1f}", "gpu_utilization_percent": f"{rng.uniform(80, 99):.1f}",
            "ram_utilization_percent": f"{rng.uniform(30, 50):.1f}", "ram_used_gb": f"{rng.uniform(60, 110):.2f}",
            "on_cloud": "Y" if site.get("provider") else "N", "pue": "1.0", "wue": "0.0",
        }
        if extra:
            row.update(extra)
        out.append(row)
    return out


def write(path, header, rows, newline="\n"):
    full = os.path.join(OUT, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, extrasaction="ignore", lineterminator=newline)
        w.writeheader()
        w.writerows(rows)
    return full


PARIS = dict(country="France", iso="FRA", region="île-de-france", os="Linux-6.8.0-45-generic-x86_64-with-glibc2.39",
             cpus=64, cpu="AMD EPYC 7543 32-Core Processor", gpu="NVIDIA A100-SXM4-80GB", lon="2.3488", lat="48.8534",
             cpu_w=120.0, ram_w=94.3, kg_per_kwh=0.056)
IOWA = dict(country="USA", iso="USA", region="Iowa", provider="gcp", cloud_region="us-central1",
            os="Linux-6.1.100+-x86_64-with-glibc2.35", cpus=12, cpu="Intel(R) Xeon(R) CPU @ 2.20GHz",
            gpu="NVIDIA L4", lon="-95.8608", lat="41.2619", cpu_w=42.5, ram_w=31.5, kg_per_kwh=0.399)
OSLO = dict(country="Norway", iso="NOR", region="oslo", os="Linux-5.15.0-119-generic-x86_64-with-glibc2.35",
            cpus=32, cpu="Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", gpu="NVIDIA GeForce RTX 4090", lon="10.7461",
            lat="59.9127", cpu_w=102.5, ram_w=47.1, kg_per_kwh=0.026)

base = dt.datetime(2026, 9, 1, 9, 0, 0)

# Vision lab, Paris: two projects, several experiments, checkpoints every 15 minutes.
vision = []
for project, exps in [("resnet50-imagenet", 3), ("vit-small-cifar100", 2)]:
    for e in range(exps):
        exp = uid()
        for r in range(rng.randint(2, 4)):
            start = base + dt.timedelta(days=rng.randint(0, 80), hours=rng.randint(0, 10))
            vision += rows_for_run(start, rng.randint(40, 360), 15, PARIS, project, exp, "3.2.6",
                                   rng.choice([1, 2, 4]), 330.0)
vision.sort(key=lambda r: r["timestamp"])
write("vision-lab/emissions.csv", V32, vision)

# LLM fine-tuning on GCP us-central1, CodeCarbon 2.8.3 (32 columns), hourly checkpoints.
llm = []
exp = uid()
for r in range(5):
    start = base + dt.timedelta(days=20 + 9 * r, hours=2)
    llm += rows_for_run(start, rng.randint(120, 600), 60, IOWA, "llama-3-8b-lora", exp, "2.8.3", 1, 72.0)
llm.sort(key=lambda r: r["timestamp"])
write("llm-finetune/emissions.csv", V27, llm)
# An older rotation, written by CodeCarbon 2.5.0 (31 columns) before the upgrade.
old = []
for r in range(3):
    start = base - dt.timedelta(days=30 - 6 * r)
    old += rows_for_run(start, rng.randint(30, 90), 30, IOWA, "llama-3-8b-lora", "", "2.5.0", 1, 72.0)
write("llm-finetune/emissions.csv_1.bak", V223, old)

# Speech, Oslo: 3.2 layout plus one short row as CodeCarbon 3.2.9 appends it (empty fields dropped).
speech = []
exp = uid()
for r in range(4):
    start = base + dt.timedelta(days=35 + 7 * r, hours=13)
    speech += rows_for_run(start, rng.randint(20, 180), 10, OSLO, "whisper-distill", exp, "3.2.6", 2, 380.0)
speech.sort(key=lambda r: r["timestamp"])
path = write("speech/emissions.csv", V32, speech)
short = dict(speech[-1])
short_fields = [short[c] for c in V32 if short.get(c, "") not in ("", "0.0")]
with open(path, "a", newline="") as f:
    csv.writer(f, lineterminator="\n").writerow(short_fields)

# Speech tasks: one row per task (start_task/stop_task), each holding that task's own energy.
tasks = []
run_id = uid()
t = base + dt.timedelta(days=70, hours=8)
for name, minutes in [("load_dataset", 3), ("train", 95), ("evaluate", 12)]:
    row = rows_for_run(t, minutes, minutes, OSLO, "whisper-distill", exp, "2.4.2", 2, 380.0)[-1]
    row.update(task_name=name, run_id=run_id)
    t += dt.timedelta(minutes=minutes)
    row["timestamp"] = t.strftime("%Y-%m-%dT%H:%M:%S")
    tasks.append(row)
write("speech/tasks_emissions.csv", TASK, tasks)
# A hyper-parameter sweep on GCP us-central1 (4 x L4): 30 trials of one experiment, with the
# validation metrics each trial logged beside the emissions (metrics.csv, long form, one row per
# epoch). Accuracy rises with the energy spent and flattens: the Pareto view's front and knee.
import json
import math

sweep = []
metrics = [["run_id", "name", "value", "step"]]
sweep_exp = uid()
for trial in range(30):
    start = base + dt.timedelta(days=50, hours=trial * 3)
    rows = rows_for_run(start, rng.randint(15, 420), 15, IOWA, "bert-sst2-sweep", sweep_exp, "3.2.6", 4, 72.0)
    sweep += rows
    kwh = float(rows[-1]["energy_consumed"])
    acc = 0.925 - 0.23 * math.exp(-kwh / 0.45) + rng.gauss(0, 0.006)
    for epoch in (1, 2, 3):
        a = acc - (3 - epoch) * 0.012
        metrics.append([rows[-1]["run_id"], "eval_accuracy", f"{a:.4f}", str(epoch * 500)])
        metrics.append([rows[-1]["run_id"], "eval_loss", f"{1.05 - a:.4f}", str(epoch * 500)])
sweep.sort(key=lambda r: r["timestamp"])
write("sweep/emissions.csv", V32, sweep)
with open(os.path.join(OUT, "sweep/metrics.csv"), "w", newline="") as f:
    csv.writer(f, lineterminator="\n").writerows(metrics)

# One more trial run by the Hugging Face Trainer in its own output folder: its metrics are the
# Trainer's files, which name no run (joined by the folder, a guess the dashboard flags).
hf = rows_for_run(base + dt.timedelta(days=55), 240, 15, IOWA, "bert-sst2-sweep", sweep_exp, "3.2.6", 4, 72.0)
write("sweep/hf-trainer/emissions.csv", V32, hf)
kwh = float(hf[-1]["energy_consumed"])
acc = round(0.925 - 0.23 * math.exp(-kwh / 0.45) - 0.004, 4)
state = {"global_step": 1500, "best_metric": acc, "log_history": [
    {"step": s, "epoch": s / 500, "eval_accuracy": round(acc - (1500 - s) / 500 * 0.012, 4),
     "eval_loss": round(1.05 - acc + (1500 - s) / 500 * 0.012, 4)} for s in (500, 1000, 1500)]}
with open(os.path.join(OUT, "sweep/hf-trainer/trainer_state.json"), "w") as f:
    json.dump(state, f, indent=2)
with open(os.path.join(OUT, "sweep/hf-trainer/all_results.json"), "w") as f:
    json.dump({"epoch": 3.0, "eval_accuracy": acc, "eval_loss": round(1.05 - acc, 4), "train_runtime": 14400.0}, f, indent=2)
print("demo logs written under", OUT)
