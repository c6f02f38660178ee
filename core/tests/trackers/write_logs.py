"""Writes the logs of carbontracker, eco2AI, Zeus and experiment-impact-tracker into a folder
with the tools themselves, and prints, as JSON, what each tool's own parser or API makes of them:
the reference the reader's figures are compared with.

Usage: python write_logs.py OUT_DIR
"""
import datetime
import json
import os
import pickle
import sys
import time
import warnings

warnings.filterwarnings("ignore")
out = sys.argv[1]
ref = {"versions": {}}


def busy(seconds):
    end = time.time() + seconds
    x = 0
    while time.time() < end:
        x += 1


# carbontracker: a run of three epochs, measured, with its prediction after the first.
import carbontracker
from carbontracker import parser
from carbontracker.tracker import CarbonTracker
from importlib.metadata import version

ct_dir = os.path.join(out, "ct")
tracker = CarbonTracker(epochs=3, epochs_before_pred=1, monitor_epochs=3, log_dir=ct_dir, verbose=0, update_interval=0.2)
for _ in range(3):
    tracker.epoch_start()
    busy(0.5)
    tracker.epoch_end()
tracker.stop()
ref["versions"]["carbontracker"] = version("carbontracker")
ref["carbontracker"] = [
    {
        "output": os.path.basename(log["output_filename"]),
        "energy_kwh": log["actual"]["energy (kWh)"],
        "co2_g": log["actual"]["co2eq (g)"],
        "predicted_kwh": log["pred"]["energy (kWh)"] if log["pred"] else None,
        "epochs": len(log["components"]["cpu"]["epoch_durations (s)"]),
    }
    for log in parser.parse_all_logs(ct_dir)
]

# eco2AI: one session, and one run of two epochs (one row an epoch, the same id).
import eco2ai
import pandas as pd

eco_file = os.path.join(out, "eco", "emission.csv")
os.makedirs(os.path.dirname(eco_file), exist_ok=True)
t = eco2ai.Tracker(project_name="bert", experiment_description="session", file_name=eco_file, measure_period=0.3, alpha_2_code="FR")
t.start()
busy(1.0)
try:
    t.stop()
except Exception:
    pass  # eco2AI 0.3.12 raises from pandas after writing its row
t = eco2ai.Tracker(project_name="bert", experiment_description="epochs", file_name=eco_file, measure_period=0.3, alpha_2_code="DE")
t.start_training(start_epoch=1)
for epoch in (1, 2):
    busy(0.7)
    t.new_epoch({"loss": 0.5 / epoch})
try:
    t.stop_training()
except Exception:
    pass
ref["versions"]["eco2AI"] = version("eco2ai")
frame = pd.read_csv(eco_file)
sums = frame.groupby("id")[["power_consumption(kWh)", "CO2_emissions(kg)"]].sum()
ref["eco2AI"] = [
    {"id": i, "energy_kwh": float(row["power_consumption(kWh)"]), "co2_kg": float(row["CO2_emissions(kg)"])}
    for i, row in sums.iterrows()
]
ref["eco2AI_summary_kwh"] = float(eco2ai.summary(eco_file).iloc[-1]["total power_consumption(kWh)"])

# Zeus: a training window around two epoch windows (no GPU here: durations only).
from zeus.monitor import ZeusMonitor

zeus_file = os.path.join(out, "zeus", "windows.csv")
monitor = ZeusMonitor(gpu_indices=[], cpu_indices=[], log_file=zeus_file)
monitor.begin_window("training")
measured = []
for epoch in (1, 2):
    monitor.begin_window(f"epoch_{epoch}")
    busy(0.2)
    measured.append(monitor.end_window(f"epoch_{epoch}"))
whole = monitor.end_window("training")
monitor.log_file.close()
ref["versions"]["Zeus"] = version("zeus")
ref["Zeus"] = {"seconds": whole.time, "energy_j": whole.total_energy, "windows": 3}

# experiment-impact-tracker: its data.json (one JSON line a sample, as its writer dumps them)
# and info.pkl, read back by its own gather_additional_info.
from experiment_impact_tracker.utils import gather_additional_info

eit_dir = os.path.join(out, "exp-resnet")
os.makedirs(os.path.join(eit_dir, "impacttracker"), exist_ok=True)
start = 1_790_000_000.0
samples = []
for i, (rapl, nvidia) in enumerate([(40.0, 250.0), (42.5, 260.0), (41.0, 255.5), (39.0, 120.0)]):
    samples.append({
        "timestamp": start + 5.0 * (i + 1),
        "rapl_power_draw_absolute": rapl * 2,
        "rapl_estimated_attributable_power_draw": rapl,
        "nvidia_draw_absolute": nvidia * 1.5,
        "nvidia_estimated_attributable_power_draw": nvidia,
        "average_gpu_estimated_utilization_absolute": 0.8,
        "cpu_time_seconds": {"4242": {"user": 3.0 * (i + 1), "system": 0.5}},
        "process_ids": [4242],
    })
with open(os.path.join(eit_dir, "impacttracker", "data.json"), "w") as f:
    for s in samples:
        f.write(json.dumps(s) + "\n")
info = {
    "experiment_start": datetime.datetime.fromtimestamp(samples[0]["timestamp"]),
    "experiment_end": datetime.datetime.fromtimestamp(samples[-1]["timestamp"]),
    "gpu_info": [{"name": "NVIDIA A100"}],
    "region": {"id": "FR"},
    "region_carbon_intensity_estimate": {"carbonIntensity": 56.0},
}
with open(os.path.join(eit_dir, "impacttracker", "info.pkl"), "wb") as f:
    pickle.dump(info, f)
figures = gather_additional_info(info, eit_dir)
ref["versions"]["experiment-impact-tracker"] = version("experiment-impact-tracker")
ref["experiment-impact-tracker"] = {"energy_kwh": float(figures["total_power"]), "kw_hr_gpu": float(figures["kw_hr_gpu"])}

print(json.dumps(ref))
