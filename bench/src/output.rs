//! How the benchmarks write their figures: whole numbers grouped by
//! thousands, megabytes, the machine's load average, and progress lines on
//! standard error.

/// `bytes` in MB (10^6 bytes).
pub(crate) fn megabytes(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

/// A whole number with thousands separated by spaces.
pub(crate) fn group(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(' ');
        }
        out.push(digit);
    }
    out
}

/// The first three fields of `/proc/loadavg`, where there is one.
pub(crate) fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// A progress line on standard error.
pub(crate) fn progress(message: &str) {
    eprintln!("bench: {message}");
}
