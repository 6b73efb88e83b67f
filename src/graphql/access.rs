//! The rule table: which credential may call each root field of the schema. It is the one
//! place access is decided. The HTTP layer checks a parsed document against it before
//! anything executes, so a refused field runs nothing and writes nothing, whatever else the
//! document asks. Every field below a root field is reachable only through it, so the root
//! field's rule covers them (`account { engagements }` needs what `account` needs).
//!
//! A visitor token is a publishable credential bound to one account (and maybe contact): where
//! a rule lets a server key name any account, it lets the token name its own, and nothing
//! else. Arguments are read with the request's variables and the operation's variable
//! defaults, as execution will read them.
//!
//! `every_root_field_has_a_rule` fails when the schema gains a root field without a row
//! here: no capability is public by accident.

use std::collections::{HashMap, HashSet};

use async_graphql::Variables;
use async_graphql::parser::Positioned;
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql_value::{ConstValue, Name};

use crate::domain::Scope;
use crate::error::AppError;

/// Who may call a root field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Credentials of this scope or above.
    AtLeast(Scope),
    /// Publishable for an explicit audience; an `audience` naming an account or contact
    /// reads that account's history, which needs a server key, or a visitor token of that
    /// account (and contact).
    AudienceNamesAccount,
    /// Engagement events: a server key for any account, a visitor token for events of its
    /// own account (and contact) only, attributed (if at all) to lists shown to that
    /// account.
    OwnEvents,
    /// Publishable for published and retired assets; a `filter.statuses` naming drafts
    /// (unreleased content) needs an editor key.
    LibraryRead,
    /// Impressions of a shown list: publishable for a list shown to no account; a list
    /// shown to an account needs a server key or that account's visitor token. The
    /// account is read from the `recommendationId` itself.
    OwnList,
    /// Acting for one account (`accountId`): a server key for any, a visitor token for
    /// its own (the argument left out or naming it).
    OwnAccount,
}

use Rule::{AtLeast, AudienceNamesAccount, LibraryRead, OwnAccount, OwnEvents, OwnList};

/// Whether `scope` sees draft assets: unreleased content is the content team's. `asset(id)`
/// answers null for a draft below this, as if there were none.
pub fn sees_drafts(scope: Scope) -> bool {
    scope >= Editor
}

/// Whether the caller of this request sees drafts (a schema run without a credential, as
/// the tests and the CLI do, sees them).
pub(super) fn caller_sees_drafts(ctx: &async_graphql::Context<'_>) -> bool {
    ctx.data_opt::<crate::services::Credential>()
        .is_none_or(|c| sees_drafts(c.scope()))
}

/// Who is asking, as the rules see it.
#[derive(Clone, Copy, Debug)]
pub struct Who<'a> {
    pub scope: Scope,
    /// For a visitor token: the account and contact it is bound to.
    pub visitor: Option<(&'a str, Option<&'a str>)>,
}
use Scope::{Admin, Editor, Publishable, Server};

/// `Type.field` -> rule, for every root field of the schema.
pub const RULES: &[(&str, Rule)] = &[
    ("Query.__typename", AtLeast(Publishable)),
    ("Query.__schema", AtLeast(Editor)),
    ("Query.__type", AtLeast(Editor)),
    ("Query.asset", AtLeast(Publishable)),
    ("Query.assets", LibraryRead),
    ("Query.search", LibraryRead),
    ("Query.similarAssets", LibraryRead),
    ("Query.taxonomy", AtLeast(Publishable)),
    ("Query.recommendations", AudienceNamesAccount),
    ("Query.nextContent", AudienceNamesAccount),
    ("Query.account", AtLeast(Server)),
    ("Query.coverage", AtLeast(Editor)),
    ("Query.staleAssets", AtLeast(Editor)),
    ("Query.suggestTags", AtLeast(Editor)),
    ("Query.synonyms", AtLeast(Editor)),
    ("Query.accountExport", AtLeast(Admin)),
    ("Query.apiKeys", AtLeast(Admin)),
    ("Query.auditLog", AtLeast(Admin)),
    ("Query.rankingProfiles", AtLeast(Editor)),
    ("Query.experiments", AtLeast(Editor)),
    ("Query.experiment", AtLeast(Editor)),
    ("Query.assetPerformance", AtLeast(Editor)),
    ("Query.cellPerformance", AtLeast(Editor)),
    ("Query.explainRank", AtLeast(Editor)),
    ("Query.shareLinks", AtLeast(Server)),
    ("Query.accountActivity", AtLeast(Server)),
    ("Query.webhooks", AtLeast(Admin)),
    ("Query.webhookDeliveries", AtLeast(Admin)),
    ("Query.stageMapping", AtLeast(Editor)),
    ("Mutation.__typename", AtLeast(Publishable)),
    ("Mutation.upsertAccount", AtLeast(Server)),
    ("Mutation.upsertContact", AtLeast(Server)),
    ("Mutation.recordEngagement", OwnEvents),
    ("Mutation.recordEngagements", OwnEvents),
    ("Mutation.createVisitorToken", AtLeast(Server)),
    ("Mutation.upsertAssets", AtLeast(Editor)),
    ("Mutation.acceptTagSuggestions", AtLeast(Editor)),
    ("Mutation.setSynonyms", AtLeast(Editor)),
    ("Mutation.retireAsset", AtLeast(Editor)),
    ("Mutation.eraseAccount", AtLeast(Admin)),
    ("Mutation.refreshPopularity", AtLeast(Admin)),
    ("Mutation.createApiKey", AtLeast(Admin)),
    ("Mutation.revokeApiKey", AtLeast(Admin)),
    ("Mutation.setApiKeyLimits", AtLeast(Admin)),
    ("Mutation.recordImpressions", OwnList),
    ("Mutation.recordClick", OwnList),
    ("Mutation.dismissRecommendation", OwnAccount),
    ("Mutation.upsertRankingProfile", AtLeast(Editor)),
    ("Mutation.startExperiment", AtLeast(Editor)),
    ("Mutation.stopExperiment", AtLeast(Editor)),
    ("Mutation.createShareLink", AtLeast(Server)),
    ("Mutation.revokeShareLink", AtLeast(Server)),
    ("Mutation.createWebhook", AtLeast(Admin)),
    ("Mutation.updateWebhook", AtLeast(Admin)),
    ("Mutation.deleteWebhook", AtLeast(Admin)),
    ("Mutation.setStageMapping", AtLeast(Editor)),
];

impl Rule {
    /// Whether a key of `scope` (not a visitor token) may run the field for some
    /// arguments: what a fuzz run or a client generator starts from.
    pub fn admits_some(self, scope: Scope) -> bool {
        match self {
            AtLeast(least) => scope >= least,
            AudienceNamesAccount | LibraryRead | OwnList => scope >= Publishable,
            OwnEvents | OwnAccount => scope >= Server,
        }
    }
}

pub fn rule(root: &str, field: &str) -> Option<Rule> {
    RULES
        .iter()
        .find(|(name, _)| {
            name.split_once('.')
                .is_some_and(|(t, f)| t == root && f == field)
        })
        .map(|(_, rule)| *rule)
}

/// Whether `who` may run the operation of `document` named `operation` (or its only one).
/// Fields the schema does not have are left to validation to report.
pub fn check(
    document: &ExecutableDocument,
    operation: Option<&str>,
    variables: &Variables,
    who: Who<'_>,
) -> Result<(), AppError> {
    if who.scope == Admin {
        return Ok(());
    }
    // No operation runs: the engine reports that itself.
    let Some(op) = super::running_operation(document, operation) else {
        return Ok(());
    };
    let root = match op.node.ty {
        OperationType::Query => "Query",
        OperationType::Mutation => "Mutation",
        OperationType::Subscription => "Subscription",
    };
    // A variable the request leaves out takes the operation's default, as in execution.
    let defaults: HashMap<&Name, &ConstValue> = op
        .node
        .variable_definitions
        .iter()
        .filter_map(|d| Some((&d.node.name.node, &d.node.default_value.as_ref()?.node)))
        .collect();
    let argument = |field: &async_graphql::parser::types::Field, name: &str| -> ConstValue {
        let Some((_, value)) = field.arguments.iter().find(|(n, _)| n.node == name) else {
            return ConstValue::Null;
        };
        value
            .node
            .clone()
            .into_const_with(|var| {
                Ok::<_, std::convert::Infallible>(
                    variables
                        .get(&var)
                        .or_else(|| defaults.get(&var).copied())
                        .cloned()
                        .unwrap_or(ConstValue::Null),
                )
            })
            .unwrap_or(ConstValue::Null)
    };
    let mut fields = Vec::new();
    root_fields(
        document,
        &op.node.selection_set.node,
        &mut HashSet::new(),
        &mut fields,
    );
    for field in fields {
        let name = field.node.name.node.as_str();
        let Some(rule) = rule(root, name) else {
            continue;
        };
        let refused = |needed: Scope, why: &str| {
            AppError::Forbidden(format!(
                "`{name}`{why} needs {} {needed} key or above; this credential is {}",
                if matches!(needed, Scope::Editor | Scope::Admin) {
                    "an"
                } else {
                    "a"
                },
                match who.visitor {
                    Some((account, _)) => format!("a visitor token for account {account:?}"),
                    None => who.scope.to_string(),
                }
            ))
        };
        match rule {
            AtLeast(needed) => {
                if who.scope < needed {
                    return Err(refused(needed, ""));
                }
            }
            LibraryRead => {
                let filter = argument(&field.node, "filter");
                if !sees_drafts(who.scope) && names_drafts(&filter) {
                    return Err(refused(Editor, " for draft assets"));
                }
            }
            AudienceNamesAccount => {
                let audience = argument(&field.node, "audience");
                if who.scope < Server && !names_only(&audience, who.visitor) {
                    let why = if who.visitor.is_some() {
                        " for an audience naming another account or contact than the token's"
                    } else {
                        " for an audience naming an account or contact"
                    };
                    return Err(refused(Server, why));
                }
            }
            OwnList => {
                if who.scope >= Server {
                    continue;
                }
                let shown_to = match argument(&field.node, "recommendationId") {
                    ConstValue::String(id) => crate::domain::ListContext::from_id(&id)
                        .ok()
                        .and_then(|c| c.account),
                    // Not an id: the resolver says so.
                    _ => None,
                };
                if let Some(account) = shown_to
                    && who.visitor.is_none_or(|(own, _)| own != account)
                {
                    return Err(refused(
                        Server,
                        " for a list shown to another account than the token's",
                    ));
                }
            }
            OwnAccount => {
                if who.scope >= Server {
                    continue;
                }
                let own =
                    who.visitor
                        .is_some_and(|(own, _)| match argument(&field.node, "accountId") {
                            ConstValue::Null => true,
                            ConstValue::String(a) => a == own,
                            _ => false,
                        });
                if !own {
                    return Err(refused(
                        Server,
                        " for another account than a visitor token's own",
                    ));
                }
            }
            OwnEvents => {
                if who.scope >= Server {
                    continue;
                }
                let events = match argument(&field.node, "events") {
                    ConstValue::List(events) => events,
                    ConstValue::Null => vec![argument(&field.node, "event")],
                    other => vec![other],
                };
                // An event attributed to a list must name a list shown to the token's own
                // account: one shown to nobody could credit any variant with its clicks.
                let own_list = |event: &ConstValue| match named(event, "recommendationId") {
                    None => true,
                    Some(Some(id)) => crate::domain::ListContext::from_id(id)
                        .ok()
                        .and_then(|c| c.account)
                        .is_some_and(|account| who.visitor.is_some_and(|(own, _)| own == account)),
                    Some(None) => false,
                };
                let own = who.visitor.is_some()
                    && events.iter().all(|event| {
                        matches!(event, ConstValue::Object(_))
                            && names_only(event, who.visitor)
                            && named(event, "accountId").is_some()
                            && own_list(event)
                    });
                if !own {
                    let why = if who.visitor.is_some() {
                        " for another account or contact than the token's, or a list not shown to it"
                    } else {
                        ""
                    };
                    return Err(refused(Server, why));
                }
            }
        }
    }
    Ok(())
}

/// Whether an asset filter's `statuses` names drafts (as an enum literal, or a string from
/// variables).
fn names_drafts(filter: &ConstValue) -> bool {
    let ConstValue::Object(fields) = filter else {
        return false;
    };
    let is_draft = |v: &ConstValue| match v {
        ConstValue::Enum(name) => name.as_str() == "DRAFT",
        ConstValue::String(s) => s == "DRAFT",
        _ => false,
    };
    match fields.get("statuses") {
        Some(ConstValue::List(items)) => items.iter().any(is_draft),
        Some(other) => is_draft(other),
        None => false,
    }
}

/// The string an object names under `key`, or `Some(None)` when it names something that
/// is not a string; `None` when absent or null.
fn named<'v>(object: &'v ConstValue, key: &str) -> Option<Option<&'v str>> {
    let ConstValue::Object(fields) = object else {
        return None;
    };
    match fields.get(key)? {
        ConstValue::Null => None,
        ConstValue::String(s) => Some(Some(s.as_str())),
        _ => Some(None),
    }
}

/// Whether an audience or event names no account or contact but `visitor`'s own: nothing
/// at all without a visitor token.
fn names_only(object: &ConstValue, visitor: Option<(&str, Option<&str>)>) -> bool {
    let account = named(object, "accountId");
    let contact = named(object, "contactId");
    match visitor {
        None => account.is_none() && contact.is_none(),
        Some((own_account, own_contact)) => {
            account.is_none_or(|a| a == Some(own_account))
                && contact.is_none_or(|c| c.is_some() && c == own_contact)
        }
    }
}

/// The fields selected at the root, through fragments too.
fn root_fields<'a>(
    document: &'a ExecutableDocument,
    set: &'a SelectionSet,
    seen: &mut HashSet<&'a Name>,
    out: &mut Vec<&'a Positioned<async_graphql::parser::types::Field>>,
) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => out.push(field),
            Selection::InlineFragment(fragment) => {
                root_fields(document, &fragment.node.selection_set.node, seen, out)
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                if seen.insert(name)
                    && let Some(fragment) = document.fragments.get(name)
                {
                    root_fields(document, &fragment.node.selection_set.node, seen, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(query: &str, variables: serde_json::Value, scope: Scope) -> bool {
        allowed_for(
            query,
            variables,
            Who {
                scope,
                visitor: None,
            },
        )
    }

    fn allowed_for(query: &str, variables: serde_json::Value, who: Who<'_>) -> bool {
        let document = async_graphql::parser::parse_query(query).unwrap();
        let variables = Variables::from_json(variables);
        check(&document, None, &variables, who).is_ok()
    }

    #[test]
    fn every_root_field_has_a_rule() {
        use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
        let schema = async_graphql::parser::parse_schema(super::super::sdl()).unwrap();
        let mut checked = 0;
        for definition in schema.definitions {
            let TypeSystemDefinition::Type(t) = definition else {
                continue;
            };
            let root = match t.node.name.node.as_str() {
                "QueryRoot" => "Query",
                "MutationRoot" => "Mutation",
                _ => continue,
            };
            let TypeKind::Object(object) = &t.node.kind else {
                continue;
            };
            for field in &object.fields {
                let name = field.node.name.node.as_str();
                assert!(
                    rule(root, name).is_some(),
                    "{root}.{name} has no access rule in graphql/access.rs"
                );
                checked += 1;
            }
        }
        assert!(checked >= 20, "{checked} root fields");
    }

    #[test]
    fn scopes_include_the_ones_before_and_arguments_can_raise_the_need() {
        let explicit = "{ recommendations(audience: { stage: DECISION }) { items { score } } }";
        assert!(allowed(explicit, serde_json::json!({}), Publishable));
        let named = "{ recommendations(audience: { accountId: \"a\" }) { items { score } } }";
        assert!(!allowed(named, serde_json::json!({}), Publishable));
        assert!(allowed(named, serde_json::json!({}), Server));
        let by_variable =
            "query($a: AudienceInput!) { recommendations(audience: $a) { items { score } } }";
        assert!(allowed(
            by_variable,
            serde_json::json!({ "a": { "stage": "DECISION" } }),
            Publishable
        ));
        assert!(!allowed(
            by_variable,
            serde_json::json!({ "a": { "contactId": "c" } }),
            Publishable
        ));
        let inner =
            "query($c: ID) { recommendations(audience: { contactId: $c }) { items { score } } }";
        assert!(allowed(
            inner,
            serde_json::json!({ "c": null }),
            Publishable
        ));
        assert!(!allowed(
            inner,
            serde_json::json!({ "c": "x" }),
            Publishable
        ));
        // Fragments at the root are followed.
        let hidden = "{ ...F } fragment F on QueryRoot { ... on QueryRoot { coverage(by: [STAGE]) { assetCount } } }";
        assert!(!allowed(hidden, serde_json::json!({}), Server));
        assert!(allowed(hidden, serde_json::json!({}), Editor));
        assert!(!allowed(
            "{ __schema { types { name } } }",
            serde_json::json!({}),
            Server
        ));
        assert!(allowed(
            "{ __typename search(query: \"x\") { totalCount } }",
            serde_json::json!({}),
            Publishable
        ));
        assert!(!allowed(
            "mutation { eraseAccount(id: \"a\") { accountId } }",
            serde_json::json!({}),
            Editor
        ));
        assert!(allowed(
            "mutation { eraseAccount(id: \"a\") { accountId } }",
            serde_json::json!({}),
            Admin
        ));
    }

    #[test]
    fn drafts_are_the_content_teams() {
        let drafts =
            "{ search(query: \"x\", filter: { statuses: [PUBLISHED, DRAFT] }) { totalCount } }";
        assert!(!allowed(drafts, serde_json::json!({}), Server));
        assert!(allowed(drafts, serde_json::json!({}), Editor));
        let retired = "query($f: AssetFilter) { assets(filter: $f) { totalCount } }";
        assert!(allowed(
            retired,
            serde_json::json!({ "f": { "statuses": ["RETIRED"] } }),
            Publishable
        ));
        assert!(!allowed(
            retired,
            serde_json::json!({ "f": { "statuses": "DRAFT" } }),
            Publishable
        ));
    }

    #[test]
    fn variable_defaults_count_as_what_execution_will_see() {
        let defaulted = "query($a: AudienceInput = { accountId: \"b\" }) { recommendations(audience: $a) { items { score } } }";
        assert!(!allowed(defaulted, serde_json::json!({}), Publishable));
        assert!(allowed(
            defaulted,
            serde_json::json!({ "a": { "stage": "DECISION" } }),
            Publishable
        ));
        let inner = "query($c: ID = \"c1\") { nextContent(afterAssetId: \"x\", audience: { contactId: $c }) { items { score } } }";
        assert!(!allowed(inner, serde_json::json!({}), Publishable));
    }

    #[test]
    fn a_visitor_token_names_its_own_account_and_contact_only() {
        let visitor = |contact| Who {
            scope: Publishable,
            visitor: Some(("acme", contact)),
        };
        let recs =
            "query($a: AudienceInput!) { recommendations(audience: $a) { items { score } } }";
        for (audience, with_contact, ok) in [
            (serde_json::json!({}), None, true),
            (serde_json::json!({ "accountId": "acme" }), None, true),
            (serde_json::json!({ "accountId": "globex" }), None, false),
            (serde_json::json!({ "accountId": 5 }), None, false),
            (serde_json::json!({ "contactId": "c1" }), None, false),
            (serde_json::json!({ "contactId": "c1" }), Some("c1"), true),
            (
                serde_json::json!({ "accountId": "acme", "contactId": "c2" }),
                Some("c1"),
                false,
            ),
        ] {
            assert_eq!(
                allowed_for(
                    recs,
                    serde_json::json!({ "a": audience }),
                    visitor(with_contact)
                ),
                ok,
                "{audience} with contact {with_contact:?}"
            );
        }
        let one = "mutation($e: EngagementInput!) { recordEngagement(event: $e) { recorded } }";
        let event = |account: &str| serde_json::json!({ "e": { "accountId": account, "assetId": "x", "kind": "VIEW" } });
        assert!(allowed_for(one, event("acme"), visitor(None)));
        assert!(!allowed_for(one, event("globex"), visitor(None)));
        assert!(!allowed(one, event("acme"), Publishable));
        assert!(allowed(one, event("globex"), Server));
        let many = "mutation { recordEngagements(events: [{ accountId: \"acme\", assetId: \"x\", kind: VIEW }, { accountId: \"globex\", assetId: \"x\", kind: VIEW }]) { recorded } }";
        assert!(!allowed_for(many, serde_json::json!({}), visitor(None)));
        assert!(allowed_for(
            &many.replace("globex", "acme"),
            serde_json::json!({}),
            visitor(None)
        ));
        // Nothing else grows: a token is publishable everywhere else.
        assert!(!allowed_for(
            "{ account(id: \"acme\") { id } }",
            serde_json::json!({}),
            visitor(None)
        ));
        assert!(!allowed_for(
            "mutation { createVisitorToken(accountId: \"acme\") { token } }",
            serde_json::json!({}),
            visitor(None)
        ));
    }
}
