//! Where the electricity comes from without asking the network: the flags, else the system's
//! time zone as a weak guess (said so).

use std::path::Path;

/// The time zone's name: `TZ`, else where `/etc/localtime` points, else `/etc/timezone`.
pub fn time_zone(etc: &Path) -> Option<String> {
    if let Some(tz) =
        std::env::var("TZ").ok().map(|t| t.trim_start_matches(':').to_string()).filter(|t| t.contains('/'))
    {
        return Some(tz);
    }
    if let Ok(target) = std::fs::read_link(etc.join("localtime")) {
        let t = target.to_string_lossy().into_owned();
        if let Some((_, zone)) = t.split_once("zoneinfo/") {
            return Some(zone.to_string());
        }
    }
    std::fs::read_to_string(etc.join("timezone")).ok().map(|t| t.trim().to_string()).filter(|t| t.contains('/'))
}

/// The ISO 3166 alpha-2 country of a time zone, from the system's `zone.tab`.
pub fn country_of_zone(zone_tab: &Path, zone: &str) -> Option<String> {
    let text = std::fs::read_to_string(zone_tab).ok()?;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|f| f.get(2) == Some(&zone))
        .and_then(|f| f.first().map(|c| c.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_zone_gives_its_country() {
        let dir = tempfile::tempdir().expect("tmp");
        let tab = dir.path().join("zone.tab");
        std::fs::write(
            &tab,
            "# comment\nFR\t+4852+00220\tEurope/Paris\nUS\t+404251-0740023\tAmerica/New_York\tEastern\n",
        )
        .expect("tab");
        assert_eq!(country_of_zone(&tab, "Europe/Paris").as_deref(), Some("FR"));
        assert_eq!(country_of_zone(&tab, "America/New_York").as_deref(), Some("US"));
        assert_eq!(country_of_zone(&tab, "Etc/UTC"), None);
        std::os::unix::fs::symlink("/usr/share/zoneinfo/Europe/Paris", dir.path().join("localtime")).expect("link");
        if std::env::var_os("TZ").is_none() {
            assert_eq!(time_zone(dir.path()).as_deref(), Some("Europe/Paris"));
        }
    }
}
