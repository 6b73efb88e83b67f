//! An embeddings service outside the process, spoken to as OpenAI's API is: `POST
//! {url}/embeddings` with `{"model", "input": [texts]}`, answered with `{"data":
//! [{"index", "embedding"}]}`. Ollama, text-embeddings-inference, vLLM and the hosted APIs
//! all take it. For a model the machine cannot run itself, or a multilingual one.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde::Deserialize;

use super::model::normalize;
use crate::config::RemoteEmbedderConfig;

/// How long a request of the background embedding may take: a batch of 32 texts on a
/// CPU-served model takes seconds, not minutes.
pub const BATCH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a request made for a visitor (a query, a seed) may take before the words answer
/// alone: well within the server's request timeout.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(3);
/// Characters of a text sent: services refuse texts past their model's limit (512 tokens
/// for many), and the opening says what a page is about.
const MAX_TEXT_CHARS: usize = 1_000;
/// Bytes of JSON an answer may take per number it should hold, and besides them.
const BYTES_PER_NUMBER: u64 = 32;
const ANSWER_SLACK: u64 = 64 * 1024;
/// Dimensions a probe's answer may have at most (the largest models have 4,096).
const MAX_DIMS: u64 = 8_192;
/// Characters of an error answer quoted in the log.
const QUOTED: usize = 300;

/// The service refused a request for what it held (a 4xx answer about the input): another
/// request without the text it will not take may pass.
#[derive(Debug)]
pub struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The service, as the server uses it: blocking calls, made on the blocking pool.
pub struct RemoteEmbedder {
    agent: ureq::Agent,
    endpoint: String,
    model: String,
    api_key: Option<String>,
    dims: usize,
    key: String,
}

#[derive(Deserialize)]
struct Answer {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    index: usize,
    embedding: Vec<f32>,
}

impl RemoteEmbedder {
    /// Asks the service for one vector, which tells the dimensions: a service that is not
    /// there, refuses the key or answers something else fails here, at start.
    pub fn connect(config: &RemoteEmbedderConfig) -> anyhow::Result<Self> {
        // Each request sets its own timeout (a batch's or a visitor's).
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut embedder = Self {
            agent,
            endpoint: format!("{}/embeddings", config.url),
            model: config.model.clone(),
            api_key: config.api_key.clone(),
            dims: 0,
            key: String::new(),
        };
        let probe = embedder
            .request(&["probe"], QUERY_TIMEOUT.max(Duration::from_secs(10)))
            .with_context(|| format!("the embeddings service at {}", embedder.endpoint))?;
        embedder.dims = probe.first().map_or(0, Vec::len);
        if embedder.dims == 0 {
            bail!(
                "the embeddings service at {} answered an empty vector",
                embedder.endpoint
            );
        }
        // Vectors are stored under the model's name and size, not the address: replicas
        // that reach the same service by other names share them.
        embedder.key = format!("remote:{}:{}", config.model, embedder.dims);
        Ok(embedder)
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The model's name at the service.
    pub fn name(&self) -> &str {
        &self.model
    }

    /// What names this service's vectors in the database.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// One unit vector per text, in order, each text cut to its first 1,000 characters;
    /// `timeout` bounds the whole request.
    pub fn embed(&self, texts: &[&str], timeout: Duration) -> anyhow::Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let cut: Vec<&str> = texts
            .iter()
            .map(|t| crate::domain::opening(t, MAX_TEXT_CHARS))
            .collect();
        let vectors = self.request(&cut, timeout)?;
        if let Some(v) = vectors.iter().find(|v| v.len() != self.dims) {
            bail!(
                "the embeddings service answered a vector of {} dimensions, not {}",
                v.len(),
                self.dims
            );
        }
        Ok(vectors)
    }

    fn request(&self, texts: &[&str], timeout: Duration) -> anyhow::Result<Vec<Vec<f32>>> {
        let body = serde_json::json!({ "model": self.model, "input": texts });
        let mut request = self
            .agent
            .post(&self.endpoint)
            .config()
            .timeout_global(Some(timeout))
            .build();
        if let Some(key) = &self.api_key {
            request = request.header("authorization", &format!("Bearer {key}"));
        }
        let mut response = request.send_json(&body).map_err(|e| anyhow!("{e}"))?;
        let status = response.status();
        // As many numbers as the vectors asked for hold (the probe's dimensions are not
        // known yet), and no more: a broken service cannot fill the memory.
        let dims = if self.dims == 0 {
            MAX_DIMS
        } else {
            self.dims as u64
        };
        let limit = texts.len() as u64 * dims * BYTES_PER_NUMBER + ANSWER_SLACK;
        let text = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_string()
            .map_err(|e| anyhow!("reading the answer: {e}"))?;
        if !status.is_success() {
            let quoted: String = text.chars().take(QUOTED).collect();
            let answer = format!("answered {status}: {quoted}");
            // Not the key, the model's name, the service's rate or a timeout: what was
            // sent (a text too long for the model, say).
            if status.is_client_error() && !matches!(status.as_u16(), 401 | 403 | 404 | 408 | 429) {
                return Err(Refused(answer).into());
            }
            bail!(answer);
        }
        let answer: Answer = serde_json::from_str(&text)
            .context("the answer is not an embeddings list (`data[].embedding`)")?;
        if answer.data.len() != texts.len() {
            bail!(
                "asked for {} vectors, the answer holds {}",
                texts.len(),
                answer.data.len()
            );
        }
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
        for item in answer.data {
            let slot = vectors.get_mut(item.index).ok_or_else(|| {
                anyhow!("the answer names text {} of {}", item.index, texts.len())
            })?;
            if item.embedding.iter().any(|x| !x.is_finite()) {
                bail!("the answer holds a vector with a value that is not a number");
            }
            let mut v = item.embedding;
            // Not every service returns unit vectors; cosines need them.
            normalize(&mut v);
            *slot = Some(v);
        }
        vectors
            .into_iter()
            .enumerate()
            .map(|(i, v)| v.ok_or_else(|| anyhow!("the answer has no vector for text {i}")))
            .collect()
    }
}
