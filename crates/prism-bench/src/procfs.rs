//! What the kernel says about a process and the machine: CPU time (utime + stime), resident
//! memory (VmRSS, VmHWM), open file descriptors, the open-file limit, and system-wide CPU use
//! (to tell how busy the rest of a shared machine was during a measurement).

use std::time::Duration;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use serde::Serialize;

/// CPU time a process has used so far (user + system, all threads, living and exited).
pub(crate) fn cpu_time(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = parse_stat_cpu_ticks(&text)?;
    Some(ticks_to_duration(ticks))
}

/// utime + stime (fields 14 and 15) from a `/proc/<pid>/stat` line. The command name (field 2)
/// may contain spaces and parentheses, so fields are counted after its last `)`.
fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after = stat.rsplit_once(')')?.1;
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_to_duration(ticks: u64) -> Duration {
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / hz)
}

/// Resident memory of a process, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Memory {
    /// VmRSS: resident now.
    pub(crate) rss_kib: u64,
    /// VmHWM: the most it was ever resident.
    pub(crate) hwm_kib: u64,
}

pub(crate) fn memory(pid: u32) -> Option<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(parse_status_memory(&text))
}

fn parse_status_memory(status: &str) -> Memory {
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Memory { rss_kib: kib("VmRSS:"), hwm_kib: kib("VmHWM:") }
}

/// Open file descriptors of a process.
pub(crate) fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Raises this process's open-file soft limit to its hard limit (children inherit it), and
/// returns the limit now in force.
pub(crate) fn raise_nofile_limit() -> u64 {
    let current = getrlimit(Resource::Nofile);
    if let Some(hard) = current.maximum {
        let raised = Rlimit { current: Some(hard), maximum: Some(hard) };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return hard;
        }
    } else {
        // Unlimited hard limit: ask for plenty (the kernel caps it at fs.nr_open).
        let wanted = Rlimit { current: Some(1 << 20), maximum: None };
        if setrlimit(Resource::Nofile, wanted).is_ok() {
            return 1 << 20;
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// System-wide CPU ticks: (busy, total) over all CPUs since boot, from `/proc/stat`.
pub(crate) fn system_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    parse_system_ticks(&text)
}

fn parse_system_ticks(stat: &str) -> (u64, u64) {
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else { return (0, 0) };
    // user nice system idle iowait irq softirq steal (guest times are inside user/nice).
    let values: Vec<u64> =
        line.split_whitespace().skip(1).take(8).filter_map(|v| v.parse().ok()).collect();
    let total: u64 = values.iter().sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// System-wide busy CPU time between two [`system_ticks`] readings.
pub(crate) fn busy_between(before: (u64, u64), after: (u64, u64)) -> Duration {
    ticks_to_duration(after.0.saturating_sub(before.0))
}

/// The machine, for the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    pub(crate) cpu_model: String,
    pub(crate) cpus: usize,
    pub(crate) memory_gib: f64,
    pub(crate) kernel: String,
    pub(crate) load_average_at_start: String,
    pub(crate) open_file_limit: u64,
}

pub(crate) fn machine(open_file_limit: u64) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    Machine {
        cpu_model,
        cpus: std::thread::available_parallelism().map(usize::from).unwrap_or(1),
        memory_gib: (mem_kib as f64 / (1024.0 * 1024.0) * 10.0).round() / 10.0,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        load_average_at_start: load_average(),
        open_file_limit,
    }
}

/// The 1-, 5- and 15-minute load averages.
pub(crate) fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_fields_are_counted_after_the_command_name() {
        let stat =
            "4242 (prism (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 567 0 0 20 0 3 0 100 0 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(1234 + 567));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn own_cpu_time_and_memory_are_readable() {
        let pid = std::process::id();
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(30) {
            x = x.wrapping_add(1);
        }
        assert!(x > 0);
        assert!(cpu_time(pid).is_some_and(|t| t > Duration::ZERO));
        let mem = memory(pid).unwrap();
        assert!(mem.rss_kib > 0 && mem.hwm_kib >= mem.rss_kib);
        assert!(open_fds(pid) >= 3);
    }

    #[test]
    fn status_memory_parses() {
        let status = "Name:\tprism\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(parse_status_memory(status), Memory { rss_kib: 10240, hwm_kib: 20480 });
    }

    #[test]
    fn system_ticks_subtract_idle_and_iowait() {
        let stat = "cpu  100 5 50 1000 20 1 2 3 0 0\ncpu0 1 1 1 1\n";
        assert_eq!(parse_system_ticks(stat), (161, 1181));
        assert_eq!(parse_system_ticks("intr 1"), (0, 0));
    }

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        let limit = raise_nofile_limit();
        assert_eq!(getrlimit(Resource::Nofile).current, Some(limit));
    }
}
