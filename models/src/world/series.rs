//! Per-flow time series: what a flow completed and failed in each interval
//! of simulated time, with the interval's latency percentiles
//! (`timeseries.csv`). Intervals where nothing ended are written only at
//! the edges of a gap: its first and its last idle interval. A flow's rows
//! are therefore at most three per interval in which a request ended.
//! Failures are also kept by reason, one entry per (interval, reason) that
//! had any (`timeseries_failures.csv`).

use crate::traffic::{Failure, FAILURES};

/// One interval of one flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntervalRow {
    /// Start of the interval [ns].
    pub start_ns: u64,
    /// Requests answered in it.
    pub completed: u64,
    /// Requests failed in it (any reason).
    pub failed: u64,
    /// Median latency of the requests answered in it [ns] (0 if none).
    pub p50_ns: u64,
    /// 99th percentile latency [ns] (0 if none).
    pub p99_ns: u64,
}

/// Accumulates one flow's intervals as its requests end, in time order.
#[derive(Clone, Debug)]
pub(crate) struct Series {
    interval_ns: u64,
    cur: Option<u64>,
    lat: Vec<u64>,
    completed: u64,
    failed: u64,
    /// Failures of the current interval by reason.
    why: [u32; FAILURES],
    pub(crate) rows: Vec<IntervalRow>,
    /// (interval start [ns], reason, count) of every interval with failures.
    pub(crate) reasons: Vec<(u64, Failure, u32)>,
}

/// Nearest-rank quantile of sorted `v`.
fn quantile(v: &[u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let rank = (q * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

impl Series {
    pub(crate) fn new(interval_ns: u64) -> Series {
        assert!(interval_ns > 0, "a time series needs a positive interval");
        Series {
            interval_ns,
            cur: None,
            lat: Vec::new(),
            completed: 0,
            failed: 0,
            why: [0; FAILURES],
            rows: Vec::new(),
            reasons: Vec::new(),
        }
    }

    fn flush(&mut self) {
        if let Some(cur) = self.cur {
            self.lat.sort_unstable();
            self.rows.push(IntervalRow {
                start_ns: cur * self.interval_ns,
                completed: self.completed,
                failed: self.failed,
                p50_ns: quantile(&self.lat, 0.5),
                p99_ns: quantile(&self.lat, 0.99),
            });
            self.lat.clear();
            self.completed = 0;
            if self.failed > 0 {
                for r in Failure::ALL {
                    let n = std::mem::take(&mut self.why[r as usize]);
                    if n > 0 {
                        self.reasons.push((cur * self.interval_ns, r, n));
                    }
                }
            }
            self.failed = 0;
        }
    }

    fn advance(&mut self, now_ns: u64) {
        let idx = now_ns / self.interval_ns;
        match self.cur {
            None => self.cur = Some(idx),
            Some(cur) if idx > cur => {
                self.flush();
                // A gap of idle intervals is written as its first and last
                // interval only, so a plot drops to zero across it while the
                // rows stay bounded by the requests (a think time of days
                // with a 1 ms interval would otherwise write millions).
                let idle = |gap: u64| IntervalRow {
                    start_ns: gap * self.interval_ns,
                    completed: 0,
                    failed: 0,
                    p50_ns: 0,
                    p99_ns: 0,
                };
                if idx > cur + 1 {
                    self.rows.push(idle(cur + 1));
                }
                if idx > cur + 2 {
                    self.rows.push(idle(idx - 1));
                }
                self.cur = Some(idx);
            }
            Some(_) => {}
        }
    }

    /// A request answered at `now_ns` after `latency_ns`.
    #[inline]
    pub(crate) fn completed(&mut self, now_ns: u64, latency_ns: u64) {
        self.advance(now_ns);
        self.completed += 1;
        self.lat.push(latency_ns);
    }

    /// Starts loading where the next answered request's latency goes (a
    /// hint).
    #[inline]
    pub(crate) fn prefetch_completed(&self) {
        emu_engine::prefetch::prefetch_addr(self.lat.as_ptr_range().end);
    }

    /// A request failed at `now_ns` for `why`.
    #[inline]
    pub(crate) fn failed(&mut self, now_ns: u64, why: Failure) {
        self.advance(now_ns);
        self.failed += 1;
        self.why[why as usize] += 1;
    }

    /// Closes the last interval and returns the rows, and the failures by
    /// reason.
    pub(crate) fn finish(mut self) -> (Vec<IntervalRow>, Vec<(u64, Failure, u32)>) {
        self.flush();
        (self.rows, self.reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_gap_is_written_as_its_first_and_last_idle_interval() {
        let mut s = Series::new(10);
        s.completed(5, 1);
        s.completed(1_000_000_005, 2);
        s.failed(1_000_000_006, Failure::Timeout);
        let (rows, _) = s.finish();
        let starts: Vec<u64> = rows.iter().map(|r| r.start_ns).collect();
        assert_eq!(starts, [0, 10, 999_999_990, 1_000_000_000]);
        assert_eq!((rows[1].completed, rows[2].completed), (0, 0));
        assert_eq!((rows[3].completed, rows[3].failed), (1, 1));
    }

    #[test]
    fn intervals_fill_gaps_and_take_nearest_rank_percentiles() {
        let mut s = Series::new(100);
        for (t, l) in [(5, 10), (50, 30), (60, 20), (350, 7)] {
            s.completed(t, l);
        }
        s.failed(360, Failure::QueueFull);
        let (rows, reasons) = s.finish();
        assert_eq!(reasons, [(300, Failure::QueueFull, 1)]);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0], IntervalRow { start_ns: 0, completed: 3, failed: 0, p50_ns: 20, p99_ns: 30 });
        assert_eq!(rows[1], IntervalRow { start_ns: 100, completed: 0, failed: 0, p50_ns: 0, p99_ns: 0 });
        assert_eq!(rows[3], IntervalRow { start_ns: 300, completed: 1, failed: 1, p50_ns: 7, p99_ns: 7 });
    }
}
