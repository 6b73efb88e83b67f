//! A sentence-embedding model run in the process: a BERT-family encoder (all-MiniLM-L6-v2
//! and its kin) on the CPU with candle, its tokenizer read from the model folder's
//! `tokenizer.json`. Mean pooling over the tokens, then unit length, as the model was
//! trained: the dot product of two vectors is their cosine.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// Tokens a text is cut to. The model's own limit is 256, but a text's cost grows faster
/// than its length: at 128 the library embeds 3x faster, and on the judged libraries
/// read-next and search were as good or better (at 64 both fell).
pub const MAX_TOKENS: usize = 128;

/// A loaded model, shared by every request; `embed` runs on the calling thread (the
/// blocking pool).
pub struct LocalModel {
    model: BertModel,
    tokenizer: Tokenizer,
    dims: usize,
    name: String,
    key: String,
}

impl LocalModel {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let read = |file: &str| -> anyhow::Result<Vec<u8>> {
            let path: PathBuf = dir.join(file);
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
        };
        let config: Config = serde_json::from_slice(&read("config.json")?)
            .with_context(|| format!("{}/config.json is no BERT configuration", dir.display()))?;
        let mut tokenizer = Tokenizer::from_bytes(read("tokenizer.json")?)
            .map_err(|e| anyhow!("{}/tokenizer.json: {e}", dir.display()))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| anyhow!("tokenizer truncation: {e}"))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
        let weights = read("model.safetensors")?;
        // Stored vectors are keyed by the model: a hash of its weights, configuration and
        // tokenizer, so another model (or a fine-tune of the same size) never reads them,
        // and replicas share them whatever their folders are called.
        let fingerprint = crate::meaning::bytes_hash(&[
            &weights,
            &read("config.json")?,
            &read("tokenizer.json")?,
        ]);
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .context("reading model.safetensors")?;
        let model = BertModel::load(vb, &config).context("loading the BERT weights")?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".to_owned());
        let loaded = Self {
            model,
            tokenizer,
            dims: config.hidden_size,
            key: format!("{}:{fingerprint:016x}", config.hidden_size),
            name,
        };
        // A model that cannot embed a text of the longest length fails here, at start,
        // and not on a visitor's query.
        let probe = "probe ".repeat(MAX_TOKENS);
        let v = loaded
            .embed(&[probe.as_str()])
            .context("the model does not embed a test text")?;
        anyhow::ensure!(
            v.len() == 1 && v[0].len() == loaded.dims && v[0].iter().all(|x| x.is_finite()),
            "the model's vectors are not of its {} dimensions",
            loaded.dims
        );
        Ok(loaded)
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The model's folder name, which names it in logs and in the stored vectors' key.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What names this model's vectors in the database.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// One unit vector per text, in order. Texts longer than `MAX_TOKENS` tokens are cut.
    pub fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| anyhow!("tokenizing: {e}"))?;
        let len = encodings.first().map_or(0, |e| e.get_ids().len());
        let n = encodings.len();
        let mut ids = Vec::with_capacity(n * len);
        let mut types = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for e in &encodings {
            ids.extend_from_slice(e.get_ids());
            types.extend_from_slice(e.get_type_ids());
            mask.extend_from_slice(e.get_attention_mask());
        }
        let device = &self.model.device;
        let ids = Tensor::from_vec(ids, (n, len), device)?;
        let types = Tensor::from_vec(types, (n, len), device)?;
        let mask = Tensor::from_vec(mask, (n, len), device)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        // Mean over the real tokens (padding masked out).
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let mut vectors: Vec<Vec<f32>> = mean.to_vec2()?;
        for v in &mut vectors {
            normalize(v);
        }
        Ok(vectors)
    }
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v {
            *x /= norm;
        }
    }
}
