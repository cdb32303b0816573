//! Server and client resource use from /proc.

/// Clock ticks per second of /proc/PID/stat times (Linux's USER_HZ on every common platform).
const TICKS: f64 = 100.0;

/// VmRSS of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// User + system CPU seconds of a process (`None`: self).
pub fn cpu_secs(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let s = std::fs::read_to_string(path).ok()?;
    // fields after the parenthesised command name
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here (0-based 11, 12)
    let ut: f64 = f.get(11)?.parse().ok()?;
    let st: f64 = f.get(12)?.parse().ok()?;
    Some((ut + st) / TICKS)
}

/// CPU use between two samples, in percent of one core.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    server: Option<f64>,
    client: Option<f64>,
    pid: Option<u32>,
    t: std::time::Instant,
}

impl CpuMeter {
    /// Starts measuring (server `pid`, if known, and this process).
    pub fn start(pid: Option<u32>) -> Self {
        Self {
            server: pid.and_then(|p| cpu_secs(Some(p))),
            client: cpu_secs(None),
            pid,
            t: std::time::Instant::now(),
        }
    }

    /// (server %, client %) since the start.
    pub fn stop(&self) -> (Option<f64>, Option<f64>) {
        let dt = self.t.elapsed().as_secs_f64().max(1e-9);
        let s = match (self.server, self.pid.and_then(|p| cpu_secs(Some(p)))) {
            (Some(a), Some(b)) => Some((b - a) / dt * 100.0),
            _ => None,
        };
        let c = match (self.client, cpu_secs(None)) {
            (Some(a), Some(b)) => Some((b - a) / dt * 100.0),
            _ => None,
        };
        (s, c)
    }
}
