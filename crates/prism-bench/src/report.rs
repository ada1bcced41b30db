//! The results: a table (Markdown, so it pastes into `docs/performance.md`), the list of targets
//! with met / missed, and the JSON record under `target/bench/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    pub(crate) workload: String,
    pub(crate) metric: String,
    pub(crate) direct: String,
    pub(crate) prism: String,
    pub(crate) ratio: String,
    pub(crate) target: String,
    pub(crate) met: String,
}

/// One target of the issue, checked.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TargetCheck {
    pub(crate) id: String,
    pub(crate) target: String,
    pub(crate) measured: String,
    pub(crate) met: bool,
}

/// Everything a run produced.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) rows: Vec<Row>,
    pub(crate) targets: Vec<TargetCheck>,
    pub(crate) workloads: serde_json::Map<String, Value>,
    pub(crate) notes: Vec<String>,
}

impl Report {
    /// A row without a target.
    pub(crate) fn row(
        &mut self,
        workload: &str,
        metric: &str,
        direct: String,
        prism: String,
        ratio: String,
    ) {
        self.rows.push(Row {
            workload: workload.to_owned(),
            metric: metric.to_owned(),
            direct,
            prism,
            ratio,
            target: String::new(),
            met: String::new(),
        });
    }

    /// A row checked against a target.
    #[expect(clippy::too_many_arguments, reason = "one table row, named at every call site")]
    pub(crate) fn checked(
        &mut self,
        id: &str,
        workload: &str,
        metric: &str,
        direct: String,
        prism: String,
        ratio: String,
        target: &str,
        met: bool,
    ) {
        let measured = if ratio.is_empty() { prism.clone() } else { ratio.clone() };
        self.targets.push(TargetCheck {
            id: id.to_owned(),
            target: format!("{workload} {metric}: {target}"),
            measured,
            met,
        });
        self.rows.push(Row {
            workload: workload.to_owned(),
            metric: metric.to_owned(),
            direct,
            prism,
            ratio,
            target: target.to_owned(),
            met: if met { "yes".to_owned() } else { "**NO**".to_owned() },
        });
    }

    pub(crate) fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        eprintln!("prism-bench: note: {note}");
        self.notes.push(note);
    }

    /// The table in Markdown.
    pub(crate) fn table(&self) -> String {
        let header =
            ["workload", "metric", "direct", "through Prism", "Prism vs direct", "target", "met"];
        let cells: Vec<[&str; 7]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.workload.as_str(),
                    r.metric.as_str(),
                    r.direct.as_str(),
                    r.prism.as_str(),
                    r.ratio.as_str(),
                    r.target.as_str(),
                    r.met.as_str(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &cells {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, row: &[&str; 7]| {
            out.push('|');
            for (cell, w) in row.iter().zip(widths) {
                let pad = w - cell.chars().count();
                let _ = write!(out, " {cell}{} |", " ".repeat(pad));
            }
            out.push('\n');
        };
        line(&mut out, &header);
        out.push('|');
        for w in widths {
            let _ = write!(out, "{}|", "-".repeat(w + 2));
        }
        out.push('\n');
        for row in &cells {
            line(&mut out, row);
        }
        out
    }

    /// Writes `gateway-<timestamp>.json` and `gateway-latest.json` into `dir`.
    pub(crate) fn write_json(
        &self,
        dir: &Path,
        mut head: serde_json::Map<String, Value>,
    ) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        head.insert("workloads".to_owned(), Value::Object(self.workloads.clone()));
        head.insert("targets".to_owned(), serde_json::to_value(&self.targets)?);
        head.insert("table".to_owned(), serde_json::to_value(&self.rows)?);
        head.insert("notes".to_owned(), serde_json::to_value(&self.notes)?);
        let text = serde_json::to_string_pretty(&Value::Object(head))?;
        let path = dir.join(format!("gateway-{}.json", timestamp(SystemTime::now())));
        std::fs::write(&path, &text)?;
        std::fs::write(dir.join("gateway-latest.json"), &text)?;
        Ok(path)
    }
}

/// `YYYYMMDDTHHMMSSZ` in UTC.
pub(crate) fn timestamp(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A number with `decimals` places, or `-` when it is not a number.
pub(crate) fn num(x: f64, decimals: usize) -> String {
    if x.is_finite() { format!("{x:.decimals$}") } else { "-".to_owned() }
}

/// `a / b` as a percentage.
pub(crate) fn pct(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() { format!("{:.0}%", a / b * 100.0) } else { "-".to_owned() }
}

/// A count with thousands separators.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(timestamp(UNIX_EPOCH), "19700101T000000Z");
        let at = UNIX_EPOCH + std::time::Duration::from_secs(1_735_689_600 + 3_723);
        assert_eq!(timestamp(at), "20250101T010203Z");
        let leap = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(timestamp(leap), "20000229T000000Z");
    }

    #[test]
    fn numbers_format() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(999), "999");
        assert_eq!(num(1.23456, 2), "1.23");
        assert_eq!(num(f64::NAN, 2), "-");
        assert_eq!(pct(1.0, 4.0), "25%");
        assert_eq!(pct(1.0, 0.0), "-");
    }

    #[test]
    fn table_aligns_and_marks_missed_targets() {
        let mut report = Report::default();
        report.checked(
            "W2.cpu",
            "W2",
            "CPU",
            "-".into(),
            "3.0".into(),
            String::new(),
            "≤ 2.5",
            false,
        );
        report.row("W2", "streams/s", "100".into(), "60".into(), "60%".into());
        let table = report.table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[2].contains("**NO**"));
        let widths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{table}");
        assert_eq!(report.targets.len(), 1);
        assert!(!report.targets[0].met);
    }
}
