//! A trail bucket through the S3 API: reading one object ([`get_object`], size-capped, its
//! failures classified as transient or permanent), and listing with `ListObjectsV2` no deeper
//! than a window needs (the layout rules are in [`crate::source::layout`]; this module does the
//! requests).
//!
//! The walk goes down the layout one level at a time with delimiter listings, every folder of a
//! level at once (at most [`LIST_CONCURRENCY`] requests in flight). Above `AWSLogs/` it looks
//! for that folder at most [`MAX_SEARCH_DEPTH`] levels down, and not beside it once found.
//! Below it, it keeps only the folders [`layout::classify`] keeps: organizations, accounts
//! (`--account`), `CloudTrail/`, regions (`--region`). Year and month folders are never listed:
//! the day folders of the window are named directly, and a day is listed across every region
//! when the pipeline reaches it. Every listing follows continuation tokens. Requests are
//! counted, so tests and the summary can show that nothing more was listed than the window
//! needed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::aws::BoxError;
use crate::source::layout::{self, name_time, Filters, Folder, Level, S3Location, Start};
use crate::source::notify::{self, Target};

/// Listing requests in flight at once.
pub const LIST_CONCURRENCY: usize = 16;

/// How deep below the given prefix to look for `AWSLogs/` when the prefix is above it.
pub const MAX_SEARCH_DEPTH: usize = 3;

/// A listing failed (after the SDK's retries).
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// A `ListObjectsV2` request failed.
    #[error("listing s3://{bucket}/{prefix} failed")]
    Request {
        /// The bucket.
        bucket: String,
        /// The prefix.
        prefix: String,
        /// The SDK's error.
        #[source]
        source: BoxError,
    },
    /// A listing task panicked.
    #[error("a listing task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Why an object could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read s3://{bucket}/{key}: {problem}")]
pub struct FetchError {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// What went wrong.
    pub problem: FetchProblem,
    /// The SDK's error, when there is one.
    #[source]
    pub source: Option<BoxError>,
}

/// What went wrong reading an object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchProblem {
    /// Missing: deleted after it was listed or notified (a possible tampering signal).
    #[error("log object not found (deleted after it was listed or notified?)")]
    NotFound,
    /// Encrypted with a customer-provided key (SSE-C): the attack itself, never readable.
    #[error("log object is encrypted with a customer key (SSE-C): {0}")]
    CustomerKey(String),
    /// Over the object size cap.
    #[error("object of {size} bytes exceeds the size cap of {cap} bytes")]
    TooLarge {
        /// The object's size.
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// The request failed: throttling, 5xx, timeouts, denied reads. Worth retrying later.
    #[error("GET failed")]
    Request,
    /// The body was cut off or stalled. Worth retrying later.
    #[error("reading the body failed")]
    Body,
    /// Not tried, because another object of its batch failed for good first.
    #[error("not tried: another object of its batch failed")]
    NotTried,
}

impl FetchError {
    /// An error of `problem` for `bucket`/`key`.
    pub fn new(bucket: &str, key: &str, problem: FetchProblem, source: Option<BoxError>) -> FetchError {
        FetchError { bucket: bucket.to_owned(), key: key.to_owned(), problem, source }
    }

    /// Whether a later attempt may succeed (else the object is quarantined).
    pub fn is_transient(&self) -> bool {
        matches!(self.problem, FetchProblem::Request | FetchProblem::Body | FetchProblem::NotTried)
    }

    /// `s3://bucket/key`.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// Reads an object whole, refusing one over `cap` bytes before downloading it.
pub async fn get_object(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, cap: u64) -> Result<Vec<u8>, FetchError> {
    let fail = |problem, source: Option<BoxError>| FetchError::new(bucket, key, problem, source);
    let output = match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(output) => output,
        Err(error) => {
            let service = error.as_service_error();
            if service.is_some_and(|e| e.is_no_such_key()) {
                return Err(fail(FetchProblem::NotFound, Some(error.into())));
            }
            let code = service.and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(e)).unwrap_or("");
            let message = service.and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::message(e)).unwrap_or("");
            // A log object encrypted with SSE-C answers 400 InvalidRequest: retrying cannot help.
            if code == "InvalidRequest" && message.to_ascii_lowercase().contains("encrypt") {
                let message = message.to_owned();
                return Err(fail(FetchProblem::CustomerKey(message), Some(error.into())));
            }
            return Err(fail(FetchProblem::Request, Some(error.into())));
        }
    };
    let too_big = |size: u64| fail(FetchProblem::TooLarge { size, cap }, None);
    if let Some(length) = output.content_length().filter(|&n| n as u64 > cap) {
        return Err(too_big(length as u64));
    }
    let body = output.body.collect().await.map_err(|e| fail(FetchProblem::Body, Some(e.into())))?;
    let bytes = body.into_bytes();
    if bytes.len() as u64 > cap {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes.to_vec())
}

/// A listed log object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// The delivery time in its name, as `YYYYMMDDHHMM` digits.
    pub name_time: Option<u64>,
}

impl Listed {
    /// `s3://bucket/key`, the object's name in findings and summaries.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// Where objects are listed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// A region folder: its day folders are listed one day at a time.
    Region {
        /// The bucket.
        bucket: String,
        /// `…/CloudTrail/<region>/`.
        prefix: String,
    },
    /// A prefix inside a region or off the layout: everything below it is listed at once.
    Whole {
        /// The bucket.
        bucket: String,
        /// The prefix.
        prefix: String,
    },
}

/// Issues and counts listing requests.
#[derive(Debug, Clone)]
pub struct Lister {
    s3: aws_sdk_s3::Client,
    requests: Arc<AtomicU64>,
    listed: Arc<AtomicU64>,
}

/// A folder still to be walked.
#[derive(Debug, Clone)]
struct Node {
    bucket: String,
    prefix: String,
    /// `None`: above `AWSLogs/`.
    level: Option<Level>,
    depth: usize,
}

impl Lister {
    /// A lister over `s3`.
    pub fn new(s3: aws_sdk_s3::Client) -> Lister {
        Lister { s3, requests: Arc::default(), listed: Arc::default() }
    }

    /// `ListObjectsV2` requests made so far (each page counts).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Log objects listed so far.
    pub fn listed(&self) -> u64 {
        self.listed.load(Ordering::Relaxed)
    }

    /// The region folders (or whole prefixes) below `locations` that the filters keep.
    pub async fn roots(&self, locations: &[S3Location], filters: &Filters) -> Result<Vec<Root>, ListError> {
        let mut roots = Vec::new();
        let mut frontier = Vec::new();
        for location in locations {
            let (bucket, prefix) = (location.bucket.clone(), location.prefix.clone());
            match layout::locate(&location.prefix) {
                Start::Above => frontier.push(Node { bucket, prefix, level: None, depth: 0 }),
                Start::At(level) => frontier.push(Node { bucket, prefix, level: Some(level), depth: 0 }),
                Start::Region => roots.push(Root::Region { bucket, prefix }),
                Start::Below => roots.push(Root::Whole { bucket, prefix }),
            }
        }
        while !frontier.is_empty() {
            let mut next = Vec::new();
            for (node, mut folders) in self.children_of(frontier).await? {
                // Above the layout, a folder that holds `AWSLogs/` is a trail prefix: its other
                // folders (access logs, other data) are not searched.
                if node.level.is_none() {
                    let logs = format!("{}AWSLogs/", node.prefix);
                    if folders.contains(&logs) {
                        folders = vec![logs];
                    }
                }
                for folder in folders {
                    let name = folder.strip_prefix(&node.prefix).unwrap_or(&folder).trim_end_matches('/');
                    let child = |level| Node {
                        bucket: node.bucket.clone(),
                        prefix: folder.clone(),
                        level,
                        depth: node.depth + 1,
                    };
                    match node.level {
                        None if name == "AWSLogs" => next.push(child(Some(Level::Logs))),
                        None if node.depth + 1 < MAX_SEARCH_DEPTH => next.push(child(None)),
                        None => {}
                        Some(level) => match layout::classify(level, name, filters) {
                            Folder::Region => {
                                roots.push(Root::Region { bucket: node.bucket.clone(), prefix: folder.clone() })
                            }
                            other => {
                                if let Some(below) = layout::level_below(other) {
                                    next.push(child(Some(below)));
                                }
                            }
                        },
                    }
                }
            }
            frontier = next;
        }
        roots.sort_by(|a, b| root_key(a).cmp(&root_key(b)));
        Ok(roots)
    }

    /// Lists the child folders of every node at once.
    async fn children_of(&self, nodes: Vec<Node>) -> Result<Vec<(Node, Vec<String>)>, ListError> {
        let limit = Arc::new(Semaphore::new(LIST_CONCURRENCY));
        let mut tasks = JoinSet::new();
        for (index, node) in nodes.into_iter().enumerate() {
            let (lister, limit) = (self.clone(), limit.clone());
            tasks.spawn(async move {
                let _permit = limit.acquire().await;
                let folders = lister.folders(&node.bucket, &node.prefix).await?;
                Ok::<_, ListError>((index, node, folders))
            });
        }
        let mut done = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            done.push(joined.map_err(ListError::Task)??);
        }
        done.sort_by_key(|(index, _, _)| *index);
        Ok(done.into_iter().map(|(_, node, folders)| (node, folders)).collect())
    }

    /// The folders directly below `prefix` (delimiter listing; objects at this level are ignored).
    async fn folders(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, ListError> {
        let mut folders = Vec::new();
        self.pages(bucket, prefix, Some("/"), |page| {
            folders.extend(page.common_prefixes().iter().filter_map(|p| p.prefix().map(str::to_owned)));
        })
        .await?;
        Ok(folders)
    }

    /// Every log object below `prefix` (no delimiter), digests, Insight and non-log keys left out.
    pub async fn objects(&self, bucket: &str, prefix: &str) -> Result<Vec<Listed>, ListError> {
        let mut objects = Vec::new();
        self.pages(bucket, prefix, None, |page| {
            for key in page.contents().iter().filter_map(|object| object.key()) {
                if let Target::Inspect(_) = notify::classify(bucket, key.to_owned()) {
                    let name = key.rsplit('/').next().unwrap_or(key);
                    let name_time = name_time(name);
                    objects.push(Listed { bucket: bucket.to_owned(), key: key.to_owned(), name_time });
                }
            }
        })
        .await?;
        self.listed.fetch_add(objects.len() as u64, Ordering::Relaxed);
        Ok(objects)
    }

    /// Every page of one listing, following continuation tokens; each page is a counted request.
    async fn pages(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        mut each: impl FnMut(&ListObjectsV2Output),
    ) -> Result<(), ListError> {
        let mut token = None;
        loop {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let page = self
                .s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_delimiter(delimiter.map(str::to_owned))
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| ListError::Request {
                    bucket: bucket.to_owned(),
                    prefix: prefix.to_owned(),
                    source: e.into(),
                })?;
            each(&page);
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                return Ok(());
            }
        }
    }

    /// Every log object in one day folder of every region root, at once.
    pub async fn day(&self, roots: &[Root], folder: &str) -> Result<Vec<Listed>, ListError> {
        let limit = Arc::new(Semaphore::new(LIST_CONCURRENCY));
        let mut tasks = JoinSet::new();
        for root in roots {
            let Root::Region { bucket, prefix } = root else { continue };
            let (lister, limit) = (self.clone(), limit.clone());
            let (bucket, prefix) = (bucket.clone(), format!("{prefix}{folder}"));
            tasks.spawn(async move {
                let _permit = limit.acquire().await;
                lister.objects(&bucket, &prefix).await
            });
        }
        let mut objects = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            objects.extend(joined.map_err(ListError::Task)??);
        }
        Ok(objects)
    }
}

fn root_key(root: &Root) -> (&str, &str) {
    match root {
        Root::Region { bucket, prefix } | Root::Whole { bucket, prefix } => (bucket, prefix),
    }
}
