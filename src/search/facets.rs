//! Value counts over the fast fields of the matching documents, computed in the index.

use std::collections::HashMap;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use crate::domain::{FacetCount, FacetField};

fn column(field: FacetField) -> &'static str {
    match field {
        FacetField::Stage => "stage",
        FacetField::Role => "role",
        FacetField::Industry => "industry",
        FacetField::IndustryTree => "industry_tree",
        FacetField::ContentType => "content_type",
        FacetField::Language => "language",
        FacetField::Topic => "topic",
        FacetField::Status => "status",
    }
}

pub struct FacetCollector {
    fields: Vec<FacetField>,
}

impl FacetCollector {
    pub fn new(fields: Vec<FacetField>) -> Self {
        Self { fields }
    }
}

pub struct FacetSegmentCollector {
    columns: Vec<Option<(StrColumn, Vec<u64>)>>,
}

impl Collector for FacetCollector {
    type Fruit = Vec<FacetCount>;
    type Child = FacetSegmentCollector;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<FacetSegmentCollector> {
        let columns = self
            .fields
            .iter()
            .map(|f| {
                Ok(reader.fast_fields().str(column(*f))?.map(|col| {
                    let n = col.num_terms();
                    (col, vec![0; n])
                }))
            })
            .collect::<tantivy::Result<_>>()?;
        Ok(FacetSegmentCollector { columns })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, segments: Vec<Vec<FacetCount>>) -> tantivy::Result<Vec<FacetCount>> {
        let mut merged: Vec<HashMap<String, u64>> = vec![HashMap::new(); self.fields.len()];
        for segment in segments {
            for (i, facet) in segment.into_iter().enumerate() {
                for (value, count) in facet.values {
                    *merged[i].entry(value).or_default() += count;
                }
            }
        }
        Ok(self
            .fields
            .iter()
            .zip(merged)
            .map(|(field, counts)| {
                let mut values: Vec<(String, u64)> = counts.into_iter().collect();
                values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                FacetCount {
                    field: *field,
                    values,
                }
            })
            .collect())
    }
}

impl SegmentCollector for FacetSegmentCollector {
    type Fruit = Vec<FacetCount>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        for (col, counts) in self.columns.iter_mut().flatten() {
            for ord in col.term_ords(doc) {
                if let Some(c) = counts.get_mut(ord as usize) {
                    *c += 1;
                }
            }
        }
    }

    fn harvest(self) -> Vec<FacetCount> {
        self.columns
            .into_iter()
            .map(|column| {
                let mut values = Vec::new();
                if let Some((col, counts)) = column {
                    let mut text = String::new();
                    for (ord, count) in counts.into_iter().enumerate() {
                        if count > 0 && col.ord_to_str(ord as u64, &mut text).unwrap_or(false) {
                            values.push((text.clone(), count));
                        }
                    }
                }
                // The field is filled in by `merge_fruits`, which knows the order.
                FacetCount {
                    field: FacetField::Stage,
                    values,
                }
            })
            .collect()
    }
}
