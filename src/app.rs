//! One function per subcommand: configuration → source, store, sinks → pipeline → exit status.
//! Errors are `anyhow` here (and in `main`) only; every module below returns typed errors.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::analyze::incidents;
use crate::aws::AwsOptions;
use crate::cli::{
    BackfillArgs, Cli, Command, LambdaArgs, LogFormatArg, ReplayArgs, RulesArgs, RunArgs, ScanArgs, StateArgs,
};
use crate::commands::backfill::{self, Processing, Resume, RunStats, Selection};
use crate::commands::lambda::LambdaWorker;
use crate::commands::run::Worker;
use crate::config::{self, OutputConfig, RemoteConfig, ScanConfig, StateLocation, DEFAULT_DEDUP_TTL};
use crate::detect::{rules, Engine};
use crate::finding::{Finding, Mode, Severity};
use crate::pipeline::{self, Driver, MatchedEvent, ScanPlan, ScanResult};
use crate::progress::Progress;
use crate::sink::terminal;
use crate::sink::{Publisher, SinkSpec};
use crate::store::dynamodb::DynamoStore;
use crate::store::session::Session;
use crate::store::sqlite::{SqliteStore, SCHEMA_VERSION};
use crate::store::{scan_all, StateStore, Table};

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
        Command::Lambda(args) => run_lambda(&args),
        Command::Rules(args) => run_rules(&args),
        Command::State(args) => run_state(&args),
        Command::Completions(args) => print_completions(&args),
        Command::Man(args) => print_man(&args),
    }
}

/// `trailhound completions SHELL`: the script clap_complete generates from the definitions.
fn print_completions(args: &crate::cli::CompletionsArgs) -> Result<u8> {
    use clap::CommandFactory;
    let mut command = Cli::command();
    // Into memory first: clap_complete panics when its writer fails (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "trailhound", &mut script);
    let mut out = io::stdout().lock();
    ignore_broken_pipe(out.write_all(&script).and_then(|()| out.flush()))?;
    Ok(EXIT_OK)
}

/// `trailhound man [--dir DIR]`: the manual page(s) clap_mangen renders from the definitions.
fn print_man(args: &crate::cli::ManArgs) -> Result<u8> {
    use clap::CommandFactory;
    let command = Cli::command();
    match &args.dir {
        Some(dir) => {
            clap_mangen::generate_to(command, dir).with_context(|| {
                format!("cannot write manual pages into `{}`", crate::finding::clean(&dir.display().to_string()))
            })?;
        }
        None => {
            let mut out = io::stdout().lock();
            ignore_broken_pipe(clap_mangen::Man::new(command).render(&mut out).and_then(|()| out.flush()))?;
        }
    }
    Ok(EXIT_OK)
}

fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Deprecation notes and similar, before any work.
fn print_warnings(warnings: &[String]) {
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
}

fn run_scan(args: &ScanArgs) -> Result<u8> {
    let config = config::scan_config(args, now_millis())?;
    let plan = ScanPlan {
        since: config.since,
        until: config.until,
        limits: config.limits,
        group_by: config.output.group_by,
        ..ScanPlan::new(config.paths.clone())
    };
    let session = match &config.state {
        Some(location) => {
            let store = open_state(location, &AwsOptions::default())?;
            Session::open(store, config.settings.clone()).context("cannot load the state")?
        }
        None => Session::in_memory(config.settings.clone()),
    };
    run_local(&config, &plan, session, Mode::Scan)
}

/// Opens the state for reading and writing: the file (created when missing) or the DynamoDB
/// table (reached as `aws` says).
fn open_state(location: &StateLocation, aws: &AwsOptions) -> Result<Arc<dyn StateStore>> {
    Ok(match location {
        StateLocation::File(path) => {
            Arc::new(SqliteStore::open(path).with_context(|| format!("cannot open state file `{}`", path.display()))?)
        }
        StateLocation::DynamoDb(table) => {
            Arc::new(DynamoStore::open(aws, table).with_context(|| format!("cannot open DynamoDB table `{table}`"))?)
        }
    })
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
        group_by: config.output.group_by,
        ..ScanPlan::new(config.paths.clone())
    };
    let settings = config.settings.clone();
    // Without --update-state the file is opened read-only and what the replay learns stays in
    // memory; without a file the replay starts from nothing.
    let aws = replay.remote.as_ref().map(|r| r.aws.clone()).unwrap_or_default();
    let session = match &config.state {
        Some(location) if replay.update_state => {
            Session::open(open_state(location, &aws)?, settings).context("cannot load the state")?
        }
        Some(StateLocation::File(path)) if path.exists() => {
            if !replay.state_given {
                // Said, not silent: the default file changes what a replay reports.
                eprintln!("note: reading the state in `{}` (--state FILE to choose another)", path.display());
            }
            let file = SqliteStore::open_read_only(path)
                .with_context(|| format!("cannot read state file `{}`", path.display()))?;
            Session::read_only(Arc::new(file), settings).context("cannot load the state")?
        }
        Some(StateLocation::File(path)) if replay.state_given => {
            eprintln!(
                "warning: state file `{}` does not exist; the replay starts from no state (a replay never creates one)",
                path.display()
            );
            Session::in_memory(settings)
        }
        Some(location @ StateLocation::DynamoDb(_)) => {
            Session::read_only(open_state(location, &aws)?, settings).context("cannot load the state")?
        }
        _ => Session::in_memory(settings),
    };
    match &replay.remote {
        Some(remote) => run_remote(config, remote, &plan, session, Mode::Replay, None),
        None => run_local(config, &plan, session, Mode::Replay),
    }
}

fn run_backfill(args: &BackfillArgs) -> Result<u8> {
    let backfill = config::backfill_config(args, now_millis())?;
    print_warnings(&backfill.remote.warnings);
    let config = &backfill.scan;
    let location = config.state.as_ref().context("no state file")?;
    let store = open_state(location, &backfill.remote.aws)?;
    let mut resume =
        Resume::load(store.as_ref(), "backfill", &backfill.arguments).context("cannot read the checkpoint")?;
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
        let selection = selection(&backfill.remote, config.since, config.until);
        let mut progress = Progress::new(backfill.remote.progress, selection.since, selection.until);
        let stats = runtime.block_on(async {
            let clients = crate::aws::clients(&backfill.remote.aws).await;
            backfill::enqueue(&clients, &selection, queue_url, Some((store.clone(), &resume)), &mut progress).await
        })?;
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
    let session = Session::open(store, config.settings.clone()).context("cannot load the state")?;
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

/// The decode pool and how it inspects objects, for a command with this configuration.
fn driver(config: &ScanConfig, plan: &ScanPlan, mode: Mode) -> Result<Driver> {
    let engine = Arc::new(Engine::new(config.settings.clone(), mode));
    Driver::new(plan.inspection(engine, mode), config.threads).context("cannot start the worker threads")
}

/// The body of `backfill` and `replay s3://…`: the S3 pipeline, then output like `scan`.
fn run_remote(
    config: &ScanConfig,
    remote: &RemoteConfig,
    plan: &ScanPlan,
    session: Session,
    mode: Mode,
    resume: Option<&Resume>,
) -> Result<u8> {
    print_warnings(&remote.warnings);
    let output = Output::open(&config.output)?;
    let runtime = io_runtime()?;
    let clients = runtime.block_on(crate::aws::clients(&remote.aws));
    let driver = driver(config, plan, mode)?;
    let selection = selection(remote, plan.since, plan.until);
    let mut progress = Progress::new(remote.progress, selection.since, selection.until);
    // The dedup record lives in the state file when the run writes it (a backfill, a replay
    // with --update-state), shared with the worker: a finding is paged once, whoever saw it.
    let record = session.store().filter(|_| session.writes()).cloned();
    let sink = match remote.publish.as_slice() {
        [] => None,
        specs => Some(
            Publisher::new(specs, &clients, record.clone(), remote.publish_at, DEFAULT_DEDUP_TTL, now_millis)
                .context("cannot set up --publish")?,
        ),
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    runtime.spawn(stop_on_signal(interrupted.clone()));
    let processing = Processing {
        s3: &clients.s3,
        driver: &driver,
        report_since: plan.report_since,
        concurrency: remote.concurrency,
        sink: sink.as_ref(),
        interrupted: &interrupted,
    };
    let started = Instant::now();
    let processed = runtime.block_on(backfill::process(&selection, &processing, session, resume, &mut progress));
    let store = processed.session.store().cloned();
    if processed.stopped.is_none() {
        if let Some(store) = &record {
            store
                .evict(Table::Dedup, crate::store::Evict::ExpiredBefore(now_millis()))
                .context("cannot expire alerts")?;
        }
        processed.session.close().context("cannot bound the state")?;
    }
    report(config, output, plan, &processed.result, started, driver.threads())?;
    if !config.output.quiet {
        print_usage(store.as_deref(), &processed.result);
    }
    let stats = &processed.stats;
    let mut remote_summary = listing_summary(stats);
    if !remote.publish.is_empty() {
        let topic = remote.publish.iter().map(SinkSpec::describe).collect::<Vec<_>>().join(", ");
        remote_summary.push_str(&format!(
            "; published {} alerts to {topic} ({} published before)",
            stats.published, stats.suppressed
        ));
    }
    eprintln!("{remote_summary}");
    match processed.stopped {
        // What the finished batches found is printed above; the error ends the run.
        Some(error) => Err(error.into()),
        None => Ok(exit_status(&processed.result.totals, config.output.fail_on)),
    }
}

/// What a billed state store (DynamoDB) was asked for, in all and per object and million
/// events: the figures behind its cost.
fn print_usage(store: Option<&dyn StateStore>, result: &ScanResult) {
    let Some(usage) = store.and_then(|s| s.usage()) else { return };
    let objects = result.totals.files.max(1) as f64;
    let millions = (result.totals.events.max(1) as f64) / 1e6;
    eprintln!(
        "state: {} requests; {} items read ({} read units), {} written ({} write units); \
         per object {:.1} RRU + {:.1} WRU; per million events {:.0} RRU + {:.0} WRU",
        usage.requests,
        usage.items_read,
        usage.read_units,
        usage.items_written,
        usage.write_units,
        usage.read_units as f64 / objects,
        usage.write_units as f64 / objects,
        usage.read_units as f64 / millions,
        usage.write_units as f64 / millions,
    );
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

/// The shared body of `scan` and `replay` of local files: pool, pipeline, output, summary.
/// Findings are streamed to the output batch by batch, unless they are grouped into incidents
/// or followed by the matched events (both need the whole run first).
fn run_local(config: &ScanConfig, plan: &ScanPlan, mut session: Session, mode: Mode) -> Result<u8> {
    let mut output = Output::open(&config.output)?;
    let driver = driver(config, plan, mode)?;
    let started = Instant::now();
    let result = if config.output.group_by.is_none() && plan.events.is_none() {
        let result = stream_local(config, plan, &driver, &mut session, &mut output)?;
        summarize(config, &result, started, driver.threads());
        result
    } else {
        let result = pipeline::scan_with_state(plan, &driver, &mut session).context("cannot update the state")?;
        report(config, output, plan, &result, started, driver.threads())?;
        result
    };
    let store = session.store().cloned();
    session.close().context("cannot bound the state")?;
    if !config.output.quiet {
        print_usage(store.as_deref(), &result);
    }
    if result.totals.files == 0 && !result.input_errors.is_empty() {
        eprintln!("error: nothing given on the command line could be read");
        return Ok(EXIT_ERROR);
    }
    Ok(exit_status(&result.totals, config.output.fail_on))
}

/// Scans local files, writing each batch's findings at or above `--min-severity` as soon as
/// they are concluded.
fn stream_local(
    config: &ScanConfig,
    plan: &ScanPlan,
    driver: &Driver,
    session: &mut Session,
    output: &mut Output,
) -> Result<ScanResult> {
    let min_severity = config.output.min_severity;
    let mut writer = terminal::FindingWriter::new(config.output.format, config.output.table);
    let mut failure: Option<anyhow::Error> = None;
    let result = pipeline::scan_streaming(plan, driver, session, &mut |findings| {
        if failure.is_none() {
            let shown = findings.iter().filter(|f| f.severity >= min_severity);
            failure = output.emit(|out| writer.write(out, shown)).err();
        }
    })
    .context("cannot update the state")?;
    if let Some(error) = failure {
        return Err(error);
    }
    output.emit(|out| writer.finish(out))?;
    Ok(result)
}

/// Prints the findings at or above the minimum severity (and the matched events), then the
/// summary of a run that started at `started`.
fn report(
    config: &ScanConfig,
    mut output: Output,
    plan: &ScanPlan,
    result: &ScanResult,
    started: Instant,
    threads: usize,
) -> Result<()> {
    let shown: Vec<Finding> =
        result.findings.iter().filter(|f| f.severity >= config.output.min_severity).cloned().collect();
    match config.output.group_by {
        Some(by) => {
            let incidents = incidents::group(&shown, by, &result.totals.events_per_actor);
            output.emit(|out| terminal::write_incidents(out, &incidents, config.output.format))?;
        }
        None => {
            let events = plan.events.as_ref().map(|_| result.events.as_slice());
            output.emit(|out| write_findings_and_events(out, &config.output, &shown, events))?;
        }
    }
    summarize(config, result, started, threads);
    Ok(())
}

/// The run summary on stderr (with `--quiet` only the errors), best effort: a closed stderr
/// must not fail the run.
fn summarize(config: &ScanConfig, result: &ScanResult, started: Instant, threads: usize) {
    let elapsed = started.elapsed().as_secs_f64();
    let _ = match config.output.quiet {
        true => terminal::write_errors(&mut io::stderr().lock(), result),
        false => {
            let min_severity = config.output.min_severity;
            let run = terminal::RunFacts { elapsed, threads, min_severity, peak_memory: peak_memory() };
            terminal::write_summary(&mut io::stderr().lock(), result, run)
        }
    };
}

fn run_worker(args: &RunArgs) -> Result<u8> {
    let config = config::run_config(args)?;
    init_logging(args.log_format);
    print_warnings(&config.warnings);
    global_decode_pool(config.threads)?;
    let runtime = io_runtime()?;
    let store = open_state(&config.state, &config.aws)?;
    runtime.block_on(async move {
        let metrics = Arc::new(crate::metrics::Metrics::default());
        if let Some(addr) = config.metrics_addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on --metrics-addr {addr}"))?;
            tokio::spawn(crate::metrics::serve(listener, metrics.clone(), now_millis));
        }
        let clients = crate::aws::clients(&config.aws).await;
        let engine = Engine::new(config.settings.clone(), Mode::Live);
        let meter = store.clone();
        let worker = Worker::new(clients, config.worker.clone(), engine, store, metrics.clone(), now_millis).await?;
        worker.expire_dedup();
        worker.run(shutdown_signal()).await;
        if let Some(usage) = meter.usage() {
            let objects = metrics.objects_inspected.load(Ordering::Relaxed);
            let events = metrics.events.load(Ordering::Relaxed);
            tracing::info!(
                requests = usage.requests,
                items_read = usage.items_read,
                read_units = usage.read_units,
                items_written = usage.items_written,
                write_units = usage.write_units,
                objects,
                events,
                "state usage"
            );
        }
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

/// Sizes rayon's global pool, where the long-running commands decode.
fn global_decode_pool(threads: Option<usize>) -> Result<()> {
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(threads) = threads {
        pool = pool.num_threads(threads);
    }
    pool.build_global().context("cannot start the decode threads")
}

/// `trailhound lambda`: set up once per execution environment, then serve invocations from the
/// Lambda Runtime API until the environment is shut down.
fn run_lambda(args: &LambdaArgs) -> Result<u8> {
    init_logging(LogFormatArg::Json);
    let config = config::lambda_config(args)?;
    crate::commands::lambda::check_environment(|name| std::env::var(name).ok())?;
    global_decode_pool(config.threads)?;
    let store = open_state(&StateLocation::DynamoDb(config.table.clone()), &config.aws)?;
    io_runtime()?.block_on(async move {
        let started = Instant::now();
        let clients = crate::aws::clients(&config.aws).await;
        let engine = Engine::new(config.settings.clone(), Mode::Live);
        let handler = crate::commands::message::MessageHandler::new(
            &clients,
            &config.message,
            engine,
            store,
            Arc::new(crate::metrics::Metrics::default()),
            now_millis,
        )
        .await?;
        // No dedup expiry here: the state is DynamoDB, whose TTL deletes expired records.
        let function = Arc::new(LambdaWorker::new(handler));
        tracing::info!(table = %config.table, init_ms = started.elapsed().as_millis() as u64, "lambda ready");
        let serve = lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<_>| {
            let function = function.clone();
            async move {
                function
                    .handle_batch(event.payload, Some(event.context.deadline))
                    .await
                    .map_err(lambda_runtime::Error::from)
            }
        });
        lambda_runtime::run(serve).await.map_err(|error| anyhow::anyhow!("the Lambda runtime stopped: {error}"))
    })?;
    Ok(EXIT_OK)
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
    let command = config::state_command(args)?;
    let path = match (&command.location, command.init) {
        (StateLocation::DynamoDb(table), init) => return run_state_dynamodb(table, &command.aws, init),
        (StateLocation::File(path), true) => {
            open_state(&command.location, &command.aws)?;
            eprintln!("state file `{}` is ready", path.display());
            return Ok(EXIT_OK);
        }
        (StateLocation::File(path), false) => path.clone(),
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
    for (key, item) in scan_all(&store, Table::Checkpoint)? {
        match serde_json::from_str::<backfill::Checkpoint>(&item.value) {
            Ok(c) => report
                .push_str(&format!("  {key}: {} objects of {} done, up to {}\n", c.objects, c.source, c.after.object)),
            Err(error) => report.push_str(&format!("  {key}: unreadable checkpoint ({error})\n")),
        }
    }
    ignore_broken_pipe(out.write_all(report.as_bytes()))?;
    Ok(EXIT_OK)
}

/// `trailhound state [init] dynamodb://TABLE`: create the table, or report what it holds.
fn run_state_dynamodb(table: &str, aws: &AwsOptions, init: bool) -> Result<u8> {
    let store = if init { DynamoStore::connect(aws, table) } else { DynamoStore::open(aws, table) };
    let store = store.with_context(|| format!("cannot open DynamoDB table `{table}`"))?;
    if init {
        store.create_table().with_context(|| format!("cannot create DynamoDB table `{table}`"))?;
        eprintln!("created DynamoDB table `{table}` (on-demand, TTL on `expires_at`)");
        return Ok(EXIT_OK);
    }
    let (counts, ttl) = store.report().with_context(|| format!("cannot read DynamoDB table `{table}`"))?;
    let mut report = format!("state: dynamodb://{table}\nTTL on expires_at: {}\n", if ttl { "on" } else { "OFF" });
    for (table, count) in counts {
        report.push_str(&format!("{table}: {count} items\n"));
    }
    // The same checks a file gets: every item the session reads must parse.
    let settings = crate::settings::Settings::default();
    Session::read_only(Arc::new(store), settings).context("integrity: the carried state does not load")?;
    report.push_str("integrity: ok\n");
    ignore_broken_pipe(io::stdout().lock().write_all(report.as_bytes()))?;
    Ok(EXIT_OK)
}

/// The peak resident set of this process (`VmHWM` in `/proc/self/status`; Linux only).
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// 1 when a finding of the run reaches `fail_on`, else 0.
pub fn exit_status(totals: &crate::pipeline::Totals, fail_on: Option<Severity>) -> u8 {
    match fail_on {
        Some(threshold) if totals.findings_per_severity.range(threshold..).any(|(_, n)| *n > 0) => EXIT_FINDINGS,
        _ => EXIT_OK,
    }
}

fn write_findings_and_events(
    out: &mut dyn Write,
    output: &config::OutputConfig,
    findings: &[Finding],
    events: Option<&[MatchedEvent]>,
) -> io::Result<()> {
    let format = output.format;
    terminal::write_findings(out, findings, format, output.table)?;
    match events {
        Some(events) => terminal::write_events(out, events, format),
        None => Ok(()),
    }
}

/// Where findings go: the `-o` file, created before any work so that an unwritable path fails
/// at once instead of after the whole run, or standard output.
enum Output {
    File { path: PathBuf, file: File },
    Stdout,
}

impl Output {
    fn open(config: &OutputConfig) -> Result<Output> {
        Ok(match &config.path {
            Some(path) => {
                let file =
                    File::create(path).with_context(|| format!("cannot create output file `{}`", path.display()))?;
                Output::File { path: path.clone(), file }
            }
            None => Output::Stdout,
        })
    }

    /// Runs `write` on the file or standard output.
    fn emit(&mut self, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
        match self {
            Output::File { path, file } => write(&mut BufWriter::new(file))
                .with_context(|| format!("cannot write output file `{}`", path.display())),
            Output::Stdout => ignore_broken_pipe(write(&mut BufWriter::new(io::stdout().lock()))),
        }
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
    let format = config::choose_format(args.format, io::stdout().is_terminal(), now_millis());
    let catalogue = rules::catalogue();
    ignore_broken_pipe(terminal::write_rules(&mut BufWriter::new(io::stdout().lock()), &catalogue, format))?;
    Ok(EXIT_OK)
}
