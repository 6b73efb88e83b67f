//! The rule table: which credential may call each root field of the schema. It is the one
//! place access is decided. The HTTP layer checks a parsed document against it before
//! anything executes, so a refused field runs nothing and writes nothing, whatever else the
//! document asks. Every field below a root field is reachable only through it, so the root
//! field's rule covers them (`account { engagements }` needs what `account` needs).
//!
//! `every_root_field_has_a_rule` fails when the schema gains a root field without a row
//! here: no capability is public by accident.

use std::collections::HashSet;

use async_graphql::Variables;
use async_graphql::parser::Positioned;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql_value::{ConstValue, Name, Value};

use crate::domain::Scope;
use crate::error::AppError;

/// Who may call a root field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Credentials of this scope or above.
    AtLeast(Scope),
    /// Publishable for an explicit audience; an `audience` naming an account or contact
    /// reads that account's history, which needs a server key.
    AudienceNamesAccount,
}

use Rule::{AtLeast, AudienceNamesAccount};
use Scope::{Admin, Editor, Publishable, Server};

/// `Type.field` -> rule, for every root field of the schema.
pub const RULES: &[(&str, Rule)] = &[
    ("Query.__typename", AtLeast(Publishable)),
    ("Query.__schema", AtLeast(Editor)),
    ("Query.__type", AtLeast(Editor)),
    ("Query.asset", AtLeast(Publishable)),
    ("Query.assets", AtLeast(Publishable)),
    ("Query.search", AtLeast(Publishable)),
    ("Query.taxonomy", AtLeast(Publishable)),
    ("Query.recommendations", AudienceNamesAccount),
    ("Query.nextContent", AudienceNamesAccount),
    ("Query.account", AtLeast(Server)),
    ("Query.coverage", AtLeast(Editor)),
    ("Query.staleAssets", AtLeast(Editor)),
    ("Query.suggestTags", AtLeast(Editor)),
    ("Query.accountExport", AtLeast(Admin)),
    ("Query.apiKeys", AtLeast(Admin)),
    ("Query.auditLog", AtLeast(Admin)),
    ("Mutation.__typename", AtLeast(Publishable)),
    ("Mutation.upsertAccount", AtLeast(Server)),
    ("Mutation.upsertContact", AtLeast(Server)),
    ("Mutation.recordEngagement", AtLeast(Server)),
    ("Mutation.recordEngagements", AtLeast(Server)),
    ("Mutation.upsertAssets", AtLeast(Editor)),
    ("Mutation.retireAsset", AtLeast(Editor)),
    ("Mutation.eraseAccount", AtLeast(Admin)),
    ("Mutation.refreshPopularity", AtLeast(Admin)),
    ("Mutation.createApiKey", AtLeast(Admin)),
    ("Mutation.revokeApiKey", AtLeast(Admin)),
];

pub fn rule(root: &str, field: &str) -> Option<Rule> {
    RULES
        .iter()
        .find(|(name, _)| {
            name.split_once('.')
                .is_some_and(|(t, f)| t == root && f == field)
        })
        .map(|(_, rule)| *rule)
}

/// Whether `scope` may run the operation of `document` named `operation` (or its only
/// one). Fields the schema does not have are left to validation to report.
pub fn check(
    document: &ExecutableDocument,
    operation: Option<&str>,
    variables: &Variables,
    scope: Scope,
) -> Result<(), AppError> {
    if scope == Admin {
        return Ok(());
    }
    let op = match (&document.operations, operation) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => match ops.get(name) {
            Some(op) => op,
            None => return Ok(()),
        },
        (DocumentOperations::Multiple(ops), None) => match ops.values().next() {
            Some(op) if ops.len() == 1 => op,
            _ => return Ok(()),
        },
    };
    let root = match op.node.ty {
        OperationType::Query => "Query",
        OperationType::Mutation => "Mutation",
        OperationType::Subscription => "Subscription",
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
        let needed = match rule {
            AtLeast(needed) => needed,
            AudienceNamesAccount => {
                if names_account(&field.node.arguments, variables) {
                    Server
                } else {
                    Publishable
                }
            }
        };
        if scope < needed {
            let why = match rule {
                AudienceNamesAccount => " for an audience naming an account or contact",
                AtLeast(_) => "",
            };
            return Err(AppError::Forbidden(format!(
                "`{name}`{why} needs a {needed} key or above; this credential is {scope}"
            )));
        }
    }
    Ok(())
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

/// Whether the `audience` argument names an account or contact, literally or through
/// variables.
fn names_account(
    arguments: &[(Positioned<Name>, Positioned<Value>)],
    variables: &Variables,
) -> bool {
    let Some((_, audience)) = arguments.iter().find(|(n, _)| n.node == "audience") else {
        return false;
    };
    let present = |value: &Value| match value {
        Value::Null => false,
        Value::Variable(v) => variables.get(v).is_some_and(|c| *c != ConstValue::Null),
        _ => true,
    };
    match &audience.node {
        Value::Object(fields) => ["accountId", "contactId"]
            .iter()
            .any(|k| fields.get(*k).is_some_and(present)),
        Value::Variable(v) => match variables.get(v) {
            Some(ConstValue::Object(fields)) => ["accountId", "contactId"]
                .iter()
                .any(|k| fields.get(*k).is_some_and(|c| *c != ConstValue::Null)),
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(query: &str, variables: serde_json::Value, scope: Scope) -> bool {
        let document = async_graphql::parser::parse_query(query).unwrap();
        let variables = Variables::from_json(variables);
        check(&document, None, &variables, scope).is_ok()
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
}
