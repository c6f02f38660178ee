//! Intel RAPL through Linux's powercap sysfs: the package domains' energy counters
//! (`intel-rapl:N/energy_uj`), which wrap around at `max_energy_range_uj`.

use std::path::{Path, PathBuf};

/// The powercap folder on a real machine.
pub const POWERCAP: &str = "/sys/class/powercap";

/// One package domain's counter.
#[derive(Debug)]
struct Domain {
    energy: PathBuf,
    /// The counter wraps to 0 after this many µJ.
    range_uj: u64,
    last_uj: u64,
}

/// The package domains of a powercap tree.
#[derive(Debug)]
pub struct Rapl {
    domains: Vec<Domain>,
}

/// Why RAPL cannot be read, said so a user can act on it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RaplProblem {
    #[error("no RAPL package domain under {0} (not an Intel/AMD CPU with powercap, or a VM that hides it)")]
    Missing(String),
    #[error(
        "{0} cannot be read ({1}): RAPL needs read access, e.g. `sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj` (or run as root)"
    )]
    Unreadable(String, String),
}

fn read_u64(path: &Path) -> Result<u64, RaplProblem> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| RaplProblem::Unreadable(path.display().to_string(), e.to_string()))?;
    text.trim()
        .parse()
        .map_err(|_| RaplProblem::Unreadable(path.display().to_string(), format!("not a number: '{}'", text.trim())))
}

impl Rapl {
    /// The package domains (`intel-rapl:N` whose `name` starts with `package`) under `root`.
    pub fn open(root: &Path) -> Result<Rapl, RaplProblem> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
            .map_err(|_| RaplProblem::Missing(root.display().to_string()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                // Top-level domains only (`intel-rapl:0`, not the sub-domain `intel-rapl:0:0`).
                name.starts_with("intel-rapl:") && name.matches(':').count() == 1
            })
            .filter(|p| std::fs::read_to_string(p.join("name")).is_ok_and(|n| n.trim().starts_with("package")))
            .collect();
        dirs.sort();
        if dirs.is_empty() {
            return Err(RaplProblem::Missing(root.display().to_string()));
        }
        let mut domains = Vec::new();
        for d in dirs {
            let energy = d.join("energy_uj");
            let last_uj = read_u64(&energy)?;
            // Without a range a counter that went back is taken as reset, not wrapped.
            let range_uj = read_u64(&d.join("max_energy_range_uj")).unwrap_or(0);
            domains.push(Domain { energy, range_uj, last_uj });
        }
        Ok(Rapl { domains })
    }

    pub fn domains(&self) -> usize {
        self.domains.len()
    }

    /// Joules used by all packages since the last call (or since `open`). A counter that went
    /// back wrapped around once.
    pub fn joules(&mut self) -> Result<f64, RaplProblem> {
        let mut uj = 0u64;
        for d in &mut self.domains {
            let now = read_u64(&d.energy)?;
            uj += if now >= d.last_uj {
                now - d.last_uj
            } else if d.range_uj > d.last_uj {
                d.range_uj - d.last_uj + now
            } else {
                now
            };
            d.last_uj = now;
        }
        Ok(uj as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(root: &Path, name: &str, kind: &str, energy: u64, range: Option<u64>) {
        let d = root.join(name);
        std::fs::create_dir_all(&d).expect("dir");
        std::fs::write(d.join("name"), format!("{kind}\n")).expect("name");
        std::fs::write(d.join("energy_uj"), format!("{energy}\n")).expect("energy");
        if let Some(r) = range {
            std::fs::write(d.join("max_energy_range_uj"), format!("{r}\n")).expect("range");
        }
    }

    fn set(root: &Path, name: &str, energy: u64) {
        std::fs::write(root.join(name).join("energy_uj"), format!("{energy}\n")).expect("energy");
    }

    #[test]
    fn package_domains_are_summed_and_a_wrapped_counter_counts_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        domain(root, "intel-rapl:0", "package-0", 1_000_000, Some(262_143_328_850));
        domain(root, "intel-rapl:1", "package-1", 262_143_000_000, Some(262_143_328_850));
        // A sub-domain (its energy is inside its package's) and the psys domain are left out.
        domain(root, "intel-rapl:0:0", "core", 5, Some(100));
        domain(root, "intel-rapl:2", "psys", 5, Some(100));
        let mut rapl = Rapl::open(root).expect("open");
        assert_eq!(rapl.domains(), 2);
        set(root, "intel-rapl:0", 3_000_000);
        // Package 1 wrapped: 328,850 µJ to the end of its range, then 671,150 µJ.
        set(root, "intel-rapl:1", 671_150);
        let j = rapl.joules().expect("read");
        assert!((j - 3.0).abs() < 1e-9, "{j}");
        set(root, "intel-rapl:0", 4_500_000);
        set(root, "intel-rapl:1", 1_171_150);
        assert!((rapl.joules().expect("read") - 2.0).abs() < 1e-9);
        // No range known: a counter that went back was reset (counted from 0), never a near-2^64 wrap.
        let dir = tempfile::tempdir().expect("tmp");
        domain(dir.path(), "intel-rapl:0", "package-0", 5_000_000, None);
        let mut rapl = Rapl::open(dir.path()).expect("open");
        set(dir.path(), "intel-rapl:0", 1_000_000);
        assert!((rapl.joules().expect("read") - 1.0).abs() < 1e-9);
    }

    #[test]
    fn missing_and_unreadable_domains_say_what_to_do() {
        let dir = tempfile::tempdir().expect("tmp");
        assert!(matches!(Rapl::open(&dir.path().join("nope")), Err(RaplProblem::Missing(_))));
        assert!(matches!(Rapl::open(dir.path()), Err(RaplProblem::Missing(_))));
        // energy_uj that cannot be read (here a folder; on a real machine root-only permissions).
        let d = dir.path().join("intel-rapl:0");
        std::fs::create_dir_all(d.join("energy_uj")).expect("dir");
        std::fs::write(d.join("name"), "package-0\n").expect("name");
        let e = Rapl::open(dir.path()).expect_err("unreadable");
        assert!(matches!(e, RaplProblem::Unreadable(..)));
        assert!(e.to_string().contains("chmod a+r"), "{e}");
        // A counter that stops being readable mid-run is an error, not zero.
        let dir2 = tempfile::tempdir().expect("tmp");
        domain(dir2.path(), "intel-rapl:0", "package-0", 10, None);
        let mut rapl = Rapl::open(dir2.path()).expect("open");
        std::fs::write(dir2.path().join("intel-rapl:0/energy_uj"), "garbage").expect("write");
        assert!(rapl.joules().is_err());
    }
}
