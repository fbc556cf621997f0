//! A transfer-rate meter over a sliding window of one-second buckets. Time comes in as
//! milliseconds from the caller; the meter never reads a clock.

const BUCKETS: usize = 5;

#[derive(Debug, Clone, Default)]
pub struct RateMeter {
    buckets: [u64; BUCKETS],
    current_second: u64,
    total: u64,
}

impl RateMeter {
    pub fn add(&mut self, bytes: u64, now_ms: u64) {
        self.advance(now_ms);
        self.buckets[(self.current_second as usize) % BUCKETS] += bytes;
        self.total += bytes;
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes per second over the last few whole seconds (plus the current partial one).
    pub fn rate(&mut self, now_ms: u64) -> f64 {
        self.advance(now_ms);
        let sum: u64 = self.buckets.iter().sum();
        let elapsed_ms = (BUCKETS as u64 - 1) * 1000 + now_ms % 1000;
        sum as f64 * 1000.0 / elapsed_ms.max(1) as f64
    }

    fn advance(&mut self, now_ms: u64) {
        let second = now_ms / 1000;
        if second <= self.current_second {
            return;
        }
        let gap = (second - self.current_second).min(BUCKETS as u64);
        for i in 1..=gap {
            self.buckets[((self.current_second + i) as usize) % BUCKETS] = 0;
        }
        self.current_second = second;
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
}
