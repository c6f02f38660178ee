//! The report as one self-contained HTML file (inline CSS, charts as inline SVG, its data as
//! JSON in the page; no request leaves it, no script is needed to read it; A4 and letter print),
//! and its statements alone: LaTeX, Markdown, model-card YAML, BibTeX. Served by
//! `GET /api/v1/report` and written by `carbon-dash report`.

use carbon_core::catalog::Catalog;
use carbon_core::model::{DatasetMode, Run, RunDetail};
use carbon_core::pages::Chart;
use carbon_core::report::{Report, ReportScope};
use carbon_core::units::{co2_kg, energy_kwh, sig3, sig4};
use charts::map::escape_xml as esc;
use std::fmt::Write;

/// What a report is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Tex,
    Md,
    Yaml,
    Bib,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "html" => Ok(Format::Html),
            "tex" | "latex" => Ok(Format::Tex),
            "md" | "markdown" => Ok(Format::Md),
            "yaml" | "yml" => Ok(Format::Yaml),
            "bib" | "bibtex" => Ok(Format::Bib),
            other => Err(format!("format '{other}': one of html, tex, md, yaml, bib")),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Html => "text/html; charset=utf-8",
            Format::Tex => "application/x-tex; charset=utf-8",
            Format::Md => "text/markdown; charset=utf-8",
            Format::Yaml => "application/yaml; charset=utf-8",
            Format::Bib => "application/x-bibtex; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Tex => "tex",
            Format::Md => "md",
            Format::Yaml => "yaml",
            Format::Bib => "bib",
        }
    }
}

/// Why there is no report: nothing matches (404 for the API), or the query is wrong (400).
#[derive(Debug, Clone, PartialEq)]
pub enum ReportError {
    NoRuns(String),
    Bad(String),
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportError::NoRuns(why) | ReportError::Bad(why) => f.write_str(why),
        }
    }
}

/// A file name for the report of `scope`: letters, digits, `-` and `_` only.
pub fn file_name(scope: &ReportScope, format: Format) -> String {
    let t: String = scope
        .title()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c.to_ascii_lowercase() } else { '-' })
        .take(80)
        .collect();
    format!("carbon-report-{t}.{}", format.extension())
}

/// The report of `scope` in `format`, generated at `now` (unix seconds); `Err` says why there is
/// none (no run matches).
pub fn render(cat: &Catalog, scope: &ReportScope, format: Format, now: i64) -> Result<String, ReportError> {
    let (report, scope) = prepare(cat, scope, now)?;
    let detail = scope.run_id.as_ref().and_then(|id| cat.run_detail(id, DatasetMode::Latest).ok().flatten());
    Ok(output(cat, &scope, &report, format, detail))
}

/// [`render`], with a collected run's checkpoints read from its database (a run report's chart).
pub async fn render_async(cat: &Catalog, scope: &ReportScope, format: Format, now: i64) -> Result<String, ReportError> {
    let (report, scope) = prepare(cat, scope, now)?;
    let detail = match (&scope.run_id, format) {
        (Some(id), Format::Html) => cat.detail(id, DatasetMode::Latest, false).await.ok().flatten().map(|(d, _)| d),
        _ => None,
    };
    Ok(output(cat, &scope, &report, format, detail))
}

/// The report of `scope` (its run named in full), or why there is none.
fn prepare(cat: &Catalog, scope: &ReportScope, now: i64) -> Result<(Report, ReportScope), ReportError> {
    let runs = cat.runs(DatasetMode::Latest);
    if runs.is_empty() {
        return Err(ReportError::NoRuns(
            "no runs: the folder holds no CodeCarbon log (the Files page says what was read)".into(),
        ));
    }
    // A run by its id, or by the start of it the pages show (8 characters), when only one matches.
    let mut scope = scope.clone();
    if let Some(id) = scope.run_id.clone() {
        if cat.run(&id, DatasetMode::Latest).is_none() {
            let matching: Vec<&str> = runs
                .iter()
                .map(|r| r.run_id.as_str())
                .filter(|r| id.len() >= 4 && r.starts_with(id.as_str()))
                .collect();
            match matching.as_slice() {
                [one] => scope.run_id = Some(one.to_string()),
                [] => {
                    return Err(ReportError::NoRuns(format!(
                        "no run '{id}' (give its id, or the first 8 characters the pages show)"
                    )))
                }
                many => {
                    return Err(ReportError::Bad(format!("{} runs start with '{id}': give more of the id", many.len())))
                }
            }
        }
    }
    let scope = &scope;
    let report = cat.report(scope, now).ok_or_else(|| {
        // Say what there is to choose from.
        let q = &scope.selection;
        let (what, mut have): (&str, Vec<String>) = if q.experiment.is_some() {
            ("experiments", runs.iter().filter_map(|r| r.experiment_id.clone()).collect())
        } else if q.project.is_some() {
            ("projects", runs.iter().filter_map(|r| r.project_name.clone()).collect())
        } else {
            ("teams", runs.iter().filter_map(|r| r.team.clone()).collect())
        };
        have.sort();
        have.dedup();
        let n = have.len();
        have.truncate(10);
        ReportError::NoRuns(format!(
            "no runs match {}; the {what} are: {}{}",
            q.scope(),
            have.join(", "),
            if n > 10 { format!(" and {} more", n - 10) } else { String::new() }
        ))
    })?;
    // A metric asked for that no run of the selection has is a mistake, not an empty section.
    let shown = |m: &String| report.pareto.as_ref().is_some_and(|p| p.metric.as_ref() == Some(m));
    if let Some(m) = scope.selection.metric.as_ref().filter(|m| scope.run_id.is_none() && !shown(m)) {
        // The report has no Pareto section for it (no run has it, or none has a cost): which?
        let have = cat.pareto(&scope.selection).metrics;
        if !have.iter().any(|x| &x.name == m) {
            let names: Vec<&str> = have.iter().map(|x| x.name.as_str()).collect();
            return Err(ReportError::Bad(format!(
                "metric '{m}': no run of {} has it (they have: {})",
                scope.selection.scope(),
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            )));
        }
    }
    Ok((report, scope.clone()))
}

fn output(cat: &Catalog, scope: &ReportScope, report: &Report, format: Format, detail: Option<RunDetail>) -> String {
    match format {
        Format::Tex => report.latex(),
        Format::Md => report.markdown(),
        Format::Yaml => report.model_card_yaml(),
        Format::Bib => report.bibtex(),
        Format::Html => html(report, &charts_of(cat, scope, report, detail)),
    }
}

/// The dashboard's charts for the report: a run's own (from `detail`), or the selection's trend
/// and runs.
fn charts_of(cat: &Catalog, scope: &ReportScope, report: &Report, detail: Option<RunDetail>) -> Vec<Chart> {
    use carbon_core::timeseries::{timeseries, Dimension, Period};
    let mut out = Vec::new();
    if scope.run_id.is_some() {
        if let Some(d) = detail {
            out.push(charts::run_progress(&d));
            out.extend(charts::energy_split(&d.run));
        }
        return out;
    }
    let runs: Vec<&Run> = cat.selected(&scope.selection);
    let by = if scope.selection.experiment.is_some() { Dimension::Experiment } else { Dimension::Project };
    let ts = timeseries(&runs, Period::Month, by).top(charts::MAX_SERIES - 1);
    // One month is one bar: the totals say it already.
    if ts.periods.len() > 1 {
        out.push(charts::stacked_co2(&ts, "monthly", "CO₂e per month"));
    }
    let plotted = carbon_core::pages::ExperimentPage::plotted(&runs);
    out.push(charts::duration_vs_co2(&plotted, "duration-co2", "Duration against CO₂e, per run"));
    if let Some(p) = &report.pareto {
        // Trimmed already by the report.
        out.push(charts::pareto(p, None));
    }
    out
}

const STYLE: &str = r#"
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d2a24;max-width:190mm;margin:0 auto;padding:12mm 8mm}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:22px 0 6px;border-bottom:1px solid #cfd8d3;padding-bottom:2px}
h3{font-size:15px;margin:14px 0 4px}
.meta{color:#55645c;font-size:12px;margin:0}
.stats{display:grid;grid-template-columns:repeat(4,1fr);gap:8px;margin:12px 0}
.stat{border:1px solid #cfd8d3;border-radius:6px;padding:6px 8px}
.stat b{display:block;font-size:18px}.stat span{font-size:11px;color:#55645c}
table{border-collapse:collapse;width:100%;font-size:12px;margin:6px 0}
th,td{border-bottom:1px solid #e3e9e6;padding:3px 6px;text-align:left;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
figure{margin:10px 0;page-break-inside:avoid;break-inside:avoid}
figure svg{width:100%;height:auto;display:block}
figcaption{font-size:11px;color:#55645c}
pre{background:#f4f7f5;border:1px solid #dfe6e2;padding:8px;font-size:11px;white-space:pre-wrap;word-break:break-word;page-break-inside:avoid;break-inside:avoid}
ul.findings li{margin:2px 0}
.note{font-size:12px;color:#55645c}
@page{margin:14mm}
@media print{body{max-width:none;padding:0}h2{page-break-after:avoid;break-after:avoid}a{color:inherit;text-decoration:none}}
"#;

fn stat(out: &mut String, label: &str, value: &str, note: &str) {
    let _ = write!(
        out,
        r#"<div class="stat"><span>{}</span><b>{}</b><span>{}</span></div>"#,
        esc(label),
        esc(value),
        esc(note)
    );
}

/// The report as one HTML page.
pub fn html(r: &Report, charts: &[Chart]) -> String {
    let t = &r.totals;
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{} — carbon report</title><style>{STYLE}</style></head><body>"#,
        esc(&r.title)
    );
    let _ = write!(
        h,
        r#"<h1>{} — carbon footprint report</h1><p class="meta">{} · runs from {} to {} (as logged) · generated {} by carbon-dash {} · measured with {}</p>"#,
        esc(&r.title),
        esc(&r.scope),
        esc(r.from.as_deref().unwrap_or("–")),
        esc(r.to.as_deref().unwrap_or("–")),
        esc(&r.generated_at),
        esc(&r.tool_version),
        esc(&if r.codecarbon_versions.is_empty() {
            "CodeCarbon".to_string()
        } else {
            format!("CodeCarbon {}", r.codecarbon_versions.join(", "))
        })
    );
    h.push_str(r#"<section class="stats">"#);
    stat(
        &mut h,
        "CO₂e (recomputed)",
        &co2_kg(t.co2_kg),
        &format!("range {} – {}", co2_kg(t.co2_kg_low), co2_kg(t.co2_kg_high)),
    );
    stat(
        &mut h,
        "Energy",
        &energy_kwh(t.energy_kwh),
        &format!("range {} – {}", energy_kwh(t.energy_kwh_low), energy_kwh(t.energy_kwh_high)),
    );
    stat(&mut h, "Runs", &t.runs.to_string(), &format!("{} h of compute", sig3(r.hours)));
    stat(&mut h, "GPU-hours", &sig3(r.gpu_hours), "GPU count × duration, where logged");
    h.push_str("</section>");
    if t.co2_kg_reported > 0.0 {
        let _ = write!(
            h,
            r#"<p class="note">CodeCarbon itself reported {} for these runs; the figures here are recomputed with the embedded grid data below.</p>"#,
            esc(&co2_kg(t.co2_kg_reported))
        );
    }

    h.push_str("<h2>Method and data sources</h2><table><thead><tr><th>Where</th><th class=\"num\">Runs</th><th class=\"num\">Energy</th><th class=\"num\">Grid intensity (range)</th><th>Source, year</th><th class=\"num\">CO₂e</th></tr></thead><tbody>");
    for p in &r.places {
        let _ = write!(
            h,
            r#"<tr><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{} g/kWh ({}–{})</td><td>{}, <i>{}</i>, {}{}</td><td class="num">{}</td></tr>"#,
            esc(&p.label),
            p.runs,
            esc(&energy_kwh(p.energy_kwh)),
            sig3(p.g_per_kwh),
            sig3(p.low_g_per_kwh),
            sig3(p.high_g_per_kwh),
            esc(&p.source.publisher),
            esc(&p.source.title),
            p.source.year,
            if p.source.licence.is_empty() { String::new() } else { format!(" ({})", esc(&p.source.licence)) },
            esc(&co2_kg(p.co2_kg))
        );
    }
    h.push_str("</tbody></table><ul class=\"note\">");
    let methods: Vec<String> = r.energy_methods.iter().map(|(m, n)| format!("{m} ({n})")).collect();
    let _ = write!(h, "<li>Energy as CodeCarbon logged it: {}. A run's figures are its last checkpoint (the largest duration) per run id; copies of a row in several files count once.</li>", esc(&methods.join("; ")));
    let pue: Vec<String> = r
        .pue
        .iter()
        .map(|(p, n)| {
            let runs = carbon_core::units::count(*n, "run");
            if (*p - 1.0).abs() < 1e-9 {
                format!("none (1.0) for {runs}")
            } else {
                format!("{} for {runs}", sig3(*p))
            }
        })
        .collect();
    let _ = write!(h, "<li>Data-centre overhead (PUE) factor: {}.</li>", esc(&pue.join(", ")));
    h.push_str("<li>CO₂e = energy × the annual average grid intensity of where each run ran (lifecycle emissions). The range combines the spread of published intensity figures for the place with the uncertainty of the energy figure.</li>");
    h.push_str("<li>These totals cover the runs of this selection as logged, including development and failed runs that wrote a log.</li></ul>");

    h.push_str("<h2>Compute</h2><table><thead><tr><th>Hardware</th><th class=\"num\">Runs</th></tr></thead><tbody>");
    for (hw, n) in &r.hardware {
        let _ = write!(h, r#"<tr><td>{}</td><td class="num">{n}</td></tr>"#, esc(hw));
    }
    h.push_str("</tbody></table>");

    for c in charts.iter().filter(|c| c.id != "pareto") {
        figure(&mut h, c);
    }

    if let Some(p) = &r.pareto {
        let metric = p.metric.clone().unwrap_or_default();
        let _ = write!(
            h,
            "<h2>Efficiency: {} against {}</h2><ul class=\"findings\">",
            esc(&metric),
            if p.axis == carbon_core::pareto::Axis::Co2 { "CO₂e" } else { "energy" }
        );
        for f in &p.findings {
            let _ = write!(h, "<li>{}</li>", esc(f));
        }
        h.push_str("</ul>");
        if let Some(c) = charts.iter().find(|c| c.id == "pareto") {
            figure(&mut h, c);
        }
        let on_front: Vec<&carbon_core::pareto::ParetoPoint> =
            p.front.iter().filter_map(|id| p.points.iter().find(|x| &x.run_id == id)).collect();
        let cu = co2_unit(on_front.iter().filter_map(|x| x.co2_kg_high.or(x.co2_kg)).fold(0.0, f64::max));
        let eu = energy_unit(on_front.iter().filter_map(|x| x.energy_kwh).fold(0.0, f64::max));
        let _ = write!(
            h,
            "<table><thead><tr><th>Run on the front</th><th class=\"num\">{}</th><th class=\"num\">CO₂e, {} (range)</th><th class=\"num\">Energy, {}</th><th></th></tr></thead><tbody>",
            esc(&metric),
            cu.1,
            eu.1
        );
        for id in &p.front {
            let Some(pt) = p.points.iter().find(|x| &x.run_id == id) else { continue };
            let mut mark = p.marks(id);
            if pt.joined_by_guess.is_some() {
                mark.push("metric joined by folder (a guess)");
            }
            let co2 = in_unit(cu, pt.co2_kg, pt.co2_kg_low, pt.co2_kg_high);
            let _ = write!(
                h,
                r#"<tr><td title="{}">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td></tr>"#,
                esc(id),
                esc(&id.chars().take(8).collect::<String>()),
                sig4(pt.value),
                esc(&co2),
                in_unit(eu, pt.energy_kwh, None, None),
                mark.join(", ")
            );
        }
        h.push_str("</tbody></table>");
    }

    h.push_str("<h2>In context</h2><ul>");
    for e in &r.equivalents {
        let _ = write!(
            h,
            "<li><b>{}</b> ({}–{}) {} <span class=\"note\">— {} {}; {}, {}</span></li>",
            sig3(e.amount),
            sig3(e.amount_low),
            sig3(e.amount_high),
            esc(&e.label),
            e.factor,
            esc(&e.factor_unit),
            esc(&e.source.publisher),
            e.source.year
        );
    }
    if let Some(o) = &r.best_elsewhere {
        let _ = write!(
            h,
            "<li>What if: the same energy in {} {}, {}, at {} g/kWh would have been {} ({}–{}), {}&nbsp;% lower (from {}&nbsp;% to {}&nbsp;% over its range).</li>",
            esc(&carbon_core::report::provider_name(&o.provider)),
            esc(&o.region),
            esc(&o.name),
            sig3(o.intensity_g_per_kwh),
            esc(&co2_kg(o.co2_kg)),
            esc(&co2_kg(o.co2_kg_low)),
            esc(&co2_kg(o.co2_kg_high)),
            sig3(o.saving_pct),
            sig3(100.0 * (1.0 - o.co2_kg_high / r.totals.co2_kg.max(f64::MIN_POSITIVE))),
            sig3(100.0 * (1.0 - o.co2_kg_low / r.totals.co2_kg.max(f64::MIN_POSITIVE)))
        );
    }
    h.push_str("</ul>");

    h.push_str("<h2>Statements to paste</h2><h3>LaTeX</h3>");
    let _ = write!(h, r#"<pre id="statement-tex">{}</pre>"#, esc(&r.latex()));
    let _ = write!(h, r#"<h3>Markdown (README, model card)</h3><pre id="statement-md">{}</pre>"#, esc(&r.markdown()));
    let _ = write!(
        h,
        r#"<h3>Hugging Face model card metadata (grams)</h3><pre id="statement-yaml">{}</pre>"#,
        esc(&r.model_card_yaml())
    );
    let _ = write!(h, r#"<h3>BibTeX</h3><pre id="statement-bib">{}</pre>"#, esc(&r.bibtex()));

    let _ =
        write!(h, "<h2>Appendix: runs</h2><p class=\"note\">{} of {} runs, newest first.</p>", r.runs.len(), t.runs);
    let cu = co2_unit(r.runs.iter().filter_map(|x| x.co2_kg_high.or(x.co2_kg)).fold(0.0, f64::max));
    let eu = energy_unit(r.runs.iter().filter_map(|x| x.energy_kwh).fold(0.0, f64::max));
    let _ = write!(
        h,
        "<table><thead><tr><th>Run</th><th>Project / experiment</th><th>Ended</th><th class=\"num\">Duration</th><th class=\"num\">Energy, {}</th><th class=\"num\">CO₂e, {} (range)</th><th>Where</th></tr></thead><tbody>",
        eu.1,
        cu.1
    );
    for run in &r.runs {
        let co2 = in_unit(cu, run.co2_kg, run.co2_kg_low, run.co2_kg_high);
        let _ = write!(
            h,
            r#"<tr><td>{}</td><td>{} / {}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td></tr>"#,
            esc(&run.run_id.chars().take(8).collect::<String>()),
            esc(run.project_name.as_deref().unwrap_or("–")),
            esc(run.experiment_id.as_deref().unwrap_or("–")),
            run.ended_at.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "–".into()),
            esc(&run.duration_s.map(carbon_core::units::duration_s).unwrap_or_else(|| "–".into())),
            in_unit(eu, run.energy_kwh, None, None),
            esc(&co2),
            esc(&run.location_label)
        );
    }
    h.push_str("</tbody></table>");
    let _ = write!(h, "<p class=\"note\">Input files: {}.</p>", esc(&r.files.join(", ")));
    h.push_str("<p class=\"note\">Estimates, not measurements of emissions: the grid figures are annual averages for the place, and the energy is what CodeCarbon measured (NVML, RAPL) or estimated. The ranges say how far the figures may be off.</p>");
    // The data, for whoever wants to read it back (every `<` escaped: nothing in it can open or
    // close a tag).
    let data = serde_json::to_string(r).unwrap_or_default().replace('<', "\\u003c");
    let _ = write!(h, r#"<script type="application/json" id="report-data">{data}</script></body></html>"#);
    h
}

/// One unit for a whole table column, so its figures compare at a glance: (factor, name).
fn co2_unit(max_kg: f64) -> (f64, &'static str) {
    match max_kg {
        m if m >= 1.0 => (1.0, "kg CO₂e"),
        m if m >= 1e-3 => (1e3, "g CO₂e"),
        _ => (1e6, "mg CO₂e"),
    }
}

fn energy_unit(max_kwh: f64) -> (f64, &'static str) {
    if max_kwh >= 1.0 {
        (1.0, "kWh")
    } else {
        (1e3, "Wh")
    }
}

/// A value and its range in a column's unit: "842 (690 – 1010)".
fn in_unit((factor, _): (f64, &str), v: Option<f64>, low: Option<f64>, high: Option<f64>) -> String {
    match (v, low, high) {
        (Some(v), Some(l), Some(h)) => format!("{} ({} – {})", sig3(v * factor), sig3(l * factor), sig3(h * factor)),
        (Some(v), _, _) => sig3(v * factor),
        _ => "–".into(),
    }
}

fn figure(h: &mut String, c: &Chart) {
    let _ =
        write!(h, r#"<figure id="chart-{}">{}<figcaption>{}</figcaption></figure>"#, esc(&c.id), c.svg, esc(&c.alt));
}

/// `carbon-dash report DIR …`: reads the folder, writes the report to `--output` or standard
/// output. An unreadable folder, a bad format or an empty selection is an error that says so.
pub fn command(a: &crate::cli::ReportArgs) -> anyhow::Result<String> {
    use anyhow::Context;
    let format = Format::parse(&a.format).map_err(anyhow::Error::msg)?;
    if !a.dir.is_dir() {
        anyhow::bail!("{}: not a folder", a.dir.display());
    }
    let cat = carbon_core::catalog::load_dir(&a.dir).with_context(|| format!("reading {}", a.dir.display()))?;
    let selection = carbon_core::pareto::ParetoQuery {
        project: a.project.clone(),
        experiment: a.experiment.clone(),
        team: a.team.clone(),
        metric: a.metric.clone(),
        ..Default::default()
    };
    let scope = ReportScope { run_id: a.run.clone(), selection };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let text = render(&cat, &scope, format, now).map_err(|e| anyhow::anyhow!("{}: {e}", a.dir.display()))?;
    match &a.output {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
            Ok(format!("wrote {} ({} bytes)\n", path.display(), text.len()))
        }
        None => Ok(text),
    }
}
