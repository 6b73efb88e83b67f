//! Settings, read once at start-up: the only place that looks at `STAGEFIT_*` variables.
//! Precedence is defaults < environment < command-line flags (clap resolves the last two).

use clap::Args;

use crate::domain::{Factor, WeightOverrides, Weights};
use crate::domain::{Language, Stage};
use std::net::SocketAddr;
use std::path::PathBuf;

/// How long a key lookup is reused (a revoked key works that long elsewhere at most).
pub const DEFAULT_KEY_CACHE: std::time::Duration = std::time::Duration::from_secs(4);
pub const DEFAULT_DATABASE_URL: &str = "sqlite://stagefit.db?mode=rwc";
pub const DEFAULT_INDEX_DIR: &str = "index";
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_RESPONSE_CACHE_MB: u64 = 64;
pub const DEFAULT_POPULARITY_REFRESH_SECS: u64 = 1;
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 10;
/// Seconds a client has to send a request's headers, and an idle connection to start its
/// next request.
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
/// Seconds a client has to send a request's body.
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 30;
/// Seconds requests in flight at shutdown may take to finish.
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 30;

/// Where the library lives; shared by every subcommand.
#[derive(Args, Clone, Debug)]
pub struct StorageArgs {
    /// Database URL: sqlite://PATH?mode=rwc or postgres://USER:PASS@HOST/DB
    #[arg(
        long,
        env = "STAGEFIT_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Directory of the search index (derived from the database; safe to delete)
    #[arg(long, env = "STAGEFIT_INDEX_DIR", global = true)]
    pub index_dir: Option<PathBuf>,
    /// Default ranking weights, e.g. "stage=3,text=2.5" (unnamed factors keep their default)
    #[arg(long, env = "STAGEFIT_WEIGHTS", global = true, value_parser = parse_weights)]
    pub weights: Option<Weights>,
    /// SQLite's durability: `normal` (WAL, synchronous=NORMAL: survives a crash of the
    /// process, may lose the last commits on power loss) or `full` (synchronous=FULL:
    /// every commit reaches the disk first, slower writes)
    #[arg(long, env = "STAGEFIT_DURABILITY", global = true, value_enum)]
    pub durability: Option<Durability>,
}

/// How hard SQLite works to keep a commit on power loss (PostgreSQL: its own settings).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    #[default]
    Normal,
    Full,
}

/// Parses `factor=weight` pairs over the default weights.
pub fn parse_weights(raw: &str) -> Result<Weights, String> {
    let mut o = WeightOverrides::default();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?}: expected factor=weight"))?;
        let value: f64 = value
            .trim()
            .parse()
            .map_err(|_| format!("{pair:?}: {:?} is not a number", value.trim()))?;
        let factor = Factor::from_key(name)
            .ok_or_else(|| format!("unknown factor {:?}", name.trim().to_ascii_lowercase()))?;
        o.set(factor, value);
    }
    Weights::default().with(&o)
}

/// Changes the index may be behind the database while `/readyz` still says ready: large
/// enough that a bulk import does not take every replica out of a load balancer at once.
pub const DEFAULT_READY_MAX_LAG: u64 = 10_000;

/// Requests at least this long (milliseconds) get a `slow request` log line.
pub const DEFAULT_SLOW_REQUEST_MS: u64 = 1_000;

/// How long the audit trail keeps events unless told otherwise.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 90;
/// Days impressions and shown lists are kept; the daily rollups (no account in them) stay.
pub const DEFAULT_FEEDBACK_RETENTION_DAYS: u32 = 180;
/// Days engagement events are kept: a year and a month, so a month compares with the same
/// month a year before. Popularity and co-reads built from them stay.
pub const DEFAULT_ENGAGEMENT_RETENTION_DAYS: u32 = 395;

/// Token buckets per credential (see `http::limits`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Requests a second for one key, all its callers together (bursts of as many).
    pub per_key_per_second: u32,
    /// Requests a second for one client address on one publishable key.
    pub per_client_per_second: u32,
    /// Burst for one client address on one publishable key.
    pub per_client_burst: u32,
    /// Failed credentials (401) one client address may present at once; past them, it
    /// gets 429 for any credential that would be looked up in the database...
    pub auth_failure_burst: u32,
    /// ...until its budget refills at this many a second.
    pub auth_failures_per_second: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_key_per_second: 1_000,
            per_client_per_second: 20,
            per_client_burst: 40,
            auth_failure_burst: 20,
            auth_failures_per_second: 1,
        }
    }
}

/// How recommendations are ranked when a request does not say.
#[derive(Clone, Debug)]
pub struct RankingConfig {
    pub weights: Weights,
    /// Freshness halves every this many days since the last review.
    pub half_life_days: f64,
    /// The stage assumed for an audience that gives none: an unknown visitor is most
    /// likely early in the journey.
    pub default_stage: Stage,
    pub default_language: Language,
    /// The share of text relevance decided by meaning when an embedding model is loaded
    /// (0: words alone, 1: meaning alone).
    pub semantic_ratio: f64,
}

/// An embeddings service that speaks OpenAI's `POST /embeddings` (Ollama, Hugging Face's
/// text-embeddings-inference, vLLM, a hosted API).
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteEmbedderConfig {
    /// The API's base address; requests go to `{url}/embeddings`.
    pub url: String,
    /// The model the service is asked for (its `model` field).
    pub model: String,
    /// Sent as `Authorization: Bearer KEY` when set; read from the environment only.
    pub api_key: Option<String>,
}

/// Written without the key: a configuration printed in a log or a panic shows none.
impl std::fmt::Debug for RemoteEmbedderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteEmbedderConfig")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "(set)"))
            .finish()
    }
}

impl RemoteEmbedderConfig {
    /// The service at `url` asked for `model`, with the key STAGEFIT_EMBEDDER_KEY holds (a
    /// secret stays out of the command line, where `ps` would show it).
    pub fn new(url: String, model: String) -> Self {
        Self {
            url: url.trim_end_matches('/').to_owned(),
            model,
            api_key: std::env::var("STAGEFIT_EMBEDDER_KEY")
                .ok()
                .filter(|k| !k.is_empty()),
        }
    }
}

/// Meaning's default share of text relevance (see `RankingConfig::semantic_ratio`).
pub const DEFAULT_SEMANTIC_RATIO: f64 = 0.3;

/// How webhooks are delivered.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Deliver to loopback and private addresses too (`--webhook-allow-private`): for a
    /// receiver on the same machine or network, and the tests.
    pub allow_private: bool,
    /// How long one attempt may take, connecting included; a claimed delivery is held
    /// that long and as long again (at most 5 s more) before another deliverer may take it.
    pub timeout: std::time::Duration,
    /// The wait after a first failure; doubled per failure (see `domain::retry_delay`).
    pub retry_base: std::time::Duration,
    /// How long a delivery is retried before it fails and its webhook is disabled.
    pub give_up_after: std::time::Duration,
    /// How often a replica looks for deliveries other replicas wrote.
    pub poll: std::time::Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            timeout: std::time::Duration::from_secs(10),
            retry_base: std::time::Duration::from_secs(5),
            give_up_after: std::time::Duration::from_secs(24 * 3600),
            poll: std::time::Duration::from_millis(500),
        }
    }
}

/// Typed, validated settings for one process.
#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    /// SQLite's synchronous setting.
    pub durability: Durability,
    pub index_dir: PathBuf,
    pub addr: SocketAddr,
    /// Largest `first` a list query accepts.
    pub max_page_size: usize,
    /// How often a server polls the change log for writes made by other processes.
    pub follow_interval_ms: u64,
    /// How many index operations one commit may carry.
    pub index_batch_size: usize,
    /// Memory budget of the index writer, in bytes.
    pub index_writer_memory: usize,
    /// Bytes of GraphQL responses the server keeps to answer repeated queries; 0 turns the
    /// response cache off.
    pub response_cache_bytes: u64,
    /// How often each replica reads the popularity counters' best lists (the counters
    /// themselves move with each event); 0: only at start, after an erasure and when
    /// another replica announces a rebuild.
    pub popularity_refresh_secs: u64,
    /// How long an account's profile (record, contacts, what it read, inferred stage) is
    /// reused before it is read again. Writes through this process drop it at once; the
    /// age bounds how stale writes through another replica can look.
    pub account_cache_secs: u64,
    /// Days after which an asset not reviewed (or published, if never reviewed) counts as
    /// stale in the audit.
    pub stale_after_days: u32,
    /// Serve with no API key on an address other than loopback (open to all).
    pub insecure_open: bool,
    /// Origins a browser may call `/graphql` from (exact matches; no wildcard).
    pub cors_origins: Vec<String>,
    pub rate_limits: RateLimitConfig,
    /// Requests taking at least this long are logged as slow.
    pub slow_request: std::time::Duration,
    /// `/readyz` says not ready while the index is more changes than this behind.
    pub ready_max_lag: u64,
    /// A second address serving `/metrics` alone, without a key.
    pub metrics_addr: Option<SocketAddr>,
    /// Proxies (addresses or networks) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<String>,
    /// Days the audit trail keeps events (0: forever).
    pub audit_retention_days: u32,
    /// Days impressions and shown lists are kept (0: forever).
    pub feedback_retention_days: u32,
    /// Days engagement events are kept (0: forever).
    pub engagement_retention_days: u32,
    /// A sentence-embedding model's folder (config.json, tokenizer.json,
    /// model.safetensors): ranking by meaning besides words. `None`: words alone.
    pub embedding_model: Option<PathBuf>,
    /// An OpenAI-compatible embeddings service to use instead of a model folder.
    pub embedder: Option<RemoteEmbedderConfig>,
    /// Publishable keys and visitor tokens run only safelisted operations.
    pub publishable_safelist: bool,
    /// How long one GraphQL request may run.
    pub request_timeout: std::time::Duration,
    /// How long a client may take to send a request's headers (or, idle, to start one).
    pub header_timeout: std::time::Duration,
    /// How long a client may take to send a request's body.
    pub body_timeout: std::time::Duration,
    /// How long requests in flight at shutdown may take to finish.
    pub shutdown_grace: std::time::Duration,
    /// The address share links carry (`None`: `http://` and `addr`).
    pub public_url: Option<String>,
    /// How long a key lookup (and the safelist) is reused before the database is asked
    /// again: how long a key revoked elsewhere keeps working. Not a flag; tests shorten it.
    pub key_cache: std::time::Duration,
    /// Webhook delivery; only `allow_private` is a flag, tests shorten the rest.
    pub webhooks: WebhookConfig,
    pub ranking: RankingConfig,
}

impl Config {
    pub fn new(storage: &StorageArgs) -> Self {
        Self {
            database_url: storage
                .database_url
                .clone()
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            durability: storage.durability.unwrap_or_default(),
            index_dir: storage
                .index_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_INDEX_DIR)),
            addr: DEFAULT_ADDR
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080))),
            max_page_size: 100,
            follow_interval_ms: 1000,
            index_batch_size: 10_000,
            index_writer_memory: 64 * 1024 * 1024,
            response_cache_bytes: DEFAULT_RESPONSE_CACHE_MB * 1024 * 1024,
            popularity_refresh_secs: DEFAULT_POPULARITY_REFRESH_SECS,
            account_cache_secs: 30,
            stale_after_days: 365,
            insecure_open: false,
            cors_origins: Vec::new(),
            rate_limits: RateLimitConfig::default(),
            publishable_safelist: false,
            trusted_proxies: Vec::new(),
            metrics_addr: None,
            ready_max_lag: DEFAULT_READY_MAX_LAG,
            slow_request: std::time::Duration::from_millis(DEFAULT_SLOW_REQUEST_MS),
            audit_retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
            feedback_retention_days: DEFAULT_FEEDBACK_RETENTION_DAYS,
            engagement_retention_days: DEFAULT_ENGAGEMENT_RETENTION_DAYS,
            embedding_model: None,
            embedder: None,
            request_timeout: std::time::Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECS),
            header_timeout: std::time::Duration::from_secs(DEFAULT_HEADER_TIMEOUT_SECS),
            body_timeout: std::time::Duration::from_secs(DEFAULT_BODY_TIMEOUT_SECS),
            shutdown_grace: std::time::Duration::from_secs(DEFAULT_SHUTDOWN_GRACE_SECS),
            key_cache: DEFAULT_KEY_CACHE,
            public_url: None,
            webhooks: WebhookConfig::default(),
            ranking: RankingConfig {
                weights: storage.weights.unwrap_or_default(),
                half_life_days: 365.0,
                default_stage: Stage::Awareness,
                default_language: Language::english(),
                semantic_ratio: DEFAULT_SEMANTIC_RATIO,
            },
        }
    }

    /// Settings for a self-contained instance below `dir`: the demo server and tests.
    pub fn in_dir(dir: &std::path::Path) -> Self {
        let db = dir.join("stagefit.db");
        Self::new(&StorageArgs {
            database_url: Some(format!("sqlite://{}?mode=rwc", db.display())),
            index_dir: Some(dir.join("index")),
            weights: None,
            durability: None,
        })
    }

    /// The URL with any password replaced, for logs.
    pub fn redacted_database_url(&self) -> String {
        redacted_url(&self.database_url)
    }
}

/// A database URL with any password replaced, for logs and messages.
pub fn redacted_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_logs() {
        let mut c = Config::new(&StorageArgs {
            database_url: Some("postgres://app:s3cret@db/stagefit".into()),
            index_dir: None,
            weights: None,
            durability: None,
        });
        assert_eq!(c.redacted_database_url(), "postgres://app:***@db/stagefit");
        c.database_url = DEFAULT_DATABASE_URL.into();
        assert_eq!(c.redacted_database_url(), DEFAULT_DATABASE_URL);
    }

    #[test]
    fn weights_parse_over_the_defaults() {
        let w = parse_weights("stage=4, TEXT=0.5").unwrap();
        assert_eq!(
            (w.stage, w.text, w.role),
            (4.0, 0.5, Weights::default().role)
        );
        assert!(parse_weights("stage").is_err());
        assert!(parse_weights("mood=1").is_err());
        assert!(parse_weights("stage=-2").is_err());
    }
}

/// How the process logs, from `STAGEFIT_LOG` (a tracing filter) and `STAGEFIT_LOG_FORMAT`
/// (`json` for one JSON object per line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSettings {
    /// The filter directive, when one is set.
    pub filter: Option<String>,
    pub json: bool,
}

impl LogSettings {
    pub fn from_env() -> Self {
        Self {
            filter: std::env::var("STAGEFIT_LOG").ok(),
            json: std::env::var("STAGEFIT_LOG_FORMAT")
                .is_ok_and(|f| f.eq_ignore_ascii_case("json")),
        }
    }
}

/// `stagefit serve`'s settings besides storage.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, env = "STAGEFIT_ADDR", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// Start on the built-in demo library. Without an explicit database or index
    /// directory, it runs on a fresh temporary one that is deleted on exit.
    #[arg(long)]
    pub demo: bool,
    /// Megabytes of responses kept to answer repeated queries (0: no response cache)
    #[arg(long, env = "STAGEFIT_RESPONSE_CACHE_MB", default_value_t = DEFAULT_RESPONSE_CACHE_MB)]
    pub response_cache_mb: u64,
    /// Seconds between reads of the popularity counters' best lists (0: only at start and
    /// after erasures or rebuilds)
    #[arg(long, env = "STAGEFIT_POPULARITY_REFRESH_SECS", default_value_t = DEFAULT_POPULARITY_REFRESH_SECS)]
    pub popularity_refresh_secs: u64,
    /// Serve with no API key on an address other than loopback, open to anyone who can
    /// reach it
    #[arg(long)]
    pub insecure_open: bool,
    /// An origin browsers may call /graphql from, such as https://www.example.com
    /// (repeat, or comma-separate in STAGEFIT_CORS_ORIGINS); exact matches only
    #[arg(
        long = "cors-origin",
        env = "STAGEFIT_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// The address readers reach this server at, such as https://content.example.com: share
    /// links carry it (default: http:// and --addr)
    #[arg(long, env = "STAGEFIT_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Deliver webhooks to loopback and private network addresses too (refused by
    /// default: a webhook must not reach into the network the server runs in)
    #[arg(long, env = "STAGEFIT_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,
    /// Milliseconds a webhook receiver may take to answer, connecting included
    #[arg(long, env = "STAGEFIT_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..=120_000))]
    pub webhook_timeout_ms: u64,
    /// Milliseconds before the first retry of a failed delivery; doubled per failure up
    /// to 30 minutes, with jitter, for 24 hours
    #[arg(long, env = "STAGEFIT_WEBHOOK_RETRY_BASE_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub webhook_retry_base_ms: u64,
    /// Requests a second one key may make, all its callers together
    #[arg(long, env = "STAGEFIT_RATE_PER_KEY", default_value_t = 1_000)]
    pub rate_per_key: u32,
    /// Requests a second one client address may make with one publishable key
    #[arg(long, env = "STAGEFIT_RATE_PER_CLIENT", default_value_t = 20)]
    pub rate_per_client: u32,
    /// Burst one client address may make with one publishable key
    #[arg(long, env = "STAGEFIT_BURST_PER_CLIENT", default_value_t = 40)]
    pub burst_per_client: u32,
    /// Failed credentials one client address may present at once before its next
    /// unknown credential gets 429 (without a database lookup)
    #[arg(long, env = "STAGEFIT_AUTH_FAILURE_BURST", default_value_t = 20)]
    pub auth_failure_burst: u32,
    /// Failed credentials a second one client address may present after its burst
    #[arg(long, env = "STAGEFIT_AUTH_FAILURES_PER_SECOND", default_value_t = 1)]
    pub auth_failures_per_second: u32,
    /// Seconds one request may run before it gets 503 TIMEOUT
    #[arg(long, env = "STAGEFIT_REQUEST_TIMEOUT_SECS", default_value_t = DEFAULT_REQUEST_TIMEOUT_SECS)]
    pub request_timeout_secs: u64,
    /// Seconds a client has to send a request's headers (and an idle connection to start
    /// its next request) before the connection is closed
    #[arg(long, env = "STAGEFIT_HEADER_TIMEOUT_SECS", default_value_t = DEFAULT_HEADER_TIMEOUT_SECS)]
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's body before it gets 408 TIMEOUT
    #[arg(long, env = "STAGEFIT_BODY_TIMEOUT_SECS", default_value_t = DEFAULT_BODY_TIMEOUT_SECS)]
    pub body_timeout_secs: u64,
    /// Seconds requests in flight at shutdown (SIGTERM) may take to finish before the
    /// queues are written and the process exits
    #[arg(long, env = "STAGEFIT_SHUTDOWN_GRACE_SECS", default_value_t = DEFAULT_SHUTDOWN_GRACE_SECS)]
    pub shutdown_grace_secs: u64,
    /// Let publishable keys and visitor tokens run only operations registered with
    /// `stagefit operations add`
    #[arg(long, env = "STAGEFIT_PUBLISHABLE_SAFELIST")]
    pub publishable_safelist: bool,
    /// A reverse proxy (address or network, repeat or comma-separate) whose
    /// X-Forwarded-For names the client, for rate limits and the audit trail
    #[arg(
        long = "trusted-proxy",
        env = "STAGEFIT_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    /// Also serve /metrics, without a key, on this address (for a Prometheus on a private
    /// network)
    #[arg(long, env = "STAGEFIT_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Log a `slow request` line (at warn) for requests taking at least this many
    /// milliseconds
    #[arg(long, env = "STAGEFIT_SLOW_REQUEST_MS", default_value_t = DEFAULT_SLOW_REQUEST_MS)]
    pub slow_request_ms: u64,
    /// /readyz answers 503 while this server's index is more changes than this behind the
    /// database
    #[arg(long, env = "STAGEFIT_READY_MAX_LAG", default_value_t = DEFAULT_READY_MAX_LAG)]
    pub ready_max_lag: u64,
    /// Days the audit trail keeps events (0: forever)
    #[arg(long, env = "STAGEFIT_AUDIT_RETENTION_DAYS", default_value_t = DEFAULT_AUDIT_RETENTION_DAYS)]
    pub audit_retention_days: u32,
    /// Days impressions and the lists they belong to are kept (0: forever); per-day counts
    /// for analytics stay
    #[arg(long, env = "STAGEFIT_FEEDBACK_RETENTION_DAYS", default_value_t = DEFAULT_FEEDBACK_RETENTION_DAYS)]
    pub feedback_retention_days: u32,
    /// Days engagement events are kept (0: forever); the popularity and co-reads built from
    /// them stay, as does what each account read. Stage inference reads the last 180 days,
    /// so a shorter retention shortens what it sees
    #[arg(long, env = "STAGEFIT_ENGAGEMENT_RETENTION_DAYS", default_value_t = DEFAULT_ENGAGEMENT_RETENTION_DAYS)]
    pub engagement_retention_days: u32,
    #[command(flatten)]
    pub embedder: EmbedderArgs,
    /// With an embedding model: the share of text relevance decided by meaning, from 0
    /// (words alone) to 1 (meaning alone)
    #[arg(long, env = "STAGEFIT_SEMANTIC_RATIO", default_value_t = DEFAULT_SEMANTIC_RATIO)]
    pub semantic_ratio: f64,
}

/// Where vectors come from, for `serve` and `import`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct EmbedderArgs {
    /// A sentence-embedding model's folder (config.json, tokenizer.json,
    /// model.safetensors; `scripts/fetch-model.sh` fetches all-MiniLM-L6-v2): search and
    /// read-next then rank by meaning as well as words. Without it, words alone
    #[arg(
        long,
        env = "STAGEFIT_EMBEDDING_MODEL",
        conflicts_with = "embedder_url"
    )]
    pub embedding_model: Option<PathBuf>,
    /// Instead of a model folder: the base address of an OpenAI-compatible embeddings API
    /// (`http://localhost:11434/v1` for Ollama); vectors come from `URL/embeddings`. Its
    /// key, if it needs one, goes in STAGEFIT_EMBEDDER_KEY
    #[arg(long, env = "STAGEFIT_EMBEDDER_URL", requires = "embedder_model")]
    pub embedder_url: Option<String>,
    /// The model the embeddings API is asked for (with --embedder-url)
    #[arg(long, env = "STAGEFIT_EMBEDDER_MODEL", requires = "embedder_url")]
    pub embedder_model: Option<String>,
}

impl EmbedderArgs {
    /// Sets the model folder or the service these name.
    pub fn apply(self, config: &mut Config) {
        config.embedding_model = self.embedding_model;
        config.embedder = match (self.embedder_url, self.embedder_model) {
            (Some(url), Some(model)) => Some(RemoteEmbedderConfig::new(url, model)),
            _ => None,
        };
    }
}
