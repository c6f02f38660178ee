//! The stores a test runs against: a fresh SQLite file, and a fresh database on the PostgreSQL
//! server that `./x test` starts (`CARBON_DASH_TEST_PG`). Under CI a missing server fails the
//! test instead of leaving PostgreSQL untested.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

/// A database spec (`--db` value) per engine; the temporary folder lives as long as the value.
pub struct Dbs {
    pub specs: Vec<String>,
    _dir: tempfile::TempDir,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A new, empty PostgreSQL database on the test server, or `None` without one (outside CI).
pub async fn fresh_postgres() -> Option<String> {
    let Ok(admin) = std::env::var("CARBON_DASH_TEST_PG") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CARBON_DASH_TEST_PG is not set: run the tests with ./x test, which starts PostgreSQL"
        );
        eprintln!("CARBON_DASH_TEST_PG not set: PostgreSQL not tested here");
        return None;
    };
    let name = format!("t{}_{}_{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed), rand_suffix());
    Some(carbon_store::Store::create_postgres_database(&admin, &name).await.expect("create a database"))
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
}

pub async fn dbs() -> Dbs {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut specs = vec![dir.path().join("collect.db").to_string_lossy().into_owned()];
    specs.extend(fresh_postgres().await);
    Dbs { specs, _dir: dir }
}
