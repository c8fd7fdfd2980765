//! Across replications: `summary.csv` of a run with `--replications` above
//! 1 gains, per sweep point and flow, the mean of the replications' values
//! and the half-width of its 95% confidence interval (Student's t with
//! R - 1 degrees of freedom), for the latency statistics and throughput.
//! They are computed from the replications' rows as written (so a merge of
//! shards, which has exactly those rows, computes the same bytes), on every
//! row of the point and flow.

use std::collections::BTreeMap;

use super::Table;

/// The columns summarised across replications.
pub(crate) const COLUMNS: [&str; 6] =
    ["latency_mean_us", "latency_p50_us", "latency_p90_us", "latency_p99_us", "latency_p999_us", "throughput_rps"];

/// Student's t quantile at 0.975 for 1-30 degrees of freedom (the
/// standard table, e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2).
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
    2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/// t(0.975, df): the table up to 30, above it the Cornish-Fisher expansion
/// around the normal quantile 1.959964 (within 1e-4 there).
pub(crate) fn t975(df: u32) -> f64 {
    if (1..=30).contains(&df) {
        return T975[df as usize - 1];
    }
    let (z, n) = (1.959_963_985_f64, df as f64);
    let (z3, z5) = (z * z * z, z * z * z * z * z);
    z + (z3 + z) / (4.0 * n) + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * n * n)
}

/// Mean and 95% half-width of `xs` (at least 2 values).
pub(crate) fn mean_ci(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, t975(xs.len() as u32 - 1) * (var / n).sqrt())
}

/// Adds the `<column>_mean` and `<column>_ci95` columns to `summary`, if
/// its rows are replications (a `replication` key column).
pub(crate) fn add_ci(summary: &mut Table) {
    let Some(rep) = summary.header[..summary.keys].iter().position(|k| k == "replication") else { return };
    let col = |c: &str| summary.header.iter().position(|h| h == c).expect("a summary column");
    let cols: Vec<usize> = COLUMNS.iter().map(|c| col(c)).collect();
    let flow = summary.keys;
    let group = |r: &[String]| -> Vec<String> {
        r[..=flow].iter().enumerate().filter(|&(i, _)| i != rep).map(|(_, v)| v.clone()).collect()
    };
    let mut rows = summary.records();
    let mut values: BTreeMap<Vec<String>, Vec<Vec<f64>>> = BTreeMap::new();
    for (_, r) in &rows {
        let v = values.entry(group(r)).or_insert_with(|| vec![Vec::new(); cols.len()]);
        for (k, &c) in cols.iter().enumerate() {
            if let Ok(x) = r[c].parse::<f64>() {
                v[k].push(x);
            }
        }
    }
    let stats: BTreeMap<Vec<String>, Vec<Option<(f64, f64)>>> = values
        .into_iter()
        .map(|(g, v)| (g, v.iter().map(|xs| (xs.len() >= 2).then(|| mean_ci(xs))).collect()))
        .collect();
    for c in COLUMNS {
        summary.header.push(format!("{c}_mean"));
        summary.header.push(format!("{c}_ci95"));
    }
    for (_, r) in &mut rows {
        let s = &stats[&group(r)];
        for x in s {
            match x {
                Some((m, h)) => r.extend([format!("{m:.3}"), format!("{h:.3}")]),
                None => r.extend([String::new(), String::new()]),
            }
        }
    }
    summary.set_records(&rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_intervals_use_student_s_t() {
        assert_eq!(t975(1), 12.706);
        assert_eq!(t975(29), 2.045);
        // Above the table: 2.021 at 40, 2.000 at 60, 1.980 at 120 (the table's).
        assert!((t975(40) - 2.021).abs() < 1e-3 && (t975(60) - 2.000).abs() < 1e-3, "{}", t975(40));
        assert!((t975(120) - 1.980).abs() < 1e-3 && (t975(100_000) - 1.960).abs() < 1e-3);
        // 2, 4, 6: mean 4, sd 2, half-width 4.303 * 2 / sqrt(3).
        let (m, h) = mean_ci(&[2.0, 4.0, 6.0]);
        assert_eq!(m, 4.0);
        assert!((h - 4.303 * 2.0 / 3f64.sqrt()).abs() < 1e-12);
    }
}
