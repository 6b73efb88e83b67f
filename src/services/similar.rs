//! `similarAssets`: the assets most like one asset, by meaning when the embedding model has
//! vectors, by words otherwise. No audience, no stage: what a "more like this" strip or a
//! content team's duplicate check asks.

use std::collections::HashMap;
use std::sync::Arc;

use super::Library;
use crate::domain::{Asset, AssetFilter, AssetStatus, SimilarAssets, SimilarityBasis};
use crate::error::AppResult;
use crate::meaning::Vectors;
use crate::search::{SearchIndex, SimilarTo};

/// The nearest vectors checked against the filter first. When fewer than a page of them
/// pass, the filter is selective: the assets it admits are compared one by one.
const NEAREST_FIRST: usize = 256;
/// Characters of the seed's body its telling words are read from, as for read-next: a
/// page of 2 MB costs no more than its opening.
const WORDS_BODY_CHARS: usize = 6_000;

impl Library {
    /// The `first` assets the filter lets through most like `seed` (never itself).
    pub async fn similar_assets(
        &self,
        seed: Asset,
        first: usize,
        filter: AssetFilter,
    ) -> AppResult<SimilarAssets> {
        // Only published assets are embedded: a list of drafts or retired assets is
        // compared by words.
        let published_only = filter.effective_statuses() == [AssetStatus::Published];
        let target = if published_only {
            self.asset_vector(&seed).await?
        } else {
            None
        };
        if let Some(target) = target {
            let vectors = self.meaning.vectors();
            let seed_id = seed.id.to_string();
            let items = self
                .read_index(move |index| {
                    nearest_admitted(index, &vectors, &target, &seed_id, first, &filter)
                })
                .await?;
            return Ok(SimilarAssets {
                by: SimilarityBasis::Meaning,
                items,
            });
        }
        let mut found = self
            .read_index(move |index| {
                index.similar(&similar_to(&seed), &filter, first, &[seed.id.to_string()])
            })
            .await?;
        found.truncate(first);
        // BM25 says nothing on its own scale: the best match is 1.
        let best = found
            .first()
            .map_or(1.0, |(_, s)| f64::from(*s).max(f64::MIN_POSITIVE));
        Ok(SimilarAssets {
            by: SimilarityBasis::Words,
            items: found
                .into_iter()
                .map(|(asset, score)| (Arc::new(asset), f64::from(score) / best))
                .collect(),
        })
    }
}

/// The `first` assets `filter` lets through nearest `target` in meaning (ties by id),
/// leaving out `seed`. The top whatever the filter, within the int8 codes' precision: the
/// nearest vectors are checked first; when fewer than a page of them pass, every asset the
/// filter admits is compared (`Vectors::cosine`), which costs about a scan of the library.
fn nearest_admitted(
    index: &SearchIndex,
    vectors: &Vectors,
    target: &[f32],
    seed: &str,
    first: usize,
    filter: &AssetFilter,
) -> AppResult<Vec<(Arc<Asset>, f64)>> {
    let k = NEAREST_FIRST.max(first.saturating_mul(4));
    let near = vectors.nearest(target, k, |i| i != seed);
    // Checked a few at a time, so a page loads about as many assets as it shows.
    let mut items = Vec::with_capacity(first);
    for chunk in near.chunks(first.saturating_mul(2).max(16)) {
        items.extend(in_order(index.admitted(&ids_of(chunk), filter)?, chunk));
        if items.len() >= first {
            break;
        }
    }
    if items.len() < first && near.len() == k {
        let mut all: Vec<(String, f32)> = index
            .admitted_ids(filter)?
            .into_iter()
            .filter(|i| i != seed)
            .filter_map(|i| vectors.cosine(&i, target).map(|c| (i, c)))
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(first);
        items = in_order(index.admitted(&ids_of(&all), filter)?, &all);
    }
    items.truncate(first);
    Ok(items)
}

fn ids_of(scored: &[(String, f32)]) -> Vec<String> {
    scored.iter().map(|(id, _)| id.clone()).collect()
}

/// `assets` in the order of `scored`, each with its cosine.
fn in_order(assets: Vec<Arc<Asset>>, scored: &[(String, f32)]) -> Vec<(Arc<Asset>, f64)> {
    let mut by_id: HashMap<String, Arc<Asset>> =
        assets.into_iter().map(|a| (a.id.to_string(), a)).collect();
    scored
        .iter()
        .filter_map(|(id, cosine)| by_id.remove(id).map(|a| (a, f64::from(*cosine))))
        .collect()
}

fn similar_to(asset: &Asset) -> SimilarTo<'_> {
    SimilarTo {
        title: &asset.title,
        summary: &asset.summary,
        body: crate::domain::opening(&asset.body, WORDS_BODY_CHARS),
        language: &asset.language,
        concerns: &asset.concerns,
        topics: &asset.topics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AssetDraft, ContentType};
    use crate::meaning::model::normalize;
    use crate::search::{IndexLock, IndexOp, open};

    /// A unit vector along `angle` in the plane of the first two dimensions.
    fn toward(angle: f32, dims: usize) -> Vec<f32> {
        let mut v = vec![0.0; dims];
        v[0] = angle.cos();
        v[1] = angle.sin();
        normalize(&mut v);
        v
    }

    #[test]
    fn nearest_admitted_fills_a_page_through_any_filter_in_cosine_order() {
        let dir = tempfile::tempdir().unwrap();
        let lock = IndexLock::acquire(dir.path()).unwrap();
        let (index, mut writer) = open(&lock, 32 * 1024 * 1024).unwrap();
        let page = |id: &str, content_type: &str, status: AssetStatus| {
            let mut asset = AssetDraft {
                id: Some(id.to_owned()),
                title: Some(format!("Page {id}")),
                content_type: Some(content_type.to_owned()),
                ..AssetDraft::default()
            }
            .validate()
            .unwrap();
            asset.status = status;
            asset
        };
        const DIMS: usize = 8;
        let mut vectors = Vectors::new(DIMS);
        let mut ops = Vec::new();
        // 400 blog posts close to the seed (angles 0.001 to 0.4), five case studies far from
        // it (angles 2.0 to 2.4, past every post), one retired post nearest of all.
        let mut add = |id: String, kind: &str, status: AssetStatus, angle: f32| {
            let v = toward(angle, DIMS);
            vectors.insert(&id, "h", 0, &v, &v);
            ops.push(IndexOp::Upsert(Box::new(page(&id, kind, status))));
        };
        add("seed".into(), "BLOG_POST", AssetStatus::Published, 0.0);
        for i in 0..400 {
            let angle = 0.001 * (i + 1) as f32;
            add(
                format!("post-{i:03}"),
                "BLOG_POST",
                AssetStatus::Published,
                angle,
            );
        }
        for i in 0..5 {
            let angle = 2.4 - 0.1 * i as f32;
            add(
                format!("case-{i}"),
                "CASE_STUDY",
                AssetStatus::Published,
                angle,
            );
        }
        add("old".into(), "BLOG_POST", AssetStatus::Retired, 0.0001);
        writer.stage(ops).unwrap();
        writer.commit(1).unwrap();
        drop(lock);
        let target = toward(0.0, DIMS);
        let ids = |items: Vec<(Arc<Asset>, f64)>| -> Vec<String> {
            items.iter().map(|(a, _)| a.id.to_string()).collect()
        };

        // Published only, the seed left out: the nearest posts, in order.
        let open_filter = AssetFilter::default();
        let near = nearest_admitted(&index, &vectors, &target, "seed", 3, &open_filter).unwrap();
        assert!(near.windows(2).all(|w| w[0].1 >= w[1].1), "{near:?}");
        assert_eq!(ids(near), ["post-000", "post-001", "post-002"]);

        // No case study is among the 256 nearest: the filter's own assets are compared.
        let cases = AssetFilter {
            content_types: vec![ContentType::CaseStudy],
            ..AssetFilter::default()
        };
        let found = nearest_admitted(&index, &vectors, &target, "seed", 3, &cases).unwrap();
        assert_eq!(ids(found), ["case-4", "case-3", "case-2"]);
        let all = nearest_admitted(&index, &vectors, &target, "seed", 10, &cases).unwrap();
        assert_eq!(all.len(), 5);

        // A status the filter names is admitted like any other value.
        let retired = AssetFilter {
            statuses: vec![AssetStatus::Retired],
            ..AssetFilter::default()
        };
        let old = nearest_admitted(&index, &vectors, &target, "seed", 3, &retired).unwrap();
        assert_eq!(ids(old), ["old"]);
    }
}
