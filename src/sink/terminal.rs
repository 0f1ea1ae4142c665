//! Sinks for findings: JSON lines (one finding per line, the stable schema) and a readable
//! terminal table, plus the listing of rules.
//!
//! Every string in a finding was cleaned when the finding was built (see
//! [`crate::finding::clean`]), so neither format can carry terminal control sequences. The table
//! trims long cells to keep one finding per line.

use std::io::{self, Write};

use crate::analyze::incidents::Incident;
use crate::finding::RuleInfo;
use crate::finding::{clean, is_unsafe_char, Finding, Severity};
use crate::pipeline::{MatchedEvent, ScanResult};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON object per line for machines.
    Jsonl,
    /// One OCSF Detection Finding per line ([`super::ocsf`]); findings without an event time
    /// are stamped `detected_at` (ms).
    Ocsf {
        /// When the run started.
        detected_at: i64,
    },
}

/// How the findings table is drawn: decided once from the terminal and the environment
/// (`COLUMNS`, `NO_COLOR`, `--color`) by the configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStyle {
    /// Columns to fit each row into; `None` (not a terminal): the summary is cut at
    /// [`UNFITTED_SUMMARY`] characters.
    pub width: Option<usize>,
    /// Severities in colour (ANSI SGR).
    pub color: bool,
}

/// The summary column's length when there is no terminal width to fit.
pub const UNFITTED_SUMMARY: usize = 140;
/// Narrower than this, the summary column makes room by dropping the optional columns.
const MIN_SUMMARY: usize = 32;
/// The principal column is narrowed to this before it is dropped.
const MIN_PRINCIPAL: usize = 16;

/// Writes findings in `format` (`style` is the table's).
pub fn write_findings(out: &mut dyn Write, findings: &[Finding], format: Format, style: TableStyle) -> io::Result<()> {
    let mut writer = FindingWriter::new(format, style);
    writer.write(out, findings)?;
    writer.finish(out)
}

/// Writes findings as a run concludes them, a batch at a time: JSON lines, OCSF lines, or the
/// table (its header once, before the first row; fixed column widths, so rows of later batches
/// line up).
#[derive(Debug)]
pub struct FindingWriter {
    format: Format,
    style: TableStyle,
    written: u64,
}

impl FindingWriter {
    /// A writer that has written nothing yet.
    pub fn new(format: Format, style: TableStyle) -> FindingWriter {
        FindingWriter { format, style, written: 0 }
    }

    /// Writes `findings` and flushes.
    pub fn write<'f>(
        &mut self,
        out: &mut dyn Write,
        findings: impl IntoIterator<Item = &'f Finding>,
    ) -> io::Result<()> {
        let findings: Vec<&Finding> = findings.into_iter().collect();
        match self.format {
            Format::Jsonl => {
                for finding in &findings {
                    serde_json::to_writer(&mut *out, finding)?;
                    out.write_all(b"\n")?;
                }
            }
            Format::Ocsf { detected_at } => {
                for finding in &findings {
                    serde_json::to_writer(&mut *out, &super::ocsf::render(finding, detected_at))?;
                    out.write_all(b"\n")?;
                }
            }
            Format::Table => write_rows(out, &findings, self.style, self.written == 0)?,
        }
        self.written += findings.len() as u64;
        out.flush()
    }

    /// Ends the output: an empty table says so.
    pub fn finish(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if self.format == Format::Table && self.written == 0 {
            writeln!(out, "No findings.")?;
        }
        out.flush()
    }
}

/// The table's columns before the summary, in order; the optional ones are dropped (last
/// listed first) when the terminal is too narrow for a readable summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Time,
    Severity,
    Rule,
    Principal,
    Account,
    SourceIp,
    Id,
}

impl Column {
    const ALL: [Column; 7] = [
        Column::Time,
        Column::Severity,
        Column::Rule,
        Column::Principal,
        Column::Account,
        Column::SourceIp,
        Column::Id,
    ];
    /// Dropped in this order to make room.
    const OPTIONAL: [Column; 4] = [Column::Id, Column::Account, Column::SourceIp, Column::Principal];

    fn title(self) -> &'static str {
        match self {
            Column::Time => "TIME",
            Column::Severity => "SEVERITY",
            Column::Rule => "RULE",
            Column::Principal => "PRINCIPAL",
            Column::Account => "ACCOUNT",
            Column::SourceIp => "SOURCE IP",
            Column::Id => "ID",
        }
    }

    /// The column's width (longer values are cut with an ellipsis): fixed, so that the rows of
    /// every batch of a streamed run line up.
    fn width(self) -> usize {
        match self {
            Column::Time => 20,
            Column::Severity => 8,
            Column::Rule => RULE_WIDTH,
            Column::Principal => 30,
            Column::Account => 12,
            Column::SourceIp => 15,
            Column::Id => 8,
        }
    }

    fn cell(self, f: &Finding) -> String {
        let or_dash = |v: Option<&str>| v.unwrap_or("-").to_owned();
        match self {
            // Whole seconds in UTC, marked as such (as the events table does).
            Column::Time => {
                f.first_seen.as_deref().map_or_else(|| "-".to_owned(), |t| format!("{}Z", t.get(..19).unwrap_or(t)))
            }
            Column::Severity => f.severity.as_str().to_owned(),
            Column::Rule => f.rule.to_owned(),
            Column::Principal => principal_cell(f),
            Column::Account => or_dash(f.account.as_deref()),
            Column::SourceIp => or_dash(f.source_ip.as_deref()),
            // Enough of the id to find the finding in the JSON output.
            Column::Id => f.id.get(..8).unwrap_or(&f.id).to_owned(),
        }
    }
}

/// Who, short: the ARN after its account (`user/alice`, `assumed-role/ops/alice`, `root`; the
/// account has its own column), else the user name or the access key id.
fn principal_cell(f: &Finding) -> String {
    let p = &f.principal;
    let from_arn = p.arn.as_deref().map(|arn| arn.splitn(6, ':').nth(5).unwrap_or(arn));
    from_arn.or(p.user_name.as_deref()).or(p.access_key_id.as_deref()).unwrap_or("-").to_owned()
}

/// The longest rule id (`ecs.cluster_no_container_insights`); a test checks the catalogue.
pub const RULE_WIDTH: usize = 33;

fn write_rows(out: &mut dyn Write, findings: &[&Finding], style: TableStyle, header: bool) -> io::Result<()> {
    let mut widths: Vec<usize> = Column::ALL.iter().map(|c| c.width()).collect();
    let (shown, summary_width) = fit_columns(&mut widths, style.width);
    if header {
        let mut titles: Vec<String> = shown.iter().map(|&i| pad(Column::ALL[i].title(), widths[i])).collect();
        titles.push("SUMMARY".to_owned());
        writeln!(out, "{}", titles.join("  "))?;
    }
    for finding in findings {
        let mut cells: Vec<String> = Vec::with_capacity(shown.len() + 1);
        for &i in &shown {
            let column = Column::ALL[i];
            let cell = pad(&column.cell(finding), widths[i]);
            cells.push(if style.color && column == Column::Severity { paint(finding.severity, &cell) } else { cell });
        }
        cells.push(cut_at_word(&finding.summary, summary_width));
        writeln!(out, "{}", cells.join("  "))?;
    }
    Ok(())
}

/// Which columns (indexes into [`Column::ALL`]) fit beside a summary of at least
/// [`MIN_SUMMARY`] characters in `width`, and the summary's width. Room is made by dropping the
/// id, account and source IP columns, then narrowing the principal (to [`MIN_PRINCIPAL`]), then
/// dropping it; `widths` is narrowed in place.
fn fit_columns(widths: &mut [usize], width: Option<usize>) -> (Vec<usize>, usize) {
    let mut shown: Vec<usize> = (0..Column::ALL.len()).collect();
    let Some(width) = width else { return (shown, UNFITTED_SUMMARY) };
    let summary =
        |shown: &[usize], widths: &[usize]| width.saturating_sub(shown.iter().map(|&i| widths[i] + 2).sum::<usize>());
    let principal = Column::ALL.iter().position(|&c| c == Column::Principal).unwrap_or(0);
    for drop in Column::OPTIONAL {
        if summary(&shown, widths) >= MIN_SUMMARY {
            break;
        }
        if drop == Column::Principal {
            let short = MIN_SUMMARY.saturating_sub(summary(&shown, widths));
            if widths[principal].saturating_sub(short) >= MIN_PRINCIPAL {
                widths[principal] -= short;
                break;
            }
        }
        shown.retain(|&i| Column::ALL[i] != drop);
    }
    // Very narrow terminals still get a few words (the row may then wrap).
    let summary_width = summary(&shown, widths).max(12);
    (shown, summary_width)
}

/// `text` cut or padded to exactly `width` characters.
fn pad(text: &str, width: usize) -> String {
    let cut = truncate(text, width);
    let len = cut.chars().count();
    cut + &" ".repeat(width.saturating_sub(len))
}

/// `text` in at most `width` characters, cut at a word boundary with an ellipsis (a single word
/// longer than the column is cut inside it).
pub fn cut_at_word(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let head: String = text.chars().take(width.saturating_sub(1)).collect();
    let kept = match head.rfind(' ') {
        Some(space) if space > 0 => head[..space].trim_end(),
        _ => head.as_str(),
    };
    format!("{kept}…")
}

/// A severity cell in its colour: critical bold red, high red, medium yellow, low cyan, info dim.
fn paint(severity: Severity, cell: &str) -> String {
    let code = match severity {
        Severity::Critical => "1;31",
        Severity::High => "31",
        Severity::Medium => "33",
        Severity::Low => "36",
        Severity::Info => "2",
    };
    format!("\x1b[{code}m{cell}\x1b[0m")
}

/// Writes incidents: one JSON object per line (`trailhound.incident/v1`), or for people a block
/// per incident (actor, severity, span, sources, raw events) with its findings in time order.
pub fn write_incidents(out: &mut dyn Write, incidents: &[Incident], format: Format) -> io::Result<()> {
    if format != Format::Table {
        for incident in incidents {
            serde_json::to_writer(&mut *out, incident)?;
            out.write_all(b"\n")?;
        }
        return out.flush();
    }
    if incidents.is_empty() {
        writeln!(out, "No incidents.")?;
    }
    for incident in incidents {
        let span = |t: &Option<String>| t.as_deref().map(|t| t.get(..19).unwrap_or(t).to_owned() + "Z");
        let raw = incident.raw_events.map_or_else(|| "-".to_owned(), |n| n.to_string());
        writeln!(
            out,
            "{}  {}  {} finding(s), {} → {}, raw events: {raw}",
            incident.severity.as_str().to_uppercase(),
            truncate(&incident.actor, 80),
            incident.findings.len(),
            span(&incident.first_seen).unwrap_or_else(|| "-".into()),
            span(&incident.last_seen).unwrap_or_else(|| "-".into()),
        )?;
        writeln!(out, "  source IPs: {}", list(&incident.source_ips))?;
        writeln!(out, "  user agents: {}", list(&incident.user_agents))?;
        if !incident.access_key_ids.is_empty() {
            writeln!(out, "  access keys: {}", list(&incident.access_key_ids))?;
        }
        for f in &incident.findings {
            let time = span(&f.first_seen).unwrap_or_else(|| "-".into());
            writeln!(out, "  {time:<21} {:<8}  {:<34}  {}", f.severity.as_str(), f.rule, truncate(&f.summary, 120))?;
        }
        writeln!(out)?;
    }
    out.flush()
}

/// A short comma-separated list of cleaned values (the first five, then how many more).
fn list(values: &[String]) -> String {
    if values.is_empty() {
        return "-".to_owned();
    }
    let shown: Vec<String> = values.iter().take(5).map(|v| truncate(v, 60)).collect();
    match values.len().saturating_sub(5) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// Writes raw events matched by `replay --events`: each record as one JSON line (secrets
/// already redacted; findings are told apart by their `schema` field), or a table of the header
/// fields.
pub fn write_events(out: &mut dyn Write, events: &[MatchedEvent], format: Format) -> io::Result<()> {
    match format {
        Format::Jsonl | Format::Ocsf { .. } => {
            for event in events {
                let line = serde_json::to_string(&event.record).map_err(io::Error::other)?;
                out.write_all(escape_unsafe_in_json(&line).as_bytes())?;
                out.write_all(b"\n")?;
            }
        }
        Format::Table => {
            writeln!(out, "\nMatched events: {}", events.len())?;
            if !events.is_empty() {
                writeln!(out, "{:<20}  {:<28}  {:<40}  {:<16}  ERROR", "TIME", "EVENT", "PRINCIPAL", "SOURCE")?;
            }
            for event in events {
                let field = |path: &[&str]| {
                    let mut value = &event.record;
                    for key in path {
                        value = value.get(key).unwrap_or(&serde_json::Value::Null);
                    }
                    clean(value.as_str().unwrap_or("-"))
                };
                let time = field(&["eventTime"]);
                let principal = match field(&["userIdentity", "arn"]) {
                    arn if arn != "-" => arn,
                    _ => field(&["userIdentity", "accessKeyId"]),
                };
                writeln!(
                    out,
                    "{:<20}  {:<28}  {:<40}  {:<16}  {}",
                    truncate(&time, 20),
                    truncate(&field(&["eventName"]), 28),
                    truncate(&principal, 40),
                    truncate(&field(&["sourceIPAddress"]), 16),
                    field(&["errorCode"]),
                )?;
            }
        }
    }
    out.flush()
}

/// A raw record keeps its strings as the event had them, so the characters [`clean`] escapes
/// (C1 controls, DEL, bidi overrides, zero-width and tag characters) are written as JSON `\u`
/// escapes instead: the same JSON value, nothing that acts on a terminal.
fn escape_unsafe_in_json(line: &str) -> std::borrow::Cow<'_, str> {
    if line.is_ascii() && !line.contains('\u{7f}') {
        return line.into();
    }
    let mut out = String::with_capacity(line.len() + 16);
    for c in line.chars() {
        if !is_unsafe_char(c) {
            out.push(c);
            continue;
        }
        let mut units = [0u16; 2];
        for unit in c.encode_utf16(&mut units) {
            out.push_str(&format!("\\u{unit:04x}"));
        }
    }
    out.into()
}

/// Writes the rule catalogue.
pub fn write_rules(out: &mut dyn Write, rules: &[&RuleInfo], format: Format) -> io::Result<()> {
    if format == Format::Table {
        writeln!(out, "{:<36}  {:<8}  {:<18}  FIRES WHEN", "RULE", "SEVERITY", "FAMILY")?;
    }
    for rule in rules {
        match format {
            // The catalogue has no OCSF class of its own: JSON lines.
            Format::Jsonl | Format::Ocsf { .. } => {
                let line = serde_json::json!({
                    "rule": rule.id,
                    "family": rule.family,
                    "severity": rule.severity,
                    "title": rule.title,
                    "description": rule.description,
                    "controls": rule.controls,
                    "mitre": rule.mitre,
                });
                writeln!(out, "{line}")?;
            }
            Format::Table => writeln!(
                out,
                "{:<36}  {:<8}  {:<18}  {}",
                rule.id,
                rule.severity.as_str(),
                rule.family.as_str(),
                rule.description
            )?,
        }
    }
    out.flush()
}

/// Cuts `text` to `max` characters with an ellipsis.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// Writes the inputs that could not be read (all `--quiet` leaves on stderr).
pub fn write_errors(out: &mut dyn Write, result: &ScanResult) -> io::Result<()> {
    // File names are the user's, but a shared folder's names are anyone's: escaped too.
    for error in &result.input_errors {
        writeln!(out, "error: {}: {}", clean(&error.path), clean(&error.reason))?;
    }
    Ok(())
}

/// How a run went, for its summary.
#[derive(Debug, Clone, Copy)]
pub struct RunFacts {
    /// Wall-clock seconds.
    pub elapsed: f64,
    /// Decode threads.
    pub threads: usize,
    /// Findings below this severity were not printed (`--min-severity`).
    pub min_severity: Severity,
    /// The process's peak resident memory in bytes, where the system tells it.
    pub peak_memory: Option<u64>,
}

/// Writes the run summary (files, bytes, throughput, findings per rule, problems, coverage).
pub fn write_summary(out: &mut dyn Write, result: &ScanResult, run: RunFacts) -> io::Result<()> {
    let RunFacts { elapsed, threads, min_severity, peak_memory } = run;
    let t = &result.totals;
    let secs = elapsed.max(1e-9);
    writeln!(
        out,
        "scanned {} files ({:.1} MB stored, {:.1} MB JSON) in {:.2} s on {threads} threads: {} events, {:.0} MB/s, {:.0} events/s",
        t.files,
        t.stored_bytes as f64 / 1e6,
        t.json_bytes as f64 / 1e6,
        elapsed,
        t.events,
        t.json_bytes as f64 / 1e6 / secs,
        t.events as f64 / secs,
    )?;
    if let Some(bytes) = peak_memory {
        writeln!(out, "peak memory: {} MB", bytes / 1_000_000)?;
    }
    if t.events_in_window != t.events {
        writeln!(
            out,
            "events in the time window: {} ({} without a usable eventTime)",
            t.events_in_window, t.events_without_time
        )?;
    }
    let per_severity: Vec<String> = t
        .findings_per_severity
        .iter()
        .rev()
        .map(|(severity, count)| format!("{count} {}", severity.as_str()))
        .collect();
    if per_severity.is_empty() {
        writeln!(out, "findings: 0")?;
    } else {
        let total: u64 = t.findings_per_severity.values().sum();
        writeln!(out, "findings: {total} ({})", per_severity.join(", "))?;
    }
    let hidden: u64 = t.findings_per_severity.range(..min_severity).map(|(_, count)| count).sum();
    if hidden > 0 {
        writeln!(out, "  {hidden} below --min-severity {} not printed", min_severity.as_str())?;
    }
    for (rule, count) in &t.findings_per_rule {
        writeln!(out, "  {rule:<36} {count}")?;
    }
    if t.duplicate_events > 0 || result.seen_events.full {
        let caveat = if result.seen_events.full { " (among the first 1,000,000 distinct eventIDs)" } else { "" };
        writeln!(out, "duplicate events: {} (an eventID already seen in this run){caveat}", t.duplicate_events)?;
    }
    writeln!(out, "S3 data events: {}", t.s3_data_events)?;
    if t.skipped_files > 0 {
        writeln!(out, "skipped {} files:", t.skipped_files)?;
        for (path, reason) in &result.skipped {
            writeln!(out, "  {}: {reason}", clean(path))?;
        }
        let more = t.skipped_files.saturating_sub(result.skipped.len() as u64);
        if more > 0 {
            writeln!(out, "  … and {more} more")?;
        }
    }
    if t.rejected_records > 0 {
        writeln!(out, "rejected {} records:", t.rejected_records)?;
        for (path, count, reason) in &result.rejected_records {
            writeln!(out, "  {}: {count} (first: {})", clean(path), clean(reason))?;
        }
    }
    if !result.quarantined.is_empty() {
        writeln!(out, "quarantined {} files:", result.quarantined.len())?;
        for (path, reason) in &result.quarantined {
            writeln!(out, "  {}: {}", clean(path), clean(reason))?;
        }
    }
    write_errors(out, result)?;
    if t.lacks_s3_data_events() {
        writeln!(
            out,
            "warning: no S3 data events in this input; SSE-C overwrites (S3 ransomware) cannot be detected. \
             Enable S3 data events (at least write events) on the trail."
        )?;
    }
    let uncovered = t.buckets_without_data_events();
    if !uncovered.is_empty() {
        const SHOWN: usize = 20;
        let more = uncovered.len().saturating_sub(SHOWN);
        let names = uncovered.iter().take(SHOWN).copied().collect::<Vec<_>>().join(", ");
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        writeln!(
            out,
            "warning: no S3 data events for {} bucket(s) configured in this input: {names}{more}; \
             SSE-C overwrites there would be invisible",
            uncovered.len()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_id_fits_the_rule_column() {
        let longest = crate::detect::rules::catalogue().iter().map(|r| r.id.len()).max().unwrap_or(0);
        assert_eq!(longest, RULE_WIDTH, "the rule column is as wide as the longest id");
    }

    #[test]
    fn summaries_are_cut_at_a_word() {
        assert_eq!(cut_at_word("role session alice opened port 22", 20), "role session alice…");
        assert_eq!(cut_at_word("short", 20), "short");
        assert_eq!(cut_at_word("averyveryverylongword and more", 10), "averyvery…");
        let fitted = cut_at_word("one two three four five six", 12);
        assert!(fitted.chars().count() <= 12 && fitted.ends_with('…'), "{fitted}");
    }
}
