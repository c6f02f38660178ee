//! Reports: the statements say the selection's figures, the LaTeX paragraph and its BibTeX
//! compile (with a TeX engine: Debian's texlive-latex-base, installed by the test command), hostile
//! names cannot break out of any format, and `carbon-dash report` writes them from a folder.
#![allow(clippy::unwrap_used)]

use carbon_core::pareto::ParetoQuery;
use carbon_core::report::ReportScope;
use carbon_dash::report::{render, Format, ReportError};
use std::path::Path;
use std::process::Command;

const NOW: i64 = 1_796_000_000;

fn sweep() -> ReportScope {
    ReportScope {
        run_id: None,
        selection: ParetoQuery { project: Some("bert-sst2-sweep".into()), ..Default::default() },
    }
}

/// Whether this machine can compile LaTeX; the test command sets CARBON_DASH_TEST_LATEX after
/// installing TeX, and then a missing engine is a failure.
fn latex_available() -> bool {
    let have = Command::new("latex").arg("--version").output().is_ok_and(|o| o.status.success());
    if std::env::var_os("CARBON_DASH_TEST_LATEX").is_some() {
        assert!(have, "CARBON_DASH_TEST_LATEX is set but latex does not run");
    }
    have
}

/// Compiles `paragraph` with `bib` in a minimal article (latex, bibtex, latex twice); returns the
/// final log. Panics with the log on any error or undefined citation.
fn compile(dir: &Path, paragraph: &str, bib: &str) -> String {
    std::fs::write(dir.join("statement.tex"), paragraph).unwrap();
    std::fs::write(dir.join("refs.bib"), bib).unwrap();
    std::fs::write(
        dir.join("paper.tex"),
        "\\documentclass{article}\n\\begin{document}\n\\input{statement}\n\\bibliographystyle{plain}\n\\bibliography{refs}\n\\end{document}\n",
    )
    .unwrap();
    let run = |prog: &str, args: &[&str]| {
        let out = Command::new(prog).args(args).current_dir(dir).output().unwrap();
        let log = std::fs::read_to_string(dir.join("paper.log")).unwrap_or_default();
        assert!(
            out.status.success(),
            "{prog} failed:\n{}\n{}\n{log}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let latex = ["-interaction=nonstopmode", "-halt-on-error", "paper.tex"];
    run("latex", &latex);
    run("bibtex", &["paper"]);
    run("latex", &latex);
    run("latex", &latex);
    let log = std::fs::read_to_string(dir.join("paper.log")).unwrap();
    assert!(!log.contains("undefined"), "undefined citations or references:\n{log}");
    log
}

#[test]
fn a_sweep_report_states_its_figures_in_each_format() {
    let cat = carbon_dash::demo::catalog().unwrap();
    let r = cat.report(&sweep(), NOW).unwrap();
    let p = r.pareto.as_ref().expect("the demo sweep has metrics");
    assert_eq!(p.metric.as_deref(), Some("eval_accuracy"));
    assert!(p.knee_run_id.is_some() && p.dominated_runs > 0, "{:?}", p.findings);
    let tex = render(&cat, &sweep(), Format::Tex, NOW).unwrap();
    let md = render(&cat, &sweep(), Format::Md, NOW).unwrap();
    let yaml = render(&cat, &sweep(), Format::Yaml, NOW).unwrap();
    let bib = render(&cat, &sweep(), Format::Bib, NOW).unwrap();
    let kg = carbon_core::units::sig3(r.totals.co2_kg);
    // The same total in each, in kg (LaTeX, Markdown) and in grams (the model card).
    assert!(tex.contains(&format!("{kg}~kgCO$_2$eq")), "{tex}");
    assert!(md.contains(&format!("**Carbon emitted:** {kg} kg CO₂e")), "{md}");
    let grams = carbon_core::units::sig3(r.totals.co2_kg * 1000.0);
    assert!(yaml.starts_with("co2_eq_emissions:\n") && yaml.contains(&format!("  emissions: {grams}\n")), "{yaml}");
    assert_eq!(r.totals.runs, 31);
    assert!(
        tex.contains("The 31 runs") && tex.contains("4 x NVIDIA L4") && tex.contains("\\cite{codecarbon}"),
        "{tex}"
    );
    // Every key the paragraph cites is in the BibTeX.
    for cite in tex.split("\\cite{").skip(1) {
        for key in cite.split('}').next().unwrap().split(',') {
            assert!(bib.contains(&format!("{{{key},")), "{key} is cited but not in the BibTeX:\n{bib}");
        }
    }
    assert!(bib.contains("10.5281/zenodo.11171501"));
    // A run alone; a selection that holds nothing is an error, not an empty report.
    let one = r.runs[0].run_id.clone();
    let run = render(&cat, &ReportScope { run_id: Some(one.clone()), ..Default::default() }, Format::Md, NOW).unwrap();
    assert!(run.contains("over 1 run\n"), "{run}");
    let none = ReportScope { run_id: Some("nope".into()), ..Default::default() };
    assert_eq!(
        render(&cat, &none, Format::Html, NOW).unwrap_err(),
        ReportError::NoRuns("no run 'nope' (give its id, or the first 8 characters the pages show)".into())
    );
    // The 8 characters the pages show are enough when only one run starts with them.
    let short = ReportScope { run_id: Some(one[..8].to_string()), ..Default::default() };
    assert_eq!(render(&cat, &short, Format::Md, NOW).unwrap(), run);
    // A metric no run has is a mistake, said with the ones there are; an unknown project lists them.
    let mut bad = sweep();
    bad.selection.metric = Some("bleu".into());
    assert!(
        matches!(render(&cat, &bad, Format::Tex, NOW), Err(ReportError::Bad(m)) if m.contains("metric 'bleu': no run of project bert-sst2-sweep has it (they have: eval_accuracy, eval_loss"))
    );
    let mut nope = sweep();
    nope.selection.project = Some("nope".into());
    assert!(
        matches!(render(&cat, &nope, Format::Tex, NOW), Err(ReportError::NoRuns(m)) if m.contains("the projects are: bert-sst2-sweep, llama-3-8b-lora"))
    );
    if latex_available() {
        let dir = tempfile::tempdir().unwrap();
        let log = compile(dir.path(), &tex, &bib);
        assert!(log.contains("Output written on paper.dvi"), "{log}");
    }
}

#[test]
fn hostile_names_cannot_break_the_latex_the_markdown_the_yaml_or_the_html() {
    let nasty =
        "50%_off & co #1 {x} ~^\\end{document} <script>alert(1)</script> \"q\" café \u{1}\u{7f}\n## Intended use";
    let header = "timestamp,project_name,run_id,experiment_id,duration,emissions,energy_consumed,country_iso_code,country_name,gpu_model,cpu_model,codecarbon_version";
    let csv = format!(
        "{header}\n2026-05-01T10:00:00,\"{}\",r1,e1,3600,0.05,1.0,FRA,France,\"1 x {}\",\"{}\",3.2.6\n",
        nasty.replace('"', "\"\""),
        nasty.replace('"', "\"\""),
        nasty.replace('"', "\"\"")
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("emissions.csv"), csv).unwrap();
    let cat = carbon_core::catalog::load_dir(dir.path()).unwrap();
    // Read as shown: its control characters (the newline too) are spaces.
    let name = carbon_core::text::shown(nasty).into_owned();
    assert!(name.ends_with("café    ## Intended use"), "{name:?}");
    let scope =
        ReportScope { run_id: None, selection: ParetoQuery { project: Some(name.clone()), ..Default::default() } };
    let html = render(&cat, &scope, Format::Html, NOW).unwrap();
    assert!(!html.contains("<script>alert"), "the name is escaped in the HTML");
    assert_eq!(html.matches("<script").count(), 1, "only the page's data block");
    let data = html.split(r#"<script type="application/json" id="report-data">"#).nth(1).unwrap();
    let data = data.split("</script>").next().unwrap();
    let parsed: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(parsed["scope"], format!("project {name}"));
    let yaml = render(&cat, &scope, Format::Yaml, NOW).unwrap();
    assert!(yaml.contains(r#"\"q\""#), "quotes escaped in YAML strings: {yaml}");
    let md = render(&cat, &scope, Format::Md, NOW).unwrap();
    assert!(md.contains(r"\<script\>") && !md.contains("\n## Intended") && md.contains(r"\#\# Intended"), "{md}");
    assert!(!yaml.contains('\u{1}') && yaml.lines().count() == 6, "one line per field: {yaml}");
    let tex = render(&cat, &scope, Format::Tex, NOW).unwrap();
    assert!(tex.contains(r"50\%\_off \& co \#1 \{x\}") && !tex.contains(r"~^\end"), "{tex}");
    if latex_available() {
        let out = tempfile::tempdir().unwrap();
        compile(out.path(), &tex, &render(&cat, &scope, Format::Bib, NOW).unwrap());
    }
}

#[test]
fn the_report_command_writes_a_folder_s_report() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/demo");
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("report.html");
    let status = Command::new(env!("CARGO_BIN_EXE_carbon-dash"))
        .args(["report", demo.to_str().unwrap(), "--project", "bert-sst2-sweep", "--format", "html", "-o"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.contains("id=\"chart-pareto\"") && html.contains("statement-tex")
    );
    // Nothing in the page asks the network for anything.
    for external in ["http://", "https://", "//cdn", "@import", "src=\"http"] {
        let outside_text = html.split("<pre").next().unwrap();
        assert!(
            !outside_text.contains(&format!("src=\"{external}"))
                && !outside_text.contains(&format!("href=\"{external}")),
            "{external}"
        );
    }
    assert!(!html.contains("<link") && !html.contains("<img"), "no linked resource");
    let bad = Command::new(env!("CARGO_BIN_EXE_carbon-dash"))
        .args(["report", demo.to_str().unwrap(), "--project", "nope", "--format", "tex"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no runs match project nope"));
    let bad = Command::new(env!("CARGO_BIN_EXE_carbon-dash"))
        .args(["report", demo.to_str().unwrap(), "--format", "pdf"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("format 'pdf': one of html, tex, md, yaml, bib"));
}
