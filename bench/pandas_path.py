#!/usr/bin/env python3
"""CodeCarbon's own dashboard data path (carbonboard: codecarbon/viz/ in github.com/mlco2/codecarbon)
run over a whole folder of logs, for comparison with carbon-dash.

    PY=$(bench/pandas_venv.sh) && "$PY" bench/pandas_path.py LOGS_DIR

carbonboard reads one CSV with pandas and, for the project picked in its dropdown, builds the
project's table and summary. Here: every *.csv / *.csv.bak / *.csv_N.bak under LOGS_DIR is read
the same way, the frames are concatenated, and the summaries are computed for every project (as if
each were picked in turn) plus per-run and per-experiment tables. Prints one JSON line:
{"tool":"pandas","files":N,"rows":N,"runs":N,"seconds":S,"peak_rss_mb":M}
seconds: wall time from the first read to the end of the aggregations. Files pandas cannot read
at all (empty, undecodable) are skipped, counted on stderr and not in "files".
"""
import json
import os
import re
import resource
import sys
import time
import warnings

import pandas as pd

# The names carbon-dash reads (is_log_file, core/src/catalog.rs): *.csv, *.csv.bak, *.csv_N.bak.
LOG_NAME = re.compile(r".*\.csv(\.bak|_[0-9]+\.bak)?", re.IGNORECASE)
SUMMED = ["duration", "emissions", "energy_consumed"]


def find_files(root):
    found = []
    for folder, _, names in os.walk(root):
        found += [os.path.join(folder, n) for n in names if LOG_NAME.fullmatch(n)]
    return sorted(found)


def project_summary(records):
    # Data.get_project_summary (codecarbon/viz/data.py): last record = last run, totals are
    # Python sums over the project's records.
    last = records[-1]
    return {
        "last_run": {"timestamp": last["timestamp"], "duration": last["duration"],
                     "emissions": round(last["emissions"], 1),
                     "energy_consumed": round(last["energy_consumed"], 1)},
        "total": {c: sum(map(lambda r: r[c], records)) for c in SUMMED},
        **{c: last.get(c) for c in ("country_name", "country_iso_code", "region",
                                    "on_cloud", "cloud_provider", "cloud_region")},
    }


def main(root):
    paths = find_files(root)
    warnings.simplefilter("ignore")  # DtypeWarning etc. on stderr; stdout stays one JSON line
    start = time.perf_counter()

    # viz() (codecarbon/viz/carbonboard.py): df = pd.read_csv(filepath). Same call per file, plus
    # on_bad_lines="skip": rows with the wrong field count (interleaved appends, truncated lines)
    # are dropped instead of aborting the run (carbonboard's plain call would raise on them).
    frames, skipped = [], 0
    for path in paths:
        try:
            frames.append(pd.read_csv(path, on_bad_lines="skip"))
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError):
            skipped += 1
    if not frames:
        sys.exit(f"pandas_path: no readable log file under {root}")
    # Header generations differ (12 to 38 columns): concat aligns by column name, NaN elsewhere.
    df = pd.concat(frames, ignore_index=True, sort=False)
    # Tolerance carbonboard lacks: a stray text cell would make its Python sums raise TypeError.
    for c in SUMMED:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    for c in ("timestamp", "project_name", "run_id", "experiment_id"):
        if c not in df:
            df[c] = pd.NA
        df[c] = df[c].astype("string")  # numbers in some files, text in others

    # render_app / update_project_data (codecarbon/viz/carbonboard.py): net totals over all rows.
    net = {"energy_consumed": sum(df["energy_consumed"]), "emissions": sum(df["emissions"])}

    # Components.get_project_dropdown (codecarbon/viz/components.py): sorted unique project names.
    projects = sorted(df["project_name"].dropna().unique())

    # Per project, as update_project_data does on each dropdown choice:
    # Data.get_project_data (codecarbon/viz/data.py) = rows of the project sorted by timestamp,
    # turned into DataTable records (to_dict("records")); then Data.get_project_summary on them.
    # One groupby yields the same frames as carbonboard's df[df.project_name == name] mask per
    # project, without rescanning the whole frame for each project.
    summaries = {}
    for name, project_df in df.groupby("project_name", sort=True):
        records = project_df.sort_values(by="timestamp").to_dict("records")
        summaries[name] = project_summary(records)
        # get_emissions_unit (codecarbon/viz/units.py), used by the project's bar chart.
        summaries[name]["unit"] = ("g" if (project_df.emissions < 1).all()
                                   else "t" if (project_df.emissions > 1000).all() else "kg")
    assert len(summaries) == len(projects)

    # Per-experiment sums: carbonboard_on_api.py shows them via Data.get_data_from_api
    # (codecarbon/viz/data.py, the API's /experiments/{id}/detailed_sums); from CSV rows it is a
    # groupby. Per-run table likewise; a run is run_id, or experiment_id in 1.x logs (no run_id
    # column, experiment_id held the run's uuid).
    experiments = df.groupby(["project_name", "experiment_id"])[SUMMED].sum()
    df["run"] = df["run_id"].fillna(df["experiment_id"])
    runs = df.groupby("run").agg(project_name=("project_name", "first"), rows=("run", "size"),
                                 started=("timestamp", "min"), ended=("timestamp", "max"),
                                 **{c: (c, "sum") for c in SUMMED})

    seconds = time.perf_counter() - start
    if skipped:
        print(f"pandas_path: {skipped} unreadable file(s) skipped", file=sys.stderr)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps({"tool": "pandas", "files": len(frames), "rows": len(df), "runs": len(runs),
                      "seconds": round(seconds, 3), "peak_rss_mb": round(peak_mb, 1)}))
    return net, summaries, experiments


if __name__ == "__main__":
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        sys.exit("usage: pandas_path.py DIR")
    main(sys.argv[1])
