#!/usr/bin/env python3
"""Writes data/world/countries-110m.geojson: Natural Earth admin-0 countries (public domain) at
1:110m, from the npm package world-atlas (ISC), TopoJSON decoded to GeoJSON with ISO3 codes.

Usage: python3 data/build_map.py [path/to/countries-110m.json]
Without a path it runs `npm pack world-atlas@2.0.2` (the npm registry) into a temporary folder.
Needs pycountry (ISO 3166 numeric → alpha-3).
"""
import json
import os
import subprocess
import sys
import tarfile
import tempfile

import pycountry

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "world", "countries-110m.geojson")


def topology_path():
    if len(sys.argv) > 1:
        return sys.argv[1]
    tmp = tempfile.mkdtemp()
    name = subprocess.check_output(["npm", "pack", "world-atlas@2.0.2", "--silent"], cwd=tmp, text=True).strip()
    with tarfile.open(os.path.join(tmp, name)) as t:
        t.extract("package/countries-110m.json", tmp)
    return os.path.join(tmp, "package", "countries-110m.json")


def decode(topo):
    sx, sy = topo["transform"]["scale"]
    tx, ty = topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        pts = []
        for dx, dy in arc:
            x += dx
            y += dy
            pts.append([round(x * sx + tx, 3), round(y * sy + ty, 3)])
        arcs.append(pts)

    def ring(indices):
        out = []
        for i in indices:
            pts = arcs[i] if i >= 0 else list(reversed(arcs[~i]))
            out.extend(pts if not out else pts[1:])
        return out

    features = []
    for g in topo["objects"]["countries"]["geometries"]:
        if g["type"] == "Polygon":
            coords = [ring(r) for r in g["arcs"]]
        elif g["type"] == "MultiPolygon":
            coords = [[ring(r) for r in poly] for poly in g["arcs"]]
        else:
            continue
        numeric = g.get("id")
        country = pycountry.countries.get(numeric=numeric) if numeric else None
        features.append({
            "type": "Feature",
            "properties": {"name": g["properties"]["name"], "iso3": country.alpha_3 if country else ""},
            "geometry": {"type": g["type"], "coordinates": coords},
        })
    return {"type": "FeatureCollection", "features": features}


def main():
    with open(topology_path(), encoding="utf-8") as f:
        fc = decode(json.load(f))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(fc, f, separators=(",", ":"))
    print(f"{len(fc['features'])} countries written to {OUT}")


if __name__ == "__main__":
    main()
