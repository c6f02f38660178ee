#!/usr/bin/env python3
"""Builds carbon-dash's embedded grid dataset (data/grid/*.csv) from public data.

Usage: python3 data/build_dataset.py [DATA_SOURCES_DIR]   (default: ../shared/data-sources)
Needs: Python 3.9+ and pycountry (pip install pycountry) for ISO 3166 codes.

Everything the app shows comes from the files written here, each value with its unit, source and
year. Two datasets:
  codecarbon  exactly CodeCarbon 3.3.2's figures, computed the way its lookup computes them
              (so the app can reproduce what today's CodeCarbon would say);
  latest      the newest figure per place: Ember (via co2.js) for countries, Google 2024 for its
              cloud regions, EPA eGRID2023 for US states, the 2023 MEE factors for Chinese
              provinces, the 2025 Nordic zone factors; other cloud regions use their location's grid.
Older CodeCarbon data (the 2016 US state file, the 2023 AWS/Azure region file) is kept as
`codecarbon-old` only to explain why a CSV's emissions differ from a recomputation.
"""
import csv
import json
import os
import sys

import pycountry

SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data-sources")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grid")
LBS_PER_MWH_TO_G_PER_KWH = 0.45359237

SOURCES = [
    # id, title, publisher, url, licence, year
    ("codecarbon-3.3.2", "CodeCarbon 3.3.2 data files (global_energy_mix, usa_emissions, canada_energy_mix, china_provincial_emissions, nordic_emissions, impact.csv)", "CodeCarbon (mlco2)", "https://github.com/mlco2/codecarbon/tree/v3.3.2/codecarbon/data", "MIT", 2025),
    ("owid-ember", "Carbon intensity of electricity (as packaged by CodeCarbon's global_energy_mix)", "Our World in Data, from Ember and the Energy Institute", "https://ourworldindata.org/grapher/carbon-intensity-electricity", "CC BY 4.0", 2023),
    ("egrid2023", "eGRID2023, state annual CO2e total output emission rate (STC2ERTA)", "US EPA", "https://www.epa.gov/egrid/download-data", "Public domain (US government)", 2023),
    ("egrid2016", "eGRID2016 state rates (CodeCarbon before 3.3)", "US EPA, via CodeCarbon", "https://www.epa.gov/egrid", "Public domain (US government)", 2016),
    ("cer-canada", "Provincial electricity generation mix (CodeCarbon canada_energy_mix), fossil shares × 995.7/816.7/743.8 g/kWh", "Canada Energy Regulator, via CodeCarbon", "https://www.cer-rec.gc.ca/en/data-analysis/energy-markets/provincial-territorial-energy-profiles/", "Open Government Licence – Canada", 2019),
    ("mee-china-2023", "Provincial grid emission factors 2023", "China Ministry of Ecology and Environment / National Bureau of Statistics, via CodeCarbon", "https://github.com/mlco2/codecarbon/blob/v3.3.2/codecarbon/data/private_infra/china_provincial_emissions.json", "MIT (CodeCarbon packaging)", 2023),
    ("nordic-2025", "Nordic bidding-zone emission factors (SE1–4, NO1–5, FI)", "ENTSO-E data, via CodeCarbon", "https://github.com/mlco2/codecarbon/blob/v3.3.2/codecarbon/data/private_infra/nordic_emissions.json", "MIT (CodeCarbon packaging)", 2025),
    ("google-2024", "Carbon free energy for Google Cloud regions, 2024 (grid carbon intensity and CFE %)", "Google Cloud", "https://github.com/GoogleCloudPlatform/region-carbon-info", "Apache-2.0", 2024),
    ("google-2023-cc", "Google Cloud region grid intensity as shipped in CodeCarbon 3.3.2 impact.csv", "Google Cloud, via CodeCarbon", "https://cloud.google.com/sustainability/region-carbon", "MIT (CodeCarbon packaging)", 2023),
    ("codecarbon-2023-cloud", "AWS and Azure region figures of CodeCarbon's older impact file", "CodeCarbon / mlco2 impact", "https://github.com/mlco2/impact", "MIT", 2023),
    ("ember-2024", "Yearly electricity data: grid carbon intensity per country (latest year)", "Ember, via The Green Web Foundation co2.js", "https://ember-energy.org/data/yearly-electricity-data/", "CC BY 4.0", 2024),
    ("iea-2019-world", "World average carbon intensity used by CodeCarbon (475 g/kWh)", "IEA Global Energy & CO2 Status Report 2019, via CodeCarbon", "https://www.iea.org/reports/global-energy-co2-status-report-2019/emissions", "IEA terms", 2019),
    ("cloud-regions", "Cloud region ids, cities and coordinates", "tal66/cloud-regions", "https://github.com/tal66/cloud-regions", "MIT", 2024),
    ("natural-earth", "Admin-0 countries 1:110m (via the world-atlas npm package, ISC)", "Natural Earth", "https://www.naturalearthdata.com/", "Public domain", 2019),
    ("iso3166", "ISO 3166 country codes", "Debian iso-codes, via pycountry", "https://salsa.debian.org/iso-codes-team/iso-codes", "LGPL-2.1 (codes are facts)", 2024),
    ("google-pue", "Google data centre fleet PUE (trailing twelve months)", "Google", "https://www.google.com/about/datacenters/efficiency/", "Google terms", 2023),
    ("aws-pue", "AWS global data centre PUE", "Amazon Web Services sustainability report", "https://sustainability.aboutamazon.com/products-services/aws-cloud", "Amazon terms", 2023),
    ("azure-pue", "Microsoft data centre fleet PUE", "Microsoft Datacenters sustainability", "https://datacenters.microsoft.com/sustainability/efficiency/", "Microsoft terms", 2023),
    ("eea-cars-2023", "CO2 emissions from new passenger cars, EU, 2023 provisional (WLTP, tailpipe)", "European Environment Agency", "https://www.eea.europa.eu/en/analysis/indicators/co2-performance-of-new-passenger", "CC BY 4.0", 2023),
    ("epa-equivalencies", "Greenhouse Gas Equivalencies Calculator: calculations and references", "US EPA", "https://www.epa.gov/energy/greenhouse-gases-equivalencies-calculator-calculations-and-references", "Public domain (US government)", 2024),
    ("uk-defra-2020", "UK Government GHG conversion factors 2020 (economy flight, per passenger-km), as used by Green Algorithms", "UK DESNZ/DEFRA, via Green Algorithms", "https://www.gov.uk/government/publications/greenhouse-gas-reporting-conversion-factors-2020", "Open Government Licence v3.0", 2020),
    ("carbonfootprint-flights", "Flight calculator (named return trips), as used by Green Algorithms", "carbonfootprint.com, via Green Algorithms", "https://calculator.carbonfootprint.com/calculator.aspx?tab=3", "Green Algorithms: CC BY 4.0", 2021),
    ("eurostat-households", "Final electricity consumption of EU households 2022 (about 3,600 kWh per household per year, 9.9 kWh/day)", "Eurostat / Odyssee-Mure", "https://www.odyssee-mure.eu/publications/efficiency-by-sector/households/electricity-consumption-dwelling.html", "CC BY 4.0", 2022),
]

# Where each cloud region is: ISO3 and sub-national unit (lower case, as CodeCarbon writes regions).
CLOUD_LOCATION = {
    "aws/af-south-1": ("ZAF", ""), "aws/ap-east-1": ("HKG", ""), "aws/ap-northeast-1": ("JPN", ""),
    "aws/ap-northeast-2": ("KOR", ""), "aws/ap-northeast-3": ("JPN", ""), "aws/ap-south-1": ("IND", ""),
    "aws/ap-south-2": ("IND", ""), "aws/ap-southeast-1": ("SGP", ""), "aws/ap-southeast-2": ("AUS", ""),
    "aws/ap-southeast-3": ("IDN", ""), "aws/ap-southeast-4": ("AUS", ""), "aws/ca-central-1": ("CAN", "quebec"),
    "aws/ca-west-1": ("CAN", "alberta"), "aws/eu-central-1": ("DEU", ""), "aws/eu-central-2": ("CHE", ""),
    "aws/eu-north-1": ("SWE", "SE3"), "aws/eu-south-1": ("ITA", ""), "aws/eu-south-2": ("ESP", ""),
    "aws/eu-west-1": ("IRL", ""), "aws/eu-west-2": ("GBR", ""), "aws/eu-west-3": ("FRA", ""),
    "aws/il-central-1": ("ISR", ""), "aws/me-central-1": ("ARE", ""), "aws/me-south-1": ("BHR", ""),
    "aws/sa-east-1": ("BRA", ""), "aws/us-east-1": ("USA", "virginia"), "aws/us-east-2": ("USA", "ohio"),
    "aws/us-west-1": ("USA", "california"), "aws/us-west-2": ("USA", "oregon"),
    "azure/southafricanorth": ("ZAF", ""), "azure/southafricawest": ("ZAF", ""), "azure/australiacentral": ("AUS", ""),
    "azure/australiacentral2": ("AUS", ""), "azure/australiaeast": ("AUS", ""), "azure/australiasoutheast": ("AUS", ""),
    "azure/centralindia": ("IND", ""), "azure/eastasia": ("HKG", ""), "azure/japaneast": ("JPN", ""),
    "azure/japanwest": ("JPN", ""), "azure/jioindiacentral": ("IND", ""), "azure/jioindiawest": ("IND", ""),
    "azure/koreacentral": ("KOR", ""), "azure/koreasouth": ("KOR", ""), "azure/southindia": ("IND", ""),
    "azure/southeastasia": ("SGP", ""), "azure/westindia": ("IND", ""), "azure/canadacentral": ("CAN", "ontario"),
    "azure/canadaeast": ("CAN", "quebec"), "azure/francecentral": ("FRA", ""), "azure/francesouth": ("FRA", ""),
    "azure/germanynorth": ("DEU", ""), "azure/germanywestcentral": ("DEU", ""), "azure/italynorth": ("ITA", ""),
    "azure/northeurope": ("IRL", ""), "azure/norwayeast": ("NOR", "NO1"), "azure/norwaywest": ("NOR", "NO5"),
    "azure/polandcentral": ("POL", ""), "azure/swedencentral": ("SWE", "SE3"), "azure/switzerlandnorth": ("CHE", ""),
    "azure/switzerlandwest": ("CHE", ""), "azure/uksouth": ("GBR", ""), "azure/ukwest": ("GBR", ""),
    "azure/westeurope": ("NLD", ""), "azure/israelcentral": ("ISR", ""), "azure/qatarcentral": ("QAT", ""),
    "azure/uaecentral": ("ARE", ""), "azure/uaenorth": ("ARE", ""), "azure/brazilsouth": ("BRA", ""),
    "azure/brazilsoutheast": ("BRA", ""), "azure/centralus": ("USA", "iowa"), "azure/eastus": ("USA", "virginia"),
    "azure/eastus2": ("USA", "virginia"), "azure/northcentralus": ("USA", "illinois"),
    "azure/southcentralus": ("USA", "texas"), "azure/westcentralus": ("USA", "wyoming"),
    "azure/westus": ("USA", "california"), "azure/westus2": ("USA", "washington"), "azure/westus3": ("USA", "arizona"),
    "gcp/asia-east1": ("TWN", ""), "gcp/asia-east2": ("HKG", ""), "gcp/asia-northeast1": ("JPN", ""),
    "gcp/asia-northeast2": ("JPN", ""), "gcp/asia-northeast3": ("KOR", ""), "gcp/asia-south1": ("IND", ""),
    "gcp/asia-south2": ("IND", ""), "gcp/asia-southeast1": ("SGP", ""), "gcp/asia-southeast2": ("IDN", ""),
    "gcp/australia-southeast1": ("AUS", ""), "gcp/australia-southeast2": ("AUS", ""), "gcp/europe-west10": ("DEU", ""),
    "gcp/europe-central2": ("POL", ""), "gcp/europe-north1": ("FIN", "FI"), "gcp/europe-southwest1": ("ESP", ""),
    "gcp/europe-west12": ("ITA", ""), "gcp/europe-west1": ("BEL", ""), "gcp/europe-west2": ("GBR", ""),
    "gcp/europe-west3": ("DEU", ""), "gcp/europe-west4": ("NLD", ""), "gcp/europe-west6": ("CHE", ""),
    "gcp/europe-west8": ("ITA", ""), "gcp/europe-west9": ("FRA", ""), "gcp/me-central1": ("QAT", ""),
    "gcp/me-central2": ("SAU", ""), "gcp/me-west1": ("ISR", ""), "gcp/northamerica-northeast1": ("CAN", "quebec"),
    "gcp/northamerica-northeast2": ("CAN", "ontario"), "gcp/southamerica-east1": ("BRA", ""),
    "gcp/southamerica-west1": ("CHL", ""), "gcp/us-central1": ("USA", "iowa"), "gcp/us-east1": ("USA", "south carolina"),
    "gcp/us-east4": ("USA", "virginia"), "gcp/us-east5": ("USA", "ohio"), "gcp/us-south1": ("USA", "texas"),
    "gcp/us-west1": ("USA", "oregon"), "gcp/us-west2": ("USA", "california"), "gcp/us-west3": ("USA", "utah"),
    "gcp/us-west4": ("USA", "nevada"),
}

# Continent of each country that hosts a cloud region (data-residency filter of the what-if).
CONTINENT = {
    **dict.fromkeys(["ZAF"], "Africa"),
    **dict.fromkeys(["HKG", "JPN", "KOR", "IND", "SGP", "IDN", "TWN", "ISR", "ARE", "BHR", "QAT", "SAU", "CHN"], "Asia"),
    **dict.fromkeys(["AUS", "NZL"], "Oceania"),
    **dict.fromkeys(["CAN", "USA", "MEX"], "North America"),
    **dict.fromkeys(["BRA", "CHL"], "South America"),
    **dict.fromkeys(["DEU", "CHE", "SWE", "ITA", "ESP", "IRL", "GBR", "FRA", "NOR", "POL", "NLD", "FIN", "BEL"], "Europe"),
}

PUE = [("gcp", 1.10, "google-pue", 2023), ("aws", 1.15, "aws-pue", 2023), ("azure", 1.18, "azure-pue", 2023)]

# id, label, value, unit, source, year, note
EQUIVALENTS = [
    ("car_km_eu", "km by a new EU car", 106.6, "g CO2 per km", "eea-cars-2023", 2023, "average new passenger car registered in the EU, tailpipe, WLTP"),
    ("car_km_us", "km by an average US car", 244.0, "g CO2e per km", "epa-equivalencies", 2024, "393 g per mile, typical US passenger vehicle"),
    ("household_days_eu", "days of an EU household's electricity", 9.9, "kWh per day", "eurostat-households", 2022, "scaled by the grid intensity of the run's own location"),
    ("smartphone_charges", "smartphone charges", 12.4, "g CO2 per charge", "epa-equivalencies", 2024, ""),
    ("flight_pkm", "km flown, economy, per passenger", 171.0, "g CO2e per passenger-km", "uk-defra-2020", 2020, "139–244 g depending on the flight"),
    ("flight_paris_london", "return flights Paris–London, per passenger", 50000.0, "g CO2e per trip", "carbonfootprint-flights", 2021, ""),
    ("flight_ny_sf", "return flights New York–San Francisco, per passenger", 570000.0, "g CO2e per trip", "carbonfootprint-flights", 2021, ""),
    ("tree_months", "months of a tree's CO2 uptake", 5000.0, "g CO2 per tree-month", "epa-equivalencies", 2024, "urban tree seedling grown for 10 years takes up 60 kg: 0.5 kg a month"),
]


def load_json(*p):
    with open(os.path.join(SRC, *p), encoding="utf-8") as f:
        return json.load(f)


def read_csv(*p, delimiter=","):
    with open(os.path.join(SRC, *p), encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def r3(x):
    """Full precision: the codecarbon dataset must reproduce CodeCarbon's own arithmetic."""
    return float(x)


def codecarbon_country(mix, per_source):
    """CodeCarbon 3.3.2 `_global_energy_mix_to_emissions_rate`."""
    if mix.get("carbon_intensity") is not None:
        return mix["carbon_intensity"]
    total, computed, ci = mix["total_TWh"], 0, 0
    for k, v in mix.items():
        if "_TWh" in k and per_source.get(k[: -len("_TWh")]) is not None:
            ci += v / total * per_source[k[: -len("_TWh")]]
            computed += v
    return ci if computed == total else per_source["world_average"]


def codecarbon_canada(mix):
    """CodeCarbon 3.3.2 `_region_energy_mix_to_emissions_rate` (kg/kWh factors × %)."""
    factors = {"coal": 0.995725971, "petroleum": 0.8166885263, "naturalGas": 0.7438415916}
    return sum(mix[k] / mix["total"] * factors[k] for k in factors) * 1000


def main():
    os.makedirs(OUT, exist_ok=True)
    per_source = load_json("codecarbon", "carbon_intensity_per_source.json")
    world_cc = per_source["world_average"]
    rows = []  # dataset, level, key, country_iso3, name, g_per_kwh, source, year

    mix = load_json("codecarbon", "global_energy_mix.json")
    for iso, m in sorted(mix.items()):
        rows.append(("codecarbon", "country", iso, iso, m["country_name"], r3(codecarbon_country(m, per_source)), "owid-ember", m.get("year", 2022)))
    rows.append(("codecarbon", "world", "WORLD", "", "World average", world_cc, "iea-2019-world", 2019))

    usa = {k: v for k, v in load_json("codecarbon", "usa_emissions.json").items() if not k.startswith("_")}
    usa_old = {k: v for k, v in load_json("codecarbon", "usa_emissions-2016.json").items() if not k.startswith("_")}
    for name, v in sorted(usa.items()):
        g = r3(v["emissions"] * LBS_PER_MWH_TO_G_PER_KWH)
        for ds in ("codecarbon", "latest"):
            rows.append((ds, "subnational", f"USA/{name}", "USA", name.title(), g, "egrid2023", 2023))
    for name, v in sorted(usa_old.items()):
        rows.append(("codecarbon-old", "subnational", f"USA/{name}", "USA", name.title(), r3(v["emissions"] * LBS_PER_MWH_TO_G_PER_KWH), "egrid2016", 2016))

    for name, m in sorted(load_json("codecarbon", "canada_energy_mix.json").items()):
        g = r3(codecarbon_canada(m))
        for ds in ("codecarbon", "latest"):
            rows.append((ds, "subnational", f"CAN/{name}", "CAN", name.title(), g, "cer-canada", 2019))

    china = load_json("codecarbon", "china_provincial_emissions.json")["data"]
    for code, p in sorted(china.items()):
        for alias in p["names"]:
            for ds in ("codecarbon", "latest"):
                rows.append((ds, "subnational", f"CHN/{alias}", "CHN", p["description"], p["emission_factor"], "mee-china-2023", p.get("year", 2023)))

    nordic = load_json("codecarbon", "nordic_emissions.json")["data"]
    for zone, z in sorted(nordic.items()):
        iso = {"SE": "SWE", "NO": "NOR", "FI": "FIN"}[zone[:2]]
        for ds in ("codecarbon", "latest"):
            rows.append((ds, "subnational", f"{iso}/{zone.lower()}", iso, z["description"], z["emission_factor"], "nordic-2025", z.get("year", 2025)))

    for r in read_csv("codecarbon", "impact.csv"):
        rows.append(("codecarbon", "cloud", f"{r['provider']}/{r['region']}", r["countryIsoCode"], r["city"] or r["region"], r3(r["impact"]), "google-2023-cc", 2023))
    for r in read_csv("codecarbon", "impact-2023-with-aws-azure.csv"):
        if r["provider"] in ("aws", "azure"):
            rows.append(("codecarbon-old", "cloud", f"{r['provider']}/{r['region']}", "", r["city"] or r["region"], r3(r["impact"]), "codecarbon-2023-cloud", 2023))

    ember = load_json("ember-via-co2js", "average-intensities.json")
    for key, e in sorted(ember.items()):
        if e["country_code"]:
            rows.append(("latest", "country", e["country_code"], e["country_code"], e["country_or_region"], r3(e["emissions_intensity_gco2_per_kwh"]), "ember-2024", e["year"]))
    world = ember["World"]
    rows.append(("latest", "world", "WORLD", "", "World", r3(world["emissions_intensity_gco2_per_kwh"]), "ember-2024", world["year"]))

    google = {r["Google Cloud Region"]: r for r in read_csv("google-region-carbon", "2024.csv")}
    for region, r in sorted(google.items()):
        iso = CLOUD_LOCATION.get(f"gcp/{region}", ("", ""))[0]
        rows.append(("latest", "cloud", f"gcp/{region}", iso, r["Location"], r3(r["Grid carbon intensity (gCO2eq / kWh)"]), "google-2024", 2024))

    with open(os.path.join(OUT, "intensity.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["dataset", "level", "key", "country_iso3", "name", "g_per_kwh", "source", "year"])
        w.writerows(rows)

    # Cloud regions: every region of the three providers, with its location.
    regions = []
    for line in open(os.path.join(SRC, "cloud-regions", "aws.txt"), encoding="utf-8"):
        if line.startswith("#") or not line.strip():
            continue
        p = [x.strip() for x in line.split(";")]
        regions.append(("aws", p[0], p[1], p[1].split("(")[-1].rstrip(")"), p[3], p[4]))
    for line in open(os.path.join(SRC, "cloud-regions", "azure.txt"), encoding="utf-8"):
        if line.startswith("#") or not line.strip():
            continue
        p = [x.strip() for x in line.split(";")]
        regions.append(("azure", p[0], p[1], p[3], p[5], p[4]))  # this file gives longitude first
    for line in open(os.path.join(SRC, "cloud-regions", "gcp.txt"), encoding="utf-8"):
        if line.startswith("#") or not line.strip():
            continue
        p = [x.strip() for x in line.split(";")]
        regions.append(("gcp", p[0], p[2], p[2].split(",")[0], p[4], p[5]))
    with open(os.path.join(OUT, "cloud_regions.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["provider", "region", "name", "city", "lat", "lon", "country_iso3", "subdivision", "continent", "google_cfe_pct"])
        for prov, region, name, city, lat, lon in sorted(regions):
            iso, sub = CLOUD_LOCATION[f"{prov}/{region}"]
            cfe = google.get(region, {}).get("Google CFE", "") if prov == "gcp" else ""
            w.writerow([prov, region, name, city, round(float(lat), 3), round(float(lon), 3), iso, sub, CONTINENT[iso],
                        round(float(cfe) * 100) if cfe else ""])

    # Countries: ISO3, ISO2 and the names and variants CodeCarbon and users write.
    names = {}
    for iso, m in mix.items():
        names.setdefault(iso, set()).add(m["country_name"])
    for e in ember.values():
        if e["country_code"]:
            names.setdefault(e["country_code"], set()).add(e["country_or_region"])
    extra = {"USA": {"US", "USA", "United States of America"}, "GBR": {"UK", "Great Britain"}, "KOR": {"South Korea"}}
    with open(os.path.join(OUT, "countries.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["iso3", "iso2", "name", "aliases"])
        for c in sorted(pycountry.countries, key=lambda c: c.alpha_3):
            aliases = set(names.get(c.alpha_3, set())) | extra.get(c.alpha_3, set())
            for attr in ("common_name", "official_name"):
                if getattr(c, attr, None):
                    aliases.add(getattr(c, attr))
            aliases.discard(c.name)
            w.writerow([c.alpha_3, c.alpha_2, c.name, "|".join(sorted(aliases))])

    with open(os.path.join(OUT, "sources.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "title", "publisher", "url", "licence", "year"])
        w.writerows(SOURCES)
    with open(os.path.join(OUT, "pue.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["provider", "pue", "source", "year"])
        w.writerows(PUE)
    with open(os.path.join(OUT, "equivalents.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "label", "value", "unit", "source", "year", "note"])
        w.writerows(EQUIVALENTS)
    ids = {s[0] for s in SOURCES}
    assert all(r[6] in ids for r in rows), "every value names a known source"
    print(f"{len(rows)} intensities, {len(regions)} cloud regions written to {OUT}")


if __name__ == "__main__":
    main()
