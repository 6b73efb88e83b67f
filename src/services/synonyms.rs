//! The library's synonym groups: read from the database at most every few seconds (so
//! every replica follows an edit within moments), replaced as a whole by editors.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Library;
use crate::domain::Synonyms;
use crate::error::{AppError, AppResult};

/// How long a replica answers with the groups it read last.
const REFRESH: Duration = Duration::from_secs(5);

/// The groups last read, when, and a version that changes with them (for the response
/// cache).
#[derive(Default)]
pub(super) struct SynonymBoard {
    current: Mutex<Option<(Instant, Arc<Synonyms>, u64)>>,
}

impl SynonymBoard {
    pub(super) fn version(&self) -> u64 {
        self.current
            .lock()
            .map_or(0, |c| c.as_ref().map_or(0, |(_, _, v)| *v))
    }

    fn fresh(&self) -> Option<Arc<Synonyms>> {
        let current = self.current.lock().ok()?;
        let (read, groups, _) = current.as_ref()?;
        (read.elapsed() < REFRESH).then(|| groups.clone())
    }

    fn put(&self, groups: Synonyms) -> Arc<Synonyms> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        groups.groups().hash(&mut hasher);
        let groups = Arc::new(groups);
        if let Ok(mut current) = self.current.lock() {
            *current = Some((Instant::now(), groups.clone(), hasher.finish()));
        }
        groups
    }
}

impl Library {
    /// The synonym groups, read again when the last read is older than a few seconds.
    pub async fn synonyms(&self) -> AppResult<Arc<Synonyms>> {
        if let Some(groups) = self.synonyms.fresh() {
            return Ok(groups);
        }
        let stored = self.store.synonym_groups().await?;
        // Stored groups were checked when written; one that no longer parses is skipped
        // rather than failing every search.
        let groups = stored
            .iter()
            .filter_map(|g| Synonyms::parse(std::slice::from_ref(g)).ok())
            .flat_map(|s| s.groups().to_vec())
            .collect::<Vec<_>>();
        let parsed = Synonyms::parse(&groups).unwrap_or_default();
        Ok(self.synonyms.put(parsed))
    }

    /// Replaces the synonym groups; every problem is reported at once and nothing is
    /// written if there is one.
    pub async fn set_synonyms(&self, groups: Vec<Vec<String>>) -> AppResult<Arc<Synonyms>> {
        let parsed = Synonyms::parse(&groups)
            .map_err(|problems| AppError::bad_input(format!("groups: {}", problems.join("; "))))?;
        replace_synonym_groups(&self.store, &parsed).await?;
        Ok(self.synonyms.put(parsed))
    }

    /// What a query gains from the synonym groups (empty for text with query syntax, which
    /// is taken as written).
    pub(super) async fn expansions(&self, text: Option<&str>) -> AppResult<Vec<String>> {
        match text {
            Some(text) if !text.trim().is_empty() => Ok(self.synonyms().await?.expand(text)),
            _ => Ok(Vec::new()),
        }
    }
}

/// Synonym groups from a text file: one group a line, terms separated by commas (`churn,
/// retention, attrition`); blank lines and lines starting with `#` are skipped. Problems
/// are named by line.
pub fn read_synonym_file(text: &str) -> Result<Vec<Vec<String>>, Vec<String>> {
    let mut groups = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim().trim_start_matches('\u{feff}');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let group: Vec<String> = line
            .split([',', '，'])
            .map(|t| t.trim().to_owned())
            .collect();
        match Synonyms::parse(std::slice::from_ref(&group)) {
            Ok(_) => groups.push(group),
            Err(e) => problems.extend(
                e.into_iter()
                    .map(|p| format!("line {}: {}", i + 1, p.trim_start_matches("group 0: "))),
            ),
        }
    }
    if problems.is_empty() {
        Ok(groups)
    } else {
        Err(problems)
    }
}

/// Replaces every synonym group with checked ones (`setSynonyms`, `stagefit synonyms
/// set`): servers read them again within 5 s.
pub async fn replace_synonym_groups(
    store: &crate::store::Store,
    synonyms: &Synonyms,
) -> crate::error::AppResult<()> {
    store.replace_synonym_groups(synonyms.groups()).await
}
