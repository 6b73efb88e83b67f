//! Starting servers and talking to them.

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};
use stagefit::config::Config;
use stagefit::state::Server;

/// Set to a PostgreSQL URL (of a throwaway cluster: scripts/test.sh starts one), the suite
/// runs on PostgreSQL: each test directory gets a database of its own there.
pub const POSTGRES_ENV: &str = "STAGEFIT_TEST_DATABASE_URL";

/// The machine, as the tests share it. A test that holds a bar of a second or two takes it
/// whole ([`quiet`]); a test that keeps both cores busy for long (a model, thousands of
/// requests, a 20,000-asset import) takes a share ([`busy`]), so heavy tests may run beside
/// each other and beside light ones, never beside a timed one. The rest take nothing.
static MACHINE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Held for a test whose bars are timings: nothing heavy runs meanwhile.
pub async fn quiet() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    MACHINE.write().await
}

/// Held for a test that keeps the cores busy: no timed test runs meanwhile.
pub async fn busy() -> tokio::sync::RwLockReadGuard<'static, ()> {
    MACHINE.read().await
}

/// The settings of a server or CLI on `dir`: the index below it, and the database below it
/// (SQLite), or, when [`POSTGRES_ENV`] is set, a PostgreSQL database named after it.
pub fn config_in(dir: &Path) -> Config {
    let mut config = Config::in_dir(dir);
    if let Ok(admin) = std::env::var(POSTGRES_ENV) {
        config.database_url = postgres_database(&admin, dir);
    }
    config
}

/// The URL of the database for `dir` on the cluster of `admin`, created on first use.
fn postgres_database(admin: &str, dir: &Path) -> String {
    use std::collections::BTreeSet;
    use std::hash::{Hash, Hasher};
    use std::sync::Mutex;
    static CREATED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut hasher);
    let name = format!("t_{:016x}", hasher.finish());
    let base = admin
        .rsplit_once('/')
        .map(|(base, _)| base.to_owned())
        .expect("a URL ending in /DATABASE");
    let url = format!("{base}/{name}");
    let mut created = CREATED.lock().unwrap_or_else(|p| p.into_inner());
    if created.insert(name.clone()) {
        let admin = admin.to_owned();
        // A runtime of its own on a thread of its own: callers are sync or async alike.
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(async {
                    use sea_orm::ConnectionTrait;
                    let db = sea_orm::Database::connect(admin.as_str())
                        .await
                        .expect("the test cluster answers");
                    if let Err(err) = db
                        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                        .await
                        && !err.to_string().contains("already exists")
                    {
                        panic!("cannot create test database {name}: {err}");
                    }
                    let _ = db.close().await;
                })
        })
        .join()
        .expect("database created");
    }
    url
}

pub struct TestServer {
    pub server: Option<Server>,
    pub url: String,
    _tmp: Option<tempfile::TempDir>,
    client: reqwest::Client,
}

impl TestServer {
    /// A fresh server on the demo library.
    pub async fn demo() -> Self {
        Self::demo_with(|_| {}).await
    }

    /// A fresh server on the demo library with settings changed by `adjust`.
    pub async fn demo_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut config = config_in(tmp.path());
        adjust(&mut config);
        let mut s = Self::start(config, true).await;
        s._tmp = Some(tmp);
        s
    }

    /// A fresh server on an empty library.
    pub async fn empty() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_owned();
        let mut s = Self::start_in(&dir, false).await;
        s._tmp = Some(tmp);
        s
    }

    /// A fresh server on an empty library with settings changed by `adjust`.
    pub async fn empty_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_owned();
        let mut s = Self::start_in_with(&dir, false, adjust).await;
        s._tmp = Some(tmp);
        s
    }

    /// A server on the database and index below `dir`, which outlive it.
    pub async fn start_in(dir: &Path, demo: bool) -> Self {
        Self::start(config_in(dir), demo).await
    }

    /// A server on `dir`'s storage with settings of its own.
    pub async fn start_in_with(dir: &Path, demo: bool, adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = config_in(dir);
        adjust(&mut config);
        Self::start(config, demo).await
    }

    async fn start(mut config: Config, demo: bool) -> Self {
        config.addr = "127.0.0.1:0".parse().expect("addr");
        let server = Server::start(&config, demo).await.expect("server starts");
        let url = format!("http://{}", server.addr);
        Self {
            server: Some(server),
            url,
            _tmp: None,
            client: reqwest::Client::new(),
        }
    }

    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("clean stop");
        }
    }

    /// POSTs a GraphQL request and returns the whole response body.
    pub async fn request(&self, query: &str, variables: Value) -> Value {
        let response = self
            .client
            .post(format!("{}/graphql", self.url))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "status");
        response.json().await.expect("json body")
    }

    /// A request that must succeed: returns `data`.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let body = self.request(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// A request that must fail: returns the first error.
    pub async fn gql_error(&self, query: &str, variables: Value) -> Value {
        let body = self.request(query, variables).await;
        body["errors"][0].clone()
    }

    /// GETs a path of the server.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.url, path))
            .send()
            .await
            .expect("request")
    }

    /// The directory of a server started on its own temporary directory.
    pub fn dir(&self) -> &Path {
        self._tmp
            .as_ref()
            .expect("a server with its own directory")
            .path()
    }

    /// The database URL of a server started on its own temporary directory.
    pub fn database_url(&self) -> String {
        let dir = self._tmp.as_ref().expect("a server with its own directory");
        config_in(dir.path()).database_url
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.server.is_some() {
            // A test that failed midway: the runtime is going away, nothing to await.
            eprintln!("test server dropped without stop()");
        }
    }
}

/// The `stagefit` binary the tests run: this build's, or the one `STAGEFIT_TEST_BIN` names
/// (to show that a test fails on an older build).
pub fn binary() -> std::path::PathBuf {
    std::env::var_os("STAGEFIT_TEST_BIN")
        .filter(|path| !path.is_empty())
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_stagefit").into())
}

/// Runs the real `stagefit` binary on the database and index below `dir`.
pub fn stagefit(dir: &Path, args: &[&str]) -> Output {
    let config = config_in(dir);
    std::process::Command::new(binary())
        .args(args)
        .env("STAGEFIT_DATABASE_URL", &config.database_url)
        .env("STAGEFIT_INDEX_DIR", &config.index_dir)
        .env_remove("STAGEFIT_LOG")
        .output()
        .expect("run stagefit")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The first row of a query as integers, one per column (`COUNT`s, `SUM`s cast to BIGINT).
pub async fn sql_numbers(db: &impl sea_orm::ConnectionTrait, sql: &str) -> Vec<i64> {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .expect("query")
        .expect("a row");
    (0..row.column_names().len())
        .map(|i| row.try_get_by_index::<i64>(i).expect("an integer"))
        .collect()
}

pub fn ids(items: &Value, path: &[&str]) -> Vec<String> {
    items
        .as_array()
        .expect("array")
        .iter()
        .map(|item| {
            let mut v = item;
            for p in path {
                v = &v[*p];
            }
            v.as_str().expect("id string").to_owned()
        })
        .collect()
}

pub const DEMO_LIBRARY: &str = include_str!("../../demo/library.jsonl");

/// A temporary directory whose database and index hold the demo library, imported by the
/// real binary.
pub fn imported_demo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = dir.path().join("demo.jsonl");
    std::fs::write(&demo, DEMO_LIBRARY).expect("write the demo library");
    let out = stagefit(dir.path(), &["import", demo.to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    dir
}

pub fn demo_records() -> Vec<Value> {
    DEMO_LIBRARY
        .lines()
        .map(|l| serde_json::from_str(l).expect("demo line"))
        .collect()
}

/// A child process that is killed when the guard goes, so a test that fails midway leaves
/// no server running (and holding the test runner's output open).
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `stagefit serve` process on the storage below `dir`, on a free port of 127.0.0.1: its
/// address, and its log lines as they come. Lines are read off the pipe all the time, so
/// the server never blocks on a full one; a line that does not come fails the test after
/// 20 s instead of hanging it.
pub struct ServedBinary {
    pub child: KillOnDrop,
    pub addr: String,
    pub lines: std::sync::mpsc::Receiver<String>,
}

impl ServedBinary {
    /// The next line the server logs; `None` when it ended (its stderr closed) or said
    /// nothing for two minutes. A server indexes what it missed before it listens, which
    /// after a 20,000-asset import took longer than 20 s in an unoptimised build.
    pub fn next_line(&self) -> Option<String> {
        self.lines
            .recv_timeout(std::time::Duration::from_secs(120))
            .ok()
    }

    pub fn kill(mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
    }
}

/// Starts `stagefit serve ARGS` with `env` (besides the storage of `dir`; `STAGEFIT_LOG`
/// is unset unless given) and waits for the line that names its address.
pub fn serve_binary(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> ServedBinary {
    use std::io::{BufRead, BufReader};
    let config = config_in(dir);
    let mut command = std::process::Command::new(binary());
    command
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .env("STAGEFIT_DATABASE_URL", &config.database_url)
        .env("STAGEFIT_INDEX_DIR", &config.index_dir)
        .env_remove("STAGEFIT_LOG")
        .stderr(std::process::Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = KillOnDrop(command.spawn().expect("run stagefit serve"));
    let (sender, lines) = std::sync::mpsc::channel::<String>();
    let stderr = child.0.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        // Read to the end even when nobody listens any more, so the pipe never fills.
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let mut served = ServedBinary {
        child,
        addr: String::new(),
        lines,
    };
    served.addr = loop {
        let line = served.next_line().expect("the server logs its address");
        // Text logs say `addr=...`; JSON logs have an "addr" field.
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
        if let Ok(Value::Object(object)) = serde_json::from_str::<Value>(&line)
            && let Some(Value::String(addr)) = object.get("addr")
        {
            break addr.clone();
        }
    };
    served
}
