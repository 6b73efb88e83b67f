//! Meaning: sentence embeddings of the library's assets and of queries, and the nearest
//! assets to a vector. Knows neither the database nor the index; `services::meaning`
//! keeps the vectors in step with the library.

pub mod model;
pub mod remote;
pub mod vectors;

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

/// The embedder (when one is configured) and the library's vectors, shared by requests.
pub struct Meaning {
    model: Option<Arc<Embedder>>,
    vectors: RwLock<Arc<Vectors>>,
    queries: quick_cache::sync::Cache<String, Arc<Vec<f32>>>,
    /// Published assets still to embed (0 when all are in).
    pending: std::sync::atomic::AtomicUsize,
    /// Bumped at each `replace_vectors`: cached answers computed before are stale.
    version: std::sync::atomic::AtomicU64,
    /// Whether a pass over the whole library has ended (every asset then had a vector).
    caught_up: std::sync::atomic::AtomicBool,
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
    /// Every published asset had a vector at the end of the last pass, and none is pending.
    pub complete: bool,
    /// Assets this process ran through the model since it started; the rest were loaded
    /// from the database.
    pub computed: usize,
}

impl Meaning {
    /// Without a model: everything lexical, as before.
    pub fn none() -> Self {
        Self::with_model(None)
    }

    pub fn with_model(model: Option<Embedder>) -> Self {
        let dims = model.as_ref().map_or(0, Embedder::dims);
        Self {
            model: model.map(Arc::new),
            vectors: RwLock::new(Arc::new(Vectors::new(dims))),
            queries: quick_cache::sync::Cache::new(QUERY_CACHE),
            pending: std::sync::atomic::AtomicUsize::new(0),
            version: std::sync::atomic::AtomicU64::new(0),
            caught_up: std::sync::atomic::AtomicBool::new(false),
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
        Some(MeaningStatus {
            model: model.name().to_owned(),
            embedded: self.vectors().len(),
            pending,
            complete: pending == 0 && self.caught_up.load(std::sync::atomic::Ordering::Acquire),
            computed: self.computed.load(std::sync::atomic::Ordering::Relaxed),
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
