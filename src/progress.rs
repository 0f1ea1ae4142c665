//! Progress of a long S3 run (`backfill`, `replay s3://…`) on standard error: a bar redrawn in
//! place on a terminal; otherwise quiet, with one JSON object at the end (or one every 2 s with
//! `--progress jsonl`, or nothing).
//!
//! The share done is the share of the window covered (the delivery time in the name of the last
//! object finished), because the objects are listed a day at a time as the run gets there and
//! their total is not known up front. The ETA follows from it.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use crate::event::time::{format_rfc3339, Millis};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A bar on a terminal.
    Bar,
    /// A JSON object per line.
    Jsonl,
    /// One JSON object at the end (the default when stderr is not a terminal).
    Final,
    /// Nothing.
    Off,
}

/// Counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Objects listed so far.
    pub listed: u64,
    /// Objects finished (or sent, for `--enqueue`).
    pub done: u64,
    /// Bytes of JSON decoded.
    pub json_bytes: u64,
    /// Events decoded.
    pub events: u64,
    /// Findings reported.
    pub findings: u64,
    /// The delivery time of the last object finished.
    pub reached: Option<Millis>,
}

/// A progress display.
#[derive(Debug)]
pub struct Progress {
    style: Style,
    window: (Millis, Millis),
    started: Instant,
    last_shown: Option<Instant>,
    shown: Option<Snapshot>,
    every: Duration,
    complete: bool,
}

impl Progress {
    /// A display for a run over `[since, until)`.
    pub fn new(style: Style, since: Millis, until: Millis) -> Progress {
        let every = match style {
            Style::Bar => Duration::from_millis(200),
            _ => Duration::from_secs(2),
        };
        Progress {
            style,
            window: (since, until),
            started: Instant::now(),
            last_shown: None,
            shown: None,
            every,
            complete: false,
        }
    }

    /// Shows `snapshot` unless the last one was shown a moment ago.
    pub fn update(&mut self, snapshot: &Snapshot) {
        if self.style != Style::Final {
            self.show(snapshot);
        }
    }

    fn show(&mut self, snapshot: &Snapshot) {
        let now = Instant::now();
        if self.style == Style::Off || self.last_shown.is_some_and(|t| now - t < self.every) {
            return;
        }
        self.last_shown = Some(now);
        self.shown = Some(*snapshot);
        let line = self.render(snapshot);
        // Progress is best effort: a closed stderr must not fail the run.
        let _ = io::stderr().lock().write_all(line.as_bytes());
    }

    /// Ends the display with the final counts (the whole window covered when `complete`); a bar
    /// makes room for the summary below it.
    pub fn finish(&mut self, snapshot: &Snapshot, complete: bool) {
        if self.shown == Some(*snapshot) && self.complete == complete && self.style != Style::Bar {
            return;
        }
        self.complete = complete;
        self.last_shown = None;
        self.show(snapshot);
        if self.style == Style::Bar {
            let _ = io::stderr().lock().write_all(b"\n");
        }
    }

    /// The share of the window covered, 0 to 1.
    fn share(&self, snapshot: &Snapshot) -> f64 {
        let (since, until) = self.window;
        if self.complete {
            return 1.0;
        }
        match snapshot.reached {
            Some(reached) if until > since => ((reached - since) as f64 / (until - since) as f64).clamp(0.0, 1.0),
            _ => 0.0,
        }
    }

    fn render(&self, s: &Snapshot) -> String {
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-3);
        let share = self.share(s);
        let mb_per_s = s.json_bytes as f64 / 1e6 / elapsed;
        let events_per_s = s.events as f64 / elapsed;
        let eta = (share > 0.0).then(|| elapsed * (1.0 - share) / share);
        match self.style {
            Style::Bar => {
                let filled = (share * 24.0).round() as usize;
                let eta = eta.map(|e| format!("ETA {}", clock(e))).unwrap_or_else(|| "ETA --".into());
                format!(
                    "\r\x1b[K[{}{}] {:>3.0}% {}/{} objects | {mb_per_s:.0} MB/s {events_per_s:.0} events/s | {} findings | {eta}",
                    "#".repeat(filled),
                    ".".repeat(24 - filled),
                    share * 100.0,
                    s.done,
                    s.listed,
                    s.findings,
                )
            }
            Style::Jsonl | Style::Final => {
                let value = serde_json::json!({
                    "progress": {
                        "listed": s.listed,
                        "done": s.done,
                        "json_bytes": s.json_bytes,
                        "events": s.events,
                        "findings": s.findings,
                        "reached": s.reached.map(format_rfc3339),
                        "share": (share * 1000.0).round() / 1000.0,
                        "elapsed_s": (elapsed * 10.0).round() / 10.0,
                        "mb_per_s": mb_per_s.round(),
                        "events_per_s": events_per_s.round(),
                        "eta_s": eta.map(f64::round),
                    }
                });
                format!("{value}\n")
            }
            Style::Off => String::new(),
        }
    }
}

/// `1h02m`, `3m05s`, `12s`.
fn clock(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_is_the_window_covered_and_lines_are_parseable() {
        let progress = Progress::new(Style::Jsonl, 1_000, 2_000);
        let snapshot = Snapshot { listed: 10, done: 4, reached: Some(1_250), ..Snapshot::default() };
        assert_eq!(progress.share(&snapshot), 0.25);
        assert_eq!(progress.share(&Snapshot { reached: Some(5_000), ..snapshot }), 1.0);
        assert_eq!(progress.share(&Snapshot { reached: None, ..snapshot }), 0.0);
        let line: serde_json::Value = serde_json::from_str(&progress.render(&snapshot)).expect("JSON line");
        assert_eq!(line["progress"]["done"], 4);
        assert_eq!(line["progress"]["share"], 0.25);
        let bar = Progress::new(Style::Bar, 1_000, 2_000).render(&snapshot);
        assert!(bar.contains("[######..................]  25% 4/10 objects"), "{bar}");
        assert_eq!(clock(3_725.0), "1h02m");
        assert_eq!(clock(185.0), "3m05s");
    }
}
