//! Adaptive units for display: a figure is shown in the unit that keeps it readable
//! (13.4 Wh, never 0.0 kWh), with three significant digits.

/// Three significant digits, no exponent, trailing zeros dropped ("13.4", "0.512", "1,234" kept as "1234").
pub fn sig3(x: f64) -> String {
    significant(x, 3)
}

/// A metric's value: four significant digits (0.9091 and 0.9094 stay apart), no exponent.
pub fn sig4(x: f64) -> String {
    significant(x, 4)
}

/// `digits` significant digits, no exponent, trailing zeros dropped.
fn significant(x: f64, digits: i32) -> String {
    if x == 0.0 || !x.is_finite() {
        return if x.is_finite() { "0".into() } else { "–".into() };
    }
    let mag = x.abs().log10().floor() as i32;
    let decimals = (digits - 1 - mag).clamp(0, 12) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn scaled(x: f64, units: &[(f64, &str)]) -> String {
    let a = x.abs();
    for &(factor, unit) in units {
        if a >= factor * 0.9995 {
            return format!("{} {unit}", sig3(x / factor));
        }
    }
    let (factor, unit) = units[units.len() - 1];
    format!("{} {unit}", sig3(x / factor))
}

/// Energy given in kWh: mWh, Wh, kWh, MWh, GWh.
pub fn energy_kwh(kwh: f64) -> String {
    scaled(kwh, &[(1e6, "GWh"), (1e3, "MWh"), (1.0, "kWh"), (1e-3, "Wh"), (1e-6, "mWh")])
}

/// Mass of CO2eq given in kg: mg, g, kg, t.
pub fn co2_kg(kg: f64) -> String {
    scaled(kg, &[(1e3, "t CO₂e"), (1.0, "kg CO₂e"), (1e-3, "g CO₂e"), (1e-6, "mg CO₂e")])
}

/// A size in bytes, decimal units: "812 bytes", "4.2 kB", "50 MB", "1 GB".
pub fn human_bytes(n: u64) -> String {
    scaled(n as f64, &[(1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1.0, "bytes")])
}

/// A count with its noun, singular for one: "1 run", "3 files".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Power in watts: mW, W, kW.
/// Grid intensity: `123 g/kWh` (grams of CO2e per kWh).
pub fn intensity(g: f64) -> String {
    format!("{} g/kWh", sig3(g))
}

pub fn power_w(w: f64) -> String {
    scaled(w, &[(1e3, "kW"), (1.0, "W"), (1e-3, "mW")])
}

/// A duration in seconds: "850 ms", "42.1 s", "12 min 5 s", "3 h 02 min", "4 d 3 h".
pub fn duration_s(s: f64) -> String {
    if !s.is_finite() {
        return "–".into();
    }
    if s < 1.0 {
        return format!("{} ms", sig3(s * 1000.0));
    }
    if s < 60.0 {
        return format!("{} s", sig3(s));
    }
    let total = s.round() as u64;
    let (d, h, m, sec) = (total / 86_400, total / 3600 % 24, total / 60 % 60, total % 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m:02} min")
    } else {
        format!("{m} min {sec} s")
    }
}

/// "–" for a missing figure, else the formatted one.
pub fn or_dash(x: Option<f64>, f: fn(f64) -> String) -> String {
    x.map(f).unwrap_or_else(|| "–".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_singular_for_one() {
        assert_eq!(
            (count(1, "file"), count(0, "file"), count(3, "row")),
            ("1 file".into(), "0 files".into(), "3 rows".into())
        );
    }

    #[test]
    fn sizes_use_decimal_units() {
        assert_eq!(human_bytes(50_000_000), "50 MB");
        assert_eq!(human_bytes(1_000_000_000), "1 GB");
        assert_eq!(human_bytes(812), "812 bytes");
    }

    #[test]
    fn energies_pick_a_readable_unit() {
        assert_eq!(energy_kwh(0.0134), "13.4 Wh");
        assert_eq!(energy_kwh(2.5), "2.5 kWh");
        assert_eq!(energy_kwh(1234.0), "1.23 MWh");
        assert_eq!(energy_kwh(0.000_000_5), "0.5 mWh");
        assert_eq!(energy_kwh(0.0), "0 mWh");
    }

    #[test]
    fn masses_durations_and_powers_pick_a_readable_unit() {
        assert_eq!(co2_kg(0.000_27), "270 mg CO₂e");
        assert_eq!(co2_kg(0.0034), "3.4 g CO₂e");
        assert_eq!(co2_kg(4.31), "4.31 kg CO₂e");
        assert_eq!(co2_kg(1500.0), "1.5 t CO₂e");
        assert_eq!(duration_s(0.25), "250 ms");
        assert_eq!(duration_s(42.06), "42.1 s");
        assert_eq!(duration_s(725.0), "12 min 5 s");
        assert_eq!(duration_s(3.0 * 3600.0 + 120.0), "3 h 02 min");
        assert_eq!(duration_s(207_262.0), "2 d 9 h");
        assert_eq!(power_w(438.878), "439 W");
    }
}
