//! The command line: each subcommand parses its arguments and calls one function.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::config::{Config, ServeArgs, StorageArgs};
use crate::error::AppError;
use crate::import::CsvStyle;
use crate::services::{self, ImportSource, RecordKind};
use crate::state::{Server, connect_store};
use crate::store::Store;

#[derive(Parser, Debug)]
#[command(
    name = "stagefit",
    version,
    about = "Content recommendations for B2B buying journeys, over GraphQL"
)]
pub struct Cli {
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve GraphiQL at /, the API at /graphql and /healthz
    Serve(Box<ServeArgs>),
    /// Create or upgrade the database schema
    Migrate,
    /// Import assets (or accounts, contacts, engagement events) from .jsonl or .csv files,
    /// all files in one transaction
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Import the valid rows and report the rest, instead of importing nothing
        #[arg(long)]
        best_effort: bool,
        /// What the files hold
        #[arg(long, value_enum, default_value_t = ImportKind::Assets)]
        kind: ImportKind,
        /// Check the files and print what would change and which coverage gaps they would
        /// close, without writing anything (assets only)
        #[arg(long)]
        dry_run: bool,
        /// With a model or an embeddings service: embed the published assets whose vectors
        /// are missing once the import commits (assets only), so a server starts with them
        #[command(flatten)]
        embedder: crate::config::EmbedderArgs,
    },
    /// Export the whole library to a .jsonl or .csv file (reads only; safe beside a running
    /// server)
    Export {
        file: PathBuf,
        /// Write CSV for Excel: a UTF-8 byte-order mark (so Chinese titles show) and CRLF
        /// line endings. Without it, CSV is plain UTF-8 with LF endings.
        #[arg(long)]
        excel: bool,
    },
    /// Rebuild the search index from the database into a fresh directory and switch to it
    Reindex,
    /// Write a consistent copy of the SQLite database to FILE while servers keep serving
    /// and writing (PostgreSQL: use pg_dump)
    Backup { file: PathBuf },
    /// Put a backup made by `stagefit backup` in place of the SQLite database (the one it
    /// replaces is kept beside it) and rebuild the index from it. Stop every server on the
    /// database first
    Restore { file: PathBuf },
    /// Print the GraphQL schema (SDL)
    Schema,
    /// Write a deterministic synthetic library (JSON lines) for benchmarks
    Generate {
        /// How many assets
        #[arg(long)]
        assets: u64,
        /// Same seed, same library
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Output file (default: standard output)
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Print the coverage matrix, its gaps, the stale count and assets without concerns or
    /// topics, for content teams' scripts and CI (reads only; safe beside a running server)
    Audit {
        /// Dimensions of the matrix, comma-separated: stage, role, industry, content-type,
        /// language
        #[arg(long, value_delimiter = ',', default_value = "stage,role",
              value_parser = crate::domain::CoverageDimension::parse)]
        by: Vec<crate::domain::CoverageDimension>,
        /// Days without review after which an asset is stale (default: 365)
        #[arg(long)]
        stale_after_days: Option<u32>,
        /// Exit with status 1 when the matrix has a gap
        #[arg(long)]
        fail_on_gaps: bool,
        /// Exit with status 1 when a cell has nothing written for its role or industry
        /// (general assets left out)
        #[arg(long)]
        fail_on_specific_gaps: bool,
    },
    /// Copy a whole database (library, accounts, contacts, events, popularity, keys, audit
    /// trail, safelist) into another, in one transaction on the target: moving a SQLite
    /// install to PostgreSQL. Servers on the target build their indexes at start
    CopyData {
        /// The database to read (URL, as --database-url)
        #[arg(long)]
        from: String,
        /// The database to write; created or migrated as needed
        #[arg(long)]
        to: String,
        /// Delete what the target holds first (otherwise a target with data is refused)
        #[arg(long)]
        replace: bool,
    },
    /// Compare the index with the database, asset by asset (id and content); exit 1 on a
    /// difference. Safe beside a running server on the same index, whose lag it waits out
    VerifyIndex,
    /// Review tags read from the assets' text: write suggestions to a file a content team
    /// marks, then declare what it accepted
    Tags {
        #[command(subcommand)]
        action: TagsCommand,
    },
    /// Replace the library's synonym groups with those of a text file: one group a line,
    /// terms separated by commas (`churn, retention, attrition`); `#` starts a comment line
    Synonyms { file: PathBuf },
    /// The sentence vectors stored in the database, by model: list them, or drop a model's
    /// (after moving to another model)
    Embeddings {
        #[command(subcommand)]
        action: EmbeddingsCommand,
    },
    /// Manage API keys
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// Manage the safelist of GraphQL operations web pages may run (serve
    /// --publishable-safelist)
    Operations {
        #[command(subcommand)]
        action: OperationsCommand,
    },
    /// Write deterministic synthetic shown lists, impressions and clicks into the database
    /// over its published assets, for benchmarks of analytics (the server must not be
    /// running)
    GenerateFeedback {
        /// How many lists of ten impressions
        #[arg(long, default_value_t = 1_000_000)]
        lists: u64,
        /// Spread over this many days before now
        #[arg(long, default_value_t = 90)]
        days: u32,
        /// The share of impressions clicked
        #[arg(long, default_value_t = 0.03)]
        click_rate: f64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Journeys written by `generate-engagement --journeys-out`: the lists are then
        /// `nextContent` lists after their steps, ranked by a profile without ALSO_READ
        /// (`no-also-read`), whose readers click the planted next asset most (for
        /// `stagefit replay`)
        #[arg(long)]
        journeys: Option<PathBuf>,
    },
    /// Rank the contexts of logged lists again with a candidate ranking profile and say,
    /// against the profiles that ranked them, where the clicked and completed assets land
    /// (mean reciprocal rank, NDCG@5, recall@10). Reads only; safe beside a running server
    Replay {
        /// The candidate profile (see `rankingProfiles`; `default` is the configured weights)
        #[arg(long)]
        profile: String,
        /// Only lists shown on or after this day (YYYY-MM-DD) or time (RFC 3339)
        #[arg(long)]
        since: Option<String>,
    },
    /// Write deterministic synthetic accounts, contacts and engagement events for
    /// benchmarks: into the database over its published assets, with planted reading
    /// journeys and the counters they make (the server must not be running), or with
    /// --output-dir as JSON-lines files over the assets of --library
    GenerateEngagement {
        /// The library (JSON lines) whose assets the events read (with --output-dir)
        #[arg(long, requires = "output_dir")]
        library: Option<PathBuf>,
        #[arg(long, default_value_t = 10_000)]
        accounts: u64,
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Directory for accounts.jsonl, contacts.jsonl and events.jsonl instead of the
        /// database
        #[arg(long, requires = "library")]
        output_dir: Option<PathBuf>,
        /// Reading journeys to plant (4 to 6 assets each, read in order)
        #[arg(long, default_value_t = 50)]
        journeys: usize,
        /// The share of accounts that follow a journey
        #[arg(long, default_value_t = 0.7)]
        on_journey: f64,
        /// Write the planted journeys here (JSON): the known answer of "readers of this
        /// also read"
        #[arg(long)]
        journeys_out: Option<PathBuf>,
    },
}

/// `stagefit keys ...`
#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key and print it, alone on one line: the only time it is shown
    Create {
        /// publishable, server, editor or admin
        #[arg(long, value_parser = parse_scope)]
        scope: crate::domain::Scope,
        /// What the key is for ("website", "CRM sync")
        #[arg(long)]
        name: String,
        #[command(flatten)]
        limits: KeyLimitArgs,
    },
    /// List every key: id, name, scope, created, last used, revoked, own rate limits
    List,
    /// Revoke a key by its id (k_...) or its whole string; it stops working within 5 s on
    /// every server
    Revoke { id_or_key: String },
    /// Set a key's own rate limits (by id or key string); a rate left out returns to the
    /// server's default. Effective within 5 s on every server
    Limit {
        id_or_key: String,
        #[command(flatten)]
        limits: KeyLimitArgs,
    },
}

/// `stagefit embeddings ...`
#[derive(Subcommand, Debug)]
pub enum EmbeddingsCommand {
    /// Each model with stored vectors: how many assets, and how many of those are published
    /// now
    List,
    /// Delete every vector stored under a model, as `list` names it (a server using that
    /// model embeds the library again at its next start)
    Drop { model: String },
}

/// `stagefit tags ...`
#[derive(Subcommand, Debug)]
pub enum TagsCommand {
    /// Write every suggestion for tags the content team has not declared to a CSV file
    /// (asset_id, title, field, value, confidence, evidence, accept) to review in a
    /// spreadsheet (reads only; safe beside a running server)
    Suggest {
        /// Leave out suggestions less sure than this (0 to 1)
        #[arg(long, default_value_t = crate::domain::ABSTAIN_BELOW)]
        min_confidence: f64,
        #[arg(long)]
        output: PathBuf,
    },
    /// Declare the rows of a review file whose accept column says yes (yes, y, x, 1): one
    /// transaction, nothing written if any row is wrong (each named by its line)
    Apply { file: PathBuf },
}

/// `stagefit operations ...`
#[derive(Subcommand, Debug)]
pub enum OperationsCommand {
    /// Register each file's whole text as one document and print its SHA-256 (what
    /// extensions.persistedQuery.sha256Hash names) and file name
    Add {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List the registered documents: hash, registered, name
    List,
    /// Remove a document by its hash
    Remove { hash: String },
}

/// A key's own rate limits, instead of the server's defaults.
#[derive(clap::Args, Debug)]
pub struct KeyLimitArgs {
    /// Requests a second for this key, all its callers together (default: serve
    /// --rate-per-key)
    #[arg(long)]
    rate_per_second: Option<u32>,
    /// Requests a second per client address, for a publishable key or the visitor tokens
    /// a server key signs; bursts of twice as many (default: serve --rate-per-client)
    #[arg(long)]
    client_rate_per_second: Option<u32>,
}

impl From<KeyLimitArgs> for services::KeyLimits {
    fn from(a: KeyLimitArgs) -> Self {
        Self {
            rate_per_second: a.rate_per_second,
            client_rate_per_second: a.client_rate_per_second,
        }
    }
}

fn parse_scope(raw: &str) -> Result<crate::domain::Scope, String> {
    crate::domain::Scope::parse(raw)
}

/// What an import file holds.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportKind {
    Assets,
    Accounts,
    Contacts,
    Engagements,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(&cli.storage, *args).await,
        Command::Migrate => migrate(&Config::new(&cli.storage)).await,
        Command::Import {
            files,
            best_effort,
            kind,
            dry_run,
            embedder,
        } => match kind {
            ImportKind::Assets => {
                let mode = services::ImportMode {
                    best_effort,
                    dry_run,
                };
                let mut config = Config::new(&cli.storage);
                embedder.apply(&mut config);
                import(&config, files, mode).await
            }
            _ if dry_run => bail!("--dry-run checks asset files only"),
            ImportKind::Accounts => {
                import_records(&cli.storage, RecordKind::Accounts, files, best_effort).await
            }
            ImportKind::Contacts => {
                import_records(&cli.storage, RecordKind::Contacts, files, best_effort).await
            }
            ImportKind::Engagements => {
                import_records(&cli.storage, RecordKind::Engagements, files, best_effort).await
            }
        },
        Command::Export { file, excel } => {
            let style = if excel {
                CsvStyle::Excel
            } else {
                CsvStyle::Plain
            };
            export(&Config::new(&cli.storage), file, style).await
        }
        Command::Reindex => reindex(&Config::new(&cli.storage)).await,
        Command::Backup { file } => backup(&Config::new(&cli.storage), &file).await,
        Command::Restore { file } => restore(&Config::new(&cli.storage), &file).await,
        Command::VerifyIndex => verify_index(&Config::new(&cli.storage)).await,
        Command::CopyData { from, to, replace } => copy_data(&from, &to, replace).await,
        Command::Schema => {
            print!("{}", crate::graphql::sdl());
            Ok(())
        }
        Command::Generate {
            assets,
            seed,
            output,
        } => generate(assets, seed, output),
        Command::Audit {
            by,
            stale_after_days,
            fail_on_gaps,
            fail_on_specific_gaps,
        } => {
            let fail_on = GapKinds {
                general: fail_on_gaps,
                specific: fail_on_specific_gaps,
            };
            audit(&Config::new(&cli.storage), by, stale_after_days, fail_on).await
        }
        Command::Keys { action } => keys(&Config::new(&cli.storage), action).await,
        Command::Tags { action } => tags(&Config::new(&cli.storage), action).await,
        Command::Synonyms { file } => synonyms(&Config::new(&cli.storage), &file).await,
        Command::Embeddings { action } => embeddings(&Config::new(&cli.storage), action).await,
        Command::GenerateFeedback {
            lists,
            days,
            click_rate,
            seed,
            journeys,
        } => match journeys {
            Some(path) => {
                generate_journey_feedback(
                    &Config::new(&cli.storage),
                    &path,
                    lists,
                    days,
                    click_rate,
                    seed,
                )
                .await
            }
            None => {
                generate_feedback(&Config::new(&cli.storage), lists, days, click_rate, seed).await
            }
        },
        Command::Replay { profile, since } => {
            replay(&Config::new(&cli.storage), &profile, since.as_deref()).await
        }
        Command::Operations { action } => operations(&Config::new(&cli.storage), action).await,
        Command::GenerateEngagement {
            library,
            accounts,
            events,
            seed,
            output_dir,
            journeys,
            on_journey,
            journeys_out,
        } => match (library, output_dir) {
            (Some(library), Some(dir)) => {
                generate_engagement(&library, accounts, events, seed, &dir)
            }
            _ => {
                let plan = BulkPlan {
                    accounts,
                    events,
                    seed,
                    journeys,
                    on_journey,
                    journeys_out,
                };
                generate_engagement_bulk(&Config::new(&cli.storage), plan).await
            }
        },
    }
}

async fn generate_feedback(
    config: &Config,
    lists: u64,
    days: u32,
    click_rate: f64,
    seed: u64,
) -> anyhow::Result<()> {
    let store = connect_store(config).await?;
    let ids = services::published_asset_ids(&store)
        .await
        .map_err(AppError::unmasked)?;
    if ids.is_empty() {
        bail!("the database has no published asset to show");
    }
    // The experiment the lists name, so `experiment(name: "bench")` answers.
    let now = chrono::Utc::now().timestamp();
    let mut b = crate::domain::WeightOverrides::default();
    b.set(crate::domain::Factor::Freshness, 2.0);
    let profile = crate::domain::RankingProfile {
        name: "bench-b".into(),
        description: "stagefit generate-feedback".into(),
        weights: b,
        updated_at: now,
    };
    let experiment = crate::domain::Experiment {
        name: "bench".into(),
        placement: "home".into(),
        variants: ["default", "bench-b"]
            .map(|p| crate::domain::Variant {
                profile: p.into(),
                share: 0.5,
            })
            .into(),
        started_at: now - i64::from(days) * 86_400,
        stopped_at: None,
    };
    services::store_experiment(&store, &profile, &experiment)
        .await
        .map_err(AppError::unmasked)?;
    let started = std::time::Instant::now();
    let generated =
        crate::generate::feedback_lists(&ids, lists, days, click_rate, seed, chrono::Utc::now());
    let (impressions, clicks) = services::write_logged_lists(&store, generated, 10_000)
        .await
        .map_err(AppError::unmasked)?;
    store.close().await;
    println!(
        "{lists} lists: {impressions} impressions, {clicks} clicks over {days} days in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn generate_journey_feedback(
    config: &Config,
    path: &std::path::Path,
    lists: u64,
    days: u32,
    click_rate: f64,
    seed: u64,
) -> anyhow::Result<()> {
    let journeys: crate::generate::Journeys = serde_json::from_slice(
        &std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
    )
    .with_context(|| format!("{}: not a journeys file", path.display()))?;
    if journeys.pairs().is_empty() {
        bail!(
            "{}: no journey step has a planted next asset",
            path.display()
        );
    }
    let store = connect_store(config).await?;
    let ids = services::published_asset_ids(&store)
        .await
        .map_err(AppError::unmasked)?;
    if ids.is_empty() {
        bail!("the database has no published asset to show");
    }
    let mut weights = crate::domain::WeightOverrides::default();
    weights.set(crate::domain::Factor::AlsoRead, 0.0);
    let profile = crate::domain::RankingProfile {
        name: "no-also-read".into(),
        description: "stagefit generate-feedback --journeys".into(),
        weights,
        updated_at: chrono::Utc::now().timestamp(),
    };
    services::store_profile(&store, &profile)
        .await
        .map_err(AppError::unmasked)?;
    let started = std::time::Instant::now();
    let generated = crate::generate::journey_lists(
        &journeys,
        crate::generate::ListPlan {
            asset_ids: &ids,
            lists,
            days,
            click_rate,
            profile: &profile.name,
            seed,
            now: chrono::Utc::now(),
        },
    );
    let (impressions, clicks) = services::write_logged_lists(&store, generated, 10_000)
        .await
        .map_err(AppError::unmasked)?;
    store.close().await;
    println!(
        "{lists} lists after journey steps (profile no-also-read): {impressions} impressions, {clicks} clicks in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `--since` as Unix seconds: a day (midnight UTC) or an RFC 3339 time.
fn parse_since(raw: &str) -> anyhow::Result<i64> {
    if let Ok(day) = chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d") {
        return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc().timestamp());
    }
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.timestamp())
        .map_err(|_| {
            anyhow::anyhow!("--since {raw:?}: give a day (2026-11-01) or an RFC 3339 time")
        })
}

async fn replay(config: &Config, profile: &str, since: Option<&str>) -> anyhow::Result<()> {
    let since = since.map(parse_since).transpose()?.unwrap_or(i64::MIN / 2);
    let (library, store) = services::open_read_only(config).await?;
    let report = library.replay(profile, since).await;
    store.close().await;
    let report = report.map_err(AppError::unmasked)?;
    println!(
        "replayed {} lists with a click or completion (clicked: grade 1, completed: grade 2)",
        report.lists
    );
    println!(
        "  {:<28} {:>8} {:>8} {:>10}",
        "profile", "MRR", "NDCG@5", "recall@10"
    );
    for m in [&report.candidate, &report.logged] {
        println!(
            "  {:<28} {:>8.4} {:>8.4} {:>10.4}",
            m.profile, m.mrr, m.ndcg5, m.recall10
        );
    }
    if report.lists == 0 {
        println!("nothing to compare: no logged list has a click or completion in that span");
    } else {
        let better = report.candidate.mrr - report.logged.mrr;
        println!(
            "{profile} {} the logged profiles by {:.4} MRR",
            if better >= 0.0 { "beats" } else { "trails" },
            better.abs()
        );
    }
    Ok(())
}

async fn serve(storage: &StorageArgs, args: ServeArgs) -> anyhow::Result<()> {
    let ServeArgs {
        addr,
        demo,
        response_cache_mb,
        popularity_refresh_secs,
        insecure_open,
        cors_origins,
        rate_per_key,
        rate_per_client,
        burst_per_client,
        auth_failure_burst,
        auth_failures_per_second,
        request_timeout_secs,
        header_timeout_secs,
        body_timeout_secs,
        shutdown_grace_secs,
        publishable_safelist,
        trusted_proxies,
        metrics_addr,
        ready_max_lag,
        slow_request_ms,
        audit_retention_days,
        feedback_retention_days,
        engagement_retention_days,
        embedder,
        semantic_ratio,
        public_url,
        webhook_allow_private,
        webhook_timeout_ms,
        webhook_retry_base_ms,
    } = args;
    let scratch = if demo && storage.database_url.is_none() && storage.index_dir.is_none() {
        Some(
            tempfile::Builder::new()
                .prefix("stagefit-demo-")
                .tempdir()?,
        )
    } else {
        None
    };
    let mut config = match &scratch {
        Some(dir) => Config::in_dir(dir.path()),
        None => Config::new(storage),
    };
    config.addr = addr;
    config.response_cache_bytes = response_cache_mb.saturating_mul(1024 * 1024);
    config.popularity_refresh_secs = popularity_refresh_secs;
    config.insecure_open = insecure_open;
    config.cors_origins = cors_origins;
    config.public_url = public_url;
    config.webhooks.allow_private = webhook_allow_private;
    config.webhooks.timeout = std::time::Duration::from_millis(webhook_timeout_ms);
    config.webhooks.retry_base = std::time::Duration::from_millis(webhook_retry_base_ms);
    config.rate_limits = crate::config::RateLimitConfig {
        per_key_per_second: rate_per_key,
        per_client_per_second: rate_per_client,
        per_client_burst: burst_per_client,
        auth_failure_burst,
        auth_failures_per_second,
    };
    config.request_timeout = std::time::Duration::from_secs(request_timeout_secs.max(1));
    config.header_timeout = std::time::Duration::from_secs(header_timeout_secs.max(1));
    config.body_timeout = std::time::Duration::from_secs(body_timeout_secs.max(1));
    config.shutdown_grace = std::time::Duration::from_secs(shutdown_grace_secs);
    config.publishable_safelist = publishable_safelist;
    config.trusted_proxies = trusted_proxies;
    config.metrics_addr = metrics_addr;
    config.ready_max_lag = ready_max_lag;
    config.slow_request = std::time::Duration::from_millis(slow_request_ms);
    config.audit_retention_days = audit_retention_days;
    config.feedback_retention_days = feedback_retention_days;
    config.engagement_retention_days = engagement_retention_days;
    embedder.apply(&mut config);
    if !(0.0..=1.0).contains(&semantic_ratio) {
        anyhow::bail!("--semantic-ratio {semantic_ratio}: give a share from 0 to 1");
    }
    config.ranking.semantic_ratio = semantic_ratio;
    let server = Server::start(&config, demo).await?;
    tracing::info!(
        addr = %server.addr,
        database = %config.redacted_database_url(),
        index = %config.index_dir.display(),
        demo,
        "stagefit is serving: GraphiQL at http://{}/",
        server.addr
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.stop().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

fn generate(assets: u64, seed: u64, output: Option<PathBuf>) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            let file = std::fs::File::create(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            crate::generate::write_library(assets, seed, &mut std::io::BufWriter::new(file))?;
        }
        None => {
            let stdout = std::io::stdout();
            crate::generate::write_library(
                assets,
                seed,
                &mut std::io::BufWriter::new(stdout.lock()),
            )?;
        }
    }
    Ok(())
}

/// What `generate-engagement` writes into the database.
struct BulkPlan {
    accounts: u64,
    events: u64,
    seed: u64,
    journeys: usize,
    on_journey: f64,
    journeys_out: Option<PathBuf>,
}

async fn generate_engagement_bulk(config: &Config, plan: BulkPlan) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&plan.on_journey) {
        bail!(
            "--on-journey {}: give a share between 0 and 1",
            plan.on_journey
        );
    }
    let store = connect_store(config).await?;
    let ids = services::published_asset_ids(&store)
        .await
        .map_err(AppError::unmasked)?;
    if ids.is_empty() {
        bail!("the database has no published asset to read");
    }
    let journeys = crate::generate::Journeys::plant(&ids, plan.journeys, plan.seed);
    if let Some(path) = &plan.journeys_out {
        std::fs::write(path, serde_json::to_vec_pretty(&journeys)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let started = std::time::Instant::now();
    let generated = crate::generate::EngagementPlan {
        asset_ids: &ids,
        accounts: plan.accounts,
        events: plan.events,
        journeys: &journeys,
        on_journey: plan.on_journey,
        seed: plan.seed,
        now: chrono::Utc::now(),
    };
    let written = services::write_engagement_bulk(
        &store,
        crate::generate::engagement(&generated).map(|g| (g.account, g.contacts, g.events)),
        50_000,
        config.ranking.default_stage,
    )
    .await
    .map_err(AppError::unmasked);
    store.close().await;
    let written = written?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{} accounts, {} events ({:.0} events/s), {} co-read pairs; {} journeys over {} assets in {seconds:.1} s",
        written.accounts,
        written.events,
        written.events as f64 / seconds.max(1e-9),
        written.pairs,
        journeys.paths.len(),
        ids.len(),
    );
    Ok(())
}

fn generate_engagement(
    library: &std::path::Path,
    accounts: u64,
    events: u64,
    seed: u64,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    use std::io::BufRead;
    let file = std::fs::File::open(library)
        .with_context(|| format!("cannot open {}", library.display()))?;
    let mut ids = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let draft: crate::domain::AssetDraft = serde_json::from_str(&line)
            .with_context(|| format!("{}: not a library file", library.display()))?;
        let published = draft
            .status
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case("published"));
        if let (Some(id), true) = (draft.id, published) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        bail!("{}: no published asset to read", library.display());
    }
    std::fs::create_dir_all(dir)?;
    crate::generate::write_engagement(&ids, accounts, events, seed, chrono::Utc::now(), dir)?;
    println!(
        "{accounts} accounts, {} contacts and {events} events over {} assets in {}",
        accounts * 3,
        ids.len(),
        dir.display()
    );
    Ok(())
}

/// A key's own rates for `keys list`: per key/per client, `-` for the server's default.
fn rates(key: &crate::domain::ApiKey) -> String {
    let rate = |r: Option<u32>| r.map_or("-".to_owned(), |r| r.to_string());
    format!(
        "{}/{}",
        rate(key.rate_per_second),
        rate(key.client_rate_per_second)
    )
}

async fn keys(config: &Config, action: KeysCommand) -> anyhow::Result<()> {
    let store = connect_store(config).await?;
    let access = services::Access::new(store.clone(), config.key_cache);
    let outcome = match action {
        KeysCommand::Create {
            scope,
            name,
            limits,
        } => {
            let (key, secret) = access
                .create_key(&name, scope, limits.into())
                .await
                .map_err(AppError::unmasked)?;
            eprintln!(
                "created {} key {} ({}); this is the only time it is shown:",
                key.scope, key.id, key.name
            );
            println!("{secret}");
            Ok(())
        }
        KeysCommand::List => {
            let keys = access.keys().await.map_err(AppError::unmasked)?;
            let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.map_or("-".to_owned(), |t| t.format("%Y-%m-%d %H:%M").to_string())
            };
            println!(
                "{:<16} {:<12} {:<17} {:<17} {:<17} {:<13} name",
                "id", "scope", "created", "last used", "revoked", "rate/s"
            );
            for k in keys {
                println!(
                    "{:<16} {:<12} {:<17} {:<17} {:<17} {:<13} {}",
                    k.id,
                    k.scope.name(),
                    when(Some(k.created_at)),
                    when(k.last_used_at),
                    when(k.revoked_at),
                    rates(&k),
                    k.name
                );
            }
            Ok(())
        }
        KeysCommand::Limit { id_or_key, limits } => access
            .set_limits(&id_or_key, limits.into())
            .await
            .map(|k| println!("{} ({}): rate/s {}", k.id, k.name, rates(&k)))
            .map_err(AppError::unmasked),
        KeysCommand::Revoke { id_or_key } => access
            .revoke(&id_or_key)
            .await
            .map(|k| println!("revoked {} ({}, {})", k.id, k.scope, k.name))
            .map_err(AppError::unmasked),
    };
    store.close().await;
    outcome
}

async fn operations(config: &Config, action: OperationsCommand) -> anyhow::Result<()> {
    let store = connect_store(config).await?;
    let safelist = services::Safelist::new(store.clone(), config.key_cache);
    let outcome = async {
        match action {
            OperationsCommand::Add { files } => {
                // Every file is read and parsed before any is registered.
                let mut documents = Vec::new();
                for file in &files {
                    let text = std::fs::read_to_string(file)
                        .with_context(|| format!("cannot read {}", file.display()))?;
                    if let Err(err) = crate::graphql::check_document(&text) {
                        bail!("{}: {err}", file.display());
                    }
                    let name = file
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    documents.push((file, text, name));
                }
                for (file, text, name) in documents {
                    let (new, operation) = safelist
                        .add(&text, &name)
                        .await
                        .map_err(|e| anyhow::anyhow!("{}: {:#}", file.display(), e.unmasked()))?;
                    let note = if new { "" } else { " (already registered)" };
                    println!("{} {}{note}", operation.hash, name);
                }
                Ok(())
            }
            OperationsCommand::List => {
                for o in safelist.list().await.map_err(AppError::unmasked)? {
                    println!(
                        "{} {} {}",
                        o.hash,
                        o.created_at.format("%Y-%m-%d %H:%M"),
                        o.name
                    );
                }
                Ok(())
            }
            OperationsCommand::Remove { hash } => safelist
                .remove(&hash)
                .await
                .map(|()| println!("removed {}", hash.trim()))
                .map_err(AppError::unmasked),
        }
    }
    .await;
    store.close().await;
    outcome
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = connect_store(config).await?;
    store.close().await;
    println!("database schema is up to date");
    Ok(())
}

async fn import(
    config: &Config,
    files: Vec<PathBuf>,
    mode: services::ImportMode,
) -> anyhow::Result<()> {
    let sources = open_sources(&files)?;
    if mode.dry_run {
        return dry_run(config, sources).await;
    }
    let store = connect_store(config).await?;
    // Loaded (and probed) first: a model or service that cannot embed stops the import
    // before it writes anything.
    let embedder = crate::state::load_embedder(config).await?;
    let progress = Progress::new();
    let (report, indexed) =
        services::import_indexed(config, &store, sources, mode, |rows| progress.show(rows)).await?;
    progress.finish();
    print_problems(&report);
    let index_note = match indexed {
        _ if !report.committed || report.counts.created + report.counts.updated == 0 => {
            String::new()
        }
        None => "; a running server is indexing the changes".to_owned(),
        Some(took) => format!("; index committed {:.2}s later", took.as_secs_f64()),
    };
    println!(
        "{} rows: {} created, {} updated, {} unchanged, {} failed in {:.2}s{}",
        report.rows,
        report.counts.created,
        report.counts.updated,
        report.counts.unchanged,
        report.failed,
        report.seconds,
        index_note
    );
    if let Some(embedder) = embedder
        && report.committed
    {
        let progress = Progress::new();
        let started = std::time::Instant::now();
        let pass = services::embed_imported(&store, embedder, &|done, of| {
            progress.show_of("embedded", done as u64, of as u64)
        })
        .await?;
        progress.finish();
        println!(
            "{} published assets have vectors: {} embedded, {} already stored, in {:.1}s",
            pass.total,
            pass.embedded,
            pass.loaded,
            started.elapsed().as_secs_f64()
        );
        if pass.refused > 0 {
            println!(
                "published assets without vectors: {} (the embeddings service refused their text; a server asks again when it changes)",
                pass.refused
            );
        }
    }
    store.close().await;
    refuse_uncommitted(&report)
}

/// Which gaps fail `stagefit audit`.
struct GapKinds {
    general: bool,
    specific: bool,
}

async fn audit(
    config: &Config,
    dimensions: Vec<crate::domain::CoverageDimension>,
    stale_after_days: Option<u32>,
    fail_on: GapKinds,
) -> anyhow::Result<()> {
    let view = view_name(&dimensions);
    let (library, store) = services::open_read_only(config).await?;
    let outcome = async {
        let report = library
            .coverage(
                dimensions.clone(),
                Default::default(),
                stale_after_days,
                services::CoverageExtras {
                    engagement: false,
                    written: true,
                },
            )
            .await?;
        let stale = library
            .stale_assets(stale_after_days, Default::default(), false, usize::MAX)
            .await?;
        crate::error::AppResult::Ok((report, stale))
    }
    .await;
    store.close().await;
    let (report, stale) = outcome.map_err(AppError::unmasked)?;
    let days = stale_after_days.unwrap_or(library.stale_after_days());
    // How much of the library is tagged comes first: a matrix of defaults says little.
    println!(
        "tags: {} of {} published assets declare none (their tags are read from the text or \
         defaulted)",
        report.untagged, report.assets
    );
    println!(
        "coverage by {view}: {} published assets, stale after {days} days, {} undated",
        report.assets, report.undated
    );
    let gaps: Vec<&services::CoverageReportCell> =
        report.cells.iter().filter(|c| c.cell.is_gap()).collect();
    let specific_gaps: Vec<&services::CoverageReportCell> = report
        .cells
        .iter()
        .filter(|c| c.cell.is_specific_gap())
        .collect();
    // "served" counts general assets (for every role, cross-industry) in every cell they
    // serve; "written" only the assets naming the cell's role or industry.
    let written_for = written_for(&dimensions);
    for c in &report.cells {
        println!(
            "  {:<60} {:>6} served ({} declared, {} inferred, {} default) {:>6} written {:>6} stale {:>6} undated",
            describe_cell(&c.cell.key),
            c.cell.count(),
            c.cell.declared_count,
            c.cell.inferred_count,
            c.cell.default_count,
            c.cell.specific_count().unwrap_or_default(),
            c.cell.stale_count,
            c.cell.undated_count
        );
    }
    println!("gaps: {}", gaps.len());
    for g in &gaps {
        println!("  {}", describe_cell(&g.cell.key));
    }
    if let Some(what) = written_for {
        println!(
            "gaps in content written for the {what}: {}",
            specific_gaps.len()
        );
        for g in &specific_gaps {
            println!("  {}", describe_cell(&g.cell.key));
        }
    }
    println!("stale assets: {}", stale.len());
    for s in stale.iter().take(10) {
        let when = s.dated_at.map_or("never dated".to_owned(), |t| {
            t.format("%Y-%m-%d").to_string()
        });
        println!("  {} ({when})", s.asset.id);
    }
    println!(
        "undated assets (no publication or review date): {}",
        report.undated
    );
    println!("without concerns or topics: {}", report.undescribed.len());
    for id in report.undescribed.iter().take(20) {
        println!("  {id}");
    }
    if fail_on.general && !gaps.is_empty() {
        bail!("{} gap(s) in the coverage by {view}", gaps.len());
    }
    if fail_on.specific && !specific_gaps.is_empty() {
        let whom = written_for.map_or("them".to_owned(), |what| format!("their {what}"));
        bail!(
            "{} cell(s) of the coverage by {view} have nothing written for {whom}",
            specific_gaps.len()
        );
    }
    Ok(())
}

/// What "written for" a cell refers to in a view: its role, industry or both. `None` for
/// views over neither, where every asset is written for the cells it counts in.
fn written_for(dimensions: &[crate::domain::CoverageDimension]) -> Option<&'static str> {
    use crate::domain::CoverageDimension as D;
    match (
        dimensions.contains(&D::Role),
        dimensions.contains(&D::Industry),
    ) {
        (true, true) => Some("role or industry"),
        (true, false) => Some("role"),
        (false, true) => Some("industry"),
        (false, false) => None,
    }
}

/// Rows read so far and their rate on standard error, about once a second.
struct Progress {
    tty: bool,
    started: std::time::Instant,
    last_print: Mutex<std::time::Instant>,
}

impl Progress {
    fn new() -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            started: std::time::Instant::now(),
            last_print: Mutex::new(std::time::Instant::now()),
        }
    }

    fn show(&self, rows: u64) {
        self.print(rows, |rate| format!("read {rows} rows ({rate:.0}/s)"));
    }

    /// Like `show`, for work of a known size: "embedded 320 of 5000 (25/s)".
    fn show_of(&self, what: &str, done: u64, of: u64) {
        self.print(done, |rate| format!("{what} {done} of {of} ({rate:.0}/s)"));
    }

    /// At most a line a second, on one line of a terminal.
    fn print(&self, done: u64, line: impl FnOnce(f64) -> String) {
        let mut last = self.last_print.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed().as_secs_f64() >= 1.0 {
            *last = std::time::Instant::now();
            let line = line(done as f64 / self.started.elapsed().as_secs_f64().max(1e-9));
            if self.tty {
                eprint!("\r{line}   ");
            } else {
                eprintln!("{line}");
            }
        }
    }

    fn finish(&self) {
        if self.tty {
            eprint!("\r");
        }
    }
}

/// Checks the files against the database as it is, if there is one, without creating,
/// migrating or writing it; prints the counts, then the coverage gaps the valid rows would
/// close or open. Fails (exit 1) when a row failed, so scripts can gate on it.
async fn dry_run(config: &Config, sources: Vec<ImportSource>) -> anyhow::Result<()> {
    let store = Store::open_read_only(&config.database_url)
        .await
        .with_context(|| format!("database {}", config.redacted_database_url()))?;
    let progress = Progress::new();
    let report = services::preview_import(store.as_ref(), sources, |rows| progress.show(rows))
        .await
        .map_err(AppError::unmasked)?;
    progress.finish();
    print_problems(&report);
    if store.is_none() {
        println!(
            "no database yet at {}: every valid row would be created",
            config.redacted_database_url()
        );
    }
    println!(
        "dry run, nothing written: {} rows would give {} created, {} updated, {} unchanged; {} failed",
        report.rows,
        report.counts.created,
        report.counts.updated,
        report.counts.unchanged,
        report.failed
    );
    let changes = services::gap_changes(store.as_ref(), &report.dry_run_assets)
        .await
        .map_err(AppError::unmasked)?;
    if let Some(store) = store {
        store.close().await;
    }
    for change in &changes {
        let view = view_name(&change.view);
        println!(
            "{view}: closes {} gap(s), opens {}",
            change.closed.len(),
            change.opened.len()
        );
        for key in &change.closed {
            println!("  closes {}", describe_cell(key));
        }
        for key in &change.opened {
            println!("  opens  {}", describe_cell(key));
        }
    }
    if report.failed > 0 {
        bail!("{} row(s) failed", report.failed);
    }
    Ok(())
}

/// `DECISION x PROCUREMENT`, `AWARENESS x (cross-industry)`.
fn describe_cell(key: &crate::domain::CoverageKey) -> String {
    use crate::domain::{IndustryCell, TaxonomyValue};
    let mut parts = Vec::new();
    if let Some(s) = key.stage {
        parts.push(s.name().to_owned());
    }
    if let Some(r) = key.role {
        parts.push(r.name().to_owned());
    }
    match &key.industry {
        Some(IndustryCell::Industry(i)) => parts.push(i.to_string()),
        Some(IndustryCell::CrossIndustry) => parts.push("(cross-industry)".to_owned()),
        None => {}
    }
    if let Some(c) = key.content_type {
        parts.push(c.name().to_owned());
    }
    if let Some(l) = &key.language {
        parts.push(l.to_string());
    }
    parts.join(" x ")
}

/// Imports accounts, contacts or events: nothing to index, the database is all.
async fn import_records(
    storage: &StorageArgs,
    kind: RecordKind,
    files: Vec<PathBuf>,
    best_effort: bool,
) -> anyhow::Result<()> {
    let config = Config::new(storage);
    let sources = open_sources(&files)?;
    let store = connect_store(&config).await?;
    let report = services::import_records(
        &store,
        kind,
        sources,
        best_effort,
        config.ranking.default_stage,
    )
    .await
    .map_err(AppError::unmasked)?;
    print_problems(&report);
    println!(
        "{} rows: {} written, {} failed in {:.2}s",
        report.rows, report.counts.created, report.failed, report.seconds
    );
    store.close().await;
    refuse_uncommitted(&report)
}

fn open_sources(files: &[PathBuf]) -> anyhow::Result<Vec<ImportSource>> {
    files
        .iter()
        .map(|f| ImportSource::open(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(AppError::unmasked)
}

/// The first problems of an import on standard error, and how many more there were.
fn print_problems(report: &services::ImportReport) {
    for problem in &report.problems {
        eprintln!("{problem}");
    }
    let more = report.failed.saturating_sub(report.problems.len() as u64);
    if more > 0 {
        eprintln!("... and {more} more problems");
    }
}

fn refuse_uncommitted(report: &services::ImportReport) -> anyhow::Result<()> {
    if !report.committed {
        bail!(
            "{} row(s) failed; nothing was imported (use --best-effort to import the valid rows)",
            report.failed
        );
    }
    Ok(())
}

/// `stage x role`: a coverage view as messages name it.
fn view_name(dimensions: &[crate::domain::CoverageDimension]) -> String {
    dimensions
        .iter()
        .map(|d| d.name())
        .collect::<Vec<_>>()
        .join(" x ")
}

/// Brings the index up to date after a CLI write: what to add to the command's report.
async fn export(config: &Config, file: PathBuf, style: CsvStyle) -> anyhow::Result<()> {
    let store = read_only_store(config).await?;
    let count = services::export_library(&store, &file, style)
        .await
        .map_err(AppError::unmasked)?;
    store.close().await;
    println!("exported {count} assets to {}", file.display());
    Ok(())
}

async fn copy_data(from: &str, to: &str, replace: bool) -> anyhow::Result<()> {
    let name = crate::config::redacted_url;
    if from == to {
        bail!("--from and --to are the same database");
    }
    let source = crate::store::Store::connect(from)
        .await
        .with_context(|| format!("database {}", name(from)))?;
    let target = crate::store::Store::connect(to)
        .await
        .with_context(|| format!("database {}", name(to)))?;
    let started = std::time::Instant::now();
    let copied = target.copy_from(&source, replace).await;
    source.close().await;
    target.close().await;
    let counts = copied.map_err(AppError::unmasked)?;
    for (table, rows) in &counts {
        println!("{table:<22} {rows:>10}");
    }
    println!(
        "copied {} into {} in {:.1} s; start the servers on it to build their indexes",
        name(from),
        name(to),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// How long `verify-index` waits for an index that is behind the database to catch up.
const VERIFY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// The database opened to be read only: what the report commands use, beside a server.
async fn synonyms(config: &Config, file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("{}: cannot read", file.display()))?;
    let groups = services::read_synonym_file(&text).map_err(|problems| {
        anyhow::anyhow!(
            "{}: nothing replaced:\n{}",
            file.display(),
            problems.join("\n")
        )
    })?;
    let parsed = crate::domain::Synonyms::parse(&groups)
        .map_err(|problems| anyhow::anyhow!("{}: {}", file.display(), problems.join("; ")))?;
    let store = connect_store(config).await?;
    services::replace_synonym_groups(&store, &parsed).await?;
    store.close().await;
    println!(
        "{} synonym groups from {}; servers use them within 5 seconds",
        parsed.groups().len(),
        file.display()
    );
    Ok(())
}

async fn embeddings(config: &Config, action: EmbeddingsCommand) -> anyhow::Result<()> {
    let store = connect_store(config).await?;
    let done = match action {
        EmbeddingsCommand::List => {
            let models = services::stored_models(&store).await?;
            if models.is_empty() {
                println!("no vectors stored");
            }
            for m in &models {
                println!(
                    "{}\t{} assets, {} published now",
                    m.model, m.assets, m.published
                );
            }
            Ok(())
        }
        EmbeddingsCommand::Drop { model } => {
            // Deleting nothing means the name is wrong: only then are the names listed.
            let dropped = services::drop_model_vectors(&store, &model).await?;
            if dropped > 0 {
                println!("{dropped} vectors of {model} deleted");
                Ok(())
            } else {
                let models = services::stored_models(&store).await?;
                let names: Vec<&str> = models.iter().map(|m| m.model.as_str()).collect();
                Err(anyhow::anyhow!(
                    "no vectors stored under {model:?}; stored: {}",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ))
            }
        }
    };
    store.close().await;
    done
}

async fn tags(config: &Config, action: TagsCommand) -> anyhow::Result<()> {
    match action {
        TagsCommand::Suggest {
            min_confidence,
            output,
        } => {
            if !(0.0..=1.0).contains(&min_confidence) {
                bail!("--min-confidence must be between 0 and 1, got {min_confidence}");
            }
            let store = read_only_store(config).await?;
            let tmp = output.with_extension("csv.tmp");
            let file = std::fs::File::create(&tmp)
                .with_context(|| format!("{}: cannot create", tmp.display()))?;
            let mut writer = services::ReviewWriter::new(std::io::BufWriter::new(file))?;
            let (assets, rows) =
                services::write_review(&store, &mut writer, min_confidence).await?;
            writer.finish()?;
            let renamed = std::fs::rename(&tmp, &output);
            if renamed.is_err() {
                // Nothing half-written is left behind.
                let _ = std::fs::remove_file(&tmp);
            }
            renamed.with_context(|| format!("{}: cannot write", output.display()))?;
            store.close().await;
            println!(
                "{rows} suggestions for {assets} assets written to {}; mark the accept column \
                 (yes) and run `stagefit tags apply {}`",
                output.display(),
                output.display()
            );
            Ok(())
        }
        TagsCommand::Apply { file } => {
            let input = std::fs::File::open(&file)
                .with_context(|| format!("{}: cannot open", file.display()))?;
            let name = file.display().to_string();
            let accepted = services::read_review(std::io::BufReader::new(input))
                .map_err(|problems| anyhow::anyhow!("{name}:\n{}", problems.join("\n")))?;
            if accepted.is_empty() {
                println!(
                    "{name}: no row accepted (mark the accept column with yes); nothing to do"
                );
                return Ok(());
            }
            let store = connect_store(config).await?;
            let mut ids: Vec<String> = accepted.iter().map(|a| a.asset_id.clone()).collect();
            ids.sort();
            ids.dedup();
            let assets = services::assets_by_id(&store, &ids).await?;
            let drafts = services::declare(&assets, &accepted).map_err(|problems| {
                anyhow::anyhow!("{name}: nothing declared:\n{}", problems.join("\n"))
            })?;
            for warning in services::newly_tagged(&assets, &drafts) {
                eprintln!("{name}: {warning}");
            }
            let mut jsonl = Vec::new();
            for draft in &drafts {
                serde_json::to_writer(&mut jsonl, draft)?;
                jsonl.push(b'\n');
            }
            let source = services::ImportSource {
                name: name.clone(),
                format: crate::import::Format::Jsonl,
                reader: Box::new(std::io::Cursor::new(jsonl)),
            };
            let mode = services::ImportMode {
                best_effort: false,
                dry_run: false,
            };
            let (report, _) =
                services::import_indexed(config, &store, vec![source], mode, |_| {}).await?;
            print_problems(&report);
            store.close().await;
            refuse_uncommitted(&report)?;
            println!(
                "declared {} accepted tags on {} assets",
                accepted.len(),
                drafts.len()
            );
            Ok(())
        }
    }
}

async fn read_only_store(config: &Config) -> anyhow::Result<Store> {
    Store::open_read_only(&config.database_url)
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no stagefit database at {}; import a library first",
                config.redacted_database_url()
            )
        })
}

async fn verify_index(config: &Config) -> anyhow::Result<()> {
    let store = read_only_store(config).await?;
    let difference = services::verify_index(config, &store, VERIFY_PATIENCE).await;
    store.close().await;
    let difference = difference?;
    println!(
        "database: {} assets at change {}; index: {} documents at change {}",
        difference.database_assets,
        difference.database_seq,
        difference.index_documents,
        difference.index_seq
    );
    if difference.is_equal() {
        println!("the index equals the database");
        return Ok(());
    }
    let show = |what: &str, ids: &[String]| {
        if !ids.is_empty() {
            let shown: Vec<&str> = ids.iter().take(20).map(String::as_str).collect();
            let more = ids.len().saturating_sub(20);
            let tail = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            println!("{what} ({}): {}{tail}", ids.len(), shown.join(", "));
        }
    };
    show("missing from the index", &difference.missing);
    show("in the index only", &difference.extra);
    show("different in the index", &difference.differing);
    bail!("the index differs from the database; `stagefit reindex` (server stopped) rebuilds it")
}

async fn backup(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let written = services::backup(config, file).await?;
    println!(
        "backed up {} to {} ({:.1} MB) in {:.2} s",
        config.redacted_database_url(),
        file.display(),
        written.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn restore(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    let restored = services::restore(config, file).await?;
    if let Some(kept) = &restored.kept {
        println!("the database it replaced is kept as {}", kept.display());
    }
    println!(
        "restored {} from {}; rebuilt the index ({} assets, change-log position {})",
        config.redacted_database_url(),
        file.display(),
        restored.rebuilt.documents,
        restored.rebuilt.seq
    );
    Ok(())
}

async fn reindex(config: &Config) -> anyhow::Result<()> {
    let store = connect_store(config).await?;
    let started = std::time::Instant::now();
    let rebuilt = services::reindex(config, &store).await;
    store.close().await;
    let rebuilt = rebuilt?;
    println!(
        "rebuilt the index ({} assets, change-log position {}) in {:.2}s",
        rebuilt.documents,
        rebuilt.seq,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
