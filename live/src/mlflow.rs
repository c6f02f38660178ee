//! An MLflow tracking server's runs, through its REST API (`experiments/search`,
//! `runs/search`), read page by page with limits, for [`carbon_core::stores::mlflow_rest`].

use std::collections::HashMap;
use std::time::Duration;

/// Runs and experiments asked for a page.
const PAGE: usize = 1000;
/// Experiments named in one `runs/search`.
const EXPERIMENTS_PER_SEARCH: usize = 100;
/// Most bytes read of one answer (a page of a thousand runs with their metrics and params).
const MAX_PAGE_BYTES: usize = 64 << 20;
/// Most pages read in one poll (of runs: a hundred thousand, what a table keeps).
const MAX_PAGES: usize = 100;

/// How to sign in: MLflow's own variables (`MLFLOW_TRACKING_TOKEN`, or
/// `MLFLOW_TRACKING_USERNAME` and `MLFLOW_TRACKING_PASSWORD`).
#[derive(Debug, Clone, Default)]
pub struct Auth {
    pub token: Option<String>,
    pub user: Option<(String, String)>,
}

/// A tracking server at `base` (`http://host:5000`, a path prefix allowed).
#[derive(Debug, Clone)]
pub struct MlflowServer {
    client: reqwest::Client,
    base: String,
    auth: Auth,
}

impl MlflowServer {
    pub fn new(base: &str, auth: Auth, timeout: Duration) -> Result<MlflowServer, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("carbon-dash/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(MlflowServer { client, base: base.trim_end_matches('/').to_string(), auth })
    }

    /// Where it is, for what the pages say.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> Result<serde_json::Value, String> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.base);
        let mut req = self.client.post(&url).header("content-type", "application/json").body(body.to_string());
        if let Some(t) = &self.auth.token {
            req = req.bearer_auth(t);
        } else if let Some((u, p)) = &self.auth.user {
            req = req.basic_auth(u, Some(p));
        }
        let mut res = req.send().await.map_err(|e| format!("{url}: {}", crate::http::network(e)))?;
        let status = res.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| format!("{url}: {}", crate::http::network(e)))? {
            if bytes.len() + chunk.len() > MAX_PAGE_BYTES {
                return Err(format!("{url}: an answer over {} MB", MAX_PAGE_BYTES >> 20));
            }
            bytes.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            let said: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
            return Err(format!("{url}: {status}: {said}"));
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("{url}: not JSON ({e})"))
    }

    /// Every active experiment (id → name) and the `runs/search` pages of their active runs.
    pub async fn runs(&self) -> Result<(HashMap<String, String>, Vec<serde_json::Value>), String> {
        let mut experiments = HashMap::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut body = serde_json::json!({ "max_results": PAGE, "view_type": "ACTIVE_ONLY" });
            if let Some(t) = &token {
                body["page_token"] = t.clone().into();
            }
            let page = self.post("experiments/search", body).await?;
            for e in page["experiments"].as_array().into_iter().flatten() {
                if let (Some(id), Some(name)) = (e["experiment_id"].as_str(), e["name"].as_str()) {
                    experiments.insert(id.to_string(), name.to_string());
                }
            }
            token = page["next_page_token"].as_str().filter(|t| !t.is_empty()).map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        let mut ids: Vec<&String> = experiments.keys().collect();
        ids.sort();
        let mut pages = Vec::new();
        let mut runs = 0usize;
        'batches: for batch in ids.chunks(EXPERIMENTS_PER_SEARCH) {
            let mut token: Option<String> = None;
            loop {
                if pages.len() >= MAX_PAGES || runs >= carbon_core::results::MAX_ROWS {
                    break 'batches;
                }
                let mut body = serde_json::json!({
                    "experiment_ids": batch, "max_results": PAGE, "run_view_type": "ACTIVE_ONLY",
                    "order_by": ["attributes.start_time ASC"],
                });
                if let Some(t) = &token {
                    body["page_token"] = t.clone().into();
                }
                let page = self.post("runs/search", body).await?;
                runs += page["runs"].as_array().map_or(0, Vec::len);
                token = page["next_page_token"].as_str().filter(|t| !t.is_empty()).map(str::to_string);
                pages.push(page);
                if token.is_none() {
                    break;
                }
            }
        }
        Ok((experiments, pages))
    }
}
