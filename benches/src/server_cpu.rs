//! Reads a process's CPU time (user + system) from /proc, for CPU-per-operation figures.

use std::io;

/// CPU seconds `pid` has used so far.
///
/// # Errors
/// The process does not exist or /proc is unreadable.
pub fn seconds(pid: u32) -> io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces or parentheses; fields resume after the last ')'.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| io::Error::other("bad stat"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let ticks = |i: usize| -> io::Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .ok_or_else(|| io::Error::other("bad stat field"))
    };
    Ok((ticks(11)? + ticks(12)?) / clock_ticks_per_second())
}

/// CPU seconds every process of `pids` has used so far, added up; `None` for no pids.
///
/// # Errors
/// As `seconds`.
pub fn total(pids: &[u32]) -> io::Result<Option<f64>> {
    if pids.is_empty() {
        return Ok(None);
    }
    pids.iter()
        .map(|&pid| seconds(pid))
        .sum::<io::Result<f64>>()
        .map(Some)
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_our_own_cpu_time() {
        let spent = super::seconds(std::process::id()).unwrap();
        assert!(spent >= 0.0);
    }
}
