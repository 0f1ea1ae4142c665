//! The Lambda Runtime API emulator (`cargo lambda watch --only-lambda-apis`) with the built
//! binary attached as the function, and `cargo lambda invoke`: shared by tests/lambda.rs and
//! tests/deploy.rs.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{root, trailhound_on, unique};

pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `cargo-lambda` binary, or `None` (skip) when it is not installed.
pub fn cargo_lambda() -> Option<PathBuf> {
    match std::env::var_os("TRAILHOUND_CARGO_LAMBDA") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ if std::env::var_os("TRAILHOUND_REQUIRE_MOTO").is_some() => {
            panic!("TRAILHOUND_REQUIRE_MOTO is set but TRAILHOUND_CARGO_LAMBDA is not (scripts/tools.sh installs it)")
        }
        _ => {
            eprintln!(
                "NOTICE: TRAILHOUND_CARGO_LAMBDA not set (scripts/test.sh installs cargo-lambda); Lambda tests skipped"
            );
            None
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn wait_for_port(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(child.try_wait().expect("wait").is_none(), "cargo lambda watch exited early");
        assert!(Instant::now() < deadline, "the Runtime API never listened on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The Runtime API on loopback and the function attached to it.
pub struct Function {
    cargo_lambda: PathBuf,
    port: u16,
    _api: KillOnDrop,
    function: KillOnDrop,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Function {
    /// Starts the emulator and the function, with `env` added to the function's environment.
    pub fn start(cargo_lambda: PathBuf, endpoint: &str, env: &[(&str, &str)]) -> Function {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut api = Command::new(&cargo_lambda)
            .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", &port.to_string()])
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start cargo lambda watch");
        wait_for_port(port, &mut api);
        let log = dir.path().join("function.log");
        let mut function = trailhound_on(endpoint);
        let function = function
            .arg("lambda")
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt"))
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start the function");
        Function { cargo_lambda, port, _api: KillOnDrop(api), function: KillOnDrop(function), log, _dir: dir }
    }

    /// Invokes the function with an SQS event and returns its response.
    pub fn invoke(&mut self, event: &Value) -> Value {
        let file = self._dir.path().join(format!("event-{}.json", unique("e")));
        std::fs::write(&file, serde_json::to_vec(event).expect("event JSON")).expect("write event");
        let out = self._dir.path().join(format!("response-{}.json", unique("r")));
        let mut invoke = Command::new(&self.cargo_lambda)
            .args(["lambda", "invoke", "-A", "127.0.0.1", "-P", &self.port.to_string(), "-o", "json", "--data-file"])
            .arg(&file)
            .arg("_")
            .current_dir(root())
            .stdout(std::fs::File::create(&out).expect("response file"))
            .stderr(Stdio::piped())
            .spawn()
            .expect("cargo lambda invoke");
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = invoke.try_wait().expect("wait") {
                break status;
            }
            let alive = self.function.0.try_wait().expect("wait").is_none();
            if !alive || Instant::now() > deadline {
                let _ = invoke.kill();
                panic!("no response (function alive: {alive}); its log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "invoke failed; the function's log:\n{}", self.log_text());
        let response = std::fs::read(&out).expect("response");
        serde_json::from_slice(&response).unwrap_or_else(|_| panic!("response: {}", String::from_utf8_lossy(&response)))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The function's log, one JSON object per line.
    pub fn log_lines(&self) -> Vec<Value> {
        let file = std::fs::File::open(&self.log).expect("log");
        BufReader::new(file)
            .lines()
            .map(|line| {
                let line = line.expect("line");
                serde_json::from_str(&line).unwrap_or_else(|_| panic!("a log line that is not JSON: {line}"))
            })
            .collect()
    }
}
