//! `--mlflow-url`: an MLflow tracking server's runs, polled through its REST API, held in the
//! catalog as one results table (`@mlflow/<server>` on the Files page) and joined to the logs'
//! runs as `mlflow.db` is. While the server does not answer, the runs last read stay, said so.

use carbon_core::catalog::SharedCatalog;
use carbon_core::metrics::MetricsFormat;
use carbon_core::stores::Read;
use carbon_live::mlflow::MlflowServer;
use std::hash::{Hash, Hasher};
use std::time::Duration;

/// Longest wait between polls while the server fails (the wait doubles from the interval).
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// The Files page's name for the server's runs: not a path under the logs folder.
pub fn display(server: &MlflowServer) -> String {
    let host = server.base().split("://").nth(1).unwrap_or(server.base());
    format!("@mlflow/{}", host.replace('/', "_"))
}

/// Polls one server, remembering what it last answered.
pub struct Poller {
    server: MlflowServer,
    last: u64,
    good: Option<(Read, String)>,
}

impl Poller {
    pub fn new(server: MlflowServer) -> Poller {
        Poller { server, last: 0, good: None }
    }

    /// One poll: the server's runs put in the catalog when they changed; when it fails, the runs
    /// last read (or, before any, the reason) with the failure said. `Ok(true)`: the catalog
    /// changed.
    pub async fn poll(&mut self, catalog: &SharedCatalog) -> Result<bool, String> {
        let name = display(&self.server);
        let now = carbon_core::collect::now_utc().format("%Y-%m-%d %H:%M:%S UTC").to_string();
        let answer = self.server.runs().await;
        let mut h = std::hash::DefaultHasher::new();
        let read = match &answer {
            Ok((experiments, pages)) => {
                let mut names: Vec<(&String, &String)> = experiments.iter().collect();
                names.sort();
                names.hash(&mut h);
                serde_json::Value::Array(pages.clone()).to_string().hash(&mut h);
                let read = carbon_core::stores::mlflow_rest(experiments, pages);
                self.good = Some((read.clone(), now));
                Ok(read)
            }
            Err(why) => {
                why.hash(&mut h);
                match &self.good {
                    Some((read, at)) => {
                        let mut kept = read.clone();
                        kept.notes
                            .push(format!("the server did not answer at {now} ({why}): its runs as read at {at}"));
                        Ok(kept)
                    }
                    None => Err(why.clone()),
                }
            }
        };
        let hash = h.finish();
        let changed = hash != self.last;
        if changed {
            let file = carbon_core::ingest::held_store(&name, MetricsFormat::MlflowServer, read);
            catalog.update(|c| c.upsert(file)).map_err(|e| e.to_string())?;
            self.last = hash;
        }
        answer.map(|_| changed)
    }
}

/// Polls `server` every `every` (backing off to 10 minutes while it fails), telling open pages
/// when its runs changed.
pub fn spawn(server: MlflowServer, every: Duration, catalog: SharedCatalog, announcer: crate::watch::Announcer) {
    tokio::spawn(async move {
        let base = server.base().to_string();
        let mut poller = Poller::new(server);
        let mut wait = every;
        loop {
            match poller.poll(&catalog).await {
                Ok(changed) => {
                    if changed {
                        announcer.announce();
                    }
                    wait = every;
                }
                Err(why) => {
                    announcer.announce();
                    tracing::warn!("MLflow server {base}: {why}");
                    wait = (wait * 2).clamp(every, MAX_BACKOFF);
                }
            }
            tokio::time::sleep(wait).await;
        }
    });
}
