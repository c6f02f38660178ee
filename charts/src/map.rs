//! The world map: Natural Earth countries (data/world/, from data/build_map.py) in the Equal
//! Earth projection, shaded by grid intensity, with every cloud region as a marker, rendered to
//! SVG on the server. Every shape carries its tooltip as `data-tip` (and `<title>` for no
//! JavaScript), so the browser only shows what the server computed.

use carbon_core::grid::{Grid, Location};
use carbon_core::model::{DatasetMode, LocationResolution, RegionRow};
use carbon_core::units;
use std::fmt::Write;
use std::sync::OnceLock;

const COUNTRIES: &str = include_str!("../../data/world/countries-110m.geojson");

/// SVG width; the height follows the projection's aspect ratio.
pub const WIDTH: f64 = 960.0;

/// Intensity classes of the legend, g/kWh (upper bounds) and their colours.
pub const LEGEND: &[(f64, &str)] = &[
    (50.0, "#1a9850"),
    (150.0, "#91cf60"),
    (300.0, "#d9ef8b"),
    (450.0, "#fee08b"),
    (600.0, "#fc8d59"),
    (f64::INFINITY, "#d73027"),
];
const NO_DATA: &str = "#d9d9d9";

pub fn colour(g_per_kwh: f64) -> &'static str {
    LEGEND.iter().find(|(max, _)| g_per_kwh < *max).map(|(_, c)| *c).unwrap_or(NO_DATA)
}

/// Equal Earth projection (Šavrič, Patterson & Jenny 2018) of degrees, unscaled.
pub fn equal_earth(lon: f64, lat: f64) -> (f64, f64) {
    const A1: f64 = 1.340264;
    const A2: f64 = -0.081106;
    const A3: f64 = 0.000893;
    const A4: f64 = 0.003796;
    let m = 3f64.sqrt() / 2.0;
    let (l, p) = (lon.to_radians(), lat.to_radians());
    let t = (m * p.sin()).asin();
    let (t2, t6) = (t * t, t.powi(6));
    let x = l * t.cos() / (m * (A1 + 3.0 * A2 * t2 + t6 * (7.0 * A3 + 9.0 * A4 * t2)));
    let y = t * (A1 + A2 * t2 + t6 * (A3 + A4 * t2));
    (x, y)
}

struct Frame {
    scale: f64,
    half_w: f64,
    half_h: f64,
}

impl Frame {
    fn new() -> Frame {
        let (xmax, _) = equal_earth(180.0, 0.0);
        let (_, ymax) = equal_earth(0.0, 90.0);
        let scale = WIDTH / (2.0 * xmax);
        Frame { scale, half_w: WIDTH / 2.0, half_h: ymax * scale }
    }

    fn height(&self) -> f64 {
        2.0 * self.half_h
    }

    /// SVG coordinates (y down) of a longitude and latitude.
    fn xy(&self, lon: f64, lat: f64) -> (f64, f64) {
        let (x, y) = equal_earth(lon, lat);
        (self.half_w + x * self.scale, self.half_h - y * self.scale)
    }
}

/// A country's outline as SVG path data, computed once.
struct Country {
    name: String,
    iso3: String,
    path: String,
}

fn countries() -> &'static [Country] {
    static C: OnceLock<Vec<Country>> = OnceLock::new();
    C.get_or_init(|| {
        let frame = Frame::new();
        let Ok(geojson::GeoJson::FeatureCollection(fc)) = COUNTRIES.parse::<geojson::GeoJson>() else {
            return Vec::new();
        };
        fc.features
            .into_iter()
            .filter_map(|f| {
                let prop = |k: &str| f.property(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
                let (name, iso3) = (prop("name"), prop("iso3"));
                let polygons = match f.geometry?.value {
                    geojson::GeometryValue::Polygon { coordinates } => vec![coordinates],
                    geojson::GeometryValue::MultiPolygon { coordinates } => coordinates,
                    _ => return None,
                };
                let mut path = String::new();
                for ring in polygons.iter().flatten() {
                    let ring: Vec<(f64, f64)> = ring.iter().map(|p| (p[0], p[1])).collect();
                    for piece in split_at_antimeridian(&ring) {
                        for (i, (lon, lat)) in piece.iter().enumerate() {
                            let (x, y) = frame.xy(*lon, *lat);
                            let _ = write!(path, "{}{x:.1},{y:.1}", if i == 0 { "M" } else { "L" });
                        }
                        path.push('Z');
                    }
                }
                Some(Country { name, iso3, path })
            })
            .collect()
    })
}

/// Splits a ring that crosses the ±180° meridian (Russia, Fiji) into pieces that each stay on
/// one side, cutting at the meridian, so no shape is drawn across the whole map.
pub fn split_at_antimeridian(ring: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut pieces: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for w in 0..ring.len() {
        let (lon, lat) = ring[w];
        if let Some(&(plon, plat)) = w.checked_sub(1).and_then(|i| ring.get(i)) {
            if (lon - plon).abs() > 180.0 && (plon.abs() == 180.0 || lon.abs() == 180.0) {
                // Already cut at the meridian (Natural Earth does): only start a new piece.
                pieces.push(Vec::new());
            } else if (lon - plon).abs() > 180.0 {
                // Crossing: unwrap the longitude, interpolate the latitude at the meridian.
                let edge = if plon > 0.0 { 180.0 } else { -180.0 };
                let unwrapped = if plon > 0.0 { lon + 360.0 } else { lon - 360.0 };
                let t = (edge - plon) / (unwrapped - plon);
                let cross = plat + t * (lat - plat);
                if let Some(p) = pieces.last_mut() {
                    p.push((edge, cross));
                }
                pieces.push(vec![(-edge, cross)]);
            }
        }
        if let Some(p) = pieces.last_mut() {
            p.push((lon, lat));
        }
    }
    // A closed ring that crossed: its last piece continues its first.
    if pieces.len() > 1 {
        if let Some(last) = pieces.pop() {
            let first = std::mem::take(&mut pieces[0]);
            pieces[0] = last.into_iter().chain(first).collect();
        }
    }
    pieces.retain(|p| p.len() > 2);
    pieces
}

/// Number of country shapes in the map.
pub fn country_count() -> usize {
    countries().len()
}

/// Text made safe inside SVG/HTML markup and attributes (CSV text is the user's, never markup).
pub fn escape_xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// What the map shows for the current selection: its energy and current CO2, to say
/// "X kg here (−Y %)" on every shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection {
    pub energy_kwh: f64,
    pub current_co2_kg: f64,
}

impl Selection {
    fn here(&self, g_per_kwh: f64) -> String {
        if self.energy_kwh <= 0.0 {
            return String::new();
        }
        let co2 = self.energy_kwh * g_per_kwh / 1000.0;
        let change =
            if self.current_co2_kg > 0.0 { (co2 - self.current_co2_kg) / self.current_co2_kg * 100.0 } else { 0.0 };
        format!(
            " — the selection: {} here ({}{:.0} %)",
            units::co2_kg(co2),
            if change < 0.0 { "−" } else { "+" },
            change.abs()
        )
    }
}

/// The map as an SVG document: countries shaded by their national grid intensity (latest
/// dataset), a legend, and `regions` as markers coloured by intensity; `selected` is
/// "provider/region".
pub fn world_svg(grid: &Grid, regions: &[RegionRow], sel: Selection, selected: Option<&str>) -> String {
    let frame = Frame::new();
    let h = frame.height();
    let mut svg = String::with_capacity(300_000);
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {h:.0}" role="img" aria-label="World map of grid carbon intensity with cloud regions" class="world">"#
    );
    svg.push_str(r#"<path class="sphere" d=""#);
    for lat in (-90..=90).step_by(5) {
        let (x, y) = frame.xy(-180.0, f64::from(lat));
        let _ = write!(svg, "{}{x:.1},{y:.1}", if lat == -90 { "M" } else { "L" });
    }
    for lat in (-90..=90).rev().step_by(5) {
        let (x, y) = frame.xy(180.0, f64::from(lat));
        let _ = write!(svg, "L{x:.1},{y:.1}");
    }
    svg.push_str(r#"Z"/><g class="countries">"#);
    for c in countries() {
        let loc = Location { country_iso_code: Some(&c.iso3), ..Location::default() };
        let r = grid.resolve(&loc, DatasetMode::Latest);
        let known = !c.iso3.is_empty() && r.resolution != LocationResolution::World;
        let tip = if known {
            format!("{}: {:.0} g CO₂e/kWh ({}){}", c.name, r.g_per_kwh, r.label, sel.here(r.g_per_kwh))
        } else {
            format!("{}: no grid data", c.name)
        };
        let tip = escape_xml(&tip);
        let _ = write!(
            svg,
            r#"<path class="country" d="{}" fill="{}" data-iso3="{}" data-tip="{tip}"><title>{tip}</title></path>"#,
            c.path,
            if known { colour(r.g_per_kwh) } else { NO_DATA },
            escape_xml(&c.iso3)
        );
    }
    svg.push_str(r#"</g><g class="markers">"#);
    for r in regions {
        let (x, y) = frame.xy(r.lon, r.lat);
        let id = format!("{}/{}", r.provider, r.region);
        let is_sel = selected == Some(id.as_str());
        let cfe = r.google_cfe_pct.map(|c| format!(", Google CFE {c:.0} %")).unwrap_or_default();
        let tip = escape_xml(&format!(
            "{} {} ({}): {:.0} g CO₂e/kWh — {}{cfe}{}",
            r.provider,
            r.region,
            r.name,
            r.intensity_g_per_kwh,
            r.label,
            sel.here(r.intensity_g_per_kwh)
        ));
        let _ = write!(
            svg,
            r#"<circle class="marker {p}{s}" cx="{x:.1}" cy="{y:.1}" r="{rad}" fill="{fill}" data-region="{id}" data-provider="{p}" data-tip="{tip}"><title>{tip}</title></circle>"#,
            p = escape_xml(&r.provider),
            s = if is_sel { " selected" } else { "" },
            rad = if is_sel { 7 } else { 4 },
            fill = colour(r.intensity_g_per_kwh),
            id = escape_xml(&id),
        );
    }
    svg.push_str("</g>");
    // Legend, bottom left.
    let (lx, ly) = (12.0, h - 24.0 - 16.0 * LEGEND.len() as f64);
    let _ = write!(svg, r#"<g class="legend" transform="translate({lx},{ly})"><text x="0" y="-6">g CO₂e/kWh</text>"#);
    let mut lower = 0.0;
    for (i, (max, col)) in LEGEND.iter().enumerate() {
        let label = if max.is_finite() { format!("{lower:.0}–{max:.0}") } else { format!("≥ {lower:.0}") };
        let y = i as f64 * 16.0;
        let _ = write!(
            svg,
            r#"<rect x="0" y="{y}" width="14" height="12" fill="{col}"/><text x="20" y="{}">{label}</text>"#,
            y + 10.0
        );
        lower = *max;
    }
    let y = LEGEND.len() as f64 * 16.0;
    let _ = write!(
        svg,
        r#"<rect x="0" y="{y}" width="14" height="12" fill="{NO_DATA}"/><text x="20" y="{}">no data</text></g>"#,
        y + 10.0
    );
    svg.push_str("</svg>");
    svg
}

/// Scale of the small map against the full one.
const SMALL: f64 = 0.5;

/// Every country as one grey outline at the small map's scale, whole pixels (a few tens of kB).
fn land_path() -> &'static str {
    static P: OnceLock<String> = OnceLock::new();
    P.get_or_init(|| {
        let mut out = String::new();
        for c in countries() {
            // The full map's path, scaled, with points that round onto the last one dropped.
            for ring in c.path.split('Z').filter(|r| !r.is_empty()) {
                let mut last = (i64::MIN, i64::MIN);
                let mut n = 0;
                for (i, pt) in ring.split(['M', 'L']).filter(|p| !p.is_empty()).enumerate() {
                    let Some((x, y)) = pt.split_once(',') else { continue };
                    let (Ok(x), Ok(y)) = (x.parse::<f64>(), y.parse::<f64>()) else { continue };
                    let p = ((x * SMALL).round() as i64, (y * SMALL).round() as i64);
                    if p == last && i > 0 {
                        continue;
                    }
                    let _ = write!(out, "{}{},{}", if n == 0 { "M" } else { "L" }, p.0, p.1);
                    last = p;
                    n += 1;
                }
                if n > 0 {
                    out.push('Z');
                }
            }
        }
        out
    })
}

/// A small map of where runs ran: land in grey, each place a circle sized by its CO2 (area
/// proportional) and coloured by its grid intensity, with its figures as a tooltip.
pub fn runs_map(places: &[carbon_core::pages::MapPlace]) -> String {
    let frame = Frame::new();
    let (w, h) = (WIDTH * SMALL, frame.height() * SMALL);
    let mut svg = String::with_capacity(64 * 1024);
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w:.0} {h:.0}" role="img" aria-label="Where the runs ran, sized by CO₂e" class="runs-map"><path d="{}" fill="{NO_DATA}" stroke="white" stroke-width="0.3"/>"#,
        land_path()
    );
    let max = places.iter().map(|p| p.co2_kg).fold(0.0, f64::max);
    for p in places {
        let (x, y) = frame.xy(p.lon, p.lat);
        let r = if max > 0.0 { 3.0 + 11.0 * (p.co2_kg / max).sqrt() } else { 4.0 };
        let tip = escape_xml(&format!(
            "{}: {} from {}, at {:.0} g CO₂e/kWh",
            p.label,
            units::co2_kg(p.co2_kg),
            units::count(p.runs, "run"),
            p.g_per_kwh
        ));
        let _ = write!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="{r:.1}" fill="{}" fill-opacity="0.85" stroke="#1d2a22" stroke-width="0.8" data-tip="{tip}"><title>{tip}</title></circle>"##,
            x * SMALL,
            y * SMALL,
            colour(p.g_per_kwh)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbon_core::whatif::regions;

    #[test]
    fn equal_earth_is_centred_and_symmetric() {
        assert_eq!(equal_earth(0.0, 0.0), (0.0, 0.0));
        let (x, y) = equal_earth(180.0, 90.0);
        let (x2, y2) = equal_earth(-180.0, -90.0);
        assert!((x + x2).abs() < 1e-12 && (y + y2).abs() < 1e-12);
        // Published extent of Equal Earth: x ±2.7066, y ±1.3173 on the unit sphere.
        assert!((equal_earth(180.0, 0.0).0 - 2.7066).abs() < 1e-3);
        assert!((equal_earth(0.0, 90.0).1 - 1.3173).abs() < 1e-3);
    }

    #[test]
    fn rings_crossing_the_antimeridian_are_cut_there() {
        // A square straddling 180°: from 170°E to 170°W.
        let ring = [(170.0, 60.0), (-170.0, 60.0), (-170.0, 70.0), (170.0, 70.0), (170.0, 60.0)];
        let pieces = split_at_antimeridian(&ring);
        assert_eq!(pieces.len(), 2);
        for p in &pieces {
            let east = p[0].0 > 0.0;
            assert!(p.iter().all(|(lon, _)| (*lon > 0.0) == east || lon.abs() == 180.0), "{p:?}");
        }
        assert!(pieces.iter().flatten().any(|&(lon, lat)| lon == 180.0 && lat == 60.0));
        // Natural Earth's own cut: points on ±180° joined by a seam jump.
        let cut = [(-180.0, -84.7), (0.0, -70.0), (180.0, -84.7), (-180.0, -84.7)];
        let pieces = split_at_antimeridian(&cut);
        assert_eq!(pieces.len(), 1);
        assert!(pieces[0].iter().all(|(lon, lat)| lon.is_finite() && lat.is_finite()));
        let plain = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 0.0)];
        assert_eq!(split_at_antimeridian(&plain), vec![plain.to_vec()]);
    }

    #[test]
    fn the_svg_holds_every_country_and_every_region_marker() {
        let grid = Grid::embedded();
        let rows = regions(grid);
        let svg =
            world_svg(grid, &rows, Selection { energy_kwh: 10.0, current_co2_kg: 4.0 }, Some("gcp/europe-north1"));
        assert_eq!(country_count(), 177);
        assert_eq!(svg.matches(r#"<path class="country""#).count(), 177);
        assert_eq!(svg.matches(r#"<circle class="marker"#).count(), rows.len());
        assert!(svg.contains(r#"data-region="aws/us-east-1""#));
        assert_eq!(svg.matches(" selected\"").count(), 1);
        assert!(svg.contains("France: 44 g CO₂e/kWh"), "France shaded by Ember 2024");
        assert!(svg.contains("the selection: "), "tooltips say what the selection would emit");
        assert!(!svg.contains("NaN"), "every coordinate is a number");
    }

    #[test]
    fn the_small_map_draws_each_place_sized_by_its_co2_and_stays_small() {
        let places = [
            carbon_core::pages::MapPlace {
                label: "Paris".into(),
                lon: 2.35,
                lat: 48.85,
                runs: 3,
                co2_kg: 4.0,
                g_per_kwh: 44.0,
            },
            carbon_core::pages::MapPlace {
                label: "Iowa".into(),
                lon: -95.9,
                lat: 41.3,
                runs: 1,
                co2_kg: 1.0,
                g_per_kwh: 413.0,
            },
        ];
        let svg = runs_map(&places);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains(r#"r="14.0""#) && svg.contains(r#"r="8.5""#), "area follows CO2: radius 3 + 11·√(share)");
        assert!(svg.contains("Paris: 4 kg CO₂e from 3 runs, at 44 g CO₂e/kWh"));
        assert!(svg.len() < 120_000, "{} bytes", svg.len());
        assert!(!svg.contains("NaN"));
    }
}
