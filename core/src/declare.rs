//! Declared joins: `carbon-dash.toml` at the logs folder's top says how a results table names
//! its runs, where what it holds does not say it alone.
//!
//! ```toml
//! [[results]]
//! table = "sweep/*/results.csv"   # which tables (`*` within a folder, `**` across folders)
//! key = "model"                   # the column naming the run
//! run = "project_name"            # what it holds: run_id, project_name, experiment_id,
//!                                 # tag:<column>, emissions_kg|_g|_mg, energy_kwh|_wh
//!
//! [[results]]
//! table = "results/{key}.csv"     # the key from the file's name: the whole table is that run
//! run = "tag:dataset"
//!
//! [metrics]                       # what a metric's name does not say
//! wer = { better = "lower", unit = "%" }
//! ```

use crate::model::Problem;
use serde::Deserialize;

/// The file, at the top of the logs folder.
pub const FILE: &str = "carbon-dash.toml";

/// Largest declarations file read.
pub const MAX_BYTES: usize = 1 << 20;

/// What a key column holds.
#[derive(Debug, Clone, PartialEq)]
pub enum RunField {
    RunId,
    ProjectName,
    ExperimentId,
    /// A tag: a user column of the run's log.
    Tag(String),
    /// Emissions in kg × the scale (g: 1e3, mg: 1e6), and the unit's name.
    Emissions(f64, &'static str),
    /// Energy in kWh × the scale (Wh: 1e3).
    Energy(f64, &'static str),
}

impl RunField {
    fn parse(s: &str) -> Option<RunField> {
        Some(match s.trim() {
            "run_id" => RunField::RunId,
            "project_name" => RunField::ProjectName,
            "experiment_id" => RunField::ExperimentId,
            "emissions_kg" => RunField::Emissions(1.0, "kg"),
            "emissions_g" => RunField::Emissions(1e3, "g"),
            "emissions_mg" => RunField::Emissions(1e6, "mg"),
            "energy_kwh" => RunField::Energy(1.0, "kWh"),
            "energy_wh" => RunField::Energy(1e3, "Wh"),
            t => RunField::Tag(t.strip_prefix("tag:").filter(|n| !n.trim().is_empty())?.trim().to_string()),
        })
    }

    /// In words, for the join's note.
    pub fn label(&self) -> String {
        match self {
            RunField::RunId => "run id".into(),
            RunField::ProjectName => "project_name".into(),
            RunField::ExperimentId => "experiment_id".into(),
            RunField::Tag(t) => format!("tag {t}"),
            RunField::Emissions(_, unit) => format!("emissions ({unit})"),
            RunField::Energy(_, unit) => format!("energy ({unit})"),
        }
    }
}

/// One `[[results]]` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Declaration {
    /// Its line in the file.
    pub line: usize,
    /// Tables it covers: a path under the logs folder with `*`, `**`, `?` and `{key}`.
    pub table: String,
    /// The column naming each row's run; `None`: the key is in the file's name.
    pub key: Option<String>,
    pub run: RunField,
}

/// What the file declares.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Declared {
    pub results: Vec<Declaration>,
    pub metrics: Vec<MetricDeclared>,
}

/// What `[metrics]` says of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDeclared {
    pub name: String,
    /// Whether higher is better (`better = "higher"`), when said.
    pub higher: Option<bool>,
    pub unit: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDe {
    #[serde(default)]
    results: Vec<toml::Spanned<BlockDe>>,
    #[serde(default)]
    metrics: std::collections::BTreeMap<String, MetricDe>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricDe {
    better: Option<toml::Spanned<String>>,
    unit: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockDe {
    table: toml::Spanned<String>,
    key: Option<toml::Spanned<String>>,
    run: toml::Spanned<String>,
}

/// Line and column (from 1) of byte `at` of `text`.
pub(crate) fn place(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

pub(crate) fn problem(text: &str, at: usize, reason: String) -> Problem {
    let (line, column) = place(text, at);
    Problem { line, column: Some(column), column_name: None, reason, rejected: true }
}

/// Reads `carbon-dash.toml`: its declarations, or every mistake with its line, column and what
/// to change.
pub fn parse(text: &str) -> Result<Declared, Vec<Problem>> {
    let file: FileDe = toml::from_str(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        let first = e.message().lines().next().unwrap_or("").trim().to_string();
        vec![problem(
            text,
            at,
            format!(
                "{first}: a block is [[results]] with table = \"…\", run = \"…\" and, unless the table's name holds \
                 {{key}}, key = \"…\"; a metric is <name> = {{ better = \"higher\" or \"lower\", unit = \"…\" }} under \
                 [metrics]"
            ),
        )]
    })?;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut metrics = Vec::new();
    for (name, m) in file.metrics {
        let higher = match m.better.as_ref().map(|b| (b.get_ref().trim(), b.span().start)) {
            None => None,
            Some(("higher", _)) => Some(true),
            Some(("lower", _)) => Some(false),
            Some((other, at)) => {
                problems.push(problem(
                    text,
                    at,
                    format!("better = \"{other}\" for the metric {name}: say \"higher\" or \"lower\""),
                ));
                continue;
            }
        };
        let unit =
            m.unit.map(|u| crate::text::shown(u.trim()).chars().take(20).collect::<String>()).filter(|u| !u.is_empty());
        metrics.push(MetricDeclared { name, higher, unit });
    }
    for block in file.results {
        let at = block.span().start;
        let b = block.into_inner();
        let Some(run) = RunField::parse(b.run.get_ref()) else {
            problems.push(problem(
                text,
                b.run.span().start,
                format!(
                    "run = \"{}\" is not a run field: use run_id, project_name, experiment_id, tag:<column>, \
                     emissions_kg, emissions_g, emissions_mg, energy_kwh or energy_wh",
                    b.run.get_ref()
                ),
            ));
            continue;
        };
        let table = b.table.get_ref().trim().trim_start_matches("./").to_string();
        let named = table.contains("{key}");
        let key = b.key.as_ref().map(|k| k.get_ref().trim().to_string()).filter(|k| !k.is_empty());
        if table.is_empty() || (key.is_none() && !named) {
            problems.push(problem(
                text,
                b.table.span().start,
                "give the column naming the run (key = \"model\"), or put {key} in the table's name \
                 (table = \"results/{key}.csv\")"
                    .into(),
            ));
            continue;
        }
        out.push(Declaration { line: place(text, at).0, table, key, run });
    }
    if problems.is_empty() {
        Ok(Declared { results: out, metrics })
    } else {
        Err(problems)
    }
}

/// Whether `path` is a table `pattern` covers, and the key its `{key}` took from the name
/// (`Some(None)` without one).
pub fn covers(pattern: &str, path: &str) -> Option<Option<String>> {
    let pat: Vec<&str> = pattern.split('/').collect();
    let segs: Vec<&str> = path.split('/').collect();
    let mut key = None;
    segments(&pat, &segs, &mut key).then_some(key)
}

fn segments(pat: &[&str], segs: &[&str], key: &mut Option<String>) -> bool {
    match (pat.first(), segs.first()) {
        (None, None) => true,
        (Some(&"**"), _) => (0..=segs.len()).any(|skip| segments(&pat[1..], &segs[skip..], key)),
        (Some(p), Some(s)) => segment(p.as_bytes(), s.as_bytes(), key) && segments(&pat[1..], &segs[1..], key),
        _ => false,
    }
}

/// One folder or file name against its pattern (`*`, `?`, `{key}`).
fn segment(p: &[u8], s: &[u8], key: &mut Option<String>) -> bool {
    if let Some(rest) = p.strip_prefix(b"{key}") {
        return (1..=s.len()).rev().any(|n| {
            let mut k = None;
            segment(rest, &s[n..], &mut k).then(|| *key = Some(String::from_utf8_lossy(&s[..n]).into_owned())).is_some()
        });
    }
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => (0..=s.len()).any(|n| segment(&p[1..], &s[n..], key)),
        (Some(b'?'), Some(_)) => segment(&p[1..], &s[1..], key),
        (Some(a), Some(b)) if a == b => segment(&p[1..], &s[1..], key),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_are_read_and_mistakes_named_with_their_line() {
        let text = "# joins\n[[results]]\ntable = \"sweep/*/results.csv\"\nkey = \"model\"\nrun = \"project_name\"\n\n\
                    [[results]]\ntable = \"results/{key}.csv\"\nrun = \"tag:dataset\"\n";
        let text =
            format!("{text}\n[metrics]\nwer = {{ better = \"lower\", unit = \"%\" }}\nbleu.better = \"higher\"\n");
        let declared = parse(&text).expect("read");
        assert_eq!(
            declared.metrics,
            [
                MetricDeclared { name: "bleu".into(), higher: Some(true), unit: None },
                MetricDeclared { name: "wer".into(), higher: Some(false), unit: Some("%".into()) }
            ]
        );
        let d = declared.results;
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].line, d[0].key.as_deref(), &d[0].run), (2, Some("model"), &RunField::ProjectName));
        assert_eq!((d[1].line, d[1].key.as_deref(), &d[1].run), (7, None, &RunField::Tag("dataset".into())));
        let bad = parse("[[results]]\ntable = \"r.csv\"\nkey = \"m\"\nrun = \"projet\"\n").expect_err("bad run");
        assert_eq!((bad[0].line, bad[0].column), (4, Some(7)));
        assert!(bad[0].reason.contains("run = \"projet\" is not a run field"), "{}", bad[0].reason);
        let bad = parse("[[results]]\ntable = \"r.csv\"\nrun = \"run_id\"\n").expect_err("no key");
        assert_eq!(bad[0].line, 2);
        assert!(bad[0].reason.contains("key = \"model\""));
        let bad = parse("[[results]]\ntable = \"r.csv\"\nkye = \"m\"\nrun = \"run_id\"\n").expect_err("unknown");
        assert_eq!(bad[0].line, 3, "{:?}", bad[0]);
        let bad = parse("[[results]\n").expect_err("syntax");
        assert_eq!(bad[0].line, 1);
        let bad = parse("[metrics]\nwer = { better = \"less\" }\n").expect_err("direction");
        assert_eq!((bad[0].line, bad[0].column), (2, Some(18)), "{:?}", bad[0]);
        assert!(bad[0].reason.contains("say \"higher\" or \"lower\""), "{}", bad[0].reason);
    }

    #[test]
    fn table_patterns_cover_paths_and_take_the_key_from_the_name() {
        assert_eq!(covers("sweep/*/results.csv", "sweep/a/results.csv"), Some(None));
        assert_eq!(covers("sweep/*/results.csv", "sweep/a/b/results.csv"), None);
        assert_eq!(covers("**/results.csv", "sweep/a/b/results.csv"), Some(None));
        assert_eq!(covers("**/results.csv", "results.csv"), Some(None));
        assert_eq!(covers("results/{key}.csv", "results/mnli.csv"), Some(Some("mnli".into())));
        assert_eq!(covers("emissions_{key}_results.csv", "emissions_sst2_results.csv"), Some(Some("sst2".into())));
        assert_eq!(covers("r?.csv", "r1.csv"), Some(None));
        assert_eq!(covers("r?.csv", "r12.csv"), None);
    }
}
