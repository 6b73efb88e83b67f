//! An embeddings service outside the process, spoken to as OpenAI's API is: `POST
//! {url}/embeddings` with `{"model", "input": [texts]}`, answered with `{"data":
//! [{"index", "embedding"}]}`. Ollama, text-embeddings-inference, vLLM and the hosted APIs
//! all take it. For a model the machine cannot run itself, or a multilingual one.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde::Deserialize;

use super::model::normalize;
use crate::config::RemoteEmbedderConfig;

/// How long one request to the service may take: a batch of 32 texts on a CPU-served model
/// takes seconds, not minutes.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Most bytes of an answer read: 32 vectors of 4,096 dimensions as JSON fit many times.
const MAX_ANSWER_BYTES: u64 = 64 * 1024 * 1024;
/// Characters of an error answer quoted in the log.
const QUOTED: usize = 300;

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
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
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
            .request(&["probe"])
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

    /// One unit vector per text, in order.
    pub fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let vectors = self.request(texts)?;
        if let Some(v) = vectors.iter().find(|v| v.len() != self.dims) {
            bail!(
                "the embeddings service answered a vector of {} dimensions, not {}",
                v.len(),
                self.dims
            );
        }
        Ok(vectors)
    }

    fn request(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        let body = serde_json::json!({ "model": self.model, "input": texts });
        let mut request = self.agent.post(&self.endpoint);
        if let Some(key) = &self.api_key {
            request = request.header("authorization", &format!("Bearer {key}"));
        }
        let mut response = request.send_json(&body).map_err(|e| anyhow!("{e}"))?;
        let status = response.status();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .map_err(|e| anyhow!("reading the answer: {e}"))?;
        if !status.is_success() {
            let quoted: String = text.chars().take(QUOTED).collect();
            bail!("answered {status}: {quoted}");
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
