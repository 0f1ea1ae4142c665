//! A seeded synthetic CloudTrail corpus, for benchmarks and tests (not a user command).
//!
//! It writes what a trail delivers: gzip (level 6) `{"Records":[...]}` objects under the
//! CloudTrail key layout (`AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_
//! <region>_<YYYYMMDDTHHmmZ>_<random>.json.gz`), with a realistic mix of management and S3 data
//! events carrying the full field set (about 1.5–2 KB each: identity with session context, TLS
//! details, resources, request and response bodies). Into that background it plants attack
//! events and benign look-alikes, and records the planted eventIDs per rule as ground truth.
//! The same seed always gives the same bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;

use flate2::write::GzEncoder;
use flate2::Compression;
use serde::Serialize;

use crate::event::time::{format_rfc3339, Millis};

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    /// RNG seed.
    pub seed: u64,
    /// Number of log objects.
    pub files: usize,
    /// Events per object (the actual count varies ±25 %).
    pub events_per_file: usize,
    /// Accounts (12-digit ids are derived from the seed).
    pub accounts: usize,
    /// Regions used, round-robin.
    pub regions: Vec<&'static str>,
    /// Time of the first event.
    pub start: Millis,
    /// Plant one attack scenario (and one look-alike) every this many files; 0 plants none.
    pub attack_every: usize,
    /// Percent of background events that are S3 data events (GetObject, PutObject). 40 is a
    /// trail with data events on for busy buckets; 0 is a management-only trail, the default of
    /// most organization trails. The rest keep their mix of management calls.
    pub s3_data_percent: usize,
}

impl Default for SynthSpec {
    fn default() -> Self {
        SynthSpec {
            seed: 42,
            files: 8,
            events_per_file: 500,
            accounts: 2,
            regions: vec!["us-east-1", "eu-west-1"],
            start: 1_793_491_200_000, // 2026-11-01T00:00:00Z
            attack_every: 1,
            s3_data_percent: 40,
        }
    }
}

/// One generated log object.
#[derive(Debug, Clone)]
pub struct SynthObject {
    /// Its S3 key in the CloudTrail layout.
    pub key: String,
    /// Gzip bytes.
    pub gzip: Vec<u8>,
    /// Uncompressed JSON size.
    pub json_bytes: usize,
    /// Events inside.
    pub events: usize,
}

/// What was planted: eventIDs per rule that must fire, and eventIDs of look-alikes that must not.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct GroundTruth {
    /// Rule id → planted eventIDs.
    pub attacks: BTreeMap<String, Vec<String>>,
    /// Benign look-alike eventIDs (no finding of any rule of the same family expected).
    pub look_alikes: Vec<String>,
}

/// A small, fast, seeded generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A random UUID-shaped id.
    pub fn uuid(&mut self) -> String {
        let (a, b) = (self.next_u64(), self.next_u64());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    /// `n` characters of `[A-Z0-9]`.
    pub fn token(&mut self, n: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..n).map(|_| ALPHABET[self.below(ALPHABET.len())] as char).collect()
    }
}

/// Generates the corpus, calling `sink` for each object in order; returns the ground truth.
pub fn generate(spec: &SynthSpec, mut sink: impl FnMut(SynthObject)) -> GroundTruth {
    let mut rng = Rng::new(spec.seed);
    let accounts: Vec<String> =
        (0..spec.accounts.max(1)).map(|_| format!("{:012}", rng.next_u64() % 1_000_000_000_000)).collect();
    let mut truth = GroundTruth::default();
    let mut clock = spec.start;
    let mut text = String::new();
    for file_index in 0..spec.files {
        let account = &accounts[file_index % accounts.len()];
        let region = spec.regions[file_index % spec.regions.len().max(1)];
        let ctx = Ctx { account, region, runs_pipeline: file_index % accounts.len() == 0 };
        let count = spec.events_per_file * 3 / 4 + rng.below(spec.events_per_file / 2 + 1);
        let plant = spec.attack_every > 0 && file_index % spec.attack_every == 0;
        let plant_at = if plant { rng.below(count.max(1)) } else { usize::MAX };
        text.clear();
        text.push_str("{\"Records\":[");
        let mut events = 0;
        for i in 0..count {
            clock += 150 + rng.below(300) as i64;
            if i == plant_at {
                let scenario = file_index / spec.attack_every.max(1);
                for planted in plant_scenario(scenario, &mut rng, &ctx, clock, &mut truth) {
                    push_event(&mut text, &mut events, &planted);
                }
            }
            if i == count / 2 && file_index % ROTATION_EVERY_FILES == ROTATION_EVERY_FILES / 2 {
                for rotation in key_rotation(file_index / ROTATION_EVERY_FILES, &mut rng, &ctx, clock) {
                    push_event(&mut text, &mut events, &rotation);
                }
            }
            let background = background_event(&mut rng, &ctx, clock, spec.s3_data_percent.min(100));
            push_event(&mut text, &mut events, &background);
        }
        text.push_str("]}");
        let key = object_key(account, region, clock, &mut rng);
        let mut encoder = GzEncoder::new(Vec::with_capacity(text.len() / 8), Compression::new(6));
        encoder.write_all(text.as_bytes()).expect("writing to memory cannot fail");
        let gzip = encoder.finish().expect("writing to memory cannot fail");
        sink(SynthObject { key, gzip, json_bytes: text.len(), events });
    }
    truth
}

fn push_event(text: &mut String, events: &mut usize, event: &str) {
    if *events > 0 {
        text.push(',');
    }
    text.push_str(event);
    *events += 1;
}

fn object_key(account: &str, region: &str, time: Millis, rng: &mut Rng) -> String {
    let stamp = format_rfc3339(time - time.rem_euclid(300_000)); // YYYY-MM-DDTHH:MM:SSZ
    let (date, clock) = (&stamp[..10], &stamp[11..16]);
    let compact = format!("{}T{}Z", date.replace('-', ""), clock.replace(':', ""));
    format!(
        "AWSLogs/{account}/CloudTrail/{region}/{}/{account}_CloudTrail_{region}_{compact}_{}.json.gz",
        date.replace('-', "/"),
        rng.token(16)
    )
}

struct Ctx<'a> {
    account: &'a str,
    region: &'a str,
    /// The first account runs the data pipeline that writes with SSE-C.
    runs_pipeline: bool,
}

/// The fields every event carries; bodies are passed pre-rendered as JSON.
struct Envelope<'a> {
    identity: String,
    source: &'a str,
    name: &'a str,
    user_agent: &'a str,
    source_ip: String,
    request: String,
    response: String,
    extra: String,
    read_only: bool,
    category: &'a str,
}

fn render(rng: &mut Rng, ctx: &Ctx<'_>, time: Millis, e: Envelope<'_>) -> (String, String) {
    let id = rng.uuid();
    let mut out = String::with_capacity(2048);
    let _ = write!(
        out,
        r#"{{"eventVersion":"1.10","userIdentity":{},"eventTime":"{}","eventSource":"{}.amazonaws.com","eventName":"{}","awsRegion":"{}","sourceIPAddress":"{}","userAgent":"{}","requestParameters":{},"responseElements":{},{}"requestID":"{}","eventID":"{id}","readOnly":{},"eventType":"AwsApiCall","managementEvent":{},"recipientAccountId":"{}","eventCategory":"{}","tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"{}.{}.amazonaws.com"}}}}"#,
        e.identity,
        format_rfc3339(time),
        e.source,
        e.name,
        ctx.region,
        e.source_ip,
        e.user_agent,
        e.request,
        e.response,
        e.extra,
        rng.token(16),
        e.read_only,
        e.category == "Management",
        ctx.account,
        e.category,
        e.source,
        ctx.region,
    );
    (id, out)
}

const USER_AGENTS: &[&str] = &[
    "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.1.79-99.164.amzn2023.x86_64 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#amzn.2023 md/prompt#off md/command#s3.cp",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.213-201.855.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "aws-sdk-go-v2/1.25.3 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/s3#1.51.4 ft/s3-transfer",
    "aws-sdk-java/2.25.11 Linux/5.10.210-201.852.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/legacy",
    "Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.25.3 os/linux lang/go#1.22.1",
];

const DESCRIBE_CALLS: &[&str] = &["DescribeInstances", "DescribeSecurityGroups", "DescribeVolumes", "DescribeSubnets"];
const ROLES: &[&str] = &["app-server", "batch-worker", "ci-deployer", "data-pipeline", "lambda-exec", "ecs-task-web"];
const BUCKETS: &[&str] =
    &["prod-app-assets", "data-lake-raw", "ml-training-sets", "customer-uploads", "build-artifacts"];

fn role_identity(rng: &mut Rng, ctx: &Ctx<'_>) -> String {
    let role = *rng.pick(ROLES);
    named_role_identity(rng, ctx, role)
}

fn named_role_identity(rng: &mut Rng, ctx: &Ctx<'_>, role: &str) -> String {
    let session = format!("i-0{:016x}", rng.next_u64() >> 4);
    format!(
        r#"{{"type":"AssumedRole","principalId":"AROA{}:{session}","arn":"arn:aws:sts::{a}:assumed-role/{role}/{session}","accountId":"{a}","accessKeyId":"ASIA{}","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROA{}","arn":"arn:aws:iam::{a}:role/{role}","accountId":"{a}","userName":"{role}"}},"attributes":{{"creationDate":"2026-11-01T00:00:00Z","mfaAuthenticated":"false"}},"ec2RoleDelivery":"2.0"}}}}"#,
        rng.token(17),
        rng.token(16),
        rng.token(17),
        a = ctx.account,
    )
}

fn user_identity(ctx: &Ctx<'_>, user: &str, key: &str) -> String {
    format!(
        r#"{{"type":"IAMUser","principalId":"AIDA{user_upper}","arn":"arn:aws:iam::{a}:user/{user}","accountId":"{a}","accessKeyId":"{key}","userName":"{user}"}}"#,
        user_upper = user.to_ascii_uppercase().replace('-', ""),
        a = ctx.account,
    )
}

fn private_ip(rng: &mut Rng) -> String {
    format!("10.{}.{}.{}", rng.below(256), rng.below(256), 1 + rng.below(254))
}

fn s3_extra(
    rng: &mut Rng,
    ctx: &Ctx<'_>,
    bucket: &str,
    key: &str,
    bytes_in: usize,
    bytes_out: usize,
    sse: &str,
) -> String {
    format!(
        r#""additionalEventData":{{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":{bytes_in},"SSEApplied":"{sse}","AuthenticationMethod":"AuthHeader","x-amz-id-2":"{}","bytesTransferredOut":{bytes_out}}},"resources":[{{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::{bucket}/{key}"}},{{"accountId":"{a}","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::{bucket}"}}],"#,
        rng.token(60),
        a = ctx.account
    )
}

fn object_key_name(rng: &mut Rng) -> String {
    format!("year=2026/month=11/part-{:05}-{}.snappy.parquet", rng.below(100_000), rng.uuid())
}

/// Background events out of [`LOOK_ALIKE_SHARE`] in 10,000 are benign look-alikes of attacks
/// (TESTING.md §8) at rates a busy account sees them: a data-pipeline role writing SSE-C objects
/// and deleting staged files all day, infrastructure code opening SSH/RDP to private ranges and
/// HTTPS to the world, trail updates that add logging.
const LOOK_ALIKE_SHARE: usize = 100;

/// One realistic background event.
fn background_event(rng: &mut Rng, ctx: &Ctx<'_>, time: Millis, s3_data_percent: usize) -> String {
    let fine = rng.below(10_000);
    let pipeline_only = (10_000 - LOOK_ALIKE_SHARE..10_000 - LOOK_ALIKE_SHARE + 90).contains(&fine);
    if fine >= 10_000 - LOOK_ALIKE_SHARE && (ctx.runs_pipeline || !pipeline_only) {
        return look_alike_event(fine - (10_000 - LOOK_ALIKE_SHARE), rng, ctx, time);
    }
    // Rolls 0..40 are S3 data events and 40..100 the management mix: the share of data events
    // moves the boundary, and the management calls keep their proportions among themselves.
    let roll = fine * 100 / (10_000 - LOOK_ALIKE_SHARE);
    let roll = match roll < s3_data_percent {
        true => roll * 40 / s3_data_percent.max(1),
        false => 40 + (roll - s3_data_percent) * 60 / (100 - s3_data_percent).max(1),
    };
    let agent = *rng.pick(USER_AGENTS);
    let envelope = match roll {
        0..=39 => {
            let (bucket, key) = (*rng.pick(BUCKETS), object_key_name(rng));
            let get = roll < 30;
            let size = 40_000 + rng.below(900_000);
            let (bytes_in, bytes_out) = if get { (0, size) } else { (size, 0) };
            Envelope {
                identity: role_identity(rng, ctx),
                source: "s3",
                name: if get { "GetObject" } else { "PutObject" },
                user_agent: agent,
                source_ip: private_ip(rng),
                request: format!(r#"{{"bucketName":"{bucket}","Host":"{bucket}.s3.{}.amazonaws.com","key":"{key}"}}"#, ctx.region),
                response: if get { "null".into() } else { format!(r#"{{"x-amz-server-side-encryption":"AES256","x-amz-version-id":"{}"}}"#, rng.token(32)) },
                extra: s3_extra(rng, ctx, bucket, &key, bytes_in, bytes_out, "Default_SSE_S3"),
                read_only: get,
                category: "Data",
            }
        }
        40..=52 => {
            let role = *rng.pick(ROLES);
            Envelope {
                identity: r#"{"type":"AWSService","invokedBy":"ec2.amazonaws.com"}"#.to_owned(),
                source: "sts",
                name: "AssumeRole",
                user_agent: "ec2.amazonaws.com",
                source_ip: "ec2.amazonaws.com".into(),
                request: format!(r#"{{"roleArn":"arn:aws:iam::{}:role/{role}","roleSessionName":"i-0{:016x}"}}"#, ctx.account, rng.next_u64() >> 4),
                response: format!(r#"{{"credentials":{{"accessKeyId":"ASIA{}","sessionToken":"IQoJb3JpZ2luX2VjEXAMPLE{}","expiration":"Nov 1, 2026, 6:00:00 AM"}},"assumedRoleUser":{{"assumedRoleId":"AROA{}:i-0abc","arn":"arn:aws:sts::{}:assumed-role/{role}/i-0abc"}}}}"#, rng.token(16), rng.token(120), rng.token(17), ctx.account),
                extra: format!(r#""resources":[{{"accountId":"{a}","type":"AWS::IAM::Role","ARN":"arn:aws:iam::{a}:role/{role}"}}],"sharedEventID":"{}","#, rng.uuid(), a = ctx.account),
                read_only: true,
                category: "Management",
            }
        }
        53..=67 => Envelope {
            identity: role_identity(rng, ctx),
            source: "ec2",
            name: DESCRIBE_CALLS[rng.below(DESCRIBE_CALLS.len())],
            user_agent: agent,
            source_ip: private_ip(rng),
            request: r#"{"maxResults":1000,"filterSet":{"items":[{"name":"tag:Environment","valueSet":{"items":[{"value":"production"}]}}]}}"#.into(),
            response: "null".into(),
            extra: String::new(),
            read_only: true,
            category: "Management",
        },
        68..=79 => Envelope {
            identity: role_identity(rng, ctx),
            source: "kms",
            name: "Decrypt",
            user_agent: agent,
            source_ip: private_ip(rng),
            request: format!(r#"{{"encryptionContext":{{"aws:s3:arn":"arn:aws:s3:::{}/{}"}},"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}}"#, rng.pick(BUCKETS), object_key_name(rng)),
            response: "null".into(),
            extra: format!(r#""resources":[{{"accountId":"{a}","type":"AWS::KMS::Key","ARN":"arn:aws:kms:{r}:{a}:key/{}"}}],"#, rng.uuid(), a = ctx.account, r = ctx.region),
            read_only: true,
            category: "Management",
        },
        80..=87 => Envelope {
            identity: role_identity(rng, ctx),
            source: "logs",
            name: "CreateLogStream",
            user_agent: agent,
            source_ip: private_ip(rng),
            request: format!(r#"{{"logGroupName":"/ecs/web-{}","logStreamName":"web/app/{}"}}"#, rng.below(20), rng.uuid()),
            response: "null".into(),
            extra: String::new(),
            read_only: false,
            category: "Management",
        },
        88..=93 => Envelope {
            identity: role_identity(rng, ctx),
            source: "ssm",
            name: "GetParameter",
            user_agent: agent,
            source_ip: private_ip(rng),
            request: format!(r#"{{"name":"/prod/app/config-{}","withDecryption":true}}"#, rng.below(50)),
            response: "null".into(),
            extra: String::new(),
            read_only: true,
            category: "Management",
        },
        _ => Envelope {
            identity: user_identity(ctx, "reporting-bot", "AKIAEXAMPLEBOTKEY001"),
            source: "s3",
            name: "ListBuckets",
            user_agent: agent,
            source_ip: format!("203.0.113.{}", 1 + rng.below(254)),
            request: format!(r#"{{"Host":"s3.{}.amazonaws.com"}}"#, ctx.region),
            response: "null".into(),
            extra: String::new(),
            read_only: true,
            category: "Management",
        },
    };
    render(rng, ctx, time, envelope).1
}

/// Where the pipeline role writes with SSE-C (a partner exchange that requires it) and where it
/// cleans up staged input.
const SSE_C_EXCHANGE_BUCKET: &str = "partner-exchange";
const STAGING_BUCKET: &str = "data-lake-raw";
/// Infrastructure code's private ranges for SSH/RDP.
const PRIVATE_RANGES: &[&str] = &["10.0.0.0/8", "10.20.0.0/16", "172.16.0.0/12", "192.168.0.0/16"];

/// Benign look-alike number `slot` (0..[`LOOK_ALIKE_SHARE`]).
fn look_alike_event(slot: usize, rng: &mut Rng, ctx: &Ctx<'_>, time: Millis) -> String {
    let terraform = USER_AGENTS[4];
    let management = |identity: String, source: &'static str, name: &'static str, request: String| Envelope {
        identity,
        source,
        name,
        user_agent: terraform,
        source_ip: "10.0.12.40".into(),
        request,
        response: r#"{"_return":true}"#.into(),
        extra: String::new(),
        read_only: false,
        category: "Management",
    };
    let envelope = match slot {
        // 0.8 %: SSE-C writes of new objects (never in place) by the pipeline's many sessions.
        0..=79 => {
            let (bucket, key) = (SSE_C_EXCHANGE_BUCKET, object_key_name(rng));
            Envelope {
                identity: named_role_identity(rng, ctx, "data-pipeline"),
                source: "s3",
                name: "PutObject",
                user_agent: USER_AGENTS[3],
                source_ip: private_ip(rng),
                request: format!(
                    r#"{{"bucketName":"{bucket}","Host":"{bucket}.s3.{}.amazonaws.com","key":"outbound/{key}","x-amz-server-side-encryption-customer-algorithm":"AES256","x-amz-server-side-encryption-customer-key-MD5":"{}"}}"#,
                    ctx.region,
                    rng.token(24)
                ),
                response: format!(
                    r#"{{"x-amz-server-side-encryption-customer-algorithm":"AES256","x-amz-version-id":"{}"}}"#,
                    rng.token(32)
                ),
                extra: s3_extra(rng, ctx, bucket, &key, 200_000, 0, "SSE_C"),
                read_only: false,
                category: "Data",
            }
        }
        // 0.1 %: the same role deleting fifty processed files from the staging bucket.
        80..=89 => {
            let objects: Vec<String> =
                (0..50).map(|_| format!(r#"{{"Key":"staging/{}"}}"#, object_key_name(rng))).collect();
            Envelope {
                identity: named_role_identity(rng, ctx, "data-pipeline"),
                source: "s3",
                name: "DeleteObjects",
                user_agent: USER_AGENTS[3],
                source_ip: private_ip(rng),
                request: format!(
                    r#"{{"bucketName":"{STAGING_BUCKET}","Host":"{STAGING_BUCKET}.s3.{}.amazonaws.com","delete":{{"Object":[{}],"Quiet":true}}}}"#,
                    ctx.region,
                    objects.join(",")
                ),
                response: "null".into(),
                extra: s3_extra(rng, ctx, STAGING_BUCKET, "staging/", 0, 0, "Default_SSE_S3"),
                read_only: false,
                category: "Data",
            }
        }
        // 0.05 %: Terraform opening SSH or RDP to a private range.
        90..=94 => {
            let port = if slot.is_multiple_of(2) { 22 } else { 3389 };
            let cidr = *rng.pick(PRIVATE_RANGES);
            management(
                named_role_identity(rng, ctx, "terraform-deployer"),
                "ec2",
                "AuthorizeSecurityGroupIngress",
                format!(
                    r#"{{"groupId":"sg-0{:016x}","ipPermissions":{{"items":[{{"ipProtocol":"tcp","fromPort":{port},"toPort":{port},"ipRanges":{{"items":[{{"cidrIp":"{cidr}","description":"bastion subnet"}}]}}}}]}}}}"#,
                    rng.next_u64() >> 4
                ),
            )
        }
        // 0.03 %: Terraform opening HTTPS or HTTP to the world for a load balancer.
        95..=97 => {
            let port = if slot == 97 { 80 } else { 443 };
            management(
                named_role_identity(rng, ctx, "terraform-deployer"),
                "ec2",
                "AuthorizeSecurityGroupIngress",
                format!(
                    r#"{{"groupId":"sg-0{:016x}","ipPermissions":{{"items":[{{"ipProtocol":"tcp","fromPort":{port},"toPort":{port},"ipRanges":{{"items":[{{"cidrIp":"0.0.0.0/0"}}]}},"ipv6Ranges":{{"items":[{{"cidrIpv6":"::/0"}}]}}}}]}}}}"#,
                    rng.next_u64() >> 4
                ),
            )
        }
        // 0.02 %: a trail update that adds CloudWatch Logs delivery and log file validation.
        _ => {
            let mut envelope = management(
                named_role_identity(rng, ctx, "terraform-deployer"),
                "cloudtrail",
                "UpdateTrail",
                format!(
                    r#"{{"name":"audit-trail","cloudWatchLogsLogGroupArn":"arn:aws:logs:{r}:{a}:log-group:aws-cloudtrail-logs:*","cloudWatchLogsRoleArn":"arn:aws:iam::{a}:role/CloudTrailToCloudWatch","enableLogFileValidation":true}}"#,
                    r = ctx.region,
                    a = ctx.account
                ),
            );
            envelope.response = format!(
                r#"{{"name":"audit-trail","s3BucketName":"org-cloudtrail-{}","isMultiRegionTrail":true,"logFileValidationEnabled":true}}"#,
                ctx.account
            );
            envelope
        }
    };
    render(rng, ctx, time, envelope).1
}

/// Key rotation by a developer: `CreateAccessKey` with the old key, then the new key in use from
/// the same network and client a few minutes later (TESTING.md §8). Rare: once every
/// [`ROTATION_EVERY_FILES`] objects.
const ROTATION_EVERY_FILES: usize = 400;

fn key_rotation(n: usize, rng: &mut Rng, ctx: &Ctx<'_>, time: Millis) -> [String; 3] {
    let (old, new) = (format!("AKIAEXAMPLEDEVOLD{n:03}"), format!("AKIAEXAMPLEDEVNEW{n:03}"));
    let call = |key: &str, name: &'static str, source: &'static str, response: String, rng: &mut Rng, at: Millis| {
        let envelope = Envelope {
            identity: user_identity(ctx, "dev-alice", key),
            source,
            name,
            user_agent: USER_AGENTS[0],
            source_ip: format!("198.51.100.{}", 10 + rng.below(5)),
            request: if name == "CreateAccessKey" { r#"{"userName":"dev-alice"}"#.into() } else { "null".into() },
            response,
            extra: String::new(),
            read_only: name != "CreateAccessKey",
            category: "Management",
        };
        render(rng, ctx, at, envelope).1
    };
    let minted = format!(r#"{{"accessKey":{{"accessKeyId":"{new}","status":"Active","userName":"dev-alice"}}}}"#);
    [
        call(&old, "ListBuckets", "s3", "null".into(), rng, time - 3_600_000),
        call(&old, "CreateAccessKey", "iam", minted, rng, time),
        call(&new, "ListBuckets", "s3", "null".into(), rng, time + 240_000),
    ]
}

/// Kinds of planted attack, round-robin.
const SCENARIOS: usize = 12;

/// Plants scenario number `n` (round-robin over the catalogue of scenarios) plus a look-alike;
/// returns the rendered events and records their eventIDs.
fn plant_scenario(n: usize, rng: &mut Rng, ctx: &Ctx<'_>, time: Millis, truth: &mut GroundTruth) -> Vec<String> {
    let attacker = user_identity(ctx, "ci-legacy", "AKIAEXAMPLECILEGACY1");
    let attacker_ip = "198.51.100.23".to_owned();
    let agent = USER_AGENTS[0];
    let mut planted = Vec::new();
    let mut attack_at = |rule: &str, envelope: Envelope<'_>, rng: &mut Rng, at: Millis| {
        let (id, event) = render(rng, ctx, at, envelope);
        truth.attacks.entry(rule.to_owned()).or_default().push(id);
        planted.push(event);
    };
    let mut attack = |rule: &str, envelope: Envelope<'_>, rng: &mut Rng| attack_at(rule, envelope, rng, time);
    let base = |name: &'static str, source: &'static str, request: String, response: String| Envelope {
        identity: attacker.clone(),
        source,
        name,
        user_agent: agent,
        source_ip: attacker_ip.clone(),
        request,
        response,
        extra: String::new(),
        read_only: false,
        category: "Management",
    };
    let bucket = BUCKETS[n % BUCKETS.len()];
    match n % SCENARIOS {
        0 => {
            let key = object_key_name(rng);
            let mut envelope = base(
                "CopyObject",
                "s3",
                format!(r#"{{"bucketName":"{bucket}","Host":"{bucket}.s3.amazonaws.com","key":"{key}","x-amz-copy-source":"{bucket}/{key}","x-amz-server-side-encryption-customer-algorithm":"AES256"}}"#),
                format!(r#"{{"x-amz-version-id":"{}","x-amz-server-side-encryption-customer-algorithm":"AES256"}}"#, rng.token(32)),
            );
            envelope.category = "Data";
            envelope.extra = s3_extra(rng, ctx, bucket, &key, 0, 0, "SSE_C");
            attack("s3.ssec_copy_overwrite", envelope, rng);
        }
        1 => attack(
            "ec2.remote_admin_port_open",
            base("AuthorizeSecurityGroupIngress", "ec2", r#"{"groupId":"sg-0a1b2c3d4e5f60718","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":22,"toPort":22,"groups":{},"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]},"ipv6Ranges":{},"prefixListIds":{}}]}}"#.into(), r#"{"_return":true}"#.into()),
            rng,
        ),
        2 => attack(
            "ec2.instance_connect_ssh",
            base("SendSSHPublicKey", "ec2-instance-connect", r#"{"instanceId":"i-0123456789abcdef0","instanceOSUser":"ec2-user","sSHPublicKey":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPLANTEDKEY user@laptop"}"#.into(), r#"{"success":true}"#.into()),
            rng,
        ),
        3 => attack(
            "iam.access_key_created",
            base("CreateAccessKey", "iam", r#"{"userName":"backdoor-svc"}"#.into(), r#"{"accessKey":{"accessKeyId":"AKIAEXAMPLEBACKDOOR1","status":"Active","userName":"backdoor-svc"}}"#.into()),
            rng,
        ),
        4 => attack(
            "trail.tampering",
            base("StopLogging", "cloudtrail", r#"{"name":"org-trail"}"#.into(), "null".into()),
            rng,
        ),
        5 => attack(
            "ec2.imdsv1_enabled",
            base("ModifyInstanceMetadataOptions", "ec2", r#"{"ModifyInstanceMetadataOptionsRequest":{"InstanceId":"i-0123456789abcdef0","HttpTokens":"optional"}}"#.into(), "null".into()),
            rng,
        ),
        6 => attack(
            "ecs.task_secrets_in_env",
            base("RegisterTaskDefinition", "ecs", r#"{"family":"web","networkMode":"awsvpc","containerDefinitions":[{"name":"web","image":"web:1","readonlyRootFilesystem":true,"logConfiguration":{"logDriver":"awslogs"},"environment":[{"name":"AWS_SECRET_ACCESS_KEY","value":"PLANTEDSECRETVALUEdonotcopy"}]}]}"#.into(), "null".into()),
            rng,
        ),
        7 => attack(
            "s3.versioning_suspended",
            base("PutBucketVersioning", "s3", format!(r#"{{"bucketName":"{bucket}","versioning":"","VersioningConfiguration":{{"Status":"Suspended"}}}}"#), "null".into()),
            rng,
        ),
        8 => {
            let mut envelope = base("ConsoleLogin", "signin", "null".into(), r#"{"ConsoleLogin":"Success"}"#.into());
            envelope.identity = format!(r#"{{"type":"Root","principalId":"{a}","arn":"arn:aws:iam::{a}:root","accountId":"{a}","accessKeyId":""}}"#, a = ctx.account);
            envelope.user_agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";
            envelope.extra = r#""additionalEventData":{"LoginTo":"https://console.aws.amazon.com/console/home","MobileVersion":"No","MFAUsed":"No"},"#.into();
            attack("iam.root_console_login", envelope, rng);
        }
        9 => attack(
            "iam.admin_policy_attached",
            base("PutUserPolicy", "iam", r#"{"userName":"ci-legacy","policyName":"maint","policyDocument":"%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22*%22%2C%22Resource%22%3A%22*%22%7D%5D%7D"}"#.into(), "null".into()),
            rng,
        ),
        10 => attack(
            "trail.tampering",
            base("UpdateTrail", "cloudtrail", r#"{"name":"org-trail","s3BucketName":"exfil-logs-7731","isMultiRegionTrail":false}"#.into(), "null".into()),
            rng,
        ),
        _ => {
            // A key minted for a backdoor user, then used from another host ten minutes later.
            let backdoor = format!("AKIAEXAMPLEBKDR{:05}", n % 100_000);
            let minted = format!(r#"{{"accessKey":{{"accessKeyId":"{backdoor}","status":"Active","userName":"svc-backup"}}}}"#);
            attack("iam.access_key_created", base("CreateAccessKey", "iam", r#"{"userName":"svc-backup"}"#.into(), minted), rng);
            let mut used = base("GetCallerIdentity", "sts", "null".into(), "null".into());
            used.identity = user_identity(ctx, "svc-backup", &backdoor);
            used.source_ip = "192.0.2.201".into();
            used.read_only = true;
            attack_at("iam.created_key_used", used, rng, time + 600_000);
        }
    }
    // A benign look-alike next to every attack.
    let look_alike = match n % 3 {
        0 => Envelope {
            identity: role_identity(rng, ctx),
            source: "ec2",
            name: "AuthorizeSecurityGroupIngress",
            user_agent: USER_AGENTS[4],
            source_ip: private_ip(rng),
            request: r#"{"groupId":"sg-0fedcba9876543210","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":443,"toPort":443,"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]}}]}}"#.into(),
            response: r#"{"_return":true}"#.into(),
            extra: String::new(),
            read_only: false,
            category: "Management",
        },
        1 => Envelope {
            identity: role_identity(rng, ctx),
            source: "ssm",
            name: "StartSession",
            user_agent: agent,
            source_ip: private_ip(rng),
            request: r#"{"target":"i-0123456789abcdef0"}"#.into(),
            response: r#"{"sessionId":"ops-0123456789abcdef0","tokenValue":"Value hidden due to security reasons.","streamUrl":"wss://ssmmessages.amazonaws.com/v1/data-channel/ops-0123456789abcdef0"}"#.into(),
            extra: String::new(),
            read_only: false,
            category: "Management",
        },
        _ => {
            let key = object_key_name(rng);
            Envelope {
                identity: role_identity(rng, ctx),
                source: "s3",
                name: "CopyObject",
                user_agent: agent,
                source_ip: private_ip(rng),
                request: format!(r#"{{"bucketName":"{bucket}","key":"{key}.bak","x-amz-copy-source":"{bucket}/{key}","x-amz-server-side-encryption":"AES256"}}"#),
                response: r#"{"x-amz-server-side-encryption":"AES256"}"#.into(),
                extra: s3_extra(rng, ctx, bucket, &key, 0, 0, "Default_SSE_S3"),
                read_only: false,
                category: "Data",
            }
        }
    };
    let (id, event) = render(rng, ctx, time, look_alike);
    truth.look_alikes.push(id);
    planted.push(event);
    planted
}
