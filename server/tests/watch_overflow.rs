//! A tree larger than the kernel's event queue: the check that reads it overflows the watch's
//! queue, and that overflow must not start another check (which would overflow it again, for
//! good). Its own process: the count of checks is the process's.
#![allow(clippy::unwrap_used)]

use carbon_core::catalog::{load_dir, SharedCatalog};
use carbon_dash::watch::{check, checks, watch, Announcer};
use std::time::Duration;

#[test]
fn reading_a_large_tree_does_not_make_the_watch_look_again_and_again() {
    let queue: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(16_384);
    if queue > 40_000 {
        eprintln!("max_queued_events is {queue}: too large a tree to make here, not tested");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Folders: each one the check lists is an event (the watch sees every open).
    for i in 0..queue + 2_000 {
        std::fs::create_dir_all(dir.path().join(format!("t{}/r{i}", i % 50))).unwrap();
    }
    std::fs::write(
        dir.path().join("t0/r0/emissions.csv"),
        "timestamp,run_id,duration,energy_consumed\n2026-10-01T10:00:00,r,10,0.1\n",
    )
    .unwrap();
    let cat = SharedCatalog::new(load_dir(dir.path()).unwrap());
    let (tx, _rx) = tokio::sync::broadcast::channel(16);
    let announcer = Announcer::new(tx);
    let _watcher = watch(dir.path().to_path_buf(), cat.clone(), announcer.clone()).unwrap();
    check(dir.path(), &cat, &announcer, None, false);
    let after_first = checks();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(checks(), after_first, "the check's own overflow started {} more", checks() - after_first);
    // The watch still follows the tree.
    std::fs::write(
        dir.path().join("t1/r1/emissions.csv"),
        "timestamp,run_id,duration,energy_consumed\n2026-10-01T10:00:00,s,10,0.2\n",
    )
    .unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while cat.current().run("s", carbon_core::model::DatasetMode::Latest).is_none() {
        assert!(std::time::Instant::now() < until, "the new file is never seen");
        std::thread::sleep(Duration::from_millis(50));
    }
}
