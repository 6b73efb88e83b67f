//! Building a running instance once: database, index, indexer, schema, and the
//! `http::AppState` request handlers get.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::error::AppError;
use crate::graphql::build_schema;
use crate::http::{AppState, ConnectionLimits, ParsedDocuments, RateLimits, ResponseCache};
use crate::import::Format;
use crate::search::{self, IndexLock};
use crate::services::{
    Access, AuditTrail, ImportSource, IndexFollower, Library, Safelist, WriterHandle,
    import_sources,
};
use crate::store::Store;

/// The built-in demo library (interchange format), loaded by `serve --demo`.
pub const DEMO_LIBRARY: &[u8] = include_bytes!("../demo/library.jsonl");

/// What the parses of recent documents may hold (a few hundred distinct documents).
const PARSED_DOCUMENT_BYTES: u64 = 4 * 1024 * 1024;

/// Everything an instance owns, to be stopped in order.
pub struct Instance {
    pub state: AppState,
    store: Store,
    follower: IndexFollower,
    popularity: JoinHandle<()>,
    retention: JoinHandle<()>,
    checkpoints: Option<JoinHandle<()>>,
    /// The audit trail's writer.
    audit_task: WriterHandle,
    /// The impression writer, with the profiles' refresh and impression retention.
    feedback: WriterHandle,
    metrics_upkeep: JoinHandle<()>,
    /// Hears other replicas' writes (PostgreSQL only).
    replicas: Option<JoinHandle<()>>,
    /// Keeps the library's vectors in step (with an embedding model only).
    meaning: Option<JoinHandle<()>>,
    /// Sends what the webhook outbox holds.
    webhooks: JoinHandle<()>,
    _lock: IndexLock,
}

impl Instance {
    pub async fn start(config: &Config, demo: bool) -> anyhow::Result<Self> {
        let cors_origins = cors_origins(&config.cors_origins)?;
        if let Some(url) = &config.public_url
            && !crate::domain::is_http_url(url)
        {
            anyhow::bail!(
                "--public-url {url:?}: give the http(s) address readers reach this server at"
            );
        }
        let store = Store::connect_serving(&config.database_url, config.durability)
            .await
            .with_context(|| format!("database {}", config.redacted_database_url()))?;
        let checkpoints = store.start_checkpoints();
        if demo {
            load_demo(&store).await?;
        }
        let lock = IndexLock::acquire(&config.index_dir)?;
        let (index, writer) = search::open(&lock, config.index_writer_memory)?;
        let follower = IndexFollower::start(
            store.clone(),
            writer,
            config.index_batch_size,
            Duration::from_millis(config.follow_interval_ms),
        )
        .await
        .context("cannot bring the index up to date")?;
        let embedder = load_embedder(config).await?;
        if embedder.is_none() {
            tracing::info!(
                "no embedding model (--embedding-model or --embedder-url): ranking by words alone"
            );
        }
        let meaning = crate::meaning::Meaning::with_model(embedder);
        let library = Library::new(store.clone(), index, follower.handle(), config, meaning);
        // Read before the first request, so its cached answer carries their version.
        library
            .synonyms()
            .await
            .context("cannot read the synonym groups")?;
        let popularity = library
            .start_popularity(Duration::from_secs(config.popularity_refresh_secs))
            .await
            .context("cannot load popularity")?;
        let replicas = library
            .listen_to_replicas()
            .await
            .map_err(AppError::unmasked)
            .context("cannot listen to other replicas")?;
        let feedback = library
            .start_feedback(config.feedback_retention_days)
            .await
            .map_err(AppError::unmasked)
            .context("cannot read ranking profiles and experiments")?;
        let retention = library.start_retention(crate::services::Retention {
            engagement_days: config.engagement_retention_days,
            feedback_days: config.feedback_retention_days,
        });
        let webhooks = library.start_webhooks();
        let meaning =
            library.start_meaning(Duration::from_millis(config.follow_interval_ms.max(500)));
        let access = Arc::new(Access::new(store.clone(), config.key_cache));
        let (audit, audit_task) = AuditTrail::start(store.clone(), config.audit_retention_days);
        let schema = build_schema(Some(library.clone()), Some(access.clone()));
        Ok(Self {
            state: AppState {
                library,
                access,
                audit,
                safelist: Arc::new(Safelist::new(store.clone(), config.key_cache)),
                publishable_safelist: config.publishable_safelist,
                limits: Arc::new(RateLimits::new(&config.rate_limits)),
                request_timeout: config.request_timeout,
                body_timeout: config.body_timeout,
                connections: ConnectionLimits {
                    header_timeout: config.header_timeout,
                    shutdown_grace: config.shutdown_grace,
                },
                cors_origins: Arc::new(cors_origins),
                trusted_proxies: Arc::new(trusted_proxies(&config.trusted_proxies)?),
                slow_request: config.slow_request,
                ready_max_lag: i64::try_from(config.ready_max_lag).unwrap_or(i64::MAX),
                schema,
                cache: ResponseCache::new(config.response_cache_bytes).map(Arc::new),
                documents: Arc::new(ParsedDocuments::new(PARSED_DOCUMENT_BYTES)),
            },
            store,
            follower,
            popularity,
            retention,
            checkpoints,
            feedback,
            audit_task,
            metrics_upkeep: crate::metrics::spawn_upkeep(),
            replicas,
            meaning,
            webhooks,
            _lock: lock,
        })
    }

    /// Stops the background work: what the writers have queued is written first.
    pub async fn stop(self) {
        // A refresh cut short leaves the last complete one: it writes in one transaction.
        self.popularity.abort();
        let _ = self.popularity.await;
        // A deletion cut short rolls back its batch; the next start goes on.
        self.retention.abort();
        let _ = self.retention.await;
        self.audit_task.drain().await;
        self.feedback.drain().await;
        self.metrics_upkeep.abort();
        // A delivery cut short is sent again once its lease runs out.
        self.webhooks.abort();
        if let Some(replicas) = self.replicas {
            replicas.abort();
        }
        if let Some(meaning) = self.meaning {
            meaning.abort();
        }
        self.follower.stop().await;
        // Closing the last connection checkpoints what is left.
        if let Some(checkpoints) = self.checkpoints {
            checkpoints.abort();
        }
        self.store.close().await;
    }
}

/// Addresses (`10.0.0.7`) or networks (`10.0.0.0/8`) of the proxies in front.
fn trusted_proxies(proxies: &[String]) -> anyhow::Result<Vec<ipnet::IpNet>> {
    proxies
        .iter()
        .map(|raw| {
            let raw = raw.trim();
            raw.parse::<ipnet::IpNet>()
                .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    anyhow::anyhow!(
                        "--trusted-proxy {raw:?}: give an address (10.0.0.7) or a network (10.0.0.0/8)"
                    )
                })
        })
        .collect()
}

/// Origins as browsers send them: `https://host[:port]`, no path, no wildcard.
fn cors_origins(origins: &[String]) -> anyhow::Result<Vec<axum::http::HeaderValue>> {
    origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let shaped = (origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin.contains('*')
                && !origin
                    .trim_end_matches('/')
                    .split_once("://")
                    .is_some_and(|(_, rest)| rest.contains('/'));
            if !shaped {
                anyhow::bail!(
                    "CORS origin {origin:?}: give an exact origin such as https://www.example.com \
                     (scheme and host, no path, no wildcard)"
                );
            }
            axum::http::HeaderValue::from_str(origin.trim_end_matches('/'))
                .with_context(|| format!("CORS origin {origin:?}"))
        })
        .collect()
}

/// Opens (and migrates) the configured database, naming it without its password on error.
pub async fn connect_store(config: &Config) -> anyhow::Result<Store> {
    Store::connect_durable(&config.database_url, config.durability)
        .await
        .with_context(|| format!("database {}", config.redacted_database_url()))
}

async fn load_demo(store: &Store) -> anyhow::Result<()> {
    let source = ImportSource {
        name: "demo library".to_owned(),
        format: Format::Jsonl,
        reader: Box::new(std::io::Cursor::new(DEMO_LIBRARY)),
    };
    let report = import_sources(store, vec![source], Default::default(), |_| {}).await?;
    if !report.committed {
        let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
        anyhow::bail!("the demo library does not import: {}", problems.join("; "));
    }
    tracing::info!(
        created = report.counts.created,
        updated = report.counts.updated,
        unchanged = report.counts.unchanged,
        "demo library loaded"
    );
    Ok(())
}

/// A server running in the background of this process: the CLI's `serve` and the tests.
pub struct Server {
    pub addr: SocketAddr,
    /// Where `/metrics` is served without a key, when asked for.
    pub metrics_addr: Option<SocketAddr>,
    metrics_task: Option<JoinHandle<std::io::Result<()>>>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    instance: Instance,
}

impl Server {
    pub async fn start(config: &Config, demo: bool) -> anyhow::Result<Self> {
        let instance = Instance::start(config, demo).await?;
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.addr))?;
        let addr = listener.local_addr()?;
        let keys_exist = instance.state.access.keys_exist().await?;
        if !keys_exist {
            if !addr.ip().is_loopback() && !config.insecure_open {
                instance.stop().await;
                anyhow::bail!(
                    "refusing to serve on {} with no API key: anyone who can reach it could read \
                     and erase every account. Create a key first (`stagefit keys create --scope \
                     admin --name ops`), listen on 127.0.0.1, or pass --insecure-open",
                    addr
                );
            }
            tracing::warn!(
                %addr,
                "no API key exists: the server is OPEN, every request may read and write \
                 everything; create a key with `stagefit keys create` to require keys"
            );
        }
        let (metrics_addr, metrics_task) = match config.metrics_addr {
            None => (None, None),
            Some(at) => {
                let listener = TcpListener::bind(at)
                    .await
                    .with_context(|| format!("cannot serve metrics on {at}"))?;
                let bound = listener.local_addr()?;
                let app = crate::http::metrics_router(instance.state.clone());
                let limits = instance.state.connections;
                (
                    Some(bound),
                    Some(tokio::spawn(crate::http::serve_router(
                        app,
                        listener,
                        limits,
                        std::future::pending(),
                    ))),
                )
            }
        };
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(crate::http::serve(
            instance.state.clone(),
            listener,
            async {
                let _ = signal.await;
            },
        ));
        Ok(Self {
            addr,
            metrics_addr,
            metrics_task,
            shutdown,
            task,
            instance,
        })
    }

    pub fn state(&self) -> &AppState {
        &self.instance.state
    }

    /// Stops accepting, finishes in-flight requests, then stops the indexer and database.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        if let Some(task) = self.metrics_task {
            task.abort();
        }
        let served = self.task.await;
        self.instance.stop().await;
        served.context("the HTTP server task failed")??;
        Ok(())
    }
}

/// The embedder the configuration names (a model folder, or an embeddings service),
/// loaded and probed on the blocking pool; `None` when it names neither.
pub async fn load_embedder(config: &Config) -> anyhow::Result<Option<crate::meaning::Embedder>> {
    use crate::meaning::{Embedder, LocalModel, RemoteEmbedder};
    let (dir, remote) = (config.embedding_model.clone(), config.embedder.clone());
    let flag = match (&dir, &remote) {
        (Some(_), _) => "cannot load the embedding model (--embedding-model)",
        (None, Some(_)) => "cannot use the embeddings service (--embedder-url)",
        (None, None) => return Ok(None),
    };
    let load = move || match (dir, remote) {
        (Some(dir), _) => LocalModel::load(&dir).map(|m| Some(Embedder::Local(Box::new(m)))),
        (None, Some(remote)) => RemoteEmbedder::connect(&remote).map(|r| Some(Embedder::Remote(r))),
        (None, None) => Ok(None),
    };
    tokio::task::spawn_blocking(load)
        .await
        .map_err(anyhow::Error::from)
        .and_then(|loaded| loaded)
        .context(flag)
}
