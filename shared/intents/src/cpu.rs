//! Measuring the detector's cost.

/// CPU seconds this thread has used. The benchmarks report CPU time, not wall time: the
/// machine they run on is shared, and a mail is analysed on one thread.
///
/// Read from `/proc/thread-self/schedstat` (nanoseconds on the CPU); where the kernel lacks
/// it, from `/proc/thread-self/stat` (user + system time in 10 ms ticks, fine for sums over
/// many mails).
pub fn thread_cpu_secs() -> f64 {
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    if let Some(ns) = schedstat
        .split_whitespace()
        .next()
        .and_then(|f| f.parse::<u64>().ok())
    {
        return ns as f64 / 1e9;
    }
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

#[cfg(test)]
mod tests {
    use super::thread_cpu_secs;

    #[test]
    fn counts_this_threads_work_not_sleep() {
        let start = thread_cpu_secs();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let slept = thread_cpu_secs() - start;
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(60) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let busy = thread_cpu_secs() - start - slept;
        assert!(slept < 0.02, "sleeping used {slept} s of CPU");
        assert!(busy > 0.0, "60 ms of spinning used no CPU");
    }
}
