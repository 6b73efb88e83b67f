//! The review workflow for tags read from the text: a file of suggestions a content team
//! marks, and declaring what they accepted. Nothing is declared without a person's accept.

use std::collections::HashMap;
use std::io::{Read, Write};

use super::Library;
use super::UpsertOutcome;
use crate::domain::{
    Asset, AssetDraft, Concern, IndustrySlug, Role, Stage, TagSource, TaxonomyValue,
};
use crate::error::{AppError, AppResult};

/// The columns of a review file, in order.
pub const REVIEW_COLUMNS: [&str; 7] = [
    "asset_id",
    "title",
    "field",
    "value",
    "confidence",
    "evidence",
    "accept",
];

/// Most accepted rows one request or file may declare.
pub const MAX_ACCEPTED: usize = 10_000;

/// One suggestion of a review file.
#[derive(Clone, Debug, PartialEq)]
pub struct ReviewRow {
    pub asset_id: String,
    pub title: String,
    pub field: &'static str,
    pub value: String,
    pub confidence: f64,
    pub evidence: String,
}

/// A tag a person accepted: which asset, which kind (`stage`, `role`, `industry`,
/// `concern`) and which value. `place` names it in errors (a line, or `accept[3]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Acceptance {
    pub place: String,
    pub asset_id: String,
    pub field: String,
    pub value: String,
}

/// The suggestions for one asset: every value read from its text at or above
/// `min_confidence` for each kind its content team has not declared.
pub fn review_rows(asset: &Asset, min_confidence: f64) -> Vec<ReviewRow> {
    fn kind<T: TaxonomyValue + PartialEq>(
        out: &mut Vec<ReviewRow>,
        asset: &Asset,
        field: &'static str,
        inferred: &[(T, f64)],
        source: TagSource,
        used: &[T],
        min: f64,
    ) {
        if source == TagSource::Declared {
            return;
        }
        for (value, confidence) in inferred.iter().filter(|(_, c)| *c >= min) {
            out.push(ReviewRow {
                asset_id: asset.id.to_string(),
                title: asset.title.clone(),
                field,
                value: value.name().to_owned(),
                confidence: *confidence,
                evidence: evidence(used.contains(value), source),
            });
        }
    }
    fn evidence(used: bool, source: TagSource) -> String {
        match (used, source) {
            (true, TagSource::Inferred) => "read from the text; ranking uses it now".to_owned(),
            (false, TagSource::Default) => {
                "read from the text, below the threshold ranking uses; the default stands"
                    .to_owned()
            }
            _ => "read from the text; ranking does not use it".to_owned(),
        }
    }
    let e = asset.evidence;
    let i = &asset.inferred;
    let mut out = Vec::new();
    kind(
        &mut out,
        asset,
        "stage",
        &i.stages,
        e.stages.source,
        &asset.stages,
        min_confidence,
    );
    kind(
        &mut out,
        asset,
        "role",
        &i.roles,
        e.roles.source,
        &asset.roles,
        min_confidence,
    );
    if e.industries.source != TagSource::Declared {
        for (value, confidence) in i.industries.iter().filter(|(_, c)| *c >= min_confidence) {
            out.push(ReviewRow {
                asset_id: asset.id.to_string(),
                title: asset.title.clone(),
                field: "industry",
                value: value.to_string(),
                confidence: *confidence,
                evidence: evidence(asset.industries.contains(value), e.industries.source),
            });
        }
    }
    kind(
        &mut out,
        asset,
        "concern",
        &i.concerns,
        e.concerns.source,
        &asset.concerns,
        min_confidence,
    );
    out
}

/// Writes a review file: a header, then one row per suggestion, the `accept` column empty.
pub struct ReviewWriter<W: Write> {
    writer: csv::Writer<W>,
}

impl<W: Write> ReviewWriter<W> {
    pub fn new(output: W) -> csv::Result<Self> {
        let mut writer = csv::Writer::from_writer(output);
        writer.write_record(REVIEW_COLUMNS)?;
        Ok(Self { writer })
    }

    pub fn write(&mut self, row: &ReviewRow) -> csv::Result<()> {
        let title = inert(&row.title);
        self.writer.write_record([
            row.asset_id.as_str(),
            title.as_str(),
            row.field,
            row.value.as_str(),
            &format!("{:.2}", row.confidence),
            row.evidence.as_str(),
            "",
        ])
    }

    pub fn finish(mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

/// A cell a spreadsheet will not run as a formula: text that starts with `=`, `+`, `-`,
/// `@`, a tab or a carriage return gets a leading apostrophe (titles come from whoever feeds
/// the library; `tags apply` does not read them).
fn inert(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

/// At most this many problems are listed; the rest are counted.
const MAX_PROBLEMS: usize = 100;

/// A text quoted in a message, cut to `chars` characters.
fn cut(text: &str, chars: usize) -> String {
    let head = crate::domain::opening(text, chars);
    if head.len() < text.len() {
        format!("{head}...")
    } else {
        head.to_owned()
    }
}

/// A value quoted in a message, cut to 80 characters.
fn shown(value: &str) -> String {
    cut(value, 80)
}

/// The first [`MAX_PROBLEMS`] problems and how many more there were.
fn capped(mut problems: Vec<String>) -> Vec<String> {
    if problems.len() > MAX_PROBLEMS {
        let more = problems.len() - MAX_PROBLEMS;
        problems.truncate(MAX_PROBLEMS);
        problems.push(format!("... and {more} more problems"));
    }
    problems
}

/// The accepted rows of a review file (`accept` is yes, y, x, 1, true or accept in any
/// case; empty or no is not accepted), or every problem with its line number.
pub fn read_review(input: impl Read) -> Result<Vec<Acceptance>, Vec<String>> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let header = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(vec![format!("line 1: not a CSV header: {e}")]),
    };
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let (Some(id), Some(field), Some(value), Some(accept)) = (
        column("asset_id"),
        column("field"),
        column("value"),
        column("accept"),
    ) else {
        return Err(vec![
            "line 1: a review file needs the columns asset_id, field, value and accept (as \
             `stagefit tags suggest` writes them)"
                .to_owned(),
        ]);
    };
    let mut accepted = Vec::new();
    let mut problems = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                problems.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != header.len() {
            problems.push(format!(
                "line {line}: {} cells where the header has {} (a quote left open takes the \
                 lines after it into one cell)",
                record.len(),
                header.len()
            ));
            continue;
        }
        let cell = |i: usize| record.get(i).unwrap_or_default().trim();
        match cell(accept).to_ascii_lowercase().as_str() {
            "" | "no" | "n" | "false" | "0" => continue,
            "yes" | "y" | "x" | "1" | "true" | "accept" => {}
            other => {
                problems.push(format!(
                    "line {line}: accept: {:?} is neither yes nor no (write yes, y, x or 1 \
                     to accept; leave empty to skip)",
                    shown(other)
                ));
                continue;
            }
        }
        accepted.push(Acceptance {
            place: format!("line {line}"),
            asset_id: cell(id).to_owned(),
            field: cell(field).to_owned(),
            value: cell(value).to_owned(),
        });
    }
    if accepted.len() > MAX_ACCEPTED {
        problems.push(format!(
            "{} rows accepted; at most {MAX_ACCEPTED} at a time",
            accepted.len()
        ));
    }
    if problems.is_empty() {
        Ok(accepted)
    } else {
        Err(capped(problems))
    }
}

/// The records of the assets the acceptances touch, with the accepted values declared
/// next to what was declared before. Every problem is reported, with its place.
pub fn declare(
    assets: &HashMap<String, Asset>,
    accepted: &[Acceptance],
) -> Result<Vec<AssetDraft>, Vec<String>> {
    let mut drafts: Vec<(String, AssetDraft)> = Vec::new();
    let mut problems = Vec::new();
    for a in accepted {
        let Some(asset) = assets.get(&a.asset_id) else {
            problems.push(format!(
                "{}: no asset with id {:?}",
                a.place,
                shown(&a.asset_id)
            ));
            continue;
        };
        let canonical = match a.field.to_ascii_lowercase().as_str() {
            "stage" | "stages" => Stage::parse(&a.value).map(|v| ("stage", v.name().to_owned())),
            "role" | "roles" => Role::parse(&a.value).map(|v| ("role", v.name().to_owned())),
            "concern" | "concerns" => {
                Concern::parse(&a.value).map(|v| ("concern", v.name().to_owned()))
            }
            "industry" | "industries" => {
                IndustrySlug::parse(&a.value).map(|v| ("industry", v.to_string()))
            }
            other => Err(format!(
                "field {:?} is not one of stage, role, industry, concern",
                shown(other)
            )),
        };
        let (field, value) = match canonical {
            Ok(found) => found,
            Err(e) => {
                problems.push(format!("{}: {}", a.place, cut(&e, 300)));
                continue;
            }
        };
        let index = match drafts.iter().position(|(id, _)| *id == a.asset_id) {
            Some(i) => i,
            None => {
                drafts.push((a.asset_id.clone(), asset.to_draft()));
                drafts.len() - 1
            }
        };
        let draft = &mut drafts[index].1;
        let list = match field {
            "stage" => &mut draft.stages,
            "role" => &mut draft.roles,
            "concern" => &mut draft.concerns,
            _ => &mut draft.industries,
        };
        if !list.contains(&value) {
            list.push(value);
        }
    }
    if problems.is_empty() {
        Ok(drafts.into_iter().map(|(_, d)| d).collect())
    } else {
        Err(capped(problems))
    }
}

/// What declaring `drafts` does besides the accepted values: an asset that declared
/// nothing becomes a tagged asset, whose empty role list then means "every role" (and no
/// industry "cross-industry") instead of what its text says.
pub fn newly_tagged(assets: &HashMap<String, Asset>, drafts: &[AssetDraft]) -> Vec<String> {
    let mut out = Vec::new();
    for draft in drafts {
        let Some(id) = draft.id.as_deref() else {
            continue;
        };
        let Some(asset) = assets.get(id) else {
            continue;
        };
        let e = asset.evidence;
        let was_untagged = [e.stages, e.roles, e.industries, e.concerns]
            .iter()
            .all(|k| k.source != TagSource::Declared);
        if !was_untagged {
            continue;
        }
        let mut lost = Vec::new();
        if draft.roles.is_empty() && !asset.roles.is_empty() {
            lost.push(format!(
                "its roles read from the text ({}) give way to every role",
                names(&asset.roles)
            ));
        }
        if draft.industries.is_empty() && !asset.industries.is_empty() {
            let read: Vec<String> = asset.industries.iter().map(ToString::to_string).collect();
            lost.push(format!(
                "its industries read from the text ({}) give way to cross-industry",
                read.join(", ")
            ));
        }
        if !lost.is_empty() {
            out.push(format!(
                "{id}: now a tagged asset: {}; accept those rows too to keep them",
                lost.join("; ")
            ));
        }
    }
    out
}

fn names<T: TaxonomyValue>(values: &[T]) -> String {
    values
        .iter()
        .map(|v| v.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Library {
    /// Declares accepted suggestions: all or nothing, and back once the index shows them.
    pub async fn accept_tags(&self, accepted: Vec<Acceptance>) -> AppResult<UpsertOutcome> {
        if accepted.len() > MAX_ACCEPTED {
            return Err(AppError::bad_input(format!(
                "accept: at most {MAX_ACCEPTED} suggestions at a time"
            )));
        }
        let mut ids: Vec<String> = accepted.iter().map(|a| a.asset_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let assets: HashMap<String, Asset> = self
            .store
            .load_assets(&ids)
            .await?
            .into_iter()
            .map(|a| (a.id.to_string(), a))
            .collect();
        let drafts = declare(&assets, &accepted)
            .map_err(|problems| AppError::bad_input(problems.join("; ")))?;
        self.upsert_assets(drafts).await
    }
}

/// Writes the review rows of every asset (`stagefit tags suggest`), reading the library a
/// thousand assets at a time: (assets read, rows written).
pub async fn write_review<W: Write>(
    store: &crate::store::Store,
    writer: &mut ReviewWriter<W>,
    min_confidence: f64,
) -> anyhow::Result<(u64, u64)> {
    let (mut after, mut assets, mut rows) = (None::<String>, 0u64, 0u64);
    loop {
        let page = store
            .assets_after(after.as_deref(), 1_000)
            .await
            .map_err(crate::error::AppError::unmasked)?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.to_string());
        for asset in &page {
            assets += 1;
            for row in review_rows(asset, min_confidence) {
                writer.write(&row)?;
                rows += 1;
            }
        }
    }
    Ok((assets, rows))
}

/// The assets with these ids that exist, by id (`stagefit tags apply`).
pub async fn assets_by_id(
    store: &crate::store::Store,
    ids: &[String],
) -> crate::error::AppResult<HashMap<String, Asset>> {
    Ok(store
        .load_assets(ids)
        .await?
        .into_iter()
        .map(|a| (a.id.to_string(), a))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn untagged() -> Asset {
        AssetDraft {
            id: Some("sdk".into()),
            title: Some("SDK reference: install and configure the API client".into()),
            body: Some("Install the SDK for the hospital's patient records API.".into()),
            content_type: Some("API_DOCS".into()),
            ..AssetDraft::default()
        }
        .validate()
        .unwrap()
    }

    #[test]
    fn suggestions_round_trip_through_a_review_file() {
        let asset = untagged();
        let rows = review_rows(&asset, 0.3);
        assert!(
            rows.iter()
                .any(|r| r.field == "role" && r.value == "TECHNICAL_INTEGRATOR")
        );
        let mut out = Vec::new();
        let mut w = ReviewWriter::new(&mut out).unwrap();
        for r in &rows {
            w.write(r).unwrap();
        }
        w.finish().unwrap();
        let text = String::from_utf8(out).unwrap();
        // A person accepts the role on its line.
        let marked: String = text
            .lines()
            .map(|l| {
                if l.contains(",role,TECHNICAL_INTEGRATOR,") {
                    format!("{l}yes\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        let accepted = read_review(marked.as_bytes()).unwrap();
        assert_eq!(accepted.len(), 1);
        let assets = HashMap::from([("sdk".to_owned(), asset)]);
        let drafts = declare(&assets, &accepted).unwrap();
        assert_eq!(drafts[0].roles, vec!["TECHNICAL_INTEGRATOR"]);
        let declared = drafts[0].validate().unwrap();
        assert_eq!(declared.evidence.roles.source, TagSource::Declared);
    }

    #[test]
    fn declaring_one_tag_of_an_untagged_asset_says_what_else_changes() {
        let asset = untagged();
        assert!(
            !asset.roles.is_empty() && !asset.industries.is_empty(),
            "{asset:?}"
        );
        let assets = HashMap::from([("sdk".to_owned(), asset)]);
        let stage = Acceptance {
            place: "line 2".into(),
            asset_id: "sdk".into(),
            field: "stage".into(),
            value: "ADOPTION".into(),
        };
        let drafts = declare(&assets, std::slice::from_ref(&stage)).unwrap();
        let warnings = newly_tagged(&assets, &drafts);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("TECHNICAL_INTEGRATOR) give way to every role"),
            "{warnings:?}"
        );
        assert!(
            warnings[0].contains("(healthcare) give way to cross-industry"),
            "{warnings:?}"
        );
        // Accepting the role and industry too leaves nothing to warn of.
        let all = [
            stage,
            Acceptance {
                place: "line 3".into(),
                asset_id: "sdk".into(),
                field: "role".into(),
                value: "TECHNICAL_INTEGRATOR".into(),
            },
            Acceptance {
                place: "line 4".into(),
                asset_id: "sdk".into(),
                field: "industry".into(),
                value: "healthcare".into(),
            },
        ];
        let drafts = declare(&assets, &all).unwrap();
        assert!(newly_tagged(&assets, &drafts).is_empty());
    }

    #[test]
    fn a_title_cannot_run_as_a_spreadsheet_formula() {
        let mut asset = untagged();
        asset.title = "=HYPERLINK(\"http://evil.example\")".into();
        let mut out = Vec::new();
        let mut w = ReviewWriter::new(&mut out).unwrap();
        w.write(&review_rows(&asset, 0.0)[0]).unwrap();
        w.finish().unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(",\"'=HYPERLINK("), "{text}");
    }

    #[test]
    fn a_row_of_another_length_or_an_open_quote_is_an_error_with_its_line() {
        let short = "asset_id,title,field,value,confidence,evidence,accept\nsdk,x,role\n";
        let err = read_review(short.as_bytes()).unwrap_err();
        assert!(err[0].starts_with("line 2: "), "{err:?}");
        let open = "asset_id,title,field,value,confidence,evidence,accept\n\
                    sdk,\"open title,role,FINANCE,0.5,e,yes\n\
                    sdk,t,role,FINANCE,0.5,e,yes\n";
        assert!(read_review(open.as_bytes()).is_err());
    }

    #[test]
    fn every_problem_is_named_by_its_line() {
        let file = "asset_id,title,field,value,confidence,evidence,accept\n\
                    sdk,x,role,TECHNICAL_INTEGRATOR,0.9,,maybe\n\
                    nope,x,role,FINANCE,0.9,,yes\n\
                    sdk,x,colour,blue,0.9,,yes\n";
        let err = read_review(file.as_bytes()).unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(err[0].starts_with("line 2: accept"), "{err:?}");
        let accepted: Vec<Acceptance> = read_review(file.replace("maybe", "").as_bytes()).unwrap();
        let assets = HashMap::from([("sdk".to_owned(), untagged())]);
        let problems = declare(&assets, &accepted).unwrap_err();
        assert!(problems[0].starts_with("line 3: no asset"), "{problems:?}");
        assert!(
            problems[1].starts_with("line 4: field \"colour\""),
            "{problems:?}"
        );
    }
}
