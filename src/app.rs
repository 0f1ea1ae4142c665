//! One function per subcommand: configuration → pipeline → sinks → exit status.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::alert;
use crate::backfill::{self, Processing, Resume, RunStats, Selection};
use crate::cli::{BackfillArgs, Cli, Command, LogFormatArg, ReplayArgs, RulesArgs, RunArgs, ScanArgs, StateArgs};
use crate::config::{self, OutputConfig, RemoteConfig, ScanConfig};
use crate::detect::{rules, Engine, Finding, Mode, Severity};
use crate::output;
use crate::progress::Progress;
use crate::scan::{self, ScanPlan, ScanResult};
use crate::state::persist::Session;
use crate::state::sqlite::{SqliteStore, SCHEMA_VERSION};
use crate::state::{StateStore, Table};

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: findings at or above `--fail-on`.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit status: error.
pub const EXIT_ERROR: u8 = 2;

/// Runs the parsed command line and returns the exit status.
pub fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Scan(args) => run_scan(&args),
        Command::Replay(args) => run_replay(&args),
        Command::Backfill(args) => run_backfill(&args),
        Command::Run(args) => run_worker(&args),
        Command::Rules(args) => run_rules(&args),
        Command::State(args) => run_state(&args),
    }
}

fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn run_scan(args: &ScanArgs) -> Result<u8> {
    let config = config::scan_config(args, now_millis())?;
    let plan = ScanPlan {
        since: config.since,
        until: config.until,
        limits: config.limits,
        ..ScanPlan::new(config.paths.clone())
    };
    match &config.state {
        Some(path) => {
            let file = open_state(path)?;
            let session = Session::open(&file, config.settings.clone()).context("cannot load the state")?;
            run_pipeline(&config, &plan, session, Mode::Scan)
        }
        None => run_pipeline(&config, &plan, Session::in_memory(config.settings.clone()), Mode::Scan),
    }
}

fn open_state(path: &std::path::Path) -> Result<SqliteStore> {
    SqliteStore::open(path).with_context(|| format!("cannot open state file `{}`", path.display()))
}

fn run_replay(args: &ReplayArgs) -> Result<u8> {
    let replay = config::replay_config(args, now_millis())?;
    let config = &replay.scan;
    let plan = ScanPlan {
        since: config.since,
        until: config.until,
        limits: config.limits,
        report_since: Some(replay.report_since),
        events: replay.events.clone(),
        ..ScanPlan::new(config.paths.clone())
    };
    let settings = config.settings.clone();
    let go = |session: Session<'_>| match &replay.remote {
        Some(remote) => run_remote(config, remote, &plan, session, Mode::Replay, None),
        None => run_pipeline(config, &plan, session, Mode::Replay),
    };
    // Without --update-state the file is opened read-only and what the replay learns stays in
    // memory; without a file the replay starts from nothing.
    match config.state.as_deref() {
        Some(path) if replay.update_state => {
            let file = open_state(path)?;
            go(Session::open(&file, settings).context("cannot load the state")?)
        }
        Some(path) if path.exists() => {
            let file = SqliteStore::open_read_only(path)
                .with_context(|| format!("cannot read state file `{}`", path.display()))?;
            go(Session::read_only(&file, settings).context("cannot load the state")?)
        }
        _ => go(Session::in_memory(settings)),
    }
}

fn run_backfill(args: &BackfillArgs) -> Result<u8> {
    let backfill = config::backfill_config(args, now_millis())?;
    let config = &backfill.scan;
    let path = config.state.as_deref().context("no state file")?;
    let store = open_state(path)?;
    let mut resume = Resume::load(&store, "backfill", &backfill.arguments).context("cannot read the checkpoint")?;
    if backfill.restart {
        resume.from = None;
    }
    if let Some(from) = &resume.from {
        eprintln!(
            "resuming: {} objects were done by an earlier run of this command, up to {} (--restart starts over)",
            from.objects, from.after.object
        );
    }
    if let Some(queue_url) = &backfill.enqueue {
        let runtime = io_runtime()?;
        let clients = runtime.block_on(crate::aws::clients(&backfill.remote.aws));
        let selection = selection(&backfill.remote, config.since, config.until);
        let mut progress = Progress::new(backfill.remote.progress, selection.since, selection.until);
        let stats =
            backfill::enqueue(&runtime, &clients, &selection, queue_url, Some((&store, &resume)), &mut progress)?;
        eprintln!(
            "enqueued {} objects in {} messages to {queue_url}; {}",
            stats.to_do(),
            stats.messages,
            listing_summary(&stats)
        );
        return Ok(EXIT_OK);
    }
    let plan =
        ScanPlan { since: config.since, until: config.until, limits: config.limits, ..ScanPlan::new(Vec::new()) };
    let session = Session::open(&store, config.settings.clone()).context("cannot load the state")?;
    run_remote(config, &backfill.remote, &plan, session, Mode::Backfill, Some(&resume))
}

/// The I/O runtime of the S3 commands (decoding stays on the rayon pool).
fn io_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")
}

fn selection(remote: &RemoteConfig, since: Option<i64>, until: Option<i64>) -> Selection {
    Selection {
        locations: remote.locations.clone(),
        filters: remote.filters.clone(),
        since: since.unwrap_or(0),
        until: until.unwrap_or_else(now_millis),
        slack: remote.slack,
    }
}

fn listing_summary(stats: &RunStats) -> String {
    format!(
        "listed {} log objects with {} ListObjectsV2 requests; {} in the window to do, {} done by an earlier run",
        stats.listed,
        stats.list_requests,
        stats.to_do(),
        stats.done_before
    )
}

/// The body of `backfill` and `replay s3://…`: the S3 pipeline, then output like `scan`.
fn run_remote(
    config: &ScanConfig,
    remote: &RemoteConfig,
    plan: &ScanPlan,
    mut session: Session<'_>,
    mode: Mode,
    resume: Option<&Resume>,
) -> Result<u8> {
    let runtime = io_runtime()?;
    let clients = runtime.block_on(crate::aws::clients(&remote.aws));
    let pool = thread_pool(config.threads)?;
    let engine = Engine::new(config.settings.clone(), mode);
    let selection = selection(remote, plan.since, plan.until);
    let mut progress = Progress::new(remote.progress, selection.since, selection.until);
    // The dedup record lives in the state file when the run writes it (a backfill, a replay
    // with --update-state), shared with the worker: a finding is paged once, whoever saw it.
    let dedup = session.store().filter(|_| session.writes());
    let mut suppressed = 0;
    let mut publish = |findings: &[Finding]| match &remote.publish {
        Some((topic, at)) => {
            publish_new(&runtime, &clients.sns, topic, alert::alerts_at(findings, *at), dedup, &mut suppressed)
        }
        None => Ok(0),
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    runtime.spawn(stop_on_signal(interrupted.clone()));
    let processing = Processing {
        runtime: &runtime,
        s3: &clients.s3,
        plan,
        engine: &engine,
        mode,
        concurrency: remote.concurrency,
        interrupted: &interrupted,
    };
    let started = Instant::now();
    let (result, stats, stopped) =
        pool.install(|| backfill::process(&selection, &processing, &mut session, resume, &mut progress, &mut publish));
    if stopped.is_none() {
        if let Some(store) = dedup {
            store
                .evict(Table::Dedup, crate::state::Evict::ExpiredBefore(now_millis()))
                .context("cannot expire alerts")?;
        }
        session.close().context("cannot bound the state")?;
    }
    report(config, plan, &result, started, pool.current_num_threads())?;
    let mut remote_summary = listing_summary(&stats);
    if let Some((topic, _)) = &remote.publish {
        remote_summary
            .push_str(&format!("; published {} alerts to {topic} ({suppressed} published before)", stats.published));
    }
    eprintln!("{remote_summary}");
    match stopped {
        // What the finished batches found is printed above; the error ends the run.
        Some(error) => Err(error.into()),
        None => Ok(exit_status(&result.findings, config.output.fail_on)),
    }
}

/// Publishes the alerts the dedup record (if any) does not have, and records them. Returns how
/// many were published; counts the others in `suppressed`.
fn publish_new(
    runtime: &tokio::runtime::Runtime,
    sns: &aws_sdk_sns::Client,
    topic: &str,
    alerts: Vec<(String, alert::Alert)>,
    dedup: Option<&dyn StateStore>,
    suppressed: &mut u64,
) -> Result<u64, String> {
    let fresh: Vec<&(String, alert::Alert)> = match dedup {
        Some(store) => {
            let keys: Vec<String> = alerts.iter().map(|(key, _)| key.clone()).collect();
            let known = store.get_many(Table::Dedup, &keys).map_err(|e| e.to_string())?;
            alerts.iter().zip(known).filter(|(_, k)| k.is_none()).map(|(a, _)| a).collect()
        }
        None => alerts.iter().collect(),
    };
    *suppressed += (alerts.len() - fresh.len()) as u64;
    for chunk in fresh.chunks(crate::aws::PUBLISH_BATCH) {
        runtime.block_on(crate::aws::publish_alerts(sns, topic, chunk))?;
        if let Some(store) = dedup {
            let ttl = crate::worker::DEDUP_TTL.as_millis() as i64;
            let records = chunk.iter().map(|(key, _)| alert::dedup_record(key, now_millis(), ttl)).collect();
            store.commit(records).map_err(|e| e.to_string())?;
        }
    }
    Ok(fresh.len() as u64)
}

/// The first SIGINT/SIGTERM asks the run to stop after the batch in progress; a second one
/// ends the process at once (the state file stays consistent either way).
async fn stop_on_signal(interrupted: Arc<AtomicBool>) {
    shutdown_signal().await;
    interrupted.store(true, Ordering::Relaxed);
    eprintln!("stopping after the batch in progress (again to quit now)");
    shutdown_signal().await;
    std::process::exit(i32::from(EXIT_ERROR));
}

fn thread_pool(threads: Option<usize>) -> Result<rayon::ThreadPool> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(threads) = threads {
        builder = builder.num_threads(threads);
    }
    builder.build().context("cannot start the worker threads")
}

/// The shared body of `scan` and `replay`: pool, engine, pipeline, output, summary, status.
fn run_pipeline(config: &ScanConfig, plan: &ScanPlan, mut session: Session<'_>, mode: Mode) -> Result<u8> {
    let pool = thread_pool(config.threads)?;
    let engine = Engine::new(config.settings.clone(), mode);
    let started = Instant::now();
    let result = pool.install(|| scan::scan_with_state(plan, &engine, mode, &mut session));
    let result = result.context("cannot update the state")?;
    session.close().context("cannot bound the state")?;
    report(config, plan, &result, started, pool.current_num_threads())?;
    Ok(exit_status(&result.findings, config.output.fail_on))
}

/// Prints the findings at or above the minimum severity (and the matched events), then the
/// summary of a run that started at `started`.
fn report(config: &ScanConfig, plan: &ScanPlan, result: &ScanResult, started: Instant, threads: usize) -> Result<()> {
    let elapsed = started.elapsed().as_secs_f64();
    let shown: Vec<Finding> =
        result.findings.iter().filter(|f| f.severity >= config.output.min_severity).cloned().collect();
    write_output(&config.output, &shown, plan.events.as_ref().map(|_| result.events.as_slice()))?;
    print_summary(result, elapsed, threads);
    Ok(())
}

fn run_worker(args: &RunArgs) -> Result<u8> {
    let config = config::run_config(args)?;
    init_logging(args.log_format);
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(threads) = config.threads {
        pool = pool.num_threads(threads);
    }
    pool.build_global().context("cannot start the decode threads")?;
    let runtime = io_runtime()?;
    // The state lives as long as the process.
    let store: &'static SqliteStore = Box::leak(Box::new(open_state(&config.state)?));
    runtime.block_on(async move {
        let metrics = std::sync::Arc::new(crate::worker::metrics::Metrics::default());
        if let Some(addr) = config.metrics_addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on --metrics-addr {addr}"))?;
            tokio::spawn(crate::worker::metrics::serve(listener, metrics.clone(), now_millis));
        }
        let clients = crate::aws::clients(&config.aws).await;
        let engine = Engine::new(config.settings.clone(), Mode::Live);
        let worker = crate::worker::Worker::new(clients, config.worker.clone(), engine, store, metrics, now_millis)
            .await
            .map_err(anyhow::Error::msg)?;
        worker.expire_dedup();
        worker.run(shutdown_signal()).await;
        anyhow::Ok(())
    })?;
    Ok(EXIT_OK)
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

fn init_logging(format: LogFormatArg) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRAILHOUND_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(io::stderr);
    let _ = match format {
        LogFormatArg::Json => builder.json().try_init(),
        LogFormatArg::Text => builder.try_init(),
    };
}

fn run_state(args: &StateArgs) -> Result<u8> {
    let Some(path) = args.state.clone().or_else(config::default_state_path) else {
        anyhow::bail!("no state file given and no home folder to look in; pass --state FILE");
    };
    if !path.exists() {
        anyhow::bail!("no state file at `{}`", path.display());
    }
    let store = SqliteStore::open_read_only(&path).with_context(|| format!("cannot read `{}`", path.display()))?;
    store.integrity_check()?;
    let mut out = io::stdout().lock();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let mut report =
        format!("state file: {}\nschema: {SCHEMA_VERSION}\nsize: {size} bytes\nintegrity: ok\n", path.display());
    for (table, count) in store.counts()? {
        report.push_str(&format!("{table}: {count} items\n"));
    }
    // Backfill checkpoints, so an operator can see what a resumed command would skip.
    for (key, item) in crate::state::scan_all(&store, crate::state::Table::Checkpoint)? {
        match serde_json::from_str::<backfill::Checkpoint>(&item.value) {
            Ok(c) => report
                .push_str(&format!("  {key}: {} objects of {} done, up to {}\n", c.objects, c.source, c.after.object)),
            Err(error) => report.push_str(&format!("  {key}: unreadable checkpoint ({error})\n")),
        }
    }
    ignore_broken_pipe(out.write_all(report.as_bytes()))?;
    Ok(EXIT_OK)
}

/// 1 when a finding reaches `fail_on`, else 0.
pub fn exit_status(findings: &[Finding], fail_on: Option<Severity>) -> u8 {
    match fail_on {
        Some(threshold) if findings.iter().any(|f| f.severity >= threshold) => EXIT_FINDINGS,
        _ => EXIT_OK,
    }
}

fn write_output(config: &OutputConfig, findings: &[Finding], events: Option<&[scan::MatchedEvent]>) -> Result<()> {
    let write = |out: &mut dyn Write| -> io::Result<()> {
        output::write_findings(out, findings, config.format)?;
        match events {
            Some(events) => output::write_events(out, events, config.format),
            None => Ok(()),
        }
    };
    match &config.path {
        Some(path) => {
            let file = File::create(path).with_context(|| format!("cannot create output file `{}`", path.display()))?;
            write(&mut BufWriter::new(file)).with_context(|| format!("cannot write output file `{}`", path.display()))
        }
        None => ignore_broken_pipe(write(&mut BufWriter::new(io::stdout().lock()))),
    }
}

/// A closed pipe (`trailhound scan … | head`) is not an error.
fn ignore_broken_pipe(result: io::Result<()>) -> Result<()> {
    match result {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to standard output"),
    }
}

fn run_rules(args: &RulesArgs) -> Result<u8> {
    let format = config::choose_format(args.format, io::stdout().is_terminal());
    let catalogue = rules::catalogue();
    ignore_broken_pipe(output::write_rules(&mut BufWriter::new(io::stdout().lock()), &catalogue, format))?;
    Ok(EXIT_OK)
}

fn print_summary(result: &ScanResult, elapsed: f64, threads: usize) {
    let mut err = io::stderr().lock();
    // The summary is best effort: a closed stderr must not fail the run.
    let _ = write_summary(&mut err, result, elapsed, threads);
}

/// Writes the run summary (files, bytes, throughput, findings per rule, problems, coverage).
pub fn write_summary(out: &mut dyn Write, result: &ScanResult, elapsed: f64, threads: usize) -> io::Result<()> {
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
    if t.events_in_window != t.events {
        writeln!(
            out,
            "events in the time window: {} ({} without a usable eventTime)",
            t.events_in_window, t.events_without_time
        )?;
    }
    writeln!(out, "findings: {}", result.findings.len())?;
    for (rule, count) in &t.findings_per_rule {
        writeln!(out, "  {rule:<36} {count}")?;
    }
    writeln!(out, "S3 data events: {}", t.s3_data_events)?;
    if t.skipped_files > 0 {
        writeln!(out, "skipped {} digest/Insight files", t.skipped_files)?;
    }
    if t.rejected_records > 0 {
        writeln!(out, "rejected {} records:", t.rejected_records)?;
        for (path, count, reason) in &result.rejected_records {
            writeln!(out, "  {path}: {count} (first: {reason})")?;
        }
    }
    if !result.quarantined.is_empty() {
        writeln!(out, "quarantined {} files:", result.quarantined.len())?;
        for (path, reason) in &result.quarantined {
            writeln!(out, "  {path}: {reason}")?;
        }
    }
    for error in &result.input_errors {
        writeln!(out, "error: {}: {}", error.path, error.reason)?;
    }
    if t.lacks_s3_data_events() {
        writeln!(
            out,
            "warning: no S3 data events in this input; SSE-C overwrites (S3 ransomware) cannot be detected. \
             Enable S3 data events (at least write events) on the trail."
        )?;
    }
    Ok(())
}
