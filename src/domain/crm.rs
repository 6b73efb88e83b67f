//! CRM stages in: an account may carry its CRM opportunity stage by the CRM's own name,
//! and a mapping (edited by the content team, or taken from a preset) turns those names
//! into buying stages. Names match whatever their case and spacing.

use std::collections::BTreeMap;

use super::Stage;

/// Longest CRM stage name.
pub const MAX_CRM_STAGE_LEN: usize = 100;
/// Most names one mapping holds.
pub const MAX_MAPPING_ENTRIES: usize = 200;

/// Where an account's buying stage comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageSource {
    /// The CRM's opportunity stage, through the mapping.
    Crm,
    /// The buying stage the account was given directly (`stage`).
    Declared,
    /// What the account's people read.
    Reading,
}

impl StageSource {
    /// As stored in the stage history and sent in `STAGE_CHANGED`.
    pub fn name(self) -> &'static str {
        match self {
            StageSource::Crm => "crm",
            StageSource::Declared => "declared",
            StageSource::Reading => "reading",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        [
            StageSource::Crm,
            StageSource::Declared,
            StageSource::Reading,
        ]
        .into_iter()
        .find(|s| s.name() == stored)
    }
}

/// How a CRM stage name is looked up: trimmed, lowercase, single spaces.
pub fn crm_stage_key(raw: &str) -> String {
    raw.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The default pipelines of two CRMs, mapped to buying stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrmPreset {
    /// Salesforce's default opportunity stages.
    Salesforce,
    /// HubSpot's default deal pipeline (labels and internal names).
    HubSpot,
}

impl CrmPreset {
    /// The preset's names and stages; `None`: the CRM stage says nothing of the buying
    /// stage (a lost deal).
    pub fn entries(self) -> &'static [(&'static str, Option<Stage>)] {
        use Stage::*;
        match self {
            CrmPreset::Salesforce => &[
                ("Prospecting", Some(Awareness)),
                ("Qualification", Some(Consideration)),
                ("Needs Analysis", Some(Consideration)),
                ("Value Proposition", Some(Consideration)),
                ("Id. Decision Makers", Some(Decision)),
                ("Perception Analysis", Some(Decision)),
                ("Proposal/Price Quote", Some(Decision)),
                ("Negotiation/Review", Some(Decision)),
                ("Closed Won", Some(Adoption)),
                ("Closed Lost", None),
            ],
            CrmPreset::HubSpot => &[
                ("Appointment Scheduled", Some(Awareness)),
                ("appointmentscheduled", Some(Awareness)),
                ("Qualified To Buy", Some(Consideration)),
                ("qualifiedtobuy", Some(Consideration)),
                ("Presentation Scheduled", Some(Consideration)),
                ("presentationscheduled", Some(Consideration)),
                ("Decision Maker Bought-In", Some(Decision)),
                ("decisionmakerboughtin", Some(Decision)),
                ("Contract Sent", Some(Decision)),
                ("contractsent", Some(Decision)),
                ("Closed Won", Some(Adoption)),
                ("closedwon", Some(Adoption)),
                ("Closed Lost", None),
                ("closedlost", None),
            ],
        }
    }
}

/// CRM stage names to buying stages.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StageMapping {
    /// By [`crm_stage_key`]: the name as written, and its stage.
    entries: BTreeMap<String, (String, Option<Stage>)>,
}

impl StageMapping {
    /// A mapping of these names (a later name with the same key wins); refused when a
    /// name is empty or too long, or there are too many.
    pub fn new(entries: &[(String, Option<Stage>)]) -> Result<Self, String> {
        let mut mapping = StageMapping::default();
        for (i, (name, stage)) in entries.iter().enumerate() {
            let name = name.trim();
            if name.is_empty() {
                return Err(format!("entries[{i}].crmStage: is empty"));
            }
            if name.chars().count() > MAX_CRM_STAGE_LEN {
                return Err(format!(
                    "entries[{i}].crmStage: is longer than {MAX_CRM_STAGE_LEN} characters"
                ));
            }
            mapping
                .entries
                .insert(crm_stage_key(name), (name.to_owned(), *stage));
        }
        if mapping.entries.len() > MAX_MAPPING_ENTRIES {
            return Err(format!(
                "at most {MAX_MAPPING_ENTRIES} CRM stages, got {}",
                mapping.entries.len()
            ));
        }
        Ok(mapping)
    }

    /// The stage a CRM stage name maps to: `None` when the name is not mapped,
    /// `Some(None)` when it is mapped to no stage.
    pub fn lookup(&self, crm_stage: &str) -> Option<Option<Stage>> {
        self.entries.get(&crm_stage_key(crm_stage)).map(|(_, s)| *s)
    }

    /// The names as written with their stages, by key.
    pub fn entries(&self) -> impl Iterator<Item = (&str, Option<Stage>)> {
        self.entries
            .values()
            .map(|(name, stage)| (name.as_str(), *stage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_whatever_their_case_and_spacing() {
        let preset: Vec<(String, Option<Stage>)> = CrmPreset::Salesforce
            .entries()
            .iter()
            .map(|(n, s)| (n.to_string(), *s))
            .collect();
        let mapping = StageMapping::new(&preset).unwrap();
        assert_eq!(
            mapping.lookup("  proposal/price   QUOTE "),
            Some(Some(Stage::Decision))
        );
        assert_eq!(mapping.lookup("Closed Lost"), Some(None));
        assert_eq!(mapping.lookup("Discovery"), None);
        assert_eq!(mapping.entries().count(), 10);
        let hubspot: Vec<(String, Option<Stage>)> = CrmPreset::HubSpot
            .entries()
            .iter()
            .map(|(n, s)| (n.to_string(), *s))
            .collect();
        let hubspot = StageMapping::new(&hubspot).unwrap();
        assert_eq!(hubspot.lookup("contractsent"), Some(Some(Stage::Decision)));
        assert_eq!(hubspot.lookup("Contract Sent"), Some(Some(Stage::Decision)));
    }

    #[test]
    fn a_later_name_wins_and_bad_names_are_refused() {
        let mapping = StageMapping::new(&[
            ("Demo".into(), Some(Stage::Consideration)),
            ("DEMO".into(), Some(Stage::Decision)),
        ])
        .unwrap();
        assert_eq!(mapping.lookup("demo"), Some(Some(Stage::Decision)));
        assert!(
            StageMapping::new(&[(" ".into(), None)])
                .unwrap_err()
                .contains("empty")
        );
        assert!(
            StageMapping::new(&[("x".repeat(101), None)])
                .unwrap_err()
                .contains("longer")
        );
        let many: Vec<(String, Option<Stage>)> =
            (0..201).map(|i| (format!("s{i}"), None)).collect();
        assert!(StageMapping::new(&many).unwrap_err().contains("at most"));
    }
}
