//! Building a running instance once: database, index, indexer, schema. `AppState` is what
//! request handlers get; it is cheap to clone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::graphql::{AppSchema, build_schema};
use crate::http::ResponseCache;
use crate::import::Format;
use crate::search::{self, IndexLock};
use crate::services::{ImportSource, IndexFollower, Library, import_sources};
use crate::store::Store;

/// The built-in demo library (interchange format), loaded by `serve --demo`.
pub const DEMO_LIBRARY: &[u8] = include_bytes!("../demo/library.jsonl");

#[derive(Clone)]
pub struct AppState {
    pub library: Library,
    pub schema: AppSchema,
    /// Responses to repeated queries; `None` when turned off.
    pub cache: Option<Arc<ResponseCache>>,
}

/// Everything an instance owns, to be stopped in order.
pub struct Instance {
    pub state: AppState,
    store: Store,
    follower: IndexFollower,
    popularity: JoinHandle<()>,
    _lock: IndexLock,
}

impl Instance {
    pub async fn start(config: &Config, demo: bool) -> anyhow::Result<Self> {
        let store = connect_store(config).await?;
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
        let library = Library::new(store.clone(), index, follower.handle(), config);
        let popularity = library
            .start_popularity(Duration::from_secs(config.popularity_refresh_secs))
            .await
            .context("cannot load popularity")?;
        let schema = build_schema(Some(library.clone()));
        Ok(Self {
            state: AppState {
                library,
                schema,
                cache: ResponseCache::new(config.response_cache_bytes).map(Arc::new),
            },
            store,
            follower,
            popularity,
            _lock: lock,
        })
    }

    pub async fn stop(self) {
        // A refresh cut short leaves the last complete one: it writes in one transaction.
        self.popularity.abort();
        let _ = self.popularity.await;
        self.follower.stop().await;
        self.store.close().await;
    }
}

/// Opens (and migrates) the configured database, naming it without its password on error.
pub async fn connect_store(config: &Config) -> anyhow::Result<Store> {
    Store::connect(&config.database_url)
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
        let served = self.task.await;
        self.instance.stop().await;
        served.context("the HTTP server task failed")??;
        Ok(())
    }
}
