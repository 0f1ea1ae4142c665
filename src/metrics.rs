//! The worker's counters, served as Prometheus text on `--metrics-addr` with a health check.
//!
//! A tiny HTTP/1.1 responder (GET `/metrics`, GET `/healthz`) on a tokio listener: two fixed
//! routes do not justify an HTTP server framework in the build.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Counters and gauges of one worker process.
#[derive(Debug, Default)]
pub struct Metrics {
    /// SQS messages received.
    pub messages_received: AtomicU64,
    /// Messages deleted after their work was done.
    pub messages_deleted: AtomicU64,
    /// Messages in progress.
    pub in_flight: AtomicI64,
    /// Objects fetched and inspected.
    pub objects_inspected: AtomicU64,
    /// Objects skipped by design (digest, Insight, not a log).
    pub objects_skipped: AtomicU64,
    /// Objects quarantined as unreadable.
    pub objects_quarantined: AtomicU64,
    /// Bytes as stored in S3.
    pub bytes_stored: AtomicU64,
    /// Bytes of JSON after decompression.
    pub bytes_json: AtomicU64,
    /// Events decoded.
    pub events: AtomicU64,
    /// Alerts published to SNS.
    pub alerts_published: AtomicU64,
    /// Alerts not published again because the dedup record had them.
    pub alerts_suppressed: AtomicU64,
    /// Newest eventTime seen (ms), for the processing lag.
    pub newest_event_time: AtomicI64,
    findings: Mutex<BTreeMap<(String, String), u64>>,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    /// Counts a finding by rule and severity.
    pub fn finding(&self, rule: &str, severity: &str) {
        let mut map = self.findings.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry((rule.to_owned(), severity.to_owned())).or_default() += 1;
    }

    /// Counts an error by kind.
    pub fn error(&self, kind: &str) {
        let mut map = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(kind.to_owned()).or_default() += 1;
    }

    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The Prometheus text exposition; `now` (ms) gives the lag.
    pub fn render(&self, now: i64) -> String {
        let mut out = String::new();
        let counters: [(&str, &str, &AtomicU64); 10] = [
            ("trailhound_messages_received_total", "SQS messages received", &self.messages_received),
            ("trailhound_messages_deleted_total", "SQS messages deleted after processing", &self.messages_deleted),
            ("trailhound_objects_inspected_total", "log objects fetched and inspected", &self.objects_inspected),
            ("trailhound_objects_skipped_total", "objects skipped (digest, Insight, not a log)", &self.objects_skipped),
            ("trailhound_objects_quarantined_total", "unreadable log objects", &self.objects_quarantined),
            ("trailhound_bytes_stored_total", "bytes fetched as stored", &self.bytes_stored),
            ("trailhound_bytes_json_total", "bytes of JSON decoded", &self.bytes_json),
            ("trailhound_events_total", "CloudTrail events decoded", &self.events),
            ("trailhound_alerts_published_total", "alerts published to SNS", &self.alerts_published),
            ("trailhound_alerts_suppressed_total", "alerts already published (dedup)", &self.alerts_suppressed),
        ];
        for (name, help, value) in counters {
            let _ =
                writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", value.load(Ordering::Relaxed));
        }
        let _ = writeln!(out, "# HELP trailhound_in_flight messages in progress\n# TYPE trailhound_in_flight gauge");
        let _ = writeln!(out, "trailhound_in_flight {}", self.in_flight.load(Ordering::Relaxed));
        let newest = self.newest_event_time.load(Ordering::Relaxed);
        let lag = if newest > 0 { (now - newest) as f64 / 1000.0 } else { 0.0 };
        let _ = writeln!(
            out,
            "# HELP trailhound_lag_seconds now minus the newest eventTime seen\n# TYPE trailhound_lag_seconds gauge\ntrailhound_lag_seconds {lag:.3}"
        );
        let _ = writeln!(
            out,
            "# HELP trailhound_findings_total findings by rule and severity\n# TYPE trailhound_findings_total counter"
        );
        for ((rule, severity), n) in self.findings.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "trailhound_findings_total{{rule=\"{rule}\",severity=\"{severity}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP trailhound_errors_total errors by kind\n# TYPE trailhound_errors_total counter");
        for (kind, n) in self.errors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "trailhound_errors_total{{kind=\"{kind}\"}} {n}");
        }
        out
    }
}

/// Serves `/metrics` and `/healthz` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, clock: fn() -> i64) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { continue };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let read = stream.read(&mut request).await.unwrap_or(0);
            let line = String::from_utf8_lossy(&request[..read]);
            let path = line.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = match (line.starts_with("GET "), path) {
                (true, "/metrics") => ("200 OK", metrics.render(clock())),
                (true, "/healthz") => ("200 OK", "ok\n".to_owned()),
                _ => ("404 Not Found", "not found\n".to_owned()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}
