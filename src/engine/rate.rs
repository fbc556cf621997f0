//! A transfer-rate meter over a sliding window of one-second buckets. Time comes in as
//! milliseconds from the caller; the meter never reads a clock.

const BUCKETS: usize = 5;

#[derive(Debug, Clone, Default)]
pub struct RateMeter {
    buckets: [u64; BUCKETS],
    /// Which second each bucket holds, so stale buckets are skipped without mutation.
    seconds: [u64; BUCKETS],
    total: u64,
}

impl RateMeter {
    pub fn add(&mut self, bytes: u64, now_ms: u64) {
        let second = now_ms / 1000;
        let i = (second as usize) % BUCKETS;
        if self.seconds[i] != second {
            self.seconds[i] = second;
            self.buckets[i] = 0;
        }
        self.buckets[i] += bytes;
        self.total += bytes;
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes per second over the last few whole seconds plus the current partial one.
    pub fn rate(&self, now_ms: u64) -> f64 {
        let second = now_ms / 1000;
        let oldest = second.saturating_sub(BUCKETS as u64 - 1);
        let sum: u64 = (0..BUCKETS)
            .filter(|&i| self.seconds[i] >= oldest && self.seconds[i] <= second)
            .map(|i| self.buckets[i])
            .sum();
        let span_ms = (second - oldest) * 1000 + now_ms % 1000;
        sum as f64 * 1000.0 / span_ms.max(1000) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_rate_and_decay() {
        let mut m = RateMeter::default();
        for s in 0..10u64 {
            m.add(1000, s * 1000 + 500);
        }
        let r = m.rate(9_999);
        assert!((900.0..=1100.0).contains(&r), "rate {r}");
        assert_eq!(m.rate(60_000), 0.0);
        assert_eq!(m.total(), 10_000);
    }

    #[test]
    fn early_rate_is_not_inflated() {
        let mut m = RateMeter::default();
        m.add(1000, 100);
        assert!(m.rate(200) <= 1000.0);
    }
}
