//! A name for each executed operation, for the request log: its `operationName` when the
//! client gave one, else its type and root fields (`query search`, `mutation
//! upsertAssets,retireAsset`). Taken from the document the engine parsed anyway, through an
//! extension, so labelling costs no second parse.

use std::sync::{Arc, OnceLock};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection};
use async_graphql::{ServerResult, Variables};

/// Where the label of one request's operation lands: add it to the request's data.
#[derive(Clone, Default)]
pub struct OperationLabel(Arc<OnceLock<String>>);

impl OperationLabel {
    pub fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

pub(super) struct LabelOperations;

impl ExtensionFactory for LabelOperations {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LabelOperations)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for LabelOperations {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if let Some(slot) = ctx.data_opt::<OperationLabel>() {
            let _ = slot.0.set(label(&document));
        }
        Ok(document)
    }
}

fn label(document: &ExecutableDocument) -> String {
    let operation = match &document.operations {
        DocumentOperations::Single(op) => op,
        DocumentOperations::Multiple(ops) => match ops.values().next() {
            Some(op) => op,
            None => return String::new(),
        },
    };
    let fields: Vec<&str> = operation
        .node
        .selection_set
        .node
        .items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(field) => field.node.name.node.as_str(),
            _ => "...",
        })
        .collect();
    format!("{} {}", operation.node.ty, fields.join(","))
}
