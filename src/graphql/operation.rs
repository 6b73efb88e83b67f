//! The operation a request runs, taken from its parsed document once for every part that
//! asks: the rule table, the limits on work, whether a GET may run it, whether the audit
//! trail records it, and the name the request log and metrics give it.

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
};

/// The operation the engine runs for `name`, as it chooses: the one of that name; with no
/// name, the document's only operation. `None` when the engine runs none (it then answers
/// with an error of its own).
pub fn running_operation<'d>(
    document: &'d ExecutableDocument,
    name: Option<&str>,
) -> Option<&'d Positioned<OperationDefinition>> {
    match (&document.operations, name) {
        (DocumentOperations::Single(op), None) => Some(op),
        (DocumentOperations::Single(_), Some(_)) => None,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// Root fields named in a label at most; an operation naming more ends its label with `...`.
const MAX_LABEL_FIELDS: usize = 8;

/// The request log's name for what runs: `operationName` when the client gave one, else
/// its type and root fields (`query search,taxonomy`, `mutation upsertAssets`; a fragment at
/// the root is `...`); `""` when the engine runs no operation.
pub fn operation_label(document: &ExecutableDocument, name: Option<&str>) -> String {
    if let Some(name) = name {
        return name.to_owned();
    }
    let Some(op) = running_operation(document, None) else {
        return String::new();
    };
    let kind = match op.node.ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    let mut fields: Vec<&str> = Vec::new();
    for item in &op.node.selection_set.node.items {
        let field = match &item.node {
            Selection::Field(f) => f.node.name.node.as_str(),
            Selection::FragmentSpread(_) | Selection::InlineFragment(_) => "...",
        };
        if !fields.contains(&field) {
            if fields.len() == MAX_LABEL_FIELDS {
                fields.push("...");
                break;
            }
            fields.push(field);
        }
    }
    format!("{kind} {}", fields.join(","))
}

/// Whether the operation that runs is a mutation (which a GET never runs).
pub fn runs_mutation(document: &ExecutableDocument, name: Option<&str>) -> bool {
    running_operation(document, name).is_some_and(|op| op.node.ty == OperationType::Mutation)
}

/// Mutations that record what anonymous visitors saw and followed, at the rate of page
/// views: the audit trail
/// (who changed what) would double their writes and tell nothing. Refused, they are
/// audited like any request.
const UNAUDITED_MUTATIONS: &[&str] = &["recordImpressions", "recordClick"];

/// Whether the operation that runs is a mutation the audit trail records: any but one that
/// only records impressions.
pub fn audited_mutation(document: &ExecutableDocument, name: Option<&str>) -> bool {
    running_operation(document, name).is_some_and(|op| {
        op.node.ty == OperationType::Mutation
            && !op.node.selection_set.node.items.iter().all(|item| {
                matches!(&item.node, Selection::Field(f)
                    if UNAUDITED_MUTATIONS.contains(&f.node.name.node.as_str()))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(text).unwrap()
    }

    #[test]
    fn the_running_operation_is_the_engines() {
        let one = parse("{ taxonomy { stages { name } } }");
        assert!(running_operation(&one, None).is_some());
        assert!(running_operation(&one, Some("Q")).is_none());
        let named = parse("query Q { taxonomy { stages { name } } }");
        assert!(running_operation(&named, None).is_some());
        assert!(running_operation(&named, Some("Q")).is_some());
        assert!(running_operation(&named, Some("R")).is_none());
        let two = parse("query A { __typename } mutation B { __typename }");
        assert!(running_operation(&two, None).is_none());
        assert!(runs_mutation(&two, Some("B")) && !runs_mutation(&two, Some("A")));
        assert!(!runs_mutation(&two, None));
    }

    #[test]
    fn names_the_root_fields_an_operation_runs() {
        let cases = [
            (
                "{ search(query: \"x\") { totalCount } taxonomy { stages { name } } }",
                "query search,taxonomy",
            ),
            (
                "query Q($a: AudienceInput!) { recommendations(audience: $a) { items { score } } }",
                "query recommendations",
            ),
            (
                "mutation { upsertAssets(assets: []) { created } r: retireAsset(id: \"a\") { id } }",
                "mutation upsertAssets,retireAsset",
            ),
            (
                "{ a: search(query: \"}{)(\") { totalCount } b: search(query: \"\\\"\") { totalCount } }",
                "query search",
            ),
            (
                "query @cached { ...F } fragment F on QueryRoot { taxonomy { stages { name } } }",
                "query ...",
            ),
            ("query A { a } query B { b }", ""),
        ];
        for (document, label) in cases {
            assert_eq!(operation_label(&parse(document), None), label, "{document}");
        }
        let many: String = (0..5_000).map(|i| format!("f{i} ")).collect();
        assert_eq!(
            operation_label(&parse(&format!("{{ {many} }}")), None),
            "query f0,f1,f2,f3,f4,f5,f6,f7,..."
        );
        assert_eq!(
            operation_label(&parse("query A { a } query B { b }"), Some("B")),
            "B"
        );
    }

    #[test]
    fn recording_impressions_alone_is_not_audited() {
        let impressions = parse(
            "mutation { recordImpressions(recommendationId: \"x\", assetIds: []) { recorded } }",
        );
        assert!(!audited_mutation(&impressions, None));
        let both = parse(
            "mutation { recordImpressions(recommendationId: \"x\", assetIds: []) { recorded } retireAsset(id: \"a\") { id } }",
        );
        assert!(audited_mutation(&both, None));
    }
}
