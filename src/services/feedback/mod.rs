//! The feedback loop, by job: which profile ranks a request and the experiments that
//! choose it (`rules`), the lists shown and what buyers did with them (`lists`), content
//! analytics (`analytics`), why an asset ranks where it does with the offline replay of
//! logged lists (`explain`), and bulk loads of logged lists (`bulk`). Its pure parts live
//! in `domain::feedback` and `ranking::hindsight`.

mod analytics;
mod bulk;
mod explain;
mod lists;
mod rules;

pub use crate::domain::rate;
pub use analytics::{AssetPerformance, CellPerformance, PerformanceKey, PerformanceQuery};
pub use bulk::{published_asset_ids, store_experiment, store_profile, write_logged_lists};
pub use explain::ExplainQuery;
pub use rules::ExperimentReport;
pub(crate) use rules::FeedbackBoard;
