//! The project, experiment, token, member and export commands: each opens the store `--db` names, does
//! one thing and says what a user does next (the lines for `.codecarbon.config`).

use crate::cli::{BudgetCommand, ExperimentCommand, MemberCommand, ProjectCommand, SessionCommand, TokenCommand};
use carbon_store::{NewExperiment, Store};
use std::fmt::Write as _;

fn when(micros: i64) -> String {
    carbon_core::time::from_unix_micros(micros)
        .map(|t| format!("{} UTC", carbon_core::time::iso(&t).replace('T', " ")))
        .unwrap_or_default()
}

pub async fn project(cmd: ProjectCommand) -> anyhow::Result<String> {
    match cmd {
        ProjectCommand::Add { name, team, db } => {
            let store = Store::open(&db.db).await?;
            let p = store.add_project(&name, team.as_deref()).await?;
            store.close().await;
            Ok(format!(
                "project '{}' created{} (id {}).\nNext: carbon-dash experiment add --project '{}' --name NAME --country ISO3\n",
                p.name,
                p.team.as_deref().map(|t| format!(" in team '{t}'")).unwrap_or_default(),
                p.id,
                p.name
            ))
        }
        ProjectCommand::List { db } => {
            let store = Store::open(&db.db).await?;
            let mut out = String::new();
            for p in store.projects().await? {
                let _ = writeln!(out, "{}\tteam: {}\tid: {}", p.name, p.team.as_deref().unwrap_or("-"), p.id);
            }
            store.close().await;
            Ok(out)
        }
    }
}

pub async fn experiment(cmd: ExperimentCommand) -> anyhow::Result<String> {
    match cmd {
        ExperimentCommand::Add { project, name, country, region, cloud_provider, cloud_region, db } => {
            let store = Store::open(&db.db).await?;
            let new = NewExperiment { name, country_iso_code: country, region, cloud_provider, cloud_region };
            let e = store.add_experiment(&project, &new).await?;
            store.close().await;
            Ok(format!(
                "# experiment '{}' of project '{}': for .codecarbon.config, under [codecarbon]\nexperiment_id = {}\n",
                e.name, e.project, e.id
            ))
        }
        ExperimentCommand::List { project, db } => {
            let store = Store::open(&db.db).await?;
            let mut out = String::new();
            for e in store.experiments(project.as_deref()).await? {
                let place = match (&e.cloud_provider, &e.cloud_region) {
                    (Some(p), Some(r)) => format!("{p}/{r}"),
                    _ => [e.country_iso_code.as_deref(), e.region.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join("/"),
                };
                let _ = writeln!(out, "{}\t{}\t{place}\texperiment_id = {}", e.project, e.name, e.id);
            }
            store.close().await;
            Ok(out)
        }
    }
}

pub async fn token(cmd: TokenCommand) -> anyhow::Result<String> {
    match cmd {
        TokenCommand::Add { read: true, team, all, db, .. } => {
            if team.is_none() && !all {
                anyhow::bail!("a read token sees one team (--team NAME) or every team (--all): give one");
            }
            let store = Store::open(&db.db).await?;
            let token = store.add_read_token(team.as_deref()).await?;
            store.close().await;
            let scope = team.map(|t| format!("team '{t}'")).unwrap_or_else(|| "every team".into());
            Ok(format!(
                "# a read token for {scope}, shown this once; send it as a header to a server with --auth:\n\
                 #   curl -H 'Authorization: Bearer {token}' http://…/api/v1/runs\n{token}\n"
            ))
        }
        TokenCommand::Add { project, endpoint, db, .. } => {
            let project = project.ok_or_else(|| anyhow::anyhow!("give --project (or --read for a read token)"))?;
            let store = Store::open(&db.db).await?;
            let token = store.add_token(&project).await?;
            let experiments = store.experiments(Some(&project)).await?;
            store.close().await;
            let endpoint = endpoint.trim_end_matches('/');
            let mut out = format!(
                "# paste into .codecarbon.config (the token is shown this once; it writes to project '{project}'):\n\
                 [codecarbon]\napi_endpoint = {endpoint}\napi_key = {token}\n"
            );
            match &experiments[..] {
                [only] => {
                    let _ = writeln!(out, "experiment_id = {}", only.id);
                }
                [] => out.push_str("# and an experiment_id line from: carbon-dash experiment add --project …\n"),
                _ => out.push_str("# and one experiment_id line from: carbon-dash experiment list\n"),
            }
            out.push_str(
                // API only: with the API on, CodeCarbon 3.3.2 writes run_id "None" in its own CSV, which
                // must not land in a served logs folder beside the collected run.
                "# the API output on (unless your code passes output_methods):\noutput_methods = api\n",
            );
            Ok(out)
        }
        TokenCommand::List { read: true, db, .. } => {
            let store = Store::open(&db.db).await?;
            let mut out = String::new();
            for t in store.read_tokens().await? {
                let state = t.revoked_at.map(|r| format!("revoked {}", when(r))).unwrap_or_else(|| "live".into());
                let scope = t.team.map(|t| format!("team: {t}")).unwrap_or_else(|| "every team".into());
                let _ = writeln!(out, "{}…\t{scope}\tmade {}\t{state}", t.prefix, when(t.created_at));
            }
            store.close().await;
            Ok(out)
        }
        TokenCommand::List { project, db, .. } => {
            let project = project.ok_or_else(|| anyhow::anyhow!("give --project (or --read)"))?;
            let store = Store::open(&db.db).await?;
            let mut out = String::new();
            for t in store.tokens(&project).await? {
                let state = t.revoked_at.map(|r| format!("revoked {}", when(r))).unwrap_or_else(|| "live".into());
                let _ = writeln!(out, "{}…\tmade {}\t{state}", t.prefix, when(t.created_at));
            }
            store.close().await;
            Ok(out)
        }
        TokenCommand::Revoke { project, token, db } => {
            let token = token.trim_end_matches('…');
            let store = Store::open(&db.db).await?;
            let n = match project {
                _ if token.starts_with("cdr_") => store.revoke_read_token(token).await,
                Some(project) => store.revoke_token(&project, token).await,
                None => {
                    store.close().await;
                    anyhow::bail!("a tracker's token belongs to a project: give --project");
                }
            };
            store.close().await;
            let n = n?;
            Ok(format!("{n} token{} revoked: refused from now on\n", if n == 1 { "" } else { "s" }))
        }
    }
}

pub async fn member(cmd: MemberCommand) -> anyhow::Result<String> {
    match cmd {
        MemberCommand::Add { team, user, db } => {
            let store = Store::open(&db.db).await?;
            let added = store.add_member(&team, &user).await;
            store.close().await;
            Ok(if added? {
                format!("{user} now sees team '{team}' (at their next page)\n")
            } else {
                format!("{user} is in team '{team}' already\n")
            })
        }
        MemberCommand::List { team, db } => {
            let store = Store::open(&db.db).await?;
            let members = store.members(team.as_deref()).await;
            store.close().await;
            let mut out = String::new();
            for (team, person, at) in members? {
                let _ = writeln!(out, "{team}\t{person}\tadded {}", when(at));
            }
            Ok(out)
        }
        MemberCommand::Remove { team, user, db } => {
            let store = Store::open(&db.db).await?;
            let removed = store.remove_member(&team, &user).await;
            store.close().await;
            removed?;
            Ok(format!("{user} no longer sees team '{team}' through membership here (their groups still count)\n"))
        }
    }
}

pub async fn budget(cmd: BudgetCommand) -> anyhow::Result<String> {
    use carbon_core::budget::{Budget, Period, Quantity, Scope};
    let scope = |team: Option<String>, project: Option<String>| match (team, project) {
        (Some(t), None) => Ok(Scope::Team(t)),
        (None, Some(p)) => Ok(Scope::Project(p)),
        _ => Err(anyhow::anyhow!("give --team or --project")),
    };
    match cmd {
        BudgetCommand::Set { team, project, co2_kg, energy_kwh, period, mut thresholds, db } => {
            let (quantity, amount) = match (co2_kg, energy_kwh) {
                (Some(kg), None) => (Quantity::Co2Kg, kg),
                (None, Some(kwh)) => (Quantity::EnergyKwh, kwh),
                _ => anyhow::bail!("give --co2-kg or --energy-kwh"),
            };
            if thresholds.iter().any(|t| !(t.is_finite() && *t > 0.0 && *t <= 1000.0)) || thresholds.len() > 10 {
                anyhow::bail!("--thresholds: up to 10 percentages, each above 0 and at most 1000");
            }
            thresholds.sort_by(f64::total_cmp);
            thresholds.dedup();
            let period = Period::parse(&period).unwrap_or(Period::Month);
            let b = Budget {
                scope: scope(team, project)?,
                quantity,
                amount,
                period,
                thresholds,
                source: "database".into(),
            };
            let store = Store::open(&db.db).await?;
            let set = store.set_budget(&b).await;
            store.close().await;
            set?;
            Ok(format!(
                "budget of {}: {amount} {} per {} (alerts at {} %); servers on this store show it within {} s\n",
                b.scope.label(),
                quantity.unit(),
                carbon_store::budgets::period_name(period),
                b.thresholds.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", "),
                crate::budgets::EVERY.as_secs()
            ))
        }
        BudgetCommand::List { db } => {
            let store = Store::open(&db.db).await?;
            let budgets = store.budgets().await;
            store.close().await;
            let mut out = String::new();
            for b in budgets? {
                let _ = writeln!(
                    out,
                    "{}\t{} {} per {}\talerts at {} %",
                    b.scope.label(),
                    b.amount,
                    b.quantity.unit(),
                    carbon_store::budgets::period_name(b.period),
                    b.thresholds.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
                );
            }
            Ok(out)
        }
        BudgetCommand::Remove { team, project, period, db } => {
            let scope = scope(team, project)?;
            let store = Store::open(&db.db).await?;
            let n = store.remove_budget(&scope, period.as_deref().and_then(Period::parse)).await;
            store.close().await;
            let n = n?;
            Ok(format!("{n} budget{} of {} removed\n", if n == 1 { "" } else { "s" }, scope.label()))
        }
    }
}

pub async fn session(cmd: SessionCommand) -> anyhow::Result<String> {
    match cmd {
        SessionCommand::List { db } => {
            let store = Store::open(&db.db).await?;
            let sessions = store.sessions().await;
            store.close().await;
            let mut out = String::new();
            for (person, n, until) in sessions? {
                let _ = writeln!(out, "{person}\t{n} session{}\tuntil {}", if n == 1 { "" } else { "s" }, when(until));
            }
            Ok(out)
        }
        SessionCommand::End { user, db } => {
            let store = Store::open(&db.db).await?;
            let n = store.end_sessions_of(&user).await;
            store.close().await;
            let n = n?;
            Ok(format!("{n} session{} of {user} ended: they sign in again\n", if n == 1 { "" } else { "s" }))
        }
    }
}

/// The project's collected runs as CodeCarbon's CSV, to `output` (or returned for stdout).
pub async fn export(project: &str, output: Option<&std::path::Path>, db: &str) -> anyhow::Result<String> {
    let store = Store::open(db).await?;
    let csv = store.export_csv(project).await?;
    store.close().await;
    match output {
        Some(path) => {
            std::fs::write(path, &csv).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            Ok(String::new())
        }
        None => Ok(csv),
    }
}
