//! Local files and folders (`scan`, `replay` of local paths): a folder walk that picks up log
//! files, skips digest and Insight files, does not follow symlinks out of the folder, and reads
//! each file whole under the object size cap.
//!
//! Files are ordered by the delivery time in their CloudTrail name (`…_20261101T1005Z_…`), then
//! by path; files without one come first in path order. A path that cannot be read becomes an
//! [`InputError`] and the run goes on.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A path that could not be read at all (missing, not a file, a symlink out of the folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The path.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// Why one file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A FIFO, socket or device.
    #[error("not a regular file")]
    NotAFile,
    /// Larger than the object size cap (not read).
    #[error("file of {size} bytes exceeds the size cap of {cap} bytes")]
    TooLarge {
        /// The file's size.
        size: u64,
        /// The cap.
        cap: u64,
    },
}

/// A file a folder walk passed over on purpose, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The file.
    pub path: PathBuf,
    /// Why it was not read.
    pub reason: SkipReason,
}

/// Why a file was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A CloudTrail digest or Insight file: not events of the trail.
    DigestOrInsight,
    /// In a folder, and not named like a log (`.json`, `.json.gz`, `.jsonl`, `.ndjson`, `.gz`).
    NotALogName,
}

impl SkipReason {
    /// How the summary says it.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::DigestOrInsight => "digest or Insight file",
            SkipReason::NotALogName => "not a log file name",
        }
    }
}

/// Expands folders (recursively, sorted, not following symlinked folders) into files. Paths
/// that do not exist or are not regular files become input errors; digest and Insight files,
/// and files in folders not named like logs, are listed in `skipped`.
pub fn collect_files(paths: &[PathBuf], errors: &mut Vec<InputError>, skipped: &mut Vec<Skipped>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => walk(path, path, &mut files, errors, skipped),
            Ok(meta) if meta.is_file() => files.push(path.clone()),
            Ok(_) => errors.push(input_error(path, "not a regular file or folder")),
            Err(error) => errors.push(input_error(path, &error.to_string())),
        }
    }
    let (digests, mut files): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(|f| is_digest_or_insight(f));
    skipped.extend(digests.into_iter().map(|path| Skipped { path, reason: SkipReason::DigestOrInsight }));
    files.sort_by_cached_key(|f| {
        (f.file_name().and_then(|n| n.to_str()).and_then(crate::source::layout::name_time), f.clone())
    });
    files
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<InputError>, skipped: &mut Vec<Skipped>) {
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(error) => return errors.push(input_error(dir, &error.to_string())),
    };
    entries.sort();
    for path in entries {
        let Ok(link_meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let file_type = link_meta.file_type();
        if file_type.is_dir() {
            walk(root, &path, files, errors, skipped);
        } else if file_type.is_file() {
            keep_if_log(path, files, skipped);
        } else if file_type.is_symlink() {
            match symlink_target_inside(root, &path) {
                Ok(true) => keep_if_log(path, files, skipped),
                Ok(false) => {
                    errors.push(input_error(&path, "symlink points outside the scanned folder or is not a file"))
                }
                Err(error) => errors.push(input_error(&path, &format!("broken symlink: {error}"))),
            }
        } else {
            errors.push(input_error(&path, "not a regular file (FIFO, socket or device)"));
        }
    }
}

fn keep_if_log(path: PathBuf, files: &mut Vec<PathBuf>, skipped: &mut Vec<Skipped>) {
    if has_log_extension(&path) {
        files.push(path);
    } else {
        skipped.push(Skipped { path, reason: SkipReason::NotALogName });
    }
}

/// Names a folder walk picks up; other files (READMEs, scripts) in a log folder are skipped and
/// listed. Files named on the command line are always read, whatever their name: content is
/// sniffed. A name that is not UTF-8 is judged by its lossy form (it used to be skipped without
/// a word).
fn has_log_extension(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    [".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".gz"].iter().any(|ext| name.ends_with(ext))
}

fn symlink_target_inside(root: &Path, link: &Path) -> std::io::Result<bool> {
    let target = std::fs::canonicalize(link)?;
    let root = std::fs::canonicalize(root)?;
    Ok(target.starts_with(root) && target.is_file())
}

fn is_digest_or_insight(path: &Path) -> bool {
    path.components().any(|c| matches!(c.as_os_str().to_str(), Some("CloudTrail-Digest" | "CloudTrail-Insight")))
}

fn input_error(path: &Path, reason: &str) -> InputError {
    InputError { path: path.display().to_string(), reason: reason.to_owned() }
}

/// The path that stands for standard input on the command line.
pub const STDIN: &str = "-";

/// Reads standard input (gzip or JSON: the decoder sniffs which), refusing more than the cap.
pub fn read_stdin(cap: u64) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::new();
    std::io::stdin().lock().take(cap + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        return Err(ReadError::TooLarge { size: buf.len() as u64, cap });
    }
    Ok(buf)
}

/// Opens a file to be read as it is decoded, refusing files over the cap without reading them;
/// returns it with its size.
pub fn open_capped(path: &Path, cap: u64) -> Result<(File, u64), ReadError> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile);
    }
    if meta.len() > cap {
        return Err(ReadError::TooLarge { size: meta.len(), cap });
    }
    Ok((file, meta.len()))
}
