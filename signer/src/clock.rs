//! Wall-clock time, in one place: the engine, the lease keeper and the tools read it here, and
//! the pure rules (`exclave-policies`) take it as an argument.

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
