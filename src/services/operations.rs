//! Safelisted operations: GraphQL documents an operator registered, known by the SHA-256
//! of their exact text. With `serve --publishable-safelist`, web pages (publishable keys
//! and visitor tokens) may run only these; anyone may run one by its hash
//! (`extensions.persistedQuery.sha256Hash`) instead of sending its text.
//!
//! The list is read from the database and reused for [`KEY_CACHE`](super::KEY_CACHE), so a document
//! registered through another process is known here within that time.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use sha2::{Digest, Sha256};

use super::ttl::TtlCache;
use crate::domain::Operation;
use crate::error::{AppError, AppResult};
use crate::store::Store;

/// Hex SHA-256 of a document's exact text.
pub fn document_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Hash -> document text.
type Documents = Arc<HashMap<String, Arc<str>>>;

pub struct Safelist {
    store: Store,
    loaded: TtlCache<(), Documents>,
}

impl Safelist {
    /// The safelist in `store`, read again at most every `cache`.
    pub fn new(store: Store, cache: std::time::Duration) -> Self {
        Self {
            store,
            loaded: TtlCache::new(cache),
        }
    }

    /// Registers a document (its whole text: one operation or several, picked by
    /// `operationName`), which the caller checked is an executable GraphQL document
    /// (`graphql::check_document`). Whether it was new, and its entry.
    pub async fn add(&self, document: &str, name: &str) -> AppResult<(bool, Operation)> {
        if document.trim().is_empty() {
            return Err(AppError::bad_input("the document is empty"));
        }
        let operation = Operation {
            hash: document_hash(document),
            name: name.to_owned(),
            document: document.to_owned(),
            created_at: Utc::now(),
        };
        let new = self.store.insert_operation(&operation).await?;
        self.forget();
        Ok((new, operation))
    }

    pub async fn list(&self) -> AppResult<Vec<Operation>> {
        self.store.operations().await
    }

    /// Removes a document by its hash; `NOT_FOUND` when it is not listed.
    pub async fn remove(&self, hash: &str) -> AppResult<()> {
        if !self.store.delete_operation(hash.trim()).await? {
            return Err(AppError::NotFound(format!(
                "no safelisted operation with hash {hash:?}"
            )));
        }
        self.forget();
        Ok(())
    }

    fn forget(&self) {
        self.loaded.clear();
    }

    async fn documents(&self) -> AppResult<Documents> {
        self.loaded
            .get_or_load(&(), async {
                Ok(Arc::new(
                    self.store
                        .operations()
                        .await?
                        .into_iter()
                        .map(|o| (o.hash, Arc::from(o.document)))
                        .collect(),
                ))
            })
            .await
    }

    /// The registered document with this hash.
    pub async fn document(&self, hash: &str) -> AppResult<Option<Arc<str>>> {
        Ok(self.documents().await?.get(hash).cloned())
    }

    /// Whether this exact text is registered.
    pub async fn contains(&self, text: &str) -> AppResult<bool> {
        Ok(self.documents().await?.contains_key(&document_hash(text)))
    }
}
