//! The walk against exhaustive and brute-force scoring, on the demo library.

use std::collections::HashMap;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::IndexRecordOption;

use super::*;

fn rank_ctx(weights: &Weights, now: i64, half_life_days: f64, text: Option<&str>) -> RankContext {
    RankContext {
        weights: *weights,
        now: chrono::DateTime::from_timestamp(now, 0).unwrap(),
        half_life_days,
        query: text.map(str::to_owned),
        synonyms: Vec::new(),
        sequels: Vec::new(),
        linked: Vec::new(),
        similar_to: None,
        semantic_ratio: 0.0,
        also_read: None,
    }
}
use crate::domain::{AssetDraft, Concern, IndustrySlug, Language, Role, Stage, TaxonomyValue};
use crate::domain::{WeightOverrides, Weights};
use crate::ranking::{Audience, RankContext, explain, graded_dimensions};
use crate::search::{IndexLock, IndexOp, open};

/// Every live document's summed BM25 for the text, by asset id, from one plain disjunction
/// over the whole index: no tiers, no bounds.
fn brute_force_bm25(index: &SearchIndex, text: &str) -> HashMap<String, f32> {
    let searcher = index.inner.reader.searcher();
    let clauses: Vec<(Occur, Box<dyn Query>)> = index
        .text_terms(text)
        .into_iter()
        .map(|(term, boost)| {
            let term: Box<dyn Query> = Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs));
            (
                Occur::Should,
                Box::new(BoostQuery::new(term, boost)) as Box<dyn Query>,
            )
        })
        .collect();
    let limit = searcher.num_docs().max(1) as usize;
    searcher
        .search(
            &BooleanQuery::new(clauses),
            &TopDocs::with_limit(limit).order_by_score(),
        )
        .unwrap()
        .into_iter()
        .map(|(score, address)| {
            (
                index.load_asset(&searcher, address).unwrap().id.to_string(),
                score,
            )
        })
        .collect()
}

fn demo_index() -> (tempfile::TempDir, SearchIndex, Vec<Asset>) {
    let dir = tempfile::tempdir().unwrap();
    let lock = IndexLock::acquire(dir.path()).unwrap();
    let (index, mut writer) = open(&lock, 32 * 1024 * 1024).unwrap();
    let assets: Vec<Asset> = include_str!("../../../demo/library.jsonl")
        .lines()
        .map(|l| {
            serde_json::from_str::<AssetDraft>(l)
                .unwrap()
                .validate()
                .unwrap()
        })
        .collect();
    let n = assets.len();
    // Two commits, so the index has more than one segment.
    for (seq, half) in assets.chunks(n.div_ceil(2)).enumerate() {
        let ops = half
            .iter()
            .cloned()
            .map(|a| IndexOp::Upsert(Box::new(a)))
            .collect();
        writer.stage(ops).unwrap();
        writer.commit(seq as i64 + 1).unwrap();
    }
    // A third commit retires every seventh asset, so the first segments hold deleted
    // (published) versions that must never be found.
    let mut assets = assets;
    let mut retired = Vec::new();
    for asset in assets.iter_mut().step_by(7) {
        asset.status = crate::domain::AssetStatus::Retired;
        retired.push(IndexOp::Upsert(Box::new(asset.clone())));
    }
    writer.stage(retired).unwrap();
    writer.commit(3).unwrap();
    drop(lock);
    (dir, index, assets)
}

fn ids(c: &Candidates) -> Vec<(String, i64)> {
    c.items
        .iter()
        .map(|i| (i.asset.id.to_string(), (i.score * 1e9).round() as i64))
        .collect()
}

#[test]
fn tiers_give_exactly_the_brute_force_top_k() {
    let (_dir, index, assets) = demo_index();
    let n = assets.len();
    let now = chrono::Utc::now().timestamp();
    let industries = [
        None,
        Some("financial-services/payments"),
        Some("retail"),
        Some("healthcare"),
    ];
    let roles = [
        None,
        Some(Role::TechnicalIntegrator),
        Some(Role::Finance),
        Some(Role::Procurement),
    ];
    let texts = [
        None,
        Some("reconciliation"),
        Some("结算"),
        Some("security api"),
    ];
    let weight_sets = [
        WeightOverrides::default(),
        WeightOverrides {
            stage: Some(0.0),
            text: Some(6.0),
            ..Default::default()
        },
        WeightOverrides {
            language: Some(0.0),
            freshness: Some(4.0),
            ..Default::default()
        },
    ];
    let filters = [
        AssetFilter::default(),
        AssetFilter {
            content_types: vec![crate::domain::ContentType::CaseStudy],
            ..Default::default()
        },
    ];
    let mut checked = 0;
    let mut pruned_tiers = 0;
    for (case, stage) in <Stage as TaxonomyValue>::ALL.iter().enumerate() {
        for (r, role) in roles.iter().enumerate() {
            let industry = industries[(case + r) % industries.len()];
            let text = texts[(case * 3 + r) % texts.len()];
            let overrides = &weight_sets[(case + 2 * r) % weight_sets.len()];
            let filter = &filters[(case + r) % filters.len()];
            let audience = Audience {
                stage: *stage,
                role: *role,
                industry: industry.map(|i| IndustrySlug::parse(i).unwrap()),
                language: Language::parse(if case % 2 == 0 { "en" } else { "zh" }).unwrap(),
                concerns: if r == 2 {
                    vec![Concern::Cost, Concern::Risk]
                } else {
                    vec![]
                },
            };
            let weights = Weights::default().with(overrides).unwrap();
            let dims = graded_dimensions(&audience);
            // The excluded: one named asset and every ninth of the library (some of
            // them drafts or retired), skipped by the collector, not by the query.
            let mut exclude = vec!["pricing-sheet".to_owned()];
            exclude.extend(assets.iter().step_by(9).map(|a| a.id.to_string()));
            // The reference scores every document in one pass per tier; half the
            // pruned cases slice every tier by freshness.
            let sliced = if (case + r) % 2 == 0 { 0 } else { usize::MAX };
            let rank = rank_ctx(&weights, now, 365.0, text);
            let request = |window, slice_tiers_above| RecommendRequest {
                rank: &rank,
                dimensions: &dims,
                filter,
                exclude_ids: &exclude,
                popular_ids: &[],
                concerns: TaxonomyValue::mask(&audience.concerns),
                window,
                slice_tiers_above,
                text_first: false,
                audience: (audience.stage, audience.role),
            };
            let everything = index.recommend(&request(n, usize::MAX)).unwrap();
            // The reference holds every published asset the filter lets through,
            // each once: no tier lost or repeated one.
            let mut listed: Vec<&str> = everything
                .items
                .iter()
                .map(|c| c.asset.id.as_str())
                .collect();
            listed.sort();
            listed.dedup();
            let eligible = assets
                .iter()
                .filter(|a| a.status == crate::domain::AssetStatus::Published)
                .filter(|a| !exclude.iter().any(|e| e == a.id.as_str()))
                .filter(|a| {
                    filter.content_types.is_empty()
                        || filter.content_types.contains(&a.content_type)
                })
                .count();
            assert_eq!(listed.len(), eligible, "{audience:?} {text:?}");
            assert_eq!(everything.items.len(), eligible, "{audience:?} {text:?}");
            // The brute force: every eligible asset scored by the ranking's own
            // explanation, with its BM25 from a plain disjunction over the index.
            let bm25 = match text {
                Some(t) if weights.text > 0.0 => brute_force_bm25(&index, t),
                _ => HashMap::new(),
            };
            let ctx = &rank;
            let mut brute: Vec<i64> = assets
                .iter()
                .filter(|a| a.status == crate::domain::AssetStatus::Published)
                .filter(|a| !exclude.iter().any(|e| e == a.id.as_str()))
                .filter(|a| {
                    filter.content_types.is_empty()
                        || filter.content_types.contains(&a.content_type)
                })
                .map(|a| {
                    let b = bm25.get(a.id.as_str()).copied().unwrap_or(0.0);
                    let scored = explain(
                        &audience,
                        &dims,
                        a,
                        ctx,
                        (b, everything.text_scale),
                        None,
                        0.0,
                    );
                    (scored.score * 1e9).round() as i64
                })
                .collect();
            brute.sort_unstable_by(|a, b| b.cmp(a));
            assert_eq!(brute.len(), eligible);
            for k in [1, 5, 10] {
                let pruned = index.recommend(&request(k, sliced)).unwrap();
                let got: Vec<i64> = ids(&pruned).iter().map(|g| g.1).collect();
                assert_eq!(got.len(), k.min(brute.len()), "{audience:?} {text:?} k={k}");
                for (g, b) in got.iter().zip(&brute) {
                    assert!(
                        (g - b).abs() <= 2,
                        "{audience:?} {text:?} k={k}: walk {got:?}, brute force {:?}",
                        &brute[..k.min(brute.len())]
                    );
                }
                let want: Vec<_> = ids(&everything).into_iter().take(k).collect();
                // Equal scores may come in either order; compare scores position by
                // position and ids as sets of the strictly better ones.
                let got = ids(&pruned);
                assert_eq!(
                    got.iter().map(|g| g.1).collect::<Vec<_>>(),
                    want.iter().map(|w| w.1).collect::<Vec<_>>(),
                    "{audience:?} {text:?} k={k}"
                );
                assert!(
                    pruned
                        .items
                        .iter()
                        .all(|c| !exclude.iter().any(|e| e == c.asset.id.as_str()))
                );
                assert!(
                    pruned
                        .items
                        .iter()
                        .all(|c| c.asset.status == crate::domain::AssetStatus::Published)
                );
                pruned_tiers += everything.tiers_searched - pruned.tiers_searched;
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 60);
    assert!(pruned_tiers > 0, "the walk never stopped early");
}

#[test]
fn popular_assets_outside_the_walk_come_back_when_eligible() {
    let (_dir, index, assets) = demo_index();
    let audience = Audience {
        stage: Stage::Adoption,
        role: Some(Role::TechnicalIntegrator),
        industry: None,
        language: Language::english(),
        concerns: vec![],
    };
    let weights = Weights::default();
    let dims = graded_dimensions(&audience);
    let published: Vec<&Asset> = assets
        .iter()
        .filter(|a| a.status == crate::domain::AssetStatus::Published)
        .collect();
    // Awareness assets in Chinese: far below the two best of an English adoption
    // audience. One is excluded, and one draft is named too.
    let far: Vec<String> = published
        .iter()
        .filter(|a| a.language.primary() == "zh" && a.stages == [Stage::Awareness])
        .take(3)
        .map(|a| a.id.to_string())
        .collect();
    assert_eq!(far.len(), 3);
    let draft = assets
        .iter()
        .find(|a| a.status == crate::domain::AssetStatus::Draft)
        .unwrap()
        .id
        .to_string();
    let mut popular = far.clone();
    popular.push(draft);
    let exclude = vec![far[2].clone()];
    let got = index
        .recommend(&RecommendRequest {
            rank: &rank_ctx(&weights, chrono::Utc::now().timestamp(), 365.0, Some("api")),
            dimensions: &dims,
            filter: &AssetFilter::default(),
            exclude_ids: &exclude,
            popular_ids: &popular,
            concerns: 0,
            window: 2,
            slice_tiers_above: DEFAULT_SLICE_TIERS_ABOVE,
            text_first: false,
            audience: (Stage::Awareness, None),
        })
        .unwrap();
    let ids: Vec<&str> = got.items.iter().map(|c| c.asset.id.as_str()).collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    // Both score 0: their order between themselves is not defined.
    let mut after_walk = ids[2..].to_vec();
    after_walk.sort_unstable();
    let mut eligible: Vec<&str> = far[..2].iter().map(String::as_str).collect();
    eligible.sort_unstable();
    assert_eq!(
        after_walk, eligible,
        "the two eligible popular ones, after the walk's"
    );
    assert!(got.items[2..].iter().all(|c| c.score == 0.0));
}

/// The text part of a tier skips documents that hold only terms that cannot lift them
/// past the k-th score; many queries and audiences check that it skips nothing that
/// could enter.
#[test]
fn text_tiers_give_exactly_the_exhaustive_top_k() {
    let (_dir, index, assets) = demo_index();
    let now = chrono::Utc::now().timestamp();
    let weights = Weights::default();
    let filter = AssetFilter::default();
    let texts = [
        "reconciliation",
        "payment reconciliation",
        "api integration security",
        "pricing",
        "roi cost",
        "case study",
        "结算",
        "treasury forecasting cash",
    ];
    let mut checked = 0;
    for stage in <Stage as TaxonomyValue>::ALL {
        for role in [None, Some(Role::TechnicalIntegrator)] {
            for text in texts {
                let audience = Audience {
                    stage: *stage,
                    role,
                    industry: None,
                    language: Language::english(),
                    concerns: vec![],
                };
                let dims = graded_dimensions(&audience);
                let rank = rank_ctx(&weights, now, 365.0, Some(text));
                let request = |window| RecommendRequest {
                    rank: &rank,
                    dimensions: &dims,
                    filter: &filter,
                    exclude_ids: &[],
                    popular_ids: &[],
                    concerns: 0,
                    window,
                    slice_tiers_above: DEFAULT_SLICE_TIERS_ABOVE,
                    text_first: false,
                    audience: (audience.stage, audience.role),
                };
                let everything = index.recommend(&request(assets.len())).unwrap();
                for k in [1, 5] {
                    let pruned = index.recommend(&request(k)).unwrap();
                    let want: Vec<i64> =
                        ids(&everything).into_iter().take(k).map(|w| w.1).collect();
                    let got: Vec<i64> = ids(&pruned).into_iter().map(|g| g.1).collect();
                    assert_eq!(got, want, "{audience:?} {text:?} k={k}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(
        checked,
        <Stage as TaxonomyValue>::ALL.len() * 2 * texts.len() * 2
    );
}

#[test]
fn retrieval_scores_equal_the_explanations() {
    let (_dir, index, _assets) = demo_index();
    let now = chrono::Utc::now();
    let weights = Weights::default();
    for stage in <Stage as TaxonomyValue>::ALL {
        let audience = Audience {
            stage: *stage,
            role: Some(Role::DecisionMaker),
            industry: Some(IndustrySlug::parse("financial-services/banking").unwrap()),
            language: Language::english(),
            concerns: vec![Concern::Validation],
        };
        let dims = graded_dimensions(&audience);
        let ctx = rank_ctx(&weights, now.timestamp(), 365.0, Some("treasury"));
        let found = index
            .recommend(&RecommendRequest {
                rank: &ctx,
                dimensions: &dims,
                filter: &AssetFilter::default(),
                exclude_ids: &[],
                popular_ids: &[],
                concerns: TaxonomyValue::mask(&audience.concerns),
                window: 20,
                slice_tiers_above: 0,
                text_first: false,
                audience: (audience.stage, audience.role),
            })
            .unwrap();
        for c in &found.items {
            let explained = crate::ranking::explain(
                &audience,
                &dims,
                &c.asset,
                &ctx,
                (c.bm25, found.text_scale),
                None,
                0.0,
            );
            assert!(
                (explained.score - c.score).abs() < 1e-9,
                "{} {} vs {}",
                c.asset.id,
                explained.score,
                c.score
            );
        }
    }
}

#[test]
fn links_reach_their_pages_in_order_and_read_a_bounded_number_of_documents() {
    let dir = tempfile::tempdir().unwrap();
    let lock = IndexLock::acquire(dir.path()).unwrap();
    let (index, mut writer) = open(&lock, 32 * 1024 * 1024).unwrap();
    let page = |id: &str, url: &str| {
        AssetDraft {
            id: Some(id.to_owned()),
            title: Some(format!("Page {id}")),
            url: Some(url.to_owned()),
            content_type: Some("BLOG_POST".to_owned()),
            ..AssetDraft::default()
        }
        .validate()
        .unwrap()
    };
    // Five hundred pages share the home page's address.
    let mut ops: Vec<IndexOp> = (0..500)
        .map(|i| IndexOp::Upsert(Box::new(page(&format!("home-{i:03}"), "/"))))
        .collect();
    ops.push(IndexOp::Upsert(Box::new(page("a", "/docs/a/"))));
    // Two retired pages at the pricing address, and the published one.
    for id in ["pricing-2019", "pricing-2020"] {
        let mut old = page(id, "/pricing");
        old.status = crate::domain::AssetStatus::Retired;
        ops.push(IndexOp::Upsert(Box::new(old)));
    }
    ops.push(IndexOp::Upsert(Box::new(page("pricing", "/pricing"))));
    ops.push(IndexOp::Upsert(Box::new(page(
        "b",
        "https://Example.com/docs/b.html",
    ))));
    writer.stage(ops).unwrap();
    writer.commit(1).unwrap();
    drop(lock);
    let key = |target: &str, base: &str| crate::domain::link_key(target, base).unwrap();
    let keys = [
        key("https://example.com/docs/b", "/"),
        key("../a", "/docs/x/y"),
        key("/nowhere", "/"),
    ];
    assert_eq!(index.linked_ids(&keys).unwrap(), vec!["b", "a"]);
    let home = index.linked_ids(&[key("/index.html", "/")]).unwrap();
    assert_eq!(home.len(), crate::search::LINKED_PER_KEY, "{home:?}");
    assert!(home.iter().all(|id| id.starts_with("home-")), "{home:?}");
    // A shared address crowds out no other link, and retired pages take no place.
    let both = index
        .linked_ids(&[key("/", "/"), key("/docs/a", "/"), key("/pricing", "/")])
        .unwrap();
    assert_eq!(
        both[crate::search::LINKED_PER_KEY..],
        ["a", "pricing"],
        "{both:?}"
    );
}
