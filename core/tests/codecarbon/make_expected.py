#!/usr/bin/env python3
"""Writes expected_3_3_2.csv: the grid intensity CodeCarbon 3.3.2 itself uses for each location.

Run in a virtual environment with `pip install codecarbon==3.3.2`, from the repository root:
    python core/tests/codecarbon/make_expected.py ../shared/fixtures/codecarbon-real
Locations are every distinct (cloud provider, cloud region, country ISO code, country name,
region) of the CSV files under the given folders, plus the demo logs and a few hand cases. The
intensity is CodeCarbon's emissions for 1 kWh, in g/kWh, through its own lookup (no Electricity
Maps token): cloud region, then regional data, then country, then the world average.
"""
import csv
import glob
import os
import sys

from codecarbon.core.emissions import Emissions
from codecarbon.core.units import Energy
from codecarbon.external.geography import CloudMetadata, GeoMetadata
from codecarbon.input import DataSource

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "expected_3_3_2.csv")
FIELDS = ["cloud_provider", "cloud_region", "country_iso_code", "country_name", "region"]
HAND = [
    ("aws", "us-east-1", "USA", "United States", "virginia"),
    ("azure", "westeurope", "NLD", "Netherlands", ""),
    ("gcp", "europe-west9", "FRA", "France", ""),
    ("", "", "CAN", "Canada", "quebec"),
    ("", "", "SWE", "Sweden", "SE1"),
    ("", "", "CHN", "China", "Beijing Municipality"),
    ("", "", "XXX", "Nowhere", ""),
]


def value(v):
    v = (v or "").strip()
    return None if v == "" or v.lower() in ("none", "nan", "null") else v


def locations(folders):
    seen = set(HAND)
    for folder in folders:
        for path in glob.glob(os.path.join(folder, "**", "*"), recursive=True):
            if not os.path.isfile(path) or ".csv" not in os.path.basename(path).lower():
                continue
            with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
                rows = list(csv.reader(f))
            if not rows:
                continue
            header = [h.strip().lower() for h in rows[0]]
            for row in rows[1:]:
                if len(row) != len(header):
                    continue
                rec = dict(zip(header, row))
                seen.add(tuple(value(rec.get(k)) or "" for k in FIELDS))
    return sorted(seen)


def intensity(em, loc):
    provider, cloud_region, iso, name, region = (x or None for x in loc)
    geo = GeoMetadata(country_iso_code=iso, country_name=name, region=region)
    kwh = Energy.from_energy(kWh=1)
    if provider and cloud_region:
        kg = em.get_cloud_emissions(kwh, CloudMetadata(provider=provider, region=cloud_region), geo)
    elif iso:
        kg = em.get_private_infra_emissions(kwh, geo)
    else:
        return None
    return kg * 1000


def main():
    folders = sys.argv[1:] + [os.path.join(os.path.dirname(OUT), "..", "..", "..", "data", "demo")]
    em = Emissions(DataSource())
    with open(OUT, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(FIELDS + ["g_per_kwh"])
        for loc in locations(folders):
            g = intensity(em, loc)
            if g is not None:
                w.writerow(list(loc) + [repr(g)])
    print("written", OUT)


if __name__ == "__main__":
    main()
