//! The configuration loader: any file text is accepted into settings and limits within their
//! documented ranges, or refused with an error naming the problem, never a panic, and nothing
//! from the file reaches the message unescaped.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use trailhound::config::{self, ranges};
use trailhound::finding::is_unsafe_char;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let outcome = config::parse_file(Path::new("fuzz.toml"), text.to_owned())
        .and_then(|file| Ok((config::settings(&file)?, config::limits(&file)?)));
    match outcome {
        Ok((settings, limits)) => {
            assert!(ranges::DORMANT_DAYS.contains(&(settings.baseline.dormant_days as u64)));
            assert!(ranges::MAX_OBJECT_BYTES.contains(&limits.max_object_bytes));
            assert!(ranges::MAX_DEPTH.contains(&(limits.max_depth as u64)));
        }
        Err(error) => {
            let text = error.to_string();
            assert!(!text.chars().any(|c| is_unsafe_char(c) && c != '\n'), "{text:?}");
        }
    }
});
