//! Charts over the model, drawn with plotters on an SVG backend. Data preparation stays in
//! `carbon-core` (timeseries, run details); these functions only draw. Every chart has a title,
//! axis labels with units, a text alternative and its data as CSV; each data point gets an
//! invisible hover target carrying its value (`data-tip`).

pub mod map;
use carbon_core::model::{Run, RunDetail};
use carbon_core::pages::Chart;
use carbon_core::timeseries::TimeSeries;
use carbon_core::units;
use plotters::coord::Shift;
use plotters::prelude::*;

pub const W: u32 = 760;
pub const H: u32 = 340;

/// Series colours, in order.
const PALETTE: &[RGBColor] = &[
    RGBColor(31, 122, 77),
    RGBColor(59, 125, 216),
    RGBColor(224, 138, 30),
    RGBColor(138, 92, 199),
    RGBColor(201, 62, 62),
    RGBColor(90, 160, 170),
    RGBColor(150, 150, 60),
    RGBColor(120, 120, 120),
];

/// Values of a hyper-parameter told apart by colour on the Pareto chart (the palette less the
/// three the front and its rings use).
const GROUP_COLOURS: usize = 5;

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Series that can be told apart by colour: the palette's length ("N others" is one of them).
pub const MAX_SERIES: usize = PALETTE.len();

/// A series' colour: the palette's, grey for the "N others" series of a chart's smaller ones.
fn series_colour(i: usize, key: &str) -> RGBColor {
    if key.ends_with(" others") {
        RGBColor(170, 170, 170)
    } else {
        colour(i)
    }
}

/// Hover targets appended to a plotters SVG: (x, y, text).
fn with_targets(svg: String, targets: &[(i32, i32, String)]) -> String {
    append_targets(svg, targets.iter().map(|(x, y, t)| target(*x, *y, t, None)))
}

/// Hover targets that also link (to a run's page; an empty href: no link): (x, y, text, href).
fn with_link_targets(svg: String, targets: &[(i32, i32, String, String)]) -> String {
    append_targets(
        svg,
        targets.iter().map(|(x, y, t, h)| target(*x, *y, t, Some(h.as_str()).filter(|h| !h.is_empty()))),
    )
}

/// One invisible circle carrying its text (`data-tip`, and `<title>` without JavaScript).
fn target(x: i32, y: i32, text: &str, href: Option<&str>) -> String {
    let t = crate::map::escape_xml(text);
    match href {
        Some(h) => format!(
            r#"<a href="{}"><circle cx="{x}" cy="{y}" r="8" fill="transparent" data-tip="{t}"><title>{t}</title></circle></a>"#,
            crate::map::escape_xml(h)
        ),
        None => {
            format!(r#"<circle cx="{x}" cy="{y}" r="7" fill="transparent" data-tip="{t}"><title>{t}</title></circle>"#)
        }
    }
}

/// `targets` in a group of their own, last in the SVG (on top of what they describe).
fn append_targets(svg: String, targets: impl Iterator<Item = String>) -> String {
    let mut extra = String::from(r#"<g class="hover-targets">"#);
    extra.extend(targets);
    extra.push_str("</g></svg>");
    match svg.rfind("</svg>") {
        Some(i) => format!("{}{extra}", &svg[..i]),
        None => svg,
    }
}

/// The period at an axis position, only on whole positions (between bars: no label).
fn label_at(periods: &[String], x: f64) -> String {
    if (x - x.round()).abs() > 0.01 || x < -0.01 {
        return String::new();
    }
    periods.get(x.round() as usize).cloned().unwrap_or_default()
}

fn csv_line(fields: &[String]) -> String {
    let quote = |f: &String| {
        let f = carbon_core::text::spreadsheet_cell(f);
        // A CR alone ends a row in many readers too: quoted like LF, a cell never starts a row.
        if f.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", f.replace('"', "\"\""))
        } else {
            f.into_owned()
        }
    };
    fields.iter().map(quote).collect::<Vec<_>>().join(",") + "\n"
}

/// The house layout of every chart: caption, margins, room for axis labels.
fn builder<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
) -> ChartBuilder<'a, 'static, SVGBackend<'b>> {
    let mut b = ChartBuilder::on(root);
    b.caption(title, ("sans-serif", 18)).margin(10).margin_right(30).x_label_area_size(36).y_label_area_size(70);
    b
}

/// Width of the legend column beside a chart's plot.
const LEGEND_W: u32 = 180;

/// One legend entry: its name, colour, and whether a line (else a filled box) marks it.
type LegendItem = (String, RGBColor, bool);

/// The legend in its own column beside the plot (from [`with_legend`]): it never covers data.
fn draw_legend(area: &DrawingArea<SVGBackend, Shift>, items: &[LegendItem]) -> Result<(), Box<dyn std::error::Error>> {
    for (i, (name, c, line)) in items.iter().enumerate() {
        let y = 56 + i as i32 * 20;
        if *line {
            area.draw(&PathElement::new(vec![(4, y), (18, y)], c.stroke_width(2)))?;
        } else {
            area.draw(&Rectangle::new([(6, y - 5), (16, y + 5)], c.filled()))?;
        }
        let name = if name.chars().count() > 22 {
            format!("{}…", name.chars().take(21).collect::<String>())
        } else {
            name.clone()
        };
        area.draw(&Text::new(name, (24, y - 7), ("sans-serif", 13)))?;
    }
    Ok(())
}

/// The plot area and, to its right, the legend's column.
fn with_legend<'a>(
    root: &DrawingArea<SVGBackend<'a>, Shift>,
) -> (DrawingArea<SVGBackend<'a>, Shift>, DrawingArea<SVGBackend<'a>, Shift>) {
    root.split_horizontally(W - LEGEND_W)
}

fn draw<F>(f: F) -> (String, Vec<(i32, i32, String)>)
where
    F: FnOnce(&DrawingArea<SVGBackend, Shift>, &mut Vec<(i32, i32, String)>) -> Result<(), Box<dyn std::error::Error>>,
{
    let mut svg = String::new();
    let mut targets = Vec::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        let _ = root.fill(&WHITE);
        if let Err(e) = f(&root, &mut targets) {
            let _ = root.draw(&Text::new(format!("chart unavailable: {e}"), (20, 20), ("sans-serif", 14)));
        }
        let _ = root.present();
    }
    (svg, targets)
}

/// CO2 per period, stacked by series (team, project, …).
pub fn stacked_co2(ts: &TimeSeries, id: &str, title: &str) -> Chart {
    let n = ts.periods.len();
    let totals: Vec<f64> = (0..n).map(|i| ts.series.iter().map(|s| s.co2_kg[i]).sum()).collect();
    let ymax = totals.iter().copied().fold(0.0, f64::max).max(1e-9) * 1.1;
    let (svg, targets) = draw(|root, targets| {
        let (plot, side) = with_legend(root);
        let mut chart = builder(&plot, title).build_cartesian_2d(-0.5f64..(n.max(1) as f64 - 0.5), 0f64..ymax)?;
        let periods = ts.periods.clone();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(RGBColor(244, 244, 244))
            .bold_line_style(RGBColor(222, 222, 222))
            .x_labels(n.clamp(1, 12) + 1)
            .x_label_formatter(&|x| label_at(&periods, *x))
            .y_desc("CO₂e (kg)")
            .x_desc(format!("{:?} the runs ended", ts.period))
            .draw()?;
        for i in 0..n {
            let mut base = 0.0;
            for (si, s) in ts.series.iter().enumerate() {
                let v = s.co2_kg[i];
                if v <= 0.0 {
                    continue;
                }
                let (x0, x1) = (i as f64 - 0.35, i as f64 + 0.35);
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, base), (x1, base + v)],
                    series_colour(si, &s.key).filled(),
                )))?;
                let (px, py) = chart.backend_coord(&(i as f64, base + v / 2.0));
                targets.push((
                    px,
                    py,
                    format!("{} · {}: {} ({} runs)", ts.periods[i], s.key, units::co2_kg(v), s.runs[i]),
                ));
                base += v;
            }
        }
        let items: Vec<LegendItem> = ts
            .series
            .iter()
            .enumerate()
            .take(PALETTE.len())
            .map(|(si, s)| (s.key.clone(), series_colour(si, &s.key), false))
            .collect();
        draw_legend(&side, &items)?;
        Ok(())
    });
    let mut csv = csv_line(&[
        "period".into(),
        "series".into(),
        "co2_kg".into(),
        "co2_kg_low".into(),
        "co2_kg_high".into(),
        "energy_kwh".into(),
        "runs".into(),
    ]);
    for s in &ts.series {
        for (i, p) in ts.periods.iter().enumerate() {
            csv.push_str(&csv_line(&[
                p.clone(),
                s.key.clone(),
                s.co2_kg[i].to_string(),
                s.co2_kg_low[i].to_string(),
                s.co2_kg_high[i].to_string(),
                s.energy_kwh[i].to_string(),
                s.runs[i].to_string(),
            ]));
        }
    }
    let peak = totals.iter().copied().enumerate().max_by(|a, b| a.1.total_cmp(&b.1));
    let alt = format!(
        "Stacked bars of CO₂e per {:?} over {} periods, by {:?}; total {}{}.",
        ts.period,
        n,
        ts.by,
        units::co2_kg(totals.iter().sum()),
        peak.map(|(i, v)| format!(", highest in {} at {}", ts.periods[i], units::co2_kg(v))).unwrap_or_default()
    );
    Chart { id: id.into(), title: title.into(), alt, svg: with_targets(svg, &targets), csv }
}

/// Running total of CO2 over the periods (all series together).
pub fn cumulative_co2(ts: &TimeSeries, id: &str, title: &str) -> Chart {
    let n = ts.periods.len();
    let mut run = 0.0;
    let cum: Vec<f64> = (0..n)
        .map(|i| {
            run += ts.series.iter().map(|s| s.co2_kg[i]).sum::<f64>();
            run
        })
        .collect();
    let ymax = cum.last().copied().unwrap_or(0.0).max(1e-9) * 1.1;
    let (svg, targets) = draw(|root, targets| {
        let mut chart = builder(root, title).build_cartesian_2d(0f64..(n.max(2) - 1) as f64, 0f64..ymax)?;
        let periods = ts.periods.clone();
        chart
            .configure_mesh()
            .light_line_style(RGBColor(244, 244, 244))
            .bold_line_style(RGBColor(222, 222, 222))
            .x_labels(n.clamp(2, 12))
            .x_label_formatter(&|x| label_at(&periods, *x))
            .y_desc("cumulative CO₂e (kg)")
            .x_desc(format!("{:?}", ts.period))
            .draw()?;
        let pts: Vec<(f64, f64)> = cum.iter().enumerate().map(|(i, v)| (i as f64, *v)).collect();
        chart.draw_series(LineSeries::new(pts.clone(), colour(0).stroke_width(2)))?;
        chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, colour(0).filled())))?;
        for (i, p) in pts.iter().enumerate() {
            let (x, y) = chart.backend_coord(p);
            targets.push((x, y, format!("{}: {} so far", ts.periods[i], units::co2_kg(p.1))));
        }
        Ok(())
    });
    let mut csv = csv_line(&["period".into(), "cumulative_co2_kg".into()]);
    for (p, v) in ts.periods.iter().zip(&cum) {
        csv.push_str(&csv_line(&[p.clone(), v.to_string()]));
    }
    let alt = format!(
        "Line of cumulative CO₂e over {n} periods, reaching {}.",
        units::co2_kg(cum.last().copied().unwrap_or(0.0))
    );
    Chart { id: id.into(), title: title.into(), alt, svg: with_targets(svg, &targets), csv }
}

/// Hours since the run started, for each checkpoint (duration is the elapsed time).
fn hours(c: &carbon_core::model::Checkpoint) -> Option<f64> {
    c.duration_s.map(|s| s / 3600.0)
}

/// Cumulative energy and CO2 over the run, from its checkpoints (CO2 at the run's intensity).
pub fn run_progress(d: &RunDetail) -> Chart {
    let g = d.run.assessment.intensity_g_per_kwh;
    let pts: Vec<(f64, f64)> = d.checkpoints.iter().filter_map(|c| Some((hours(c)?, c.energy_kwh?))).collect();
    let xmax = pts.iter().map(|p| p.0).fold(0.0, f64::max).max(1e-6);
    let ymax = pts.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-12) * 1.1;
    let title = "Cumulative energy and CO₂ over the run";
    let (svg, targets) = draw(|root, targets| {
        let mut chart = builder(root, title)
            .right_y_label_area_size(70)
            .build_cartesian_2d(0f64..xmax, 0f64..ymax)?
            .set_secondary_coord(0f64..xmax, 0f64..ymax * g);
        chart
            .configure_mesh()
            .light_line_style(RGBColor(244, 244, 244))
            .bold_line_style(RGBColor(222, 222, 222))
            .y_desc("energy (kWh)")
            .x_desc("time since start (h)")
            .draw()?;
        chart.configure_secondary_axes().y_desc("CO₂e (g)").draw()?;
        chart
            .draw_series(LineSeries::new(pts.clone(), colour(1).stroke_width(2)))?
            .label("energy (kWh)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], colour(1)));
        chart
            .draw_secondary_series(LineSeries::new(pts.iter().map(|(x, e)| (*x, e * g)), colour(0).stroke_width(1)))?
            .label("CO₂e (g, recomputed)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], colour(0)));
        chart.draw_series(pts.iter().map(|p| Circle::new(*p, 2, colour(1).filled())))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        for p in &pts {
            let (x, y) = chart.backend_coord(p);
            targets.push((
                x,
                y,
                format!("{} h: {}, {}", units::sig3(p.0), units::energy_kwh(p.1), units::co2_kg(p.1 * g / 1000.0)),
            ));
        }
        Ok(())
    });
    let mut csv = csv_line(&["hours".into(), "energy_kwh".into(), "co2_kg".into()]);
    for (h, e) in &pts {
        csv.push_str(&csv_line(&[h.to_string(), e.to_string(), (e * g / 1000.0).to_string()]));
    }
    let alt = format!(
        "Cumulative energy over {} checkpoints, reaching {} after {} h ({}).",
        pts.len(),
        units::energy_kwh(pts.last().map(|p| p.1).unwrap_or(0.0)),
        units::sig3(xmax),
        units::co2_kg(pts.last().map(|p| p.1).unwrap_or(0.0) * g / 1000.0)
    );
    Chart { id: "progress".into(), title: title.into(), alt, svg: with_targets(svg, &targets), csv }
}

/// Average power between consecutive checkpoints, W (energy difference ÷ time difference).
pub fn power_between(d: &RunDetail) -> Chart {
    let pts: Vec<(f64, f64)> = d.checkpoints.iter().filter_map(|c| Some((c.duration_s?, c.energy_kwh?))).collect();
    let power: Vec<(f64, f64)> = pts
        .windows(2)
        .filter(|w| w[1].0 > w[0].0)
        .map(|w| ((w[1].0 / 3600.0), (w[1].1 - w[0].1) * 3.6e6 / (w[1].0 - w[0].0)))
        .collect();
    let xmax = power.iter().map(|p| p.0).fold(0.0, f64::max).max(1e-6);
    let ymax = power.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-6) * 1.15;
    let title = "Power between checkpoints";
    let (svg, targets) = draw(|root, targets| {
        let mut chart = builder(root, title).build_cartesian_2d(0f64..xmax, 0f64..ymax)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(244, 244, 244))
            .bold_line_style(RGBColor(222, 222, 222))
            .y_desc("power (W)")
            .x_desc("time since start (h)")
            .draw()?;
        chart.draw_series(LineSeries::new(power.clone(), colour(2).stroke_width(2)))?;
        chart.draw_series(power.iter().map(|p| Circle::new(*p, 2, colour(2).filled())))?;
        for p in &power {
            let (x, y) = chart.backend_coord(p);
            targets.push((x, y, format!("{} h: {}", units::sig3(p.0), units::power_w(p.1))));
        }
        Ok(())
    });
    let mut csv = csv_line(&["hours".into(), "power_w".into()]);
    for (h, w) in &power {
        csv.push_str(&csv_line(&[h.to_string(), w.to_string()]));
    }
    let alt = if power.is_empty() {
        "Not enough checkpoints to compute power.".to_string()
    } else {
        let avg = power.iter().map(|p| p.1).sum::<f64>() / power.len() as f64;
        format!(
            "Power over {} intervals, mean {}, peak {}.",
            power.len(),
            units::power_w(avg),
            units::power_w(ymax / 1.15)
        )
    };
    Chart { id: "power".into(), title: title.into(), alt, svg: with_targets(svg, &targets), csv }
}

/// CPU, GPU and RAM energy of a run as bars, with each part's share; `None` without a split.
pub fn energy_split(r: &Run) -> Option<Chart> {
    let parts: Vec<(&str, f64)> = [("CPU", r.cpu_energy_kwh), ("GPU", r.gpu_energy_kwh), ("RAM", r.ram_energy_kwh)]
        .into_iter()
        .filter_map(|(n, e)| Some((n, e?)))
        .collect();
    let sum: f64 = parts.iter().map(|p| p.1).sum();
    if sum <= 0.0 {
        return None;
    }
    let ymax = parts.iter().map(|p| p.1).fold(0.0, f64::max) * 1.15;
    let title = "Energy by component";
    let (svg, targets) = draw(|root, targets| {
        let mut chart = builder(root, title).build_cartesian_2d(-0.5f64..(parts.len() as f64 - 0.5), 0f64..ymax)?;
        let names: Vec<String> = parts.iter().map(|p| p.0.to_string()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(RGBColor(244, 244, 244))
            .bold_line_style(RGBColor(222, 222, 222))
            .x_labels(parts.len() + 1)
            .x_label_formatter(&|x| label_at(&names, *x))
            .y_desc("energy (kWh)")
            .x_desc("component")
            .draw()?;
        for (i, (name, e)) in parts.iter().enumerate() {
            let x = i as f64;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x - 0.3, 0.0), (x + 0.3, *e)],
                colour(i + 1).filled(),
            )))?;
            let (px, py) = chart.backend_coord(&(x, e / 2.0));
            targets.push((px, py, format!("{name}: {} ({:.1} %)", units::energy_kwh(*e), e / sum * 100.0)));
        }
        Ok(())
    });
    let mut csv = csv_line(&["component".into(), "energy_kwh".into(), "share_percent".into()]);
    for (n, e) in &parts {
        csv.push_str(&csv_line(&[n.to_string(), e.to_string(), (e / sum * 100.0).to_string()]));
    }
    let alt = parts
        .iter()
        .map(|(n, e)| format!("{n} {} ({:.1} %)", units::energy_kwh(*e), e / sum * 100.0))
        .collect::<Vec<_>>()
        .join(", ");
    Some(Chart {
        id: "split".into(),
        title: title.into(),
        alt: format!("Energy by component: {alt}."),
        svg: with_targets(svg, &targets),
        csv,
    })
}

/// CPU, GPU and RAM utilisation over the run (CodeCarbon 3.2+ rows), or `None` without any.
pub fn utilisation(d: &RunDetail) -> Option<Chart> {
    type Get = fn(&carbon_core::model::Checkpoint) -> Option<f64>;
    let parts: [(&str, Get); 3] = [
        ("CPU", |c| c.cpu_utilization_percent),
        ("GPU", |c| c.gpu_utilization_percent),
        ("RAM", |c| c.ram_utilization_percent),
    ];
    let series: Vec<(&str, Vec<(f64, f64)>)> = parts
        .iter()
        .map(|(name, get)| (*name, d.checkpoints.iter().filter_map(|c| Some((hours(c)?, get(c)?))).collect::<Vec<_>>()))
        .filter(|(_, pts)| !pts.is_empty())
        .collect();
    if series.is_empty() {
        return None;
    }
    let xmax = series.iter().flat_map(|(_, p)| p.iter().map(|x| x.0)).fold(0.0, f64::max).max(1e-6);
    let title = "Utilisation";
    let (svg, targets) = draw(|root, targets| {
        let (plot, side) = with_legend(root);
        let mut chart = builder(&plot, title).build_cartesian_2d(0f64..xmax, 0f64..100f64)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(244, 244, 244))
            .bold_line_style(RGBColor(222, 222, 222))
            .y_desc("utilisation (%)")
            .x_desc("time since start (h)")
            .draw()?;
        for (i, (name, pts)) in series.iter().enumerate() {
            let c = colour(i + 1);
            chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?;
            for p in pts {
                let (x, y) = chart.backend_coord(p);
                targets.push((x, y, format!("{name} at {} h: {:.0} %", units::sig3(p.0), p.1)));
            }
        }
        let items: Vec<LegendItem> =
            series.iter().enumerate().map(|(i, (name, _))| (name.to_string(), colour(i + 1), true)).collect();
        draw_legend(&side, &items)?;
        Ok(())
    });
    let mut csv = csv_line(&["series".into(), "hours".into(), "percent".into()]);
    for (name, pts) in &series {
        for (h, v) in pts {
            csv.push_str(&csv_line(&[name.to_string(), h.to_string(), v.to_string()]));
        }
    }
    let alt = series
        .iter()
        .map(|(n, p)| format!("{n} mean {:.0} %", p.iter().map(|x| x.1).sum::<f64>() / p.len() as f64))
        .collect::<Vec<_>>()
        .join(", ");
    Some(Chart {
        id: "utilisation".into(),
        title: title.into(),
        alt: format!("Utilisation over the run: {alt}."),
        svg: with_targets(svg, &targets),
        csv,
    })
}

/// Runs of an experiment: duration against recomputed CO2, with each run's range as a bar.
pub fn duration_vs_co2(runs: &[&Run], id: &str, title: &str) -> Chart {
    let pts: Vec<(f64, f64, f64, f64, String)> = runs
        .iter()
        .filter_map(|r| {
            let a = &r.assessment;
            Some((
                r.duration_s? / 3600.0,
                a.co2_kg? * 1000.0,
                a.co2_kg_low? * 1000.0,
                a.co2_kg_high? * 1000.0,
                r.run_id.clone(),
            ))
        })
        .collect();
    let xmax = pts.iter().map(|p| p.0).fold(0.0, f64::max).max(1e-6) * 1.1;
    let ymax = pts.iter().map(|p| p.3).fold(0.0, f64::max).max(1e-9) * 1.1;
    let (svg, targets) = draw(|root, targets| {
        let mut chart = builder(root, title).build_cartesian_2d(0f64..xmax, 0f64..ymax)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(244, 244, 244))
            .bold_line_style(RGBColor(222, 222, 222))
            .y_desc("CO₂e (g)")
            .x_desc("duration (h)")
            .draw()?;
        for p in &pts {
            chart.draw_series(std::iter::once(PathElement::new(vec![(p.0, p.2), (p.0, p.3)], colour(7))))?;
        }
        chart.draw_series(pts.iter().map(|p| Circle::new((p.0, p.1), 4, colour(0).filled())))?;
        for p in &pts {
            let (x, y) = chart.backend_coord(&(p.0, p.1));
            let short: String = p.4.chars().take(8).collect();
            targets.push((
                x,
                y,
                format!(
                    "run {short}: {} h, {} ({}–{})",
                    units::sig3(p.0),
                    units::co2_kg(p.1 / 1000.0),
                    units::co2_kg(p.2 / 1000.0),
                    units::co2_kg(p.3 / 1000.0)
                ),
            ));
        }
        Ok(())
    });
    let mut csv =
        csv_line(&["run_id".into(), "duration_h".into(), "co2_kg".into(), "co2_kg_low".into(), "co2_kg_high".into()]);
    for p in &pts {
        csv.push_str(&csv_line(&[
            p.4.clone(),
            p.0.to_string(),
            (p.1 / 1000.0).to_string(),
            (p.2 / 1000.0).to_string(),
            (p.3 / 1000.0).to_string(),
        ]));
    }
    let alt = format!("Scatter of {} runs: duration against CO₂e, with each run's range as a vertical bar.", pts.len());
    Chart { id: id.into(), title: title.into(), alt, svg: with_targets(svg, &targets), csv }
}

/// A metric against CO2 (or energy) per run, from a [`ParetoView`]: each run with its cost range
/// as a bar, the front joined, the knee and the δ run ringed, runs joined by folder hollow. With
/// `link`, each point links to the page it names for a run id.
pub fn pareto(v: &carbon_core::pareto::ParetoView, link: Option<&dyn Fn(&str) -> String>) -> Chart {
    use carbon_core::pareto::{Axis, Scale};
    let metric = match (&v.metric, &v.metric_unit) {
        (Some(m), Some(u)) => format!("{m} ({u})"),
        (m, _) => m.clone().unwrap_or_default(),
    };
    type Range = (Option<f64>, Option<f64>);
    let (raw, lo_hi): (Vec<Option<f64>>, Vec<Range>) = match v.axis {
        Axis::Co2 => v.points.iter().map(|p| (p.co2_kg, (p.co2_kg_low, p.co2_kg_high))).unzip(),
        Axis::Energy => v.points.iter().map(|p| (p.energy_kwh, (p.energy_kwh_low, p.energy_kwh_high))).unzip(),
    };
    let top = lo_hi.iter().zip(&raw).filter_map(|((_, h), c)| h.or(*c)).fold(0.0, f64::max);
    // Small figures read better in g or Wh.
    let (factor, unit) = match (v.axis, top < 1.0) {
        (Axis::Co2, true) => (1000.0, "g CO₂e"),
        (Axis::Co2, false) => (1.0, "kg CO₂e"),
        (Axis::Energy, true) => (1000.0, "Wh"),
        (Axis::Energy, false) => (1.0, "kWh"),
    };
    let log = v.scale == Scale::Log;
    // On a log axis the plot holds log10 of the cost; zero or missing costs are not drawn.
    let tx = |c: f64| if log { (c * factor).log10() } else { c * factor };
    let drawable = |c: f64| c.is_finite() && (!log || c > 0.0);
    let idx: Vec<usize> = (0..v.points.len()).filter(|&i| raw[i].is_some_and(drawable)).collect();
    let xs: Vec<f64> =
        idx.iter().flat_map(|&i| [raw[i], lo_hi[i].0, lo_hi[i].1]).flatten().filter(|c| drawable(*c)).map(tx).collect();
    let (mut xmin, mut xmax) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    if !xmin.is_finite() {
        (xmin, xmax) = (0.0, 1.0);
    }
    let pad = ((xmax - xmin) * 0.06).max(if log { 0.05 } else { 1e-9 });
    let (xmin, xmax) = (if log { xmin - pad } else { (xmin - pad).max(0.0) }, xmax + pad);
    let ys: Vec<f64> = idx.iter().map(|&i| v.points[i].value).collect();
    let (ymin, ymax) = ys.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| (a.min(y), b.max(y)));
    let (ymin, ymax) = if ymin.is_finite() { (ymin, ymax) } else { (0.0, 1.0) };
    let ypad = ((ymax - ymin) * 0.08).max(ymax.abs() * 1e-3).max(1e-9);
    let (ymin, ymax) = (ymin - ypad, ymax + ypad);
    let title = format!("{metric} against {}", if v.axis == Axis::Co2 { "CO₂e" } else { "energy" });
    let is = |id: &Option<String>, p: &carbon_core::pareto::ParetoPoint| id.as_deref() == Some(p.run_id.as_str());
    let (svg, targets) = {
        let mut targets: Vec<(i32, i32, String, String)> = Vec::new();
        let (svg, _) = draw(|root, _| {
            let (plot, legend) = with_legend(root);
            let mut chart = builder(&plot, &title).build_cartesian_2d(xmin..xmax, ymin..ymax)?;
            let x_desc = format!("{unit}{}", if log { " (log scale)" } else { "" });
            chart
                .configure_mesh()
                .light_line_style(RGBColor(244, 244, 244))
                .bold_line_style(RGBColor(222, 222, 222))
                .x_desc(x_desc)
                .y_desc(metric.as_str())
                .x_label_formatter(&|x| if log { units::sig3(10f64.powf(*x)) } else { units::sig3(*x) })
                .y_label_formatter(&|y| units::sig4(*y))
                .draw()?;
            let grey = RGBColor(150, 150, 150);
            for &i in &idx {
                let p = &v.points[i];
                let (Some(l), Some(h)) = lo_hi[i] else { continue };
                if drawable(l) && drawable(h) {
                    let c = if p.on_front { colour(0).mix(0.6) } else { grey.mix(0.5) };
                    chart
                        .draw_series(std::iter::once(PathElement::new(vec![(tx(l), p.value), (tx(h), p.value)], c)))?;
                }
            }
            let front: Vec<(f64, f64)> = v
                .front
                .iter()
                .filter_map(|id| v.points.iter().position(|p| &p.run_id == id))
                .filter(|&i| raw[i].is_some_and(drawable))
                .map(|i| (tx(raw[i].unwrap_or_default()), v.points[i].value))
                .collect();
            chart.draw_series(LineSeries::new(front, colour(0).stroke_width(2)))?;
            // Coloured by a hyper-parameter: a colour per value (after the three the front and
            // its rings use), the rest grey.
            let shown_groups = v.groups.len().min(GROUP_COLOURS);
            let group_colour = |g: Option<&str>| match v.groups.iter().position(|x| Some(x.as_str()) == g) {
                Some(k) if k < shown_groups => colour(3 + k),
                _ => grey,
            };
            for &i in &idx {
                let p = &v.points[i];
                let at = (tx(raw[i].unwrap_or_default()), p.value);
                let c = match (&v.colour, p.on_front) {
                    (Some(_), _) => group_colour(p.group.as_deref()),
                    (None, true) => colour(0),
                    (None, false) => grey,
                };
                let style = if p.joined_by_guess.is_some() { c.stroke_width(2) } else { c.filled() };
                chart.draw_series(std::iter::once(Circle::new(at, 4, style)))?;
                if is(&v.knee_run_id, p) {
                    chart.draw_series(std::iter::once(Circle::new(at, 9, colour(1).stroke_width(2))))?;
                }
                if is(&v.within_delta_run_id, p) {
                    chart.draw_series(std::iter::once(Circle::new(at, 13, colour(2).stroke_width(2))))?;
                }
                let (x, y) = chart.backend_coord(&at);
                let cost = match v.axis {
                    Axis::Co2 => p.co2_kg.map(units::co2_kg),
                    Axis::Energy => p.energy_kwh.map(units::energy_kwh),
                };
                let range = match lo_hi[i] {
                    (Some(l), Some(h)) if v.axis == Axis::Co2 => {
                        format!(" ({}–{})", units::co2_kg(l), units::co2_kg(h))
                    }
                    (Some(l), Some(h)) => format!(" ({}–{})", units::energy_kwh(l), units::energy_kwh(h)),
                    _ => String::new(),
                };
                let mut tip = format!(
                    "run {}: {metric} {} at {}{range}{}",
                    p.run_id.chars().take(8).collect::<String>(),
                    units::sig4(p.value),
                    cost.unwrap_or_else(|| "–".into()),
                    if p.on_front { ", on the front" } else { ", beaten" }
                );
                for (id, word) in [(&v.knee_run_id, "knee"), (&v.within_delta_run_id, "cheapest within δ")] {
                    if is(id, p) {
                        tip.push_str(&format!(", {word}"));
                    }
                }
                if p.joined_by_guess.is_some() {
                    tip.push_str(", metric joined by folder (a guess)");
                }
                if let (Some(param), Some(g)) = (&v.colour, &p.group) {
                    tip.push_str(&format!(", {param} {g}"));
                }
                let href = link.map(|l| l(&p.run_id)).unwrap_or_default();
                targets.push((x, y, tip, href));
            }
            let mut items: Vec<LegendItem> = match &v.colour {
                None => vec![("front".into(), colour(0), true), ("beaten run".into(), grey, false)],
                Some(param) => {
                    let mut g: Vec<LegendItem> = vec![("front (line)".into(), colour(0), true)];
                    g.extend(v.groups.iter().take(shown_groups).enumerate().map(|(k, value)| {
                        (format!("{param} = {}", value.chars().take(14).collect::<String>()), colour(3 + k), false)
                    }));
                    if v.groups.len() > shown_groups {
                        g.push((format!("{} other values", v.groups.len() - shown_groups), grey, false));
                    }
                    g
                }
            };
            items.extend::<Vec<LegendItem>>(vec![
                ("knee (ring)".into(), colour(1), true),
                ("within δ (ring)".into(), colour(2), true),
                ("hollow: by folder".into(), RGBColor(90, 90, 90), true),
                ("bar: cost range".into(), RGBColor(200, 200, 200), true),
            ]);
            draw_legend(&legend, &items)
        });
        (svg, targets)
    };
    let svg = with_link_targets(svg, &targets);
    let mut header: Vec<String> =
        ["run_id", "value", "co2_kg", "co2_kg_low", "co2_kg_high", "energy_kwh", "on_front", "joined_by_guess"]
            .map(String::from)
            .to_vec();
    // Coloured by a hyper-parameter: its value, in a column of its name.
    header.extend(v.colour.clone());
    let mut csv = csv_line(&header);
    let opt = |x: Option<f64>| x.map(|x| x.to_string()).unwrap_or_default();
    for p in &v.points {
        let mut cells = vec![
            p.run_id.clone(),
            p.value.to_string(),
            opt(p.co2_kg),
            opt(p.co2_kg_low),
            opt(p.co2_kg_high),
            opt(p.energy_kwh),
            p.on_front.to_string(),
            p.joined_by_guess.is_some().to_string(),
        ];
        if v.colour.is_some() {
            cells.push(p.group.clone().unwrap_or_default());
        }
        csv.push_str(&csv_line(&cells));
    }
    let alt = format!(
        "Scatter of {} runs: {metric} against {}; {} on the front{}.",
        v.points.len(),
        unit,
        v.front.len(),
        v.knee_run_id
            .as_deref()
            .map(|k| format!(", knee at run {}", k.chars().take(8).collect::<String>()))
            .unwrap_or_default()
    );
    Chart { id: "pareto".into(), title, alt, svg, csv }
}

/// The forecast as steps (hours from now on x), the window chosen shaded, and starting now
/// marked: the planner's chart.
pub fn plan_forecast(p: &carbon_core::schedule::PlanAnswer) -> Chart {
    use carbon_core::time::parse_rfc3339;
    let steps = carbon_core::schedule::steps_of(&p.forecast);
    let now = parse_rfc3339(&p.now).unwrap_or(0);
    let h = |t: i64| (t - now) as f64 / 3600.0;
    let xmin = steps.first().map_or(0.0, |s| h(s.start)).min(0.0);
    let xmax = steps.last().map_or(1.0, |s| h(s.end)).max(xmin + 1e-3);
    let ymax = steps.iter().map(|s| s.g_per_kwh).fold(0.0, f64::max).max(1.0) * 1.15;
    let best = p.best_start.as_deref().and_then(parse_rfc3339).map(|s| (h(s), h(s + p.duration_s)));
    let title = "Forecast grid intensity, and the best window";
    let (svg, targets) = draw(|root, targets| {
        let mut chart = builder(root, title).build_cartesian_2d(xmin..xmax, 0f64..ymax)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(244, 244, 244))
            .bold_line_style(RGBColor(222, 222, 222))
            .y_desc("g CO₂e/kWh")
            .x_desc("hours from now")
            .draw()?;
        if let Some((a, b)) = best {
            chart.draw_series(std::iter::once(Rectangle::new([(a, 0.0), (b, ymax)], colour(1).mix(0.18).filled())))?;
        }
        chart.draw_series(std::iter::once(PathElement::new(vec![(0.0, 0.0), (0.0, ymax)], BLACK.mix(0.5))))?;
        // Each value holds until the next: draw the steps, with holes left open.
        for s in &steps {
            chart.draw_series(LineSeries::new(
                vec![(h(s.start), s.g_per_kwh), (h(s.end), s.g_per_kwh)],
                colour(2).stroke_width(2),
            ))?;
            let (x, y) = chart.backend_coord(&((h(s.start) + h(s.end)) / 2.0, s.g_per_kwh));
            targets.push((x, y, format!("{}: {}", carbon_core::time::rfc3339(s.start), units::intensity(s.g_per_kwh))));
        }
        Ok(())
    });
    let mut csv = csv_line(&["start".into(), "end".into(), "g_co2e_per_kwh".into()]);
    for f in &p.forecast {
        csv.push_str(&csv_line(&[f.start.clone(), f.end.clone(), f.g_per_kwh.to_string()]));
    }
    let alt = match (&p.best_start, p.best_mean_g_per_kwh) {
        (Some(s), Some(m)) => format!(
            "Forecast of {} values; the best window starts {s}, mean {}; the shaded band is the window.",
            steps.len(),
            units::intensity(m)
        ),
        _ => format!("Forecast of {} values; no window found.", steps.len()),
    };
    Chart { id: "plan-forecast".into(), title: title.into(), alt, svg: with_targets(svg, &targets), csv }
}

/// A budget's burn-down: spent by the end of each day (its range shaded), the even line from
/// nothing to the amount over the period, the projection to the period's end (dashed, its range
/// shaded) and the amount.
pub fn budget_burndown(s: &carbon_core::budget::Standing, id: &str) -> Chart {
    use carbon_core::budget::Quantity;
    let q = s.budget.quantity;
    let fmt = |v: f64| match q {
        Quantity::Co2Kg => units::co2_kg(v),
        Quantity::EnergyKwh => units::energy_kwh(v),
    };
    let start = carbon_core::time::parse_day(&s.period_start);
    let end = carbon_core::time::parse_day(&s.period_end);
    let n_days = match (start, end) {
        (Some(a), Some(b)) => (b - a).num_days().max(1) as f64,
        _ => s.days.len().max(1) as f64,
    };
    let now = carbon_core::time::parse_iso(&s.now)
        .zip(start)
        .map(|(t, a)| (t - a.and_hms_opt(0, 0, 0).unwrap_or(t)).num_seconds() as f64 / 86_400.0)
        .unwrap_or(s.days.len() as f64);
    let amount = s.budget.amount;
    let ymax = [amount, s.projected.high, s.spent.high].into_iter().fold(0.0, f64::max).max(1e-9) * 1.1;
    let title = format!("Budget of {}: {} per {}", s.budget.scope.label(), fmt(amount), s.budget.period.name());
    // Day i's cumulative is at the end of day i (x = i + 1), and nothing at x = 0; today's at now.
    let point = |i: usize| if i + 1 == s.days.len() { now } else { (i + 1) as f64 };
    let (svg, targets) = draw(|root, targets| {
        let mut chart = builder(root, &title).build_cartesian_2d(0f64..n_days, 0f64..ymax)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(244, 244, 244))
            .bold_line_style(RGBColor(222, 222, 222))
            .y_desc(q.unit())
            .x_desc(format!("days from {}", s.period_start))
            .draw()?;
        // The amount, and the even line.
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(0.0, amount), (n_days, amount)],
            colour(3).stroke_width(2),
        )))?;
        chart.draw_series(std::iter::once(PathElement::new(vec![(0.0, 0.0), (n_days, amount)], BLACK.mix(0.35))))?;
        // Spent, with its range.
        let mut band: Vec<(f64, f64)> = std::iter::once((0.0, 0.0))
            .chain(s.days.iter().enumerate().map(|(i, d)| (point(i), d.cumulative.high)))
            .collect();
        band.extend(s.days.iter().enumerate().rev().map(|(i, d)| (point(i), d.cumulative.low)));
        band.push((0.0, 0.0));
        chart.draw_series(std::iter::once(Polygon::new(band, colour(0).mix(0.18).filled())))?;
        let spent: Vec<(f64, f64)> = std::iter::once((0.0, 0.0))
            .chain(s.days.iter().enumerate().map(|(i, d)| (point(i), d.cumulative.value)))
            .collect();
        chart.draw_series(LineSeries::new(spent.clone(), colour(0).stroke_width(2)))?;
        // The projection from now to the period's end, with its range.
        let (p, lo, hi) = (s.projected.value, s.projected.low, s.projected.high);
        chart.draw_series(std::iter::once(Polygon::new(
            vec![(now, s.spent.low), (n_days, lo), (n_days, hi), (now, s.spent.high)],
            colour(1).mix(0.15).filled(),
        )))?;
        chart.draw_series(DashedLineSeries::new(
            vec![(now, s.spent.value), (n_days, p)],
            6,
            4,
            colour(1).stroke_width(2),
        ))?;
        for (i, d) in s.days.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(point(i), d.cumulative.value));
            targets.push((
                x,
                y,
                format!(
                    "{}: {} spent by its end ({} – {})",
                    d.day,
                    fmt(d.cumulative.value),
                    fmt(d.cumulative.low),
                    fmt(d.cumulative.high)
                ),
            ));
        }
        let (x, y) = chart.backend_coord(&(n_days, p));
        targets.push((x, y, format!("projected by {}: {} ({} – {})", s.period_end, fmt(p), fmt(lo), fmt(hi))));
        Ok(())
    });
    let mut csv = csv_line(&["day".into(), "spent".into(), "spent_low".into(), "spent_high".into(), "unit".into()]);
    for d in &s.days {
        csv.push_str(&csv_line(&[
            d.day.clone(),
            d.cumulative.value.to_string(),
            d.cumulative.low.to_string(),
            d.cumulative.high.to_string(),
            q.unit().into(),
        ]));
    }
    let alt = format!(
        "Burn-down of the budget of {} for the period from {} to {}: {} spent ({:.0} %), {} projected by its end ({:.0} %){}. The solid line is what was spent, the grey line the even pace, the dashed line the projection from the last {} days' rate.",
        s.budget.scope.label(),
        s.period_start,
        s.period_end,
        fmt(s.spent.value),
        s.percent_spent,
        fmt(s.projected.value),
        s.percent_projected,
        s.runs_out_on.as_ref().map(|d| format!("; it runs out on {d} at this rate")).unwrap_or_default(),
        carbon_core::budget::RATE_DAYS
    );
    Chart { id: id.into(), title, alt, svg: with_targets(svg, &targets), csv }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbon_core::model::{Assessment, Checkpoint};
    use carbon_core::timeseries::{timeseries, Dimension, Period};

    fn run(id: &str, project: &str, ended: &str, co2: f64) -> Run {
        Run {
            run_id: id.into(),
            project_name: Some(project.into()),
            ended_at: carbon_core::time::parse_iso(ended),
            duration_s: Some(3600.0 * co2),
            energy_kwh: Some(co2 * 2.0),
            assessment: Assessment {
                co2_kg: Some(co2),
                co2_kg_low: Some(co2 * 0.8),
                co2_kg_high: Some(co2 * 1.2),
                intensity_g_per_kwh: 500.0,
                ..Assessment::default()
            },
            ..Run::default()
        }
    }

    #[test]
    fn stacked_bars_hold_one_bar_per_nonzero_cell_and_the_csv_every_cell() {
        let runs = [
            run("a", "p", "2026-01-10T00:00:00", 1.0),
            run("b", "q", "2026-01-11T00:00:00", 2.0),
            run("c", "p", "2026-03-01T00:00:00", 4.0),
        ];
        let refs: Vec<&Run> = runs.iter().collect();
        let ts = timeseries(&refs, Period::Month, Dimension::Project);
        let c = stacked_co2(&ts, "monthly", "CO₂e per month");
        assert_eq!(c.svg.matches("data-tip=").count(), 3, "p in Jan and Mar, q in Jan");
        assert!(c.svg.contains("CO₂e (kg)") && c.svg.contains("CO₂e per month"));
        assert_eq!(c.csv.lines().count(), 1 + 2 * 3, "header + 2 series × 3 months");
        assert!(c.alt.contains("total 7 kg CO₂e"), "{}", c.alt);
        // The legend has a column of its own: its names are drawn right of every bar, and every
        // bar ends left of it.
        let plot_end = f64::from(W - LEGEND_W);
        let attr = |tag: &str, name: &str| -> Vec<f64> {
            c.svg
                .split(&format!("<{tag} "))
                .skip(1)
                .filter_map(|t| t.split(&format!("{name}=\"")).nth(1)?.split('"').next()?.parse().ok())
                .collect()
        };
        let texts: Vec<&str> = c.svg.split("<text ").skip(1).collect();
        for key in ["p", "q"] {
            let t = texts.iter().find(|t| t.contains(&format!(">\n{key}\n</text>"))).expect("a legend entry");
            let x: f64 =
                t.split("x=\"").nth(1).and_then(|v| v.split('"').next()).and_then(|v| v.parse().ok()).expect("x");
            assert!(x >= plot_end, "legend {key} at x={x}");
        }
        let rects_x = attr("rect", "x");
        let rects_w = attr("rect", "width");
        let bars: Vec<(f64, f64)> =
            rects_x.iter().zip(&rects_w).map(|(x, w)| (*x, *w)).filter(|(_, w)| *w < 200.0).collect();
        assert!(bars.iter().filter(|(x, _)| *x < plot_end).all(|(x, w)| x + w <= plot_end), "{bars:?}");
        let cum = cumulative_co2(&ts, "cumulative", "Cumulative");
        assert_eq!(cum.svg.matches("data-tip=").count(), 3);
        assert!(cum.csv.ends_with("2026-03,7\n"), "{}", cum.csv);
    }

    #[test]
    fn run_charts_have_a_point_per_checkpoint_and_power_per_interval() {
        let mut r = run("a", "p", "2026-01-10T00:00:00", 1.0);
        r.assessment.intensity_g_per_kwh = 400.0;
        let checkpoints = (1..=4)
            .map(|i| Checkpoint {
                duration_s: Some(900.0 * i as f64),
                energy_kwh: Some(0.1 * i as f64),
                ..Checkpoint::default()
            })
            .collect();
        let d = RunDetail { run: r, checkpoints };
        assert!(utilisation(&d).is_none(), "no utilisation columns, no chart");
        let p = run_progress(&d);
        assert_eq!(p.svg.matches("data-tip=").count(), 4);
        assert!(p.svg.contains("energy (kWh)") && p.svg.contains("CO₂e (g)") && p.svg.contains("time since start (h)"));
        let w = power_between(&d);
        assert_eq!(w.svg.matches("data-tip=").count(), 3);
        // 0.1 kWh every 15 minutes = 400 W.
        let watts: Vec<f64> = w.csv.lines().skip(1).filter_map(|l| l.split(',').nth(1)?.parse().ok()).collect();
        assert_eq!(watts.len(), 3);
        assert!(watts.iter().all(|w| (w - 400.0).abs() < 1e-9), "{watts:?}");
        assert!(w.alt.contains("400 W"), "{}", w.alt);
    }

    #[test]
    fn the_energy_split_has_a_bar_per_measured_component() {
        let mut r = run("a", "p", "2026-01-10T00:00:00", 1.0);
        assert!(energy_split(&r).is_none(), "no split, no chart");
        r.cpu_energy_kwh = Some(0.5);
        r.gpu_energy_kwh = Some(1.5);
        let c = energy_split(&r).expect("a split");
        assert_eq!(c.svg.matches("data-tip=").count(), 2);
        assert!(c.alt.contains("GPU 1.5 kWh (75.0 %)"), "{}", c.alt);
    }

    #[test]
    fn utilisation_draws_a_line_per_measured_part() {
        let checkpoints = (1..=3)
            .map(|i| Checkpoint {
                duration_s: Some(600.0 * i as f64),
                cpu_utilization_percent: Some(20.0 * i as f64),
                gpu_utilization_percent: Some(90.0),
                ..Checkpoint::default()
            })
            .collect();
        let d = RunDetail { run: run("a", "p", "2026-01-10T00:00:00", 1.0), checkpoints };
        let c = utilisation(&d).expect("CPU and GPU utilisation present");
        assert_eq!(c.svg.matches("data-tip=").count(), 6, "3 CPU + 3 GPU points, no RAM");
        assert!(c.alt.contains("CPU mean 40 %") && c.alt.contains("GPU mean 90 %"), "{}", c.alt);
    }

    #[test]
    fn text_from_the_csvs_is_escaped_in_the_svg() {
        let runs = [run("a", "<script>alert(1)</script>", "2026-01-10T00:00:00", 1.0)];
        let refs: Vec<&Run> = runs.iter().collect();
        let c = stacked_co2(&timeseries(&refs, Period::Month, Dimension::Project), "x", "t");
        assert!(!c.svg.contains("<script>"));
        assert!(c.svg.contains("&lt;script&gt;"));
    }

    #[test]
    fn csv_cells_cannot_become_formulas() {
        assert_eq!(
            csv_line(&["=HYPERLINK(1)".into(), "-5".into(), "-x".into(), "a,b".into()]),
            "'=HYPERLINK(1),-5,'-x,\"a,b\"\n"
        );
        // A project named to start a row of its own, or to hide a formula behind a tab or CR.
        assert_eq!(
            csv_line(&["p\r=cmd|' /C calc'!A0".into(), "\t=1+1".into(), "\r@SUM(A1)".into(), "a\nb".into()]),
            "\"p\r=cmd|' /C calc'!A0\",'\t=1+1,\"'\r@SUM(A1)\",\"a\nb\"\n"
        );
        let line = csv_line(&["x\ry".into(), "z".into()]);
        assert_eq!(carbon_core::records::records(&line).collect_owned().len(), 1, "one row, whatever the cells");
    }

    #[test]
    fn experiment_scatter_has_a_point_per_run() {
        let runs = [run("a", "p", "2026-01-10T00:00:00", 1.0), run("b", "p", "2026-01-11T00:00:00", 2.0)];
        let refs: Vec<&Run> = runs.iter().collect();
        let c = duration_vs_co2(&refs, "scatter", "Duration against CO₂");
        assert_eq!(c.svg.matches("data-tip=").count(), 2);
        assert!(c.svg.contains("duration (h)"));
    }
}
