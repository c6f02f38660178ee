//! A report of a selection of runs that a researcher can keep and paste from: the facts a
//! paper's compute statement needs (hardware, hours, places, grid intensity with its source and
//! year, energy, CO2 with its range, PUE), the Pareto view when metrics exist, and the statements
//! themselves: a LaTeX and a Markdown paragraph, a Hugging Face model-card `co2_eq_emissions`
//! block (in grams, as the Hub reads it) and BibTeX for the tools and data cited. Pure: the HTML
//! page around it is the server's.

use crate::grid::Grid;
use crate::model::{Equivalent, Run, Source, Totals, WhatIfOption};
use crate::pareto::{ParetoQuery, ParetoView};
use crate::units::{co2_kg, energy_kwh, sig3};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One place the runs ran at, with the grid figure used for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaceLine {
    /// "France", "gcp europe-west1 (Belgium)".
    pub label: String,
    pub provider: Option<String>,
    pub runs: usize,
    pub energy_kwh: f64,
    pub co2_kg: f64,
    pub g_per_kwh: f64,
    pub low_g_per_kwh: f64,
    pub high_g_per_kwh: f64,
    pub source: Source,
}

/// What a report says of its runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// "Project resnet-sweep", "Run 2c7f0b79".
    pub title: String,
    pub scope: String,
    pub generated_at: String,
    pub tool_version: String,
    /// First start and last end of the runs, as CodeCarbon wrote them (local time).
    pub from: Option<String>,
    pub to: Option<String>,
    pub totals: Totals,
    pub hours: f64,
    pub gpu_hours: f64,
    /// Hardware descriptions with how many runs used each, most used first.
    pub hardware: Vec<(String, usize)>,
    pub places: Vec<PlaceLine>,
    /// PUE factors applied (1 when none), with their runs.
    pub pue: Vec<(f64, usize)>,
    pub codecarbon_versions: Vec<String>,
    /// How the energy was obtained (measured, estimated …), with runs.
    pub energy_methods: Vec<(String, usize)>,
    /// The log files the runs come from.
    pub files: Vec<String>,
    pub equivalents: Vec<Equivalent>,
    /// The lowest-CO2 cloud region for the same energy, when lower than where they ran.
    pub best_elsewhere: Option<WhatIfOption>,
    pub pareto: Option<ParetoView>,
    /// The runs, newest first (the appendix; at most [`RUNS_LISTED`]).
    pub runs: Vec<crate::pages::RunRow>,
}

/// Runs listed in a report's appendix (the totals count every run).
pub const RUNS_LISTED: usize = 500;

/// The hardware of a run in words: "1 x NVIDIA A100 + Intel Xeon Gold 6338 (8 cores)".
fn hardware_of(r: &Run) -> String {
    let gpu = r.gpu_model.as_deref().map(str::trim).filter(|g| !g.is_empty()).map(|g| {
        // CodeCarbon writes "4 x NVIDIA A100" already; otherwise the count goes first.
        let counted = g.split_once(" x ").is_some_and(|(n, _)| n.trim().parse::<u32>().is_ok());
        match r.gpu_count {
            Some(n) if !counted && n >= 1.0 => format!("{n} x {g}"),
            _ => g.to_string(),
        }
    });
    let cpu = r.cpu_model.as_deref().map(str::trim).filter(|c| !c.is_empty()).map(|c| match r.cpu_count {
        Some(n) if n >= 1.0 => format!("{c} ({n} threads)"),
        _ => c.to_string(),
    });
    match (gpu, cpu) {
        (Some(g), Some(c)) => format!("{g} + {c}"),
        (Some(g), None) => g,
        (None, Some(c)) => c,
        (None, None) => "hardware not logged".into(),
    }
}

fn ranked(map: BTreeMap<String, usize>) -> Vec<(String, usize)> {
    let mut v: Vec<(String, usize)> = map.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

impl Report {
    /// The report of `runs` (newest first), titled `title`, with `pareto` when the selection has
    /// metrics. `now` is the generation time (unix seconds).
    pub fn build(title: String, scope: String, runs: &[&Run], pareto: Option<ParetoView>, now: i64) -> Report {
        let grid = Grid::embedded();
        let totals = Totals::of(runs.iter().copied());
        let hours = runs.iter().filter_map(|r| r.duration_s).sum::<f64>() / 3600.0;
        let gpu_hours =
            runs.iter().filter_map(|r| Some(r.duration_s? / 3600.0 * r.gpu_count.filter(|n| *n > 0.0)?)).sum::<f64>();
        let mut hardware: BTreeMap<String, usize> = BTreeMap::new();
        let mut versions: BTreeMap<String, usize> = BTreeMap::new();
        let mut methods: BTreeMap<String, usize> = BTreeMap::new();
        let mut pue: BTreeMap<String, (f64, usize)> = BTreeMap::new();
        let mut places: BTreeMap<String, PlaceLine> = BTreeMap::new();
        let mut files: std::collections::BTreeSet<String> = Default::default();
        for r in runs {
            *hardware.entry(hardware_of(r)).or_default() += 1;
            if let Some(v) = r.codecarbon_version.as_deref().filter(|v| !v.is_empty()) {
                *versions.entry(v.to_string()).or_default() += 1;
            }
            *methods.entry(r.assessment.energy_method.clone()).or_default() += 1;
            let p = r.assessment.pue_applied.unwrap_or(1.0);
            pue.entry(format!("{p:.4}")).or_insert((p, 0)).1 += 1;
            files.extend(r.source_files.iter().cloned());
            let a = &r.assessment;
            let provider = r.cloud_provider.as_deref().filter(|p| !p.is_empty()).map(provider_name);
            // The label is "<place> — <publisher>, <year>": the source is said on its own.
            let place = a.location_label.split(" — ").next().unwrap_or_default();
            let place = place.strip_prefix("grid of ").unwrap_or(place);
            // "gcp us-central1": the provider as it names itself.
            let place = match (r.cloud_provider.as_deref(), place.split_once(' ')) {
                (Some(p), Some((first, rest))) if first.eq_ignore_ascii_case(p) => {
                    format!("{} {rest}", provider_name(p))
                }
                _ => place.to_string(),
            };
            let label = match (&provider, r.country_name.as_deref().filter(|c| !c.is_empty())) {
                (Some(_), Some(country)) if !place.contains(country) => format!("{place} ({country})"),
                _ => place,
            };
            let source = grid.source(&a.intensity_source).cloned().unwrap_or_else(|| Source {
                id: a.intensity_source.clone(),
                title: a.intensity_source.clone(),
                publisher: a.intensity_source.clone(),
                year: a.intensity_year,
                url: String::new(),
                licence: String::new(),
            });
            let line = places.entry(label.clone()).or_insert_with(|| PlaceLine {
                label,
                provider,
                runs: 0,
                energy_kwh: 0.0,
                co2_kg: 0.0,
                g_per_kwh: a.intensity_g_per_kwh,
                low_g_per_kwh: a.intensity_low_g_per_kwh,
                high_g_per_kwh: a.intensity_high_g_per_kwh,
                source,
            });
            line.runs += 1;
            line.energy_kwh += r.energy_kwh.unwrap_or(0.0);
            line.co2_kg += a.co2_kg.unwrap_or(0.0);
        }
        let mut places: Vec<PlaceLine> = places.into_values().collect();
        places.sort_by(|a, b| b.co2_kg.total_cmp(&a.co2_kg).then_with(|| a.label.cmp(&b.label)));
        let mut pue: Vec<(f64, usize)> = pue.into_values().collect();
        pue.sort_by_key(|p| std::cmp::Reverse(p.1));
        let regions = crate::whatif::regions(grid);
        let whatif = crate::whatif::what_if(&scope, runs, &regions, &crate::query::WhatIfFilters::default());
        let best_elsewhere = whatif.options.first().filter(|o| o.saving_kg > 0.0).cloned();
        let mut equivalents = grid.equivalents_in_range(
            (totals.co2_kg, totals.co2_kg_low, totals.co2_kg_high),
            (totals.energy_kwh, totals.energy_kwh_low, totals.energy_kwh_high),
        );
        equivalents.sort_by(|a, b| b.amount.total_cmp(&a.amount));
        let meaningful = equivalents.iter().filter(|e| e.amount >= 0.1).count().max(3);
        equivalents.truncate(meaningful);
        Report {
            title,
            scope,
            generated_at: crate::time::rfc3339(now),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            from: runs.iter().filter_map(|r| r.started_at).min().map(|t| t.format("%Y-%m-%d %H:%M").to_string()),
            to: runs.iter().filter_map(|r| r.ended_at).max().map(|t| t.format("%Y-%m-%d %H:%M").to_string()),
            hours,
            gpu_hours,
            hardware: ranked(hardware),
            places,
            pue,
            codecarbon_versions: ranked(versions).into_iter().map(|(v, _)| v).collect(),
            energy_methods: ranked(methods),
            files: files.into_iter().collect(),
            equivalents,
            best_elsewhere,
            pareto: pareto.filter(|p| !p.points.is_empty()).map(|p| p.trimmed(crate::pareto::BEATEN_SHOWN)),
            runs: runs.iter().take(RUNS_LISTED).map(|r| crate::pages::RunRow::from(*r)).collect(),
            totals,
        }
    }

    /// The hardware in words: the most used, and how many other kinds.
    fn hardware_words(&self) -> String {
        match self.hardware.as_slice() {
            [] => "hardware not logged".into(),
            [(h, _)] => h.clone(),
            [(h, n), rest @ ..] => {
                format!("{h} ({n} runs) and {} other configuration{}", rest.len(), plural(rest.len()))
            }
        }
    }

    /// The places in words, with their grid intensity and its source: one place, or each.
    fn places_words(&self, place: impl Fn(&PlaceLine) -> String) -> String {
        let all: Vec<String> = self.places.iter().take(4).map(place).collect();
        let more = self.places.len().saturating_sub(4);
        let mut s = all.join("; ");
        if more > 0 {
            let _ = write!(s, "; and {more} more place{}", plural(more));
        }
        s
    }

    fn pue_words(&self) -> String {
        match self.pue.as_slice() {
            [(p, _)] if (*p - 1.0).abs() < 1e-9 => "no data-centre overhead (PUE) factor applied".into(),
            [(p, _)] => format!("a power usage effectiveness (PUE) of {} applied", sig3(*p)),
            many => format!(
                "PUE factors of {} applied as logged per run",
                many.iter().map(|(p, _)| sig3(*p)).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    fn codecarbon_words(&self) -> String {
        match self.codecarbon_versions.as_slice() {
            [] => "CodeCarbon".into(),
            [v] => format!("CodeCarbon {v}"),
            vs => format!("CodeCarbon ({})", vs.join(", ")),
        }
    }

    /// The statement's sentences, with the text of units and citations given by `t` (LaTeX or
    /// Markdown).
    fn statement(&self, t: &Text) -> String {
        let esc = t.escape;
        let t_ = &self.totals;
        let mut s = String::new();
        let span = match (&self.from, &self.to) {
            (Some(a), Some(b)) => format!(" between {} and {}", &a[..10.min(a.len())], &b[..10.min(b.len())]),
            _ => String::new(),
        };
        let _ = write!(
            s,
            "The {} reported here ({}) took {} hours of compute{}{} on {}.",
            if t_.runs == 1 { "run".to_string() } else { format!("{} runs", t_.runs) },
            esc(&self.scope),
            sig3(self.hours),
            if self.gpu_hours > 0.0 { format!(" ({} GPU-hours)", sig3(self.gpu_hours)) } else { String::new() },
            span,
            esc(&self.hardware_words())
        );
        let _ = write!(
            s,
            " {} drew {} of electricity (range {}{}{}), with {}, as measured or estimated by {}{}.",
            if t_.runs == 1 { "It" } else { "They" },
            t.unit(&energy_kwh(t_.energy_kwh)),
            t.unit(&energy_kwh(t_.energy_kwh_low)),
            t.dash,
            t.unit(&energy_kwh(t_.energy_kwh_high)),
            self.pue_words(),
            esc(&self.codecarbon_words()),
            t.cite("codecarbon")
        );
        let places = self.places_words(|p| {
            format!(
                "{} {} in {}{}, as {} published it for {}",
                sig3(p.g_per_kwh),
                t.intensity,
                esc(&p.label),
                if self.places.len() > 1 { format!(" for {} run{}", p.runs, plural(p.runs)) } else { String::new() },
                esc(&p.source.publisher),
                p.source.year
            )
        });
        let keys: Vec<String> = self.cited_sources().iter().map(|src| bib_key(src)).collect();
        let cites = t.cite(&keys.join(","));
        let _ = write!(
            s,
            " At the average grid carbon intensity where {} ran, {places}{}, this corresponds to {} (range {}{}{}, from the spread of published intensity figures and of the energy estimate), recomputed with carbon-dash {}{}.",
            if t_.runs == 1 { "it" } else { "they" },
            cites,
            t.mass(t_.co2_kg),
            t.mass(t_.co2_kg_low),
            t.dash,
            t.mass(t_.co2_kg_high),
            self.tool_version,
            t.cite("carbondash")
        );
        if let Some(p) = &self.pareto {
            let metric = esc(p.metric.as_deref().unwrap_or_default());
            let point = |id: &Option<String>| {
                id.as_ref()
                    .and_then(|id| p.points.iter().find(|x| &x.run_id == id))
                    .map(|x| (x.value, x.co2_kg.map(|c| t.mass(c)).unwrap_or_default()))
            };
            match (point(&p.best_run_id), point(&p.within_delta_run_id)) {
                (Some((bv, bc)), _) if p.best_run_id == p.within_delta_run_id => {
                    let _ = write!(
                        s,
                        " The best {metric} reached was {} at {bc}, by the cheapest run within {} of it.",
                        crate::units::sig4(bv),
                        crate::units::sig4(p.delta)
                    );
                }
                (Some((bv, bc)), Some((dv, dc))) => {
                    let _ = write!(
                        s,
                        " The best {metric} reached was {} at {bc}; the cheapest run within {} of it reached {} at {dc}.",
                        crate::units::sig4(bv),
                        crate::units::sig4(p.delta),
                        crate::units::sig4(dv)
                    );
                }
                _ => {}
            }
            if p.dominated_runs > 0 {
                let _ = write!(
                    s,
                    " Runs that another run matched or beat on {metric} for no more cost accounted for {} of the total.",
                    t.mass(p.dominated_co2_kg)
                );
            }
        }
        s
    }

    /// The data sources of the grid figures used, each once.
    pub fn cited_sources(&self) -> Vec<&Source> {
        let mut out: Vec<&Source> = Vec::new();
        for p in &self.places {
            if !out.iter().any(|s| s.id == p.source.id) {
                out.push(&p.source);
            }
        }
        out
    }

    /// A LaTeX paragraph (no package needed) citing the keys of [`Report::bibtex`].
    pub fn latex(&self) -> String {
        format!(
            "% Compute and carbon statement, generated by carbon-dash {} on {}.\n% The cited entries: `carbon-dash report … --format bib` (or the report's BibTeX block).\n\\paragraph{{Compute and carbon footprint.}}\n{}\n",
            self.tool_version,
            self.generated_at,
            self.statement(&LATEX)
        )
    }

    /// A Markdown section for a README or a model card: the fields as a list, then the paragraph.
    pub fn markdown(&self) -> String {
        let t = &self.totals;
        let esc = MARKDOWN.escape;
        let providers: Vec<String> = {
            let mut p: Vec<String> = self.places.iter().filter_map(|p| p.provider.clone()).collect();
            p.sort();
            p.dedup();
            p
        };
        let mut s = String::from("## Environmental impact\n\n");
        let _ = writeln!(s, "- **Hardware type:** {}", esc(&self.hardware_words()));
        let _ = writeln!(
            s,
            "- **Hours used:** {} h{} over {} run{}",
            sig3(self.hours),
            if self.gpu_hours > 0.0 { format!(" ({} GPU-hours)", sig3(self.gpu_hours)) } else { String::new() },
            t.runs,
            plural(t.runs)
        );
        let _ = writeln!(
            s,
            "- **Cloud provider:** {}",
            if providers.is_empty() { "none logged (on premises)".to_string() } else { esc(&providers.join(", ")) }
        );
        let _ = writeln!(
            s,
            "- **Compute region:** {}",
            esc(&self.places.iter().map(|p| p.label.clone()).collect::<Vec<_>>().join("; "))
        );
        let _ = writeln!(
            s,
            "- **Grid carbon intensity:** {}",
            self.places_words(|p| format!(
                "{} g CO₂e/kWh ({} to {}) in {} — {}, {}",
                sig3(p.g_per_kwh),
                sig3(p.low_g_per_kwh),
                sig3(p.high_g_per_kwh),
                esc(&p.label),
                esc(&p.source.publisher),
                p.source.year
            ))
        );
        let _ = writeln!(
            s,
            "- **Energy:** {} (range {} – {}); {}",
            energy_kwh(t.energy_kwh),
            energy_kwh(t.energy_kwh_low),
            energy_kwh(t.energy_kwh_high),
            self.pue_words()
        );
        let _ = writeln!(
            s,
            "- **Carbon emitted:** {} (range {} – {})",
            co2_kg(t.co2_kg),
            co2_kg(t.co2_kg_low),
            co2_kg(t.co2_kg_high)
        );
        let _ = writeln!(
            s,
            "- **Measured with:** {}; recomputed with carbon-dash {}",
            esc(&self.codecarbon_words()),
            self.tool_version
        );
        s.push('\n');
        s.push_str(&self.statement(&MARKDOWN));
        s.push_str("\n\nSources: CodeCarbon (https://github.com/mlco2/codecarbon, doi:10.5281/zenodo.11171501)");
        for src in self.cited_sources() {
            let _ = write!(s, "; {}, {} ({})", esc(&src.publisher), src.year, src.url);
        }
        let _ = writeln!(s, "; carbon-dash {}.", self.tool_version);
        s
    }

    /// The Hugging Face model card's `co2_eq_emissions` block: emissions in grams.
    pub fn model_card_yaml(&self) -> String {
        // A double-quoted YAML string: backslash and quote escaped, control characters as spaces.
        let q = |v: &str| {
            let v: String = v.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
        };
        let place = self.places.iter().map(|p| p.label.clone()).collect::<Vec<_>>().join("; ");
        let sources: Vec<String> = self.cited_sources().iter().map(|s| format!("{} {}", s.publisher, s.year)).collect();
        format!(
            "co2_eq_emissions:\n  emissions: {}\n  source: {}\n  geographical_location: {}\n  hardware_used: {}\n  # training_type: fine-tuning   # or pre-training: say which\n",
            sig3(self.totals.co2_kg * 1000.0),
            q(&format!(
                "{}, recomputed with carbon-dash {} ({}); range {}–{} g",
                self.codecarbon_words(),
                self.tool_version,
                sources.join(", "),
                sig3(self.totals.co2_kg_low * 1000.0),
                sig3(self.totals.co2_kg_high * 1000.0)
            )),
            q(&place),
            q(&self.hardware_words())
        )
    }

    /// BibTeX for CodeCarbon, carbon-dash and each grid data source cited.
    pub fn bibtex(&self) -> String {
        // Fields are set by LaTeX: its specials escaped (a `%` would comment out the rest).
        let b = |v: &str| latex_escape(v);
        let mut s = String::from(
            "@misc{codecarbon,\n  author = {{CodeCarbon contributors}},\n  title = {{CodeCarbon: estimate and track carbon emissions from machine learning computing}},\n  howpublished = {Software, doi:10.5281/zenodo.11171501},\n  doi = {10.5281/zenodo.11171501},\n  url = {https://github.com/mlco2/codecarbon},\n  year = {2024}\n}\n\n",
        );
        let _ = write!(
            s,
            "@misc{{carbondash,\n  author = {{{{carbon-dash contributors}}}},\n  title = {{carbon-dash: a dashboard for the carbon footprint of machine-learning runs}},\n  howpublished = {{Software, version {}}},\n  year = {{{}}}\n}}\n",
            self.tool_version,
            &self.generated_at[..4.min(self.generated_at.len())]
        );
        for src in self.cited_sources() {
            let _ = write!(
                s,
                "\n@misc{{{},\n  author = {{{{{}}}}},\n  title = {{{}}},\n  howpublished = {{{}}},\n  year = {{{}}},\n  url = {{{}}},\n  note = {{Licence: {}}}\n}}\n",
                bib_key(src),
                b(&src.publisher),
                b(&src.title),
                b(&src.url),
                src.year,
                src.url.replace(['{', '}', '\\', ' '], ""),
                b(&src.licence)
            );
        }
        s
    }
}

/// A cloud provider as it names itself: GCP, AWS, Azure (others as written).
pub fn provider_name(p: &str) -> String {
    match p.to_ascii_lowercase().as_str() {
        "gcp" => "GCP".into(),
        "aws" => "AWS".into(),
        "azure" => "Azure".into(),
        _ => p.to_string(),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A BibTeX key for a data source: letters and digits of its id.
pub fn bib_key(s: &Source) -> String {
    let k: String = s.id.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!("grid{k}")
}

/// How a statement writes units, dashes and citations.
struct Text {
    escape: fn(&str) -> String,
    dash: &'static str,
    intensity: &'static str,
    /// Non-breaking space before a unit.
    nbsp: &'static str,
    latex: bool,
}

impl Text {
    /// "12.3 kg CO₂e" with the unit joined to its number.
    fn unit(&self, s: &str) -> String {
        s.replacen(' ', self.nbsp, 1)
    }

    /// A CO2 mass in its readable unit: "12.3~kgCO$_2$eq", "270 g CO₂e".
    fn mass(&self, kg: f64) -> String {
        let shown = co2_kg(kg);
        let mut parts = shown.splitn(3, ' ');
        let (num, prefix) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        if self.latex {
            format!("{num}~{prefix}CO$_2$eq")
        } else {
            format!("{num} {prefix} CO₂e")
        }
    }

    /// A citation: `\cite` in LaTeX; in Markdown nothing (its sources follow the paragraph).
    fn cite(&self, key: &str) -> String {
        if self.latex {
            format!("~\\cite{{{key}}}")
        } else {
            String::new()
        }
    }
}

/// LaTeX special characters escaped, so any project or model name compiles.
pub fn latex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '{' | '}' | '$' | '&' | '#' | '_' | '%' => {
                out.push('\\');
                out.push(c);
            }
            '^' => out.push_str("\\textasciicircum{}"),
            '~' => out.push_str("\\textasciitilde{}"),
            '₂' => out.push_str("$_2$"),
            '–' => out.push_str("--"),
            '—' => out.push_str("---"),
            '×' => out.push_str("$\\times$"),
            '\u{00a0}' => out.push('~'),
            // Control characters (a line break, DEL) stop LaTeX or end the paragraph: a space.
            c if c.is_control() => out.push(' '),
            c if c.is_ascii() => out.push(c),
            // Base LaTeX has no glyph for most other characters: keep the text ASCII.
            c => out.push_str(&deaccent(c)),
        }
    }
    out
}

/// A close ASCII spelling of a character base LaTeX cannot set (accents dropped, others `?`).
fn deaccent(c: char) -> String {
    const PAIRS: &[(&str, char)] = &[
        ("àáâãäå", 'a'),
        ("ÀÁÂÃÄÅ", 'A'),
        ("èéêë", 'e'),
        ("ÈÉÊË", 'E'),
        ("ìíîï", 'i'),
        ("ÌÍÎÏ", 'I'),
        ("òóôõöø", 'o'),
        ("ÒÓÔÕÖØ", 'O'),
        ("ùúûü", 'u'),
        ("ÙÚÛÜ", 'U'),
        ("ç", 'c'),
        ("Ç", 'C'),
        ("ñ", 'n'),
        ("Ñ", 'N'),
        ("ýÿ", 'y'),
    ];
    PAIRS.iter().find(|(set, _)| set.contains(c)).map(|(_, a)| a.to_string()).unwrap_or_else(|| "?".into())
}

/// Markdown's inline specials escaped.
fn markdown_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            // A line break in a name would start a heading or a list of its own.
            out.push(' ');
            continue;
        }
        if "\\`*_[]<>#|".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

const LATEX: Text = Text { escape: latex_escape, dash: "--", intensity: "gCO$_2$eq/kWh", nbsp: "~", latex: true };

const MARKDOWN: Text =
    Text { escape: markdown_escape, dash: "–", intensity: "g CO₂e/kWh", nbsp: " ", latex: false };

/// The selection a report covers: one run, or what a [`ParetoQuery`] selects.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportScope {
    pub run_id: Option<String>,
    pub selection: ParetoQuery,
}

impl ReportScope {
    /// Its title: "Run 2c7f0b79", "Experiment e1", "Project p", "All runs".
    pub fn title(&self) -> String {
        if let Some(r) = &self.run_id {
            return format!("Run {r}");
        }
        let q = &self.selection;
        match (&q.experiment, &q.project, &q.team) {
            (Some(e), _, _) => format!("Experiment {e}"),
            (None, Some(p), _) => format!("Project {p}"),
            (None, None, Some(t)) => format!("Team {t}"),
            _ => "All runs".into(),
        }
    }
}
