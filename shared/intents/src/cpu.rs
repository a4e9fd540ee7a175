//! Measuring the detector's cost.

/// CPU seconds this thread has used (user + system) from /proc, in 10 ms ticks. The
/// benchmarks report CPU time, not wall time: the machine they run on is shared.
pub fn thread_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}
