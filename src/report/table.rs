//! A result table in memory (`Table`) and the cells and CSV encoding of
//! its rows.

use std::fs;
use std::io::Write;
use std::path::Path;

/// One CSV file of a run: rows of every job (a point and replication),
/// each prefixed with the job's swept values, kept in memory in job order
/// until written: to a results directory, or to a shard's (with the job
/// in a first column) for `emu merge` to assemble. Rows are kept
/// CSV-encoded, one buffer per table (about the file's size), not as
/// strings per cell.
pub(crate) struct Table {
    pub(super) name: &'static str,
    pub(super) header: Vec<String>,
    /// Leading key columns (swept keys, `replication`).
    pub(super) keys: usize,
    /// The job the next rows belong to.
    pub(super) job: u32,
    /// The rows, CSV-encoded ([`encode_row`]), each ending in a newline.
    text: Vec<u8>,
    /// Each row's job and the end of its text.
    ends: Vec<(u32, usize)>,
    /// At most this many rows are kept (`timeseries.csv`); the first left
    /// out sets `dropped`, the warning.
    pub(super) limit: Option<u64>,
    seen: u64,
    pub(super) dropped: Option<String>,
}

impl Table {
    pub(super) fn new(name: &'static str, keys: &[String], columns: &[&str]) -> Result<Table, String> {
        let header = keys.iter().cloned().chain(columns.iter().map(|c| c.to_string())).collect();
        Ok(Table {
            name,
            header,
            keys: keys.len(),
            job: 0,
            text: Vec::new(),
            ends: Vec::new(),
            limit: None,
            seen: 0,
            dropped: None,
        })
    }

    pub(super) fn row<S: AsRef<str>>(&mut self, prefix: &[(String, String)], cells: &[S]) -> Result<(), String> {
        let record = prefix.iter().map(|(_, v)| v.as_str()).chain(cells.iter().map(AsRef::as_ref));
        self.push(self.job, record);
        Ok(())
    }

    /// Adds a whole row of `job`, unless past the table's limit.
    pub(super) fn push<'a>(&mut self, job: u32, record: impl Iterator<Item = &'a str> + Clone) {
        if let Some(max) = self.limit {
            self.seen += 1;
            if self.seen > max {
                if self.seen == max + 1 {
                    self.dropped = Some(format!(
                        "{} stops at {max} rows, emu's limit (from flow `{}`): use a longer [output] interval",
                        self.name,
                        record.clone().nth(self.keys).unwrap_or("")
                    ));
                }
                return;
            }
        }
        encode_row(&mut self.text, record);
        self.ends.push((job, self.text.len()));
    }

    /// Every row with its job, as cells.
    pub(super) fn records(&self) -> Vec<(u32, Vec<String>)> {
        let text = &self.text;
        let mut start = 0;
        let mut out = Vec::with_capacity(self.ends.len());
        for &(job, end) in &self.ends {
            let mut r = csv::ReaderBuilder::new().has_headers(false).from_reader(&text[start..end]);
            let rec = r.records().next().and_then(Result::ok).unwrap_or_default();
            out.push((job, rec.iter().map(str::to_string).collect()));
            start = end;
        }
        out
    }

    /// Replaces every row (same jobs, in order).
    pub(super) fn set_records(&mut self, rows: &[(u32, Vec<String>)]) {
        (self.text, self.ends) = (Vec::new(), Vec::new());
        let limit = self.limit.take();
        for (job, r) in rows {
            self.push(*job, r.iter().map(String::as_str));
        }
        self.limit = limit;
    }

    /// Writes the table to `dir/<name>`; with `job_column`, each row led
    /// by its job (a shard's form).
    pub(super) fn write(&self, dir: &Path, job_column: bool) -> Result<(), String> {
        let path = dir.join(self.name);
        let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
        let mut head = csv::Writer::from_writer(Vec::new());
        let job: &[&str] = if job_column { &["job"] } else { &[] };
        head.write_record(job.iter().copied().chain(self.header.iter().map(String::as_str)))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let head = head.into_inner().map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let mut f = std::io::BufWriter::new(fs::File::create(&path).map_err(fail)?);
        f.write_all(&head).map_err(fail)?;
        let text = &self.text;
        if job_column {
            let mut start = 0;
            for &(j, end) in &self.ends {
                write!(f, "{j},").map_err(fail)?;
                f.write_all(&text[start..end]).map_err(fail)?;
                start = end;
            }
        } else {
            f.write_all(text).map_err(fail)?;
        }
        f.flush().map_err(fail)
    }
}

/// Appends one CSV record of `fields` and its newline to `out`, byte for
/// byte as the `csv` crate's default writer does (the test
/// `rows_encode_as_the_csv_crate_writes_them` holds the two together): a
/// field with a comma, a double quote, `\r` or `\n` goes in double quotes
/// with its quotes doubled, and a record of nothing (one empty field) is
/// `""`. Without the `csv` writer's state machine per byte, `Table::row` took
/// half the instructions (2.15 -> 1.07 G for a million `endpoints.csv` rows).
fn encode_row<'a>(out: &mut Vec<u8>, fields: impl Iterator<Item = &'a str>) {
    let start = out.len();
    for (i, field) in fields.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let bytes = field.as_bytes();
        if bytes.iter().any(|&b| matches!(b, b',' | b'"' | b'\r' | b'\n')) {
            out.push(b'"');
            for &b in bytes {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(bytes);
        }
    }
    if out.len() == start {
        out.extend_from_slice(b"\"\"");
    }
    out.push(b'\n');
}

/// A row's formatted cells in one reused buffer: `put` writes a value and
/// says where, `get` reads it back (no string per cell).
#[derive(Default)]
pub(super) struct Cells(String);

impl Cells {
    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    pub(super) fn put(&mut self, v: impl std::fmt::Display) -> std::ops::Range<usize> {
        use std::fmt::Write as _;
        let start = self.0.len();
        write!(self.0, "{v}").expect("a string takes any write");
        start..self.0.len()
    }

    pub(super) fn get(&self, at: std::ops::Range<usize>) -> &str {
        &self.0[at]
    }
}

#[cfg(test)]
mod tests {
    use super::encode_row;

    #[test]
    fn rows_encode_as_the_csv_crate_writes_them() {
        // Fields from pieces that need quotes and pieces that do not, in
        // records of one to five fields (one empty field included).
        let pieces = ["", "a", ",", "\"", "\r", "\n", " ", "é", "10.0.0.1", "x\"y", "#", "'"];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut ours = Vec::new();
        // (Flexible: records of any length; the encoding is the default.)
        let mut theirs = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
        let mut quoted = 0;
        for _ in 0..20_000 {
            let fields: Vec<String> = (0..1 + next(5))
                .map(|_| (0..next(4)).map(|_| pieces[next(pieces.len())]).collect::<String>())
                .collect();
            quoted += fields.iter().any(|f| f.contains(['"', ',', '\n', '\r'])) as u32;
            encode_row(&mut ours, fields.iter().map(String::as_str));
            theirs.write_record(&fields).unwrap();
        }
        encode_row(&mut ours, [""].into_iter());
        theirs.write_record([""]).unwrap();
        let theirs = theirs.into_inner().unwrap();
        assert!(quoted > 5_000, "{quoted}");
        assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs).unwrap());
    }
}
