//! What procfs tells of the machine and of a process tree: CPU time, memory, and CodeCarbon's
//! power models for when there is no counter (CPU load × TDP, RAM by DIMM count).

use std::path::Path;

/// Clock ticks a second for `/proc` CPU times.
fn ticks() -> f64 {
    // SAFETY: sysconf only reads a constant of the system.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Busy and total CPU time of the machine (seconds, all cores), from `/proc/stat`.
pub fn machine_cpu(proc_root: &Path) -> Option<(f64, f64)> {
    let text = std::fs::read_to_string(proc_root.join("stat")).ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<f64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    if v.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal
    let idle = v[3] + v.get(4).copied().unwrap_or(0.0);
    let total: f64 = v.iter().take(8).sum();
    let t = ticks();
    Some(((total - idle) / t, total / t))
}

/// `(ppid, CPU seconds, rss bytes)` of one process: its own time and that of the children it
/// waited for (`utime + stime + cutime + cstime`), so a finished child's time is not lost.
fn proc_stat(proc_root: &Path, pid: u32) -> Option<(u32, f64, u64)> {
    // Bytes, not text: the command name may be any bytes (cut mid-character at 15).
    let raw = std::fs::read(proc_root.join(pid.to_string()).join("stat")).ok()?;
    // The command name is in parentheses and may hold spaces and ')': fields start after the last.
    let rest = String::from_utf8_lossy(raw.get(raw.iter().rposition(|&b| b == b')')? + 2..)?).into_owned();
    let f: Vec<&str> = rest.split_whitespace().collect();
    // state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14) … rss(21) in pages
    let ppid = f.get(1)?.parse().ok()?;
    let ticks_of = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
    let cpu = (ticks_of(11)? + ticks_of(12)? + ticks_of(13).unwrap_or(0.0) + ticks_of(14).unwrap_or(0.0)) / ticks();
    // SAFETY: sysconf only reads a constant of the system.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    let rss = f.get(21)?.parse::<u64>().ok()? * page;
    Some((ppid, cpu, rss))
}

/// CPUs online (not the share a cgroup or affinity gives this process: the TDP is the package's).
pub fn cpus_online() -> f64 {
    // SAFETY: sysconf only reads a value of the system.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        n as f64
    } else {
        std::thread::available_parallelism().map(|n| n.get() as f64).unwrap_or(1.0)
    }
}

/// The children of `pid` from `/proc/PID/task/*/children` (kernels with CONFIG_PROC_CHILDREN);
/// `None` when the kernel does not say.
fn children(proc_root: &Path, pid: u32) -> Option<Vec<u32>> {
    let tasks = std::fs::read_dir(proc_root.join(pid.to_string()).join("task")).ok()?;
    let mut out = Vec::new();
    let mut said = false;
    for t in tasks.filter_map(Result::ok) {
        if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
            said = true;
            out.extend(text.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
    }
    said.then_some(out)
}

/// CPU seconds and resident bytes of `root` and all its descendants now. Follows the kernel's
/// child lists (a few reads per process of the tree); scans all of `/proc` only where the kernel
/// keeps none.
pub fn tree(proc_root: &Path, root: u32) -> (f64, u64) {
    let mut members = vec![root];
    let mut i = 0;
    let mut walked = true;
    while i < members.len() {
        match children(proc_root, members[i]) {
            Some(kids) => {
                for k in kids {
                    if !members.contains(&k) {
                        members.push(k);
                    }
                }
            }
            None if i == 0 => {
                walked = false;
                break;
            }
            None => {}
        }
        i += 1;
    }
    if walked {
        return members
            .iter()
            .filter_map(|&pid| proc_stat(proc_root, pid))
            .fold((0.0, 0), |(c, r), (_, cpu, rss)| (c + cpu, r + rss));
    }
    scan_tree(proc_root, root)
}

/// [`tree`] by reading every process's parent from `/proc`.
fn scan_tree(proc_root: &Path, root: u32) -> (f64, u64) {
    let Ok(entries) = std::fs::read_dir(proc_root) else { return (0.0, 0) };
    let all: Vec<(u32, u32, f64, u64)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter_map(|pid| proc_stat(proc_root, pid).map(|(ppid, cpu, rss)| (pid, ppid, cpu, rss)))
        .collect();
    let mut members = vec![root];
    let mut i = 0;
    while i < members.len() {
        let parent = members[i];
        members.extend(all.iter().filter(|p| p.1 == parent && p.0 != parent).map(|p| p.0));
        i += 1;
    }
    all.iter().filter(|p| members.contains(&p.0)).fold((0.0, 0), |(c, r), p| (c + p.2, r + p.3))
}

/// Total memory of the machine, GB (GiB, as CodeCarbon counts).
pub fn memory_gb(proc_root: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(proc_root.join("meminfo")).ok()?;
    let kb: f64 = text.lines().find(|l| l.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0 / 1024.0)
}

/// The CPU's model name, from `/proc/cpuinfo`.
pub fn cpu_model(proc_root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(proc_root.join("cpuinfo")).ok()?;
    text.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// Watts a DIMM slot draws (x86), in CodeCarbon 3's RAM model.
const DIMM_W: f64 = 5.0;

/// CodeCarbon 3's RAM power model: the DIMMs a machine of this size likely has, 5 W each, less
/// for each DIMM past the fourth (90 %), eighth (80 %) and sixteenth (70 %); at least two DIMMs'.
pub fn ram_power_w(gb: f64) -> f64 {
    let dimms: f64 = if gb <= 2.0 {
        1.0
    } else if gb <= 16.0 {
        2.0
    } else if gb <= 64.0 {
        4.0
    } else if gb <= 128.0 {
        8.0
    } else {
        // Large servers: the largest module size that gives at least 8 of them, 32 at most.
        let size = [128.0, 64.0, 32.0, 16.0, 8.0, 4.0].into_iter().find(|s| *s <= gb / 8.0).unwrap_or(4.0);
        (gb / size).ceil().min(32.0)
    };
    let tier = |from: f64, to: f64| (dimms.min(to) - from).max(0.0);
    let w = DIMM_W * (tier(0.0, 4.0) + 0.9 * tier(4.0, 8.0) + 0.8 * tier(8.0, 16.0) + 0.7 * tier(16.0, 32.0));
    w.max(2.0 * DIMM_W)
}

/// Watts a thread of an unknown CPU is taken to draw at full load (CodeCarbon 3.3.2's figure
/// for a CPU model it does not know).
pub const W_PER_THREAD: f64 = 4.0;

/// CodeCarbon's CPU power without RAPL, machine mode: TDP × (0.1 + 0.9 × load³), `load` in 0–1.
pub fn cpu_power_machine_w(tdp: f64, load: f64) -> f64 {
    tdp * (0.1 + 0.9 * load.clamp(0.0, 1.0).powi(3))
}

/// … process mode: TDP × the share of all cores the process tree used.
pub fn cpu_power_process_w(tdp: f64, cores_used: f64, cores: f64) -> f64 {
    tdp * (cores_used / cores.max(1.0)).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_power_follows_codecarbons_dimm_model() {
        // 23.5 GB: 4 DIMMs, 20 W (what CodeCarbon 3.3.2 reported on this machine).
        assert_eq!(ram_power_w(23.54), 20.0);
        assert_eq!(ram_power_w(8.0), 10.0);
        assert_eq!(ram_power_w(1.0), 10.0, "at least two DIMMs' worth");
        assert_eq!(ram_power_w(128.0), 20.0 + 18.0);
        // 512 GB: 8 × 64 GB, 38 W; 2 TB: 16 × 128 GB: 20 + 18 + 32 = 70 W.
        assert_eq!(ram_power_w(512.0), 38.0);
        assert_eq!(ram_power_w(2048.0), 70.0);
    }

    #[test]
    fn cpu_power_without_rapl_follows_the_load() {
        assert_eq!(cpu_power_machine_w(100.0, 0.0), 10.0);
        assert_eq!(cpu_power_machine_w(100.0, 1.0), 100.0);
        assert!((cpu_power_machine_w(100.0, 0.5) - 21.25).abs() < 1e-9);
        assert_eq!(cpu_power_process_w(80.0, 2.0, 8.0), 20.0);
    }

    #[test]
    fn a_process_tree_is_found_with_its_children() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path();
        // pid ppid utime stime rss(pages); the command name holds a space and a ')'.
        let stat = |pid: u32, ppid: u32, ut: u32, rss: u32| {
            std::fs::create_dir_all(p.join(pid.to_string())).expect("dir");
            let fields =
                format!("{pid} (py) thon) S {ppid} 1 1 0 -1 0 0 0 0 0 {ut} {ut} 0 0 20 0 1 0 100 1000 {rss} 0");
            std::fs::write(p.join(pid.to_string()).join("stat"), fields).expect("stat");
        };
        let t = ticks();
        stat(10, 1, 100, 10);
        stat(11, 10, 50, 5);
        stat(12, 11, 50, 5);
        stat(20, 1, 999, 999);
        // Without the kernel's child lists: every process's parent is read.
        let (cpu, rss) = tree(p, 10);
        assert!((cpu - 400.0 / t).abs() < 1e-9, "{cpu}");
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
        assert_eq!(rss, 20 * page);
        // With them: the same tree by following children (11 → 12), the unrelated 20 not read.
        for (pid, kids) in [(10, "11 "), (11, "12"), (12, "")] {
            let task = p.join(pid.to_string()).join("task").join(pid.to_string());
            std::fs::create_dir_all(&task).expect("task");
            std::fs::write(task.join("children"), kids).expect("children");
        }
        std::fs::write(p.join("20").join("stat"), "garbage").expect("unreadable 20");
        let (cpu, rss) = tree(p, 10);
        assert!((cpu - 400.0 / t).abs() < 1e-9, "{cpu}");
        assert_eq!(rss, 20 * page);
        assert_eq!(tree(p, 99), (0.0, 0));
    }
}
