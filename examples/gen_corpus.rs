//! Writes a seeded synthetic CloudTrail corpus (see `trailhound::synth`) to a folder, in the
//! CloudTrail key layout, plus `ground-truth.json`.
//!
//! ```text
//! cargo run --release --example gen_corpus -- OUT_DIR [SIZE_MB] [SEED] [EVENTS_PER_FILE] [ATTACK_EVERY] [S3_DATA_PERCENT]
//! ```
//! SIZE_MB is the approximate uncompressed size (default 100); objects hold about
//! EVENTS_PER_FILE events (default 2,000, ~3.3 MB of JSON) each; one attack scenario is planted
//! every ATTACK_EVERY objects (default 3); S3_DATA_PERCENT of the background events are S3 data
//! events (default 40; 0 for a management-only trail). The ground truth is written
//! next to the `AWSLogs/` folder, as `ground-truth.json`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use trailhound::synth::{generate, SynthSpec};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(
        args.next()
            .context("usage: gen_corpus OUT_DIR [SIZE_MB] [SEED] [EVENTS_PER_FILE] [ATTACK_EVERY] [S3_DATA_PERCENT]")?,
    );
    let size_mb: usize = args.next().map(|s| s.parse()).transpose().context("SIZE_MB must be a number")?.unwrap_or(100);
    let seed: u64 = args.next().map(|s| s.parse()).transpose().context("SEED must be a number")?.unwrap_or(42);
    let events_per_file: usize =
        args.next().map(|s| s.parse()).transpose().context("EVENTS_PER_FILE must be a number")?.unwrap_or(2_000);
    let attack_every: usize =
        args.next().map(|s| s.parse()).transpose().context("ATTACK_EVERY must be a number")?.unwrap_or(3);
    let s3_data_percent: usize =
        args.next().map(|s| s.parse()).transpose().context("S3_DATA_PERCENT must be a number")?.unwrap_or(40);
    if s3_data_percent > 100 {
        anyhow::bail!("S3_DATA_PERCENT must be at most 100, not {s3_data_percent}");
    }
    let approx_event_bytes = 1_750;
    let files = (size_mb * 1_000_000 / (events_per_file * approx_event_bytes)).max(1);
    let spec = SynthSpec { seed, files, events_per_file, attack_every, s3_data_percent, ..SynthSpec::default() };
    let (mut json, mut gz, mut events, mut error) = (0usize, 0usize, 0usize, None);
    let truth = generate(&spec, |object| {
        json += object.json_bytes;
        gz += object.gzip.len();
        events += object.events;
        let path = out.join(&object.key);
        let written =
            path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| std::fs::write(&path, &object.gzip));
        if let Err(e) = written {
            error.get_or_insert(e);
        }
    });
    if let Some(e) = error {
        return Err(e).context("cannot write the corpus");
    }
    std::fs::write(out.join("ground-truth.json"), serde_json::to_vec_pretty(&truth)?)?;
    eprintln!(
        "wrote {files} objects, {events} events, {:.1} MB JSON ({:.0} B/event), {:.1} MB gzip to {}",
        json as f64 / 1e6,
        json as f64 / events as f64,
        gz as f64 / 1e6,
        out.display()
    );
    Ok(())
}
