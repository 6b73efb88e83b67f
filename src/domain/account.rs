//! Accounts (buying companies), their contacts (members of the buying committee) and the
//! engagement events that tie them to assets.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::asset::{AssetId, FieldError, parse_timestamp};
use super::feedback::ListContext;
use super::taxonomy::{EngagementKind, IndustrySlug, Language, Role, Stage, TaxonomyValue};

/// How far in the future an event time may lie before it is refused: client clocks drift.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);
const MAX_NAME_LEN: usize = 500;
const MAX_TIER_LEN: usize = 64;

macro_rules! external_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The same rules as asset ids: letters, digits and `. _ : / -`.
            pub fn parse(raw: &str) -> Result<Self, String> {
                AssetId::parse(raw).map(|id| Self(id.as_str().to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

external_id! {
    /// The CRM's id of a buying company.
    AccountId
}
external_id! {
    /// The CRM's id of a person at an account.
    ContactId
}

/// A buying company.
#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub industry: Option<IndustrySlug>,
    /// The CRM's stage, which may be missing or out of date.
    pub stage: Option<Stage>,
    /// When the CRM last set the stage.
    pub stage_updated_at: Option<DateTime<Utc>>,
    pub tier: Option<String>,
    pub language: Option<Language>,
    /// The CRM's opportunity stage by its own name ("Proposal/Price Quote"), which the
    /// stage mapping turns into a buying stage.
    pub crm_stage: Option<String>,
}

/// A person at an account and their seat on the buying committee.
#[derive(Clone, Debug, PartialEq)]
pub struct Contact {
    pub id: ContactId,
    pub account_id: AccountId,
    pub name: String,
    pub role: Option<Role>,
}

/// Something an account (and maybe one of its contacts) did with an asset.
#[derive(Clone, Debug, PartialEq)]
pub struct Engagement {
    pub account_id: AccountId,
    pub contact_id: Option<ContactId>,
    pub asset_id: AssetId,
    pub kind: EngagementKind,
    pub occurred_at: DateTime<Utc>,
    /// Set by clients that retry: the same id for the same account is recorded once.
    pub client_event_id: Option<String>,
    /// The recommendation list it came from, when a client says so.
    pub attribution: Option<Attribution>,
}

/// Where an event came from: a shown list (by its recommendation id) and the position
/// the asset had in it.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribution {
    pub recommendation_id: String,
    pub context: ListContext,
    /// 1 for the first item; `None` when the client did not say.
    pub position: Option<u32>,
}

/// Positions beyond this are refused: no list is that long.
pub const MAX_POSITION: u32 = 1_000;

/// A field as a caller gave it: text still to parse (an import file, JSON), or a value the
/// edge already parsed (GraphQL's enums and dates), which is never turned back into text
/// to be parsed again.
#[derive(Clone, Debug, PartialEq)]
pub enum Given<T> {
    Text(String),
    Value(T),
}

impl<T> From<&str> for Given<T> {
    fn from(text: &str) -> Self {
        Given::Text(text.to_owned())
    }
}

impl<T> From<String> for Given<T> {
    fn from(text: String) -> Self {
        Given::Text(text)
    }
}

/// How a parsed value is written in an interchange record.
pub trait FieldText {
    fn field_text(&self) -> String;
}

impl FieldText for Stage {
    fn field_text(&self) -> String {
        self.name().to_owned()
    }
}

impl FieldText for Role {
    fn field_text(&self) -> String {
        self.name().to_owned()
    }
}

impl FieldText for EngagementKind {
    fn field_text(&self) -> String {
        self.name().to_owned()
    }
}

impl FieldText for DateTime<Utc> {
    fn field_text(&self) -> String {
        self.to_rfc3339()
    }
}

impl<'de, T> Deserialize<'de> for Given<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Given::Text)
    }
}

impl<T: FieldText> Serialize for Given<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Given::Text(text) => s.serialize_str(text),
            Given::Value(value) => s.serialize_str(&value.field_text()),
        }
    }
}

/// An account as a client or an import file gives it, before validation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountDraft {
    pub id: Option<String>,
    pub name: Option<String>,
    pub industry: Option<String>,
    pub stage: Option<Given<Stage>>,
    pub stage_updated_at: Option<Given<DateTime<Utc>>>,
    pub tier: Option<String>,
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crm_stage: Option<String>,
}

/// A contact as a client or an import file gives it, before validation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactDraft {
    pub id: Option<String>,
    pub account_id: Option<String>,
    pub name: Option<String>,
    pub role: Option<Given<Role>>,
}

/// An engagement event as a client or an import file gives it, before validation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngagementDraft {
    pub account_id: Option<String>,
    pub contact_id: Option<String>,
    pub asset_id: Option<String>,
    pub kind: Option<Given<EngagementKind>>,
    pub occurred_at: Option<Given<DateTime<Utc>>>,
    pub client_event_id: Option<String>,
    /// The `recommendationId` of the list the asset was shown in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation_id: Option<String>,
    /// Its position in that list, 1 for the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
}

fn blank(raw: &Option<String>) -> Option<&str> {
    raw.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn required<T>(
    errors: &mut Vec<FieldError>,
    field: &'static str,
    raw: &Option<String>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    match blank(raw) {
        None => {
            errors.push(FieldError::new(field, "is required"));
            None
        }
        Some(raw) => parse(raw)
            .map_err(|e| errors.push(FieldError::new(field, e)))
            .ok(),
    }
}

fn optional<T>(
    errors: &mut Vec<FieldError>,
    field: &'static str,
    raw: &Option<String>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    blank(raw).and_then(|raw| {
        parse(raw)
            .map_err(|e| errors.push(FieldError::new(field, e)))
            .ok()
    })
}

/// A field that may come parsed: its value as it is, or its text parsed.
fn given<T: Clone>(
    errors: &mut Vec<FieldError>,
    field: &'static str,
    raw: &Option<Given<T>>,
    parse: impl FnOnce(&str) -> Result<T, String>,
    is_required: bool,
) -> Option<T> {
    match raw {
        Some(Given::Value(value)) => Some(value.clone()),
        Some(Given::Text(text)) if !text.trim().is_empty() => parse(text.trim())
            .map_err(|e| errors.push(FieldError::new(field, e)))
            .ok(),
        _ => {
            if is_required {
                errors.push(FieldError::new(field, "is required"));
            }
            None
        }
    }
}

fn bounded(max: usize) -> impl Fn(&str) -> Result<String, String> {
    move |s: &str| {
        if s.chars().count() > max {
            Err(format!("is longer than {max} characters"))
        } else {
            Ok(s.to_owned())
        }
    }
}

impl AccountDraft {
    pub const FIELDS: &'static [&'static str] = &[
        "id",
        "name",
        "industry",
        "stage",
        "stage_updated_at",
        "tier",
        "language",
        "crm_stage",
    ];

    /// Every problem at once. A stage without a time of its own gets one when stored: now
    /// if it changed, else the time it was last set.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<Account, Vec<FieldError>> {
        let mut errors = Vec::new();
        let id = required(&mut errors, "id", &self.id, AccountId::parse);
        let name = required(&mut errors, "name", &self.name, bounded(MAX_NAME_LEN));
        let industry = optional(&mut errors, "industry", &self.industry, IndustrySlug::parse);
        let stage = given(&mut errors, "stage", &self.stage, Stage::parse, false);
        let stage_updated_at = given(
            &mut errors,
            "stage_updated_at",
            &self.stage_updated_at,
            parse_timestamp,
            false,
        );
        let tier = optional(&mut errors, "tier", &self.tier, bounded(MAX_TIER_LEN));
        let language = optional(&mut errors, "language", &self.language, Language::parse);
        let crm_stage = optional(
            &mut errors,
            "crm_stage",
            &self.crm_stage,
            bounded(super::MAX_CRM_STAGE_LEN),
        );
        if let Some(at) = stage_updated_at
            && at > now + MAX_CLOCK_SKEW
        {
            errors.push(FieldError::new("stage_updated_at", "is in the future"));
        }
        match (id, name) {
            (Some(id), Some(name)) if errors.is_empty() => Ok(Account {
                id,
                name,
                industry,
                stage_updated_at: stage.and(stage_updated_at),
                stage,
                tier,
                language,
                crm_stage,
            }),
            _ => Err(errors),
        }
    }
}

impl ContactDraft {
    pub const FIELDS: &'static [&'static str] = &["id", "account_id", "name", "role"];

    pub fn validate(&self) -> Result<Contact, Vec<FieldError>> {
        let mut errors = Vec::new();
        let id = required(&mut errors, "id", &self.id, ContactId::parse);
        let account_id = required(
            &mut errors,
            "account_id",
            &self.account_id,
            AccountId::parse,
        );
        let name = required(&mut errors, "name", &self.name, bounded(MAX_NAME_LEN));
        let role = given(&mut errors, "role", &self.role, Role::parse, false);
        match (id, account_id, name) {
            (Some(id), Some(account_id), Some(name)) if errors.is_empty() => Ok(Contact {
                id,
                account_id,
                name,
                role,
            }),
            _ => Err(errors),
        }
    }
}

impl EngagementDraft {
    pub const FIELDS: &'static [&'static str] = &[
        "account_id",
        "contact_id",
        "asset_id",
        "kind",
        "occurred_at",
        "client_event_id",
    ];

    /// An event without a time happened `now`; one more than a few minutes ahead of `now`
    /// is refused.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<Engagement, Vec<FieldError>> {
        let mut errors = Vec::new();
        let account_id = required(
            &mut errors,
            "account_id",
            &self.account_id,
            AccountId::parse,
        );
        let contact_id = optional(
            &mut errors,
            "contact_id",
            &self.contact_id,
            ContactId::parse,
        );
        let asset_id = required(&mut errors, "asset_id", &self.asset_id, AssetId::parse);
        let kind = given(&mut errors, "kind", &self.kind, EngagementKind::parse, true);
        let occurred_at = given(
            &mut errors,
            "occurred_at",
            &self.occurred_at,
            parse_timestamp,
            false,
        )
        .unwrap_or(now);
        if occurred_at > now + MAX_CLOCK_SKEW {
            errors.push(FieldError::new(
                "occurred_at",
                format!(
                    "{} is in the future; events are recorded after they happen",
                    occurred_at.to_rfc3339()
                ),
            ));
        }
        let client_event_id = optional(
            &mut errors,
            "client_event_id",
            &self.client_event_id,
            bounded(MAX_TIER_LEN * 2),
        );
        let attribution = match (blank(&self.recommendation_id), self.position) {
            (None, None) => None,
            (None, Some(_)) => {
                errors.push(FieldError::new(
                    "position",
                    "needs the recommendation_id of the list it is a position in",
                ));
                None
            }
            (Some(id), position) => {
                let position = match position {
                    None => None,
                    Some(p) if (1..=i64::from(MAX_POSITION)).contains(&p) => Some(p as u32),
                    Some(p) => {
                        errors.push(FieldError::new(
                            "position",
                            format!("must be 1 to {MAX_POSITION} (1 is the first item), got {p}"),
                        ));
                        None
                    }
                };
                match ListContext::from_id(id) {
                    Ok(context) => {
                        let shown_to = context.account.as_deref();
                        let account = blank(&self.account_id);
                        if shown_to.is_some() && account.is_some() && shown_to != account {
                            errors.push(FieldError::new(
                                "recommendation_id",
                                format!(
                                    "that list was shown to account {:?}, not {:?}",
                                    shown_to.unwrap_or_default(),
                                    account.unwrap_or_default()
                                ),
                            ));
                        }
                        Some(Attribution {
                            recommendation_id: id.to_owned(),
                            context,
                            position,
                        })
                    }
                    Err(e) => {
                        errors.push(FieldError::new("recommendation_id", e));
                        None
                    }
                }
            }
        };
        match (account_id, asset_id, kind) {
            (Some(account_id), Some(asset_id), Some(kind)) if errors.is_empty() => Ok(Engagement {
                account_id,
                contact_id,
                asset_id,
                kind,
                occurred_at,
                client_event_id,
                attribution,
            }),
            _ => Err(errors),
        }
    }
}

impl Account {
    pub fn to_draft(&self) -> AccountDraft {
        AccountDraft {
            id: Some(self.id.to_string()),
            name: Some(self.name.clone()),
            industry: self.industry.as_ref().map(ToString::to_string),
            stage: self.stage.map(Given::Value),
            stage_updated_at: self.stage_updated_at.map(Given::Value),
            tier: self.tier.clone(),
            language: self.language.as_ref().map(ToString::to_string),
            crm_stage: self.crm_stage.clone(),
        }
    }
}

impl Contact {
    pub fn to_draft(&self) -> ContactDraft {
        ContactDraft {
            id: Some(self.id.to_string()),
            account_id: Some(self.account_id.to_string()),
            name: Some(self.name.clone()),
            role: self.role.map(Given::Value),
        }
    }
}

impl Engagement {
    pub fn to_draft(&self) -> EngagementDraft {
        EngagementDraft {
            account_id: Some(self.account_id.to_string()),
            contact_id: self.contact_id.as_ref().map(ToString::to_string),
            asset_id: Some(self.asset_id.to_string()),
            kind: Some(Given::Value(self.kind)),
            occurred_at: Some(Given::Value(self.occurred_at)),
            client_event_id: self.client_event_id.clone(),
            recommendation_id: self
                .attribution
                .as_ref()
                .map(|a| a.recommendation_id.clone()),
            position: self
                .attribution
                .as_ref()
                .and_then(|a| a.position)
                .map(i64::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        parse_timestamp("2026-06-01T12:00:00Z").unwrap()
    }

    #[test]
    fn a_parsed_field_is_taken_as_it_is_and_written_as_its_text() {
        let at = parse_timestamp("2026-05-01T08:00:00Z").unwrap();
        let parsed = AccountDraft {
            id: Some("acme".into()),
            name: Some("Acme".into()),
            stage: Some(Given::Value(Stage::Decision)),
            stage_updated_at: Some(Given::Value(at)),
            ..Default::default()
        };
        let account = parsed.validate(now()).unwrap();
        assert_eq!(
            (account.stage, account.stage_updated_at),
            (Some(Stage::Decision), Some(at))
        );
        // An export writes the values as text, and reading it back gives the same account.
        let json = serde_json::to_string(&parsed).unwrap();
        assert!(json.contains(r#""stage":"DECISION""#), "{json}");
        let read: AccountDraft = serde_json::from_str(&json).unwrap();
        assert_eq!(read.stage, Some(Given::Text("DECISION".into())));
        assert_eq!(read.validate(now()).unwrap(), account);
    }

    #[test]
    fn an_account_reports_every_problem_and_dates_its_stage() {
        let bad = AccountDraft {
            id: Some("acme corp".into()),
            stage: Some("shopping".into()),
            industry: Some("Retail//x".into()),
            ..Default::default()
        };
        let fields: Vec<&str> = bad
            .validate(now())
            .unwrap_err()
            .iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["id", "name", "industry", "stage"]);

        let good = AccountDraft {
            id: Some("acme".into()),
            name: Some("Acme".into()),
            stage: Some("cost-awareness".into()),
            ..Default::default()
        }
        .validate(now())
        .unwrap();
        assert_eq!(good.stage, Some(Stage::Decision));
        assert_eq!(good.stage_updated_at, None);
    }

    #[test]
    fn an_event_in_the_future_is_refused_and_one_without_a_time_happened_now() {
        let mut draft = EngagementDraft {
            account_id: Some("acme".into()),
            asset_id: Some("demo-1".into()),
            kind: Some("completed".into()),
            ..Default::default()
        };
        let event = draft.validate(now()).unwrap();
        assert_eq!(
            (event.kind, event.occurred_at),
            (EngagementKind::Complete, now())
        );
        draft.occurred_at = Some("2026-06-01T12:04:00Z".into());
        assert!(draft.validate(now()).is_ok(), "within the allowed skew");
        draft.occurred_at = Some("2026-06-02".into());
        let errors = draft.validate(now()).unwrap_err();
        assert_eq!(errors[0].field, "occurred_at");
        assert!(
            errors[0].message.contains("future"),
            "{}",
            errors[0].message
        );
    }
}
