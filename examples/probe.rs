use std::time::Instant;
use tantivy::collector::{Collector, SegmentCollector, TopDocs};
use tantivy::query::*;
use tantivy::schema::Field;
use tantivy::{DocId, Index, Score, SegmentReader, Term};

fn cs(f: Field, v: &str, s: f32) -> Box<dyn Query> {
    Box::new(ConstScoreQuery::new(
        Box::new(TermQuery::new(
            Term::from_field_text(f, v),
            tantivy::schema::IndexRecordOption::Basic,
        )),
        s,
    ))
}

struct Fast;
struct FastSeg {
    stage: std::sync::Arc<dyn tantivy::columnar::ColumnValues<u64>>,
    role: std::sync::Arc<dyn tantivy::columnar::ColumnValues<u64>>,
    heap: Vec<(f32, DocId)>,
    min: f32,
}
impl Collector for Fast {
    type Fruit = Vec<(f32, DocId)>;
    type Child = FastSeg;
    fn for_segment(&self, _: u32, r: &SegmentReader) -> tantivy::Result<FastSeg> {
        Ok(FastSeg {
            stage: r.fast_fields().u64("stage_mask")?.first_or_default_col(0),
            role: r.fast_fields().u64("role_mask")?.first_or_default_col(0),
            heap: Vec::new(),
            min: 0.0,
        })
    }
    fn requires_scoring(&self) -> bool {
        false
    }
    fn merge_fruits(&self, f: Vec<Vec<(f32, DocId)>>) -> tantivy::Result<Vec<(f32, DocId)>> {
        Ok(f.into_iter().flatten().collect())
    }
}
impl SegmentCollector for FastSeg {
    type Fruit = Vec<(f32, DocId)>;
    fn collect(&mut self, doc: DocId, _: Score) {
        let sm = self.stage.get_val(doc);
        let rm = self.role.get_val(doc);
        let s = if sm & 4 != 0 {
            3.0
        } else if sm & 8 != 0 {
            1.8
        } else if sm & 2 != 0 {
            0.9
        } else {
            0.0
        } + if rm & 2 != 0 {
            2.0
        } else if rm == 0 {
            1.2
        } else {
            0.0
        };
        if s > self.min || self.heap.len() < 50 {
            self.heap.push((s, doc));
            if self.heap.len() > 200 {
                self.heap.sort_by(|a, b| b.0.total_cmp(&a.0));
                self.heap.truncate(50);
                self.min = self.heap[49].0;
            }
        }
    }
    fn collect_block(&mut self, docs: &[DocId]) {
        let mut sm = [0u64; 64];
        let mut rm = [0u64; 64];
        let n = docs.len();
        self.stage.get_vals(docs, &mut sm[..n]);
        self.role.get_vals(docs, &mut rm[..n]);
        for i in 0..n {
            let s = STAGE_T[(sm[i] & 31) as usize] + ROLE_T[(rm[i] & 31) as usize];
            if s > self.min {
                self.heap.push((s, docs[i]));
                if self.heap.len() > 200 {
                    self.heap.sort_by(|a, b| b.0.total_cmp(&a.0));
                    self.heap.truncate(50);
                    self.min = self.heap[49].0;
                }
            }
        }
    }
    fn harvest(self) -> Self::Fruit {
        self.heap
    }
}
static STAGE_T: [f32; 32] = {
    let mut t = [0.0f32; 32];
    let mut m = 0;
    while m < 32 {
        t[m] = if m & 4 != 0 {
            3.0
        } else if m & 8 != 0 {
            1.8
        } else if m & 2 != 0 {
            0.9
        } else {
            0.0
        };
        m += 1;
    }
    t
};
static ROLE_T: [f32; 32] = {
    let mut t = [0.0f32; 32];
    let mut m = 0;
    while m < 32 {
        t[m] = if m & 2 != 0 {
            2.0
        } else if m == 0 {
            1.2
        } else {
            0.0
        };
        m += 1;
    }
    t
};

fn main() -> tantivy::Result<()> {
    let dir = std::fs::read_to_string("/tmp/bench/index/CURRENT").unwrap();
    let index = Index::open_in_dir(format!("/tmp/bench/index/{}", dir.trim()))?;
    let schema = index.schema();
    let f = |n: &str| schema.get_field(n).unwrap();
    let reader = index.reader()?;
    let searcher = reader.searcher();
    println!(
        "docs {} segments {}",
        searcher.num_docs(),
        searcher.segment_readers().len()
    );
    let filter: Box<dyn Query> = Box::new(ConstScoreQuery::new(
        Box::new(TermQuery::new(
            Term::from_field_text(f("status"), "PUBLISHED"),
            tantivy::schema::IndexRecordOption::Basic,
        )),
        0.0,
    ));
    let build = || -> BooleanQuery {
        BooleanQuery::new(vec![
            (Occur::Must, filter.box_clone()),
            (
                Occur::Should,
                Box::new(DisjunctionMaxQuery::new(vec![
                    cs(f("stage"), "DECISION", 3.0),
                    cs(f("stage"), "ADOPTION", 1.8),
                    cs(f("stage"), "CONSIDERATION", 0.9),
                ])),
            ),
            (
                Occur::Should,
                Box::new(DisjunctionMaxQuery::new(vec![
                    cs(f("role"), "TECHNICAL_INTEGRATOR", 2.0),
                    cs(f("role"), "ANY", 1.2),
                ])),
            ),
            (
                Occur::Should,
                Box::new(DisjunctionMaxQuery::new(vec![
                    cs(f("industry"), "financial-services/payments", 1.5),
                    cs(f("industry"), "financial-services", 0.9),
                    cs(f("industry"), "ANY", 0.6),
                ])),
            ),
            (Occur::Should, cs(f("language"), "en", 2.0)),
        ])
    };
    for name in ["union", "fast", "fast-all"] {
        let mut times = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            if name == "union" {
                let q = build();
                let r = searcher.search(&q, &TopDocs::with_limit(50).order_by_score())?;
                assert!(r.len() == 50);
            } else if name == "fast" {
                let r = searcher.search(&filter, &Fast)?;
                assert!(r.len() >= 50);
            } else {
                let r = searcher.search(&AllQuery, &Fast)?;
                assert!(r.len() >= 50);
            }
            times.push(t.elapsed().as_micros());
        }
        times.sort();
        println!("{name}: p50 {}us p99 {}us", times[100], times[198]);
    }
    Ok(())
}
