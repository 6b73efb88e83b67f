//! Meaning: sentence embeddings of the library's assets and of queries, and the nearest
//! assets to a vector. Knows neither the database nor the index; `services::meaning`
//! keeps the vectors in step with the library.

pub mod model;
pub mod remote;
pub mod vectors;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub use model::LocalModel;
pub use remote::RemoteEmbedder;
pub use vectors::Vectors;

use crate::domain::Asset;

/// Characters of an asset's body its vector reads after the title and summary: the model
/// cuts at 128 tokens (about 500 characters of English) anyway.
const BODY_CHARS: usize = 600;

/// Query vectors kept, by query text: a repeated query costs no model run.
const QUERY_CACHE: usize = 4_096;

/// Queries one run of a model in the process embeds together at most.
const QUERY_BATCH: usize = 32;

/// Characters of query text one run takes at most: 32 short queries, or four of the
/// longest the API takes (a run of long queries costs what their tokens do, and the
/// queries behind it wait for it).
const QUERY_RUN_CHARS: usize = 2_048;

/// Queries waiting for the model at most; past them a query is answered by words alone.
const QUERY_QUEUE: usize = 256;

/// The text an asset's vector is computed from: its title, summary and opening.
pub fn asset_text(asset: &Asset) -> String {
    let mut text = asset.title.trim().to_owned();
    for part in [
        asset.summary.trim(),
        crate::domain::opening(&asset.body, BODY_CHARS).trim(),
    ] {
        if !part.is_empty() {
            text.push_str(". ");
            text.push_str(part);
        }
    }
    text
}

/// The text an asset's title vector is computed from: its title, and the words of its
/// address the title lacks.
pub fn title_text(asset: &Asset) -> String {
    let mut text = asset.title.trim().to_owned();
    for word in asset.slug_words() {
        text.push(' ');
        text.push_str(&word);
    }
    text
}

/// A stable 64-bit hash of byte strings (FNV-1a): a model's fingerprint, a text's key.
pub fn bytes_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A stable 64-bit hash of an embedded text under a model: equal texts keep their vectors.
pub fn text_hash(model: &str, text: &str) -> u64 {
    bytes_hash(&[model.as_bytes(), text.as_bytes()])
}

/// The query cache's key of a query: trimmed, lowercased.
fn query_key(query: &str) -> String {
    query.trim().to_lowercase()
}

/// The query cache's key of an asset's text: one no query has (queries are trimmed; this
/// starts with a control character).
fn text_key(text: &str) -> String {
    format!("\u{1}{text}")
}

/// Where vectors come from: a model run in the process, or a service over HTTP.
pub enum Embedder {
    /// Boxed: a loaded model is large beside a service's address.
    Local(Box<LocalModel>),
    Remote(RemoteEmbedder),
}

impl Embedder {
    pub fn dims(&self) -> usize {
        match self {
            Self::Local(m) => m.dims(),
            Self::Remote(r) => r.dims(),
        }
    }

    /// The model's name, for logs and `/readyz`.
    pub fn name(&self) -> &str {
        match self {
            Self::Local(m) => m.name(),
            Self::Remote(r) => r.name(),
        }
    }

    /// What names its vectors in the database.
    pub fn key(&self) -> &str {
        match self {
            Self::Local(m) => m.key(),
            Self::Remote(r) => r.key(),
        }
    }

    /// One unit vector per text, in order (blocking: the CPU or the network), for the
    /// background embedding of the library.
    pub fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        match self {
            Self::Local(m) => m.embed(texts),
            Self::Remote(r) => r.embed(texts, remote::BATCH_TIMEOUT),
        }
    }

    /// Like `embed`, a text at a time where the service refuses the whole for what it holds
    /// (`remote::Refused`): a text it still refuses is `None`, and the others go on.
    pub fn embed_each(&self, texts: &[&str]) -> anyhow::Result<Vec<Option<Vec<f32>>>> {
        match self.embed(texts) {
            Ok(vectors) => Ok(vectors.into_iter().map(Some).collect()),
            Err(e) if e.is::<remote::Refused>() => texts
                .iter()
                .map(|text| match self.embed(&[text]) {
                    Ok(mut v) => Ok(v.pop()),
                    Err(e) if e.is::<remote::Refused>() => Ok(None),
                    Err(e) => Err(e),
                })
                .collect(),
            Err(e) => Err(e),
        }
    }

    /// The same for a visitor's request (a query, a seed): a service gets a few seconds.
    pub fn embed_now(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        match self {
            Self::Local(m) => m.embed(texts),
            Self::Remote(r) => r.embed(texts, remote::QUERY_TIMEOUT),
        }
    }

    /// Whether a call waits on the network rather than working the CPU.
    pub fn is_remote(&self) -> bool {
        matches!(self, Self::Remote(_))
    }
}

/// A query on its way to the model, and where its vector goes.
type QueryJob = (
    String,
    futures::channel::oneshot::Sender<Result<Vec<f32>, String>>,
);

/// Visitors' queries for a model run in the process. One thread takes them in turn: a
/// query that finds the model idle runs alone, and the queries that arrive while it runs
/// go through together in the next run, whose dense layers then multiply many rows at
/// once (16 short queries in one run cost a quarter of 16 runs: BENCHMARKS.md).
struct QueryQueue {
    sender: std::sync::mpsc::SyncSender<QueryJob>,
    counts: Arc<QueryCounts>,
}

/// Queries embedded, and runs of the model they took.
#[derive(Default)]
struct QueryCounts {
    embedded: std::sync::atomic::AtomicUsize,
    runs: std::sync::atomic::AtomicUsize,
}

/// What a queue runs on a run's texts: the model in the process (a fake in the tests).
type QueryRun = dyn Fn(&[&str]) -> anyhow::Result<Vec<Vec<f32>>> + Send;

impl QueryQueue {
    fn start(run: Box<QueryRun>) -> std::io::Result<Self> {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<QueryJob>(QUERY_QUEUE);
        let counts = Arc::new(QueryCounts::default());
        let counted = counts.clone();
        // Ends when the queue's sender is dropped (with its `Meaning`).
        std::thread::Builder::new()
            .name("stagefit-queries".into())
            .spawn(move || {
                // A query taken that did not fit the last run opens the next.
                let mut carried: Option<QueryJob> = None;
                loop {
                    let first = match carried.take() {
                        Some(job) => job,
                        None => match receiver.recv() {
                            Ok(job) => job,
                            Err(_) => break,
                        },
                    };
                    let mut chars = first.0.len();
                    let mut jobs = vec![first];
                    while jobs.len() < QUERY_BATCH {
                        let Ok(job) = receiver.try_recv() else { break };
                        chars += job.0.len();
                        if chars > QUERY_RUN_CHARS {
                            carried = Some(job);
                            break;
                        }
                        jobs.push(job);
                    }
                    // The same query twice in a run is embedded once.
                    let mut texts: Vec<&str> = jobs.iter().map(|(t, _)| t.as_str()).collect();
                    texts.sort_unstable();
                    texts.dedup();
                    // A panic in the model fails this run's queries, not the thread.
                    let outcome =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&texts)))
                            .unwrap_or_else(|_| Err(anyhow::anyhow!("the model panicked")))
                            .map_err(|e| format!("{e:#}"));
                    let relaxed = std::sync::atomic::Ordering::Relaxed;
                    counted.embedded.fetch_add(texts.len(), relaxed);
                    counted.runs.fetch_add(1, relaxed);
                    metrics::histogram!(crate::metrics::QUERY_BATCH).record(texts.len() as f64);
                    let found = |text: &str| -> Result<Vec<f32>, String> {
                        let vectors = outcome.as_ref().map_err(Clone::clone)?;
                        texts
                            .binary_search(&text)
                            .ok()
                            .and_then(|at| vectors.get(at).cloned())
                            .ok_or_else(|| "the model returned too few vectors".to_owned())
                    };
                    let answers: Vec<_> = jobs.iter().map(|(t, _)| found(t)).collect();
                    for ((_, reply), answer) in jobs.into_iter().zip(answers) {
                        // The asker may have gone (its request cancelled): nothing to do.
                        let _ = reply.send(answer);
                    }
                }
            })?;
        Ok(Self { sender, counts })
    }

    /// Puts a query (its key) in the queue; where its answer will come, or `None` when the
    /// queue is full.
    fn submit(
        &self,
        key: String,
    ) -> Option<futures::channel::oneshot::Receiver<Result<Vec<f32>, String>>> {
        let (reply, answer) = futures::channel::oneshot::channel();
        self.sender.try_send((key, reply)).ok()?;
        Some(answer)
    }
}

/// The embedder (when one is configured) and the library's vectors, shared by requests.
pub struct Meaning {
    model: Option<Arc<Embedder>>,
    /// With a model in the process: the queue its visitors' queries take.
    queries_queue: Option<QueryQueue>,
    vectors: RwLock<Arc<Vectors>>,
    queries: quick_cache::sync::Cache<String, Arc<Vec<f32>>>,
    /// Published assets still to embed (0 when all are in).
    pending: std::sync::atomic::AtomicUsize,
    /// Bumped at each `replace_vectors`: cached answers computed before are stale.
    version: std::sync::atomic::AtomicU64,
    /// Whether a pass over the whole library has ended (every asset then had a vector).
    caught_up: std::sync::atomic::AtomicBool,
    /// Assets whose text the embeddings service refused, with that text's hash: not asked
    /// again until their text changes.
    refused: std::sync::Mutex<HashMap<String, u64>>,
    /// Assets this process ran through the model (the others' vectors were loaded).
    computed: std::sync::atomic::AtomicUsize,
}

/// How far the embedding of the library is, for `/readyz`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeaningStatus {
    pub model: String,
    /// Assets with a vector.
    pub embedded: usize,
    /// Assets the current pass has still to embed.
    pub pending: usize,
    /// Published assets left without a vector because the service refused their text
    /// (asked again when their text changes).
    pub refused: usize,
    /// Every published asset had a vector at the end of the last pass, and none is pending.
    pub complete: bool,
    /// Assets this process ran through the model since it started; the rest were loaded
    /// from the database.
    pub computed: usize,
    /// Visitors' queries a model in the process embedded, and the runs of the model they
    /// took (several queries arriving together share a run); both 0 with a service.
    pub queries_embedded: usize,
    pub query_runs: usize,
}

impl Meaning {
    /// Without a model: everything lexical, as before.
    pub fn none() -> Self {
        Self::with_model(None)
    }

    pub fn with_model(model: Option<Embedder>) -> Self {
        let dims = model.as_ref().map_or(0, Embedder::dims);
        let model = model.map(Arc::new);
        let queries_queue = model.as_ref().filter(|m| !m.is_remote()).and_then(|m| {
            let model = m.clone();
            match QueryQueue::start(Box::new(move |texts| model.embed(texts))) {
                Ok(queue) => Some(queue),
                Err(e) => {
                    // Queries then take the blocking pool one at a time, as a service's do.
                    tracing::warn!(error = %e, "no thread for the queries' model runs");
                    None
                }
            }
        });
        Self {
            model,
            queries_queue,
            vectors: RwLock::new(Arc::new(Vectors::new(dims))),
            queries: quick_cache::sync::Cache::new(QUERY_CACHE),
            pending: std::sync::atomic::AtomicUsize::new(0),
            version: std::sync::atomic::AtomicU64::new(0),
            caught_up: std::sync::atomic::AtomicBool::new(false),
            refused: std::sync::Mutex::new(HashMap::new()),
            computed: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub fn model(&self) -> Option<&Arc<Embedder>> {
        self.model.as_ref()
    }

    /// The vectors as they stand; cheap (a shared pointer).
    pub fn vectors(&self) -> Arc<Vectors> {
        self.vectors
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn replace_vectors(&self, vectors: Vectors) {
        *self
            .vectors
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(vectors);
        self.version
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// Changes whenever the vectors do.
    pub fn version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn set_pending(&self, n: usize) {
        self.pending.store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts assets run through the model.
    pub fn add_computed(&self, n: usize) {
        self.computed
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the service refused this text of the asset before.
    pub fn was_refused(&self, id: &str, text_hash: u64) -> bool {
        self.refused_texts().get(id) == Some(&text_hash)
    }

    /// Records that the service refused this text of the asset.
    pub fn refused(&self, id: &str, text_hash: u64) {
        self.refused_texts().insert(id.to_owned(), text_hash);
    }

    /// Forgets the refusals of assets that have a vector now or are no longer published;
    /// how many remain.
    pub fn keep_refused(&self, keep: impl Fn(&str) -> bool) -> usize {
        let mut refused = self.refused_texts();
        refused.retain(|id, _| keep(id));
        refused.len()
    }

    fn refused_texts(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that a pass over the whole library ended: nothing pending.
    pub fn pass_ended(&self) {
        self.set_pending(0);
        self.caught_up
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// `None` without a model.
    pub fn status(&self) -> Option<MeaningStatus> {
        let model = self.model.as_ref()?;
        let pending = self.pending.load(std::sync::atomic::Ordering::Relaxed);
        let counts = self.queries_queue.as_ref().map(|q| &q.counts);
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        let refused = self.refused_texts().len();
        Some(MeaningStatus {
            model: model.name().to_owned(),
            embedded: self.vectors().len(),
            pending,
            refused,
            complete: pending == 0
                && refused == 0
                && self.caught_up.load(std::sync::atomic::Ordering::Acquire),
            computed: self.computed.load(std::sync::atomic::Ordering::Relaxed),
            queries_embedded: counts.map_or(0, |c| c.embedded.load(relaxed)),
            query_runs: counts.map_or(0, |c| c.runs.load(relaxed)),
        })
    }

    /// Whether meaning can take part in ranking: a model, and vectors for the library.
    pub fn ready(&self) -> bool {
        self.model.is_some() && !self.vectors().is_empty()
    }

    /// A query's vector, from the cache or the model (blocking: call it on the blocking
    /// pool). `None` without a model.
    pub fn query_vector(&self, query: &str) -> anyhow::Result<Option<Arc<Vec<f32>>>> {
        let key = query_key(query);
        self.cached(key.clone(), &key)
    }

    /// The vector of an asset's text that has none stored (a seed that is a draft, or not
    /// yet embedded), cached like queries: asking about it again runs no model.
    pub fn text_vector(&self, text: &str) -> anyhow::Result<Option<Arc<Vec<f32>>>> {
        self.cached(text_key(text), text)
    }

    /// Whether queries go to the model through the queue (`queue_query`) rather than the
    /// blocking pool (`query_vector`).
    pub fn queues_queries(&self) -> bool {
        self.queries_queue.is_some()
    }

    /// A query's vector from a model in the process, embedded with the other queries
    /// waiting (see `QueryQueue`), then cached (the caller has looked in the cache,
    /// `cached_query_vector`). `None` when the queue is full or absent: the words answer
    /// alone. Holds no thread while it waits.
    pub async fn queue_query(&self, query: &str) -> Option<anyhow::Result<Arc<Vec<f32>>>> {
        let key = query_key(query);
        let queue = self.queries_queue.as_ref()?;
        let Some(answer) = queue.submit(key.clone()) else {
            tracing::debug!("the model has {QUERY_QUEUE} queries waiting: words alone");
            return None;
        };
        let outcome = match answer.await {
            Ok(Ok(v)) => Ok(Arc::new(v)),
            Ok(Err(e)) => Err(anyhow::anyhow!(e)),
            Err(_) => Err(anyhow::anyhow!("the queries' model thread ended")),
        };
        if let Ok(v) = &outcome {
            self.queries.insert(key, v.clone());
        }
        Some(outcome)
    }

    /// A query's vector if the cache holds it (only a model fills it): no model run, no
    /// blocking (a cached query takes no turn on the blocking pool and no call to a
    /// service).
    pub fn cached_query_vector(&self, query: &str) -> Option<Arc<Vec<f32>>> {
        self.queries.get(&query_key(query))
    }

    /// The same for a text's vector (`text_vector`).
    pub fn cached_text_vector(&self, text: &str) -> Option<Arc<Vec<f32>>> {
        self.queries.get(&text_key(text))
    }

    fn cached(&self, key: String, text: &str) -> anyhow::Result<Option<Arc<Vec<f32>>>> {
        let Some(model) = &self.model else {
            return Ok(None);
        };
        if let Some(v) = self.queries.get(&key) {
            return Ok(Some(v));
        }
        let v = Arc::new(
            model
                .embed_now(&[text])?
                .pop()
                .unwrap_or_else(|| vec![0.0; model.dims()]),
        );
        self.queries.insert(key, v.clone());
        Ok(Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use std::sync::Mutex;
    use std::sync::mpsc;

    fn vector_of(text: &str) -> Vec<f32> {
        vec![text.len() as f32, 1.0]
    }

    /// The texts of each run a fake model made.
    type Runs = Arc<Mutex<Vec<Vec<String>>>>;

    /// A fake model that says when a run begins, then waits until the test lets it go (one
    /// message a run, or the sender dropped for all); "boom" makes it panic.
    fn gated() -> (Box<QueryRun>, Runs, mpsc::Receiver<()>, mpsc::Sender<()>) {
        let runs: Runs = Arc::default();
        let (began, entered) = mpsc::channel();
        let (open, gate) = mpsc::channel::<()>();
        let seen = runs.clone();
        let run = Box::new(move |texts: &[&str]| {
            let _ = began.send(());
            let _ = gate.recv();
            assert!(!texts.contains(&"boom"), "the model panicked on boom");
            seen.lock()
                .unwrap()
                .push(texts.iter().map(|t| t.to_string()).collect());
            Ok(texts.iter().map(|t| vector_of(t)).collect())
        });
        (run, runs, entered, open)
    }

    #[test]
    fn queries_waiting_while_the_model_runs_share_the_next_run_once_each() {
        let (run, runs, entered, open) = gated();
        let queue = QueryQueue::start(run).unwrap();
        let first = queue.submit("alone".into()).unwrap();
        entered.recv().unwrap();
        let texts = ["b", "c", "b", "dd"];
        let waiting: Vec<_> = texts
            .iter()
            .map(|t| queue.submit(t.to_string()).unwrap())
            .collect();
        open.send(()).unwrap();
        open.send(()).unwrap();
        assert_eq!(block_on(first).unwrap().unwrap(), vector_of("alone"));
        for (text, answer) in texts.iter().zip(waiting) {
            assert_eq!(block_on(answer).unwrap().unwrap(), vector_of(text));
        }
        assert_eq!(*runs.lock().unwrap(), [vec!["alone"], vec!["b", "c", "dd"]]);
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        assert_eq!(queue.counts.runs.load(relaxed), 2);
        assert_eq!(queue.counts.embedded.load(relaxed), 4);
    }

    #[test]
    fn a_run_takes_at_most_its_characters_and_the_rest_open_the_next() {
        let (run, runs, entered, open) = gated();
        let queue = QueryQueue::start(run).unwrap();
        let first = queue.submit("first".into()).unwrap();
        entered.recv().unwrap();
        let long: Vec<String> = ["x", "y", "z"]
            .iter()
            .map(|c| c.repeat(QUERY_RUN_CHARS / 2 - 10))
            .collect();
        let waiting: Vec<_> = long
            .iter()
            .map(|t| queue.submit(t.clone()).unwrap())
            .collect();
        drop(open);
        block_on(first).unwrap().unwrap();
        for answer in waiting {
            block_on(answer).unwrap().unwrap();
        }
        let sizes: Vec<usize> = runs.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [1, 2, 1]);
    }

    #[test]
    fn a_full_queue_turns_the_next_query_away_at_once_and_takes_queries_again_after() {
        let (run, _runs, entered, open) = gated();
        let queue = QueryQueue::start(run).unwrap();
        let first = queue.submit("first".into()).unwrap();
        entered.recv().unwrap();
        let waiting: Vec<_> = (0..QUERY_QUEUE)
            .map(|i| queue.submit(format!("q{i}")).expect("room in the queue"))
            .collect();
        assert!(queue.submit("one too many".into()).is_none());
        drop(open);
        block_on(first).unwrap().unwrap();
        for (i, answer) in waiting.into_iter().enumerate() {
            assert_eq!(
                block_on(answer).unwrap().unwrap(),
                vector_of(&format!("q{i}"))
            );
        }
        let later = queue.submit("later".into()).unwrap();
        assert_eq!(block_on(later).unwrap().unwrap(), vector_of("later"));
    }

    #[test]
    fn a_panic_in_the_model_fails_its_run_and_the_queue_goes_on() {
        let (run, _runs, _entered, open) = gated();
        drop(open);
        let queue = QueryQueue::start(run).unwrap();
        let boom = block_on(queue.submit("boom".into()).unwrap()).unwrap();
        assert_eq!(boom, Err("the model panicked".to_owned()));
        let after = block_on(queue.submit("after".into()).unwrap()).unwrap();
        assert_eq!(after, Ok(vector_of("after")));
    }
}
