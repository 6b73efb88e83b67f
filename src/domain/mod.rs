//! Domain types of stagefit: the buying journey, the buying committee, the content library.
//!
//! Everything here is validated on construction ("parse, don't validate"): a `Stage` or an
//! `IndustrySlug` in hand is always canonical. No I/O, no async, no knowledge of GraphQL,
//! SQL or tantivy.

mod access;
mod account;
mod asset;
mod counters;
mod coverage;
mod crm;
mod evidence;
mod factor;
mod feedback;
mod filter;
mod search;
mod synonyms;
mod taxonomy;
mod webhook;

pub use access::{
    ApiKey, AuditEvent, KEY_LEN, KEY_RANDOM_BYTES, KeyClaim, MAX_AUDITED_OPERATION,
    MAX_VISITOR_TOKEN_TTL, Operation, Scope, VisitorClaims, audited_operation, hash_bytes,
    key_hash, key_id, new_key, parse_key,
};
pub use account::{
    Account, AccountDraft, AccountId, Attribution, Contact, ContactDraft, ContactId, Engagement,
    EngagementDraft, FieldText, Given, MAX_CLOCK_SKEW, MAX_POSITION,
};
pub use asset::{
    Asset, AssetDraft, AssetId, FieldError, MAX_LINKS, TagEntry, TagField, is_http_url, link_key,
    opening, parse_bool, parse_timestamp, url_segments,
};
pub use counters::{
    ANY_INDUSTRY, CO_READ_KEPT, CO_READ_RECENT, CO_READ_WINDOW_DAYS, COUNTER_EPOCH,
    COUNTER_HALF_LIFE_DAYS, CohortsOf, CountedRead, CounterPlan, CounterSink, Delta, Share,
    account_contribution, co_read_cohorts, cohort_key, counted_cohorts, decay_at, growth, plan,
    plan_each,
};
pub use coverage::{
    CoverageCell, CoverageDimension, CoverageKey, CoverageRow, CoverageUniverse, GapCell,
    IndustryCell, TagSources, cells_served, coverage_matrix,
};
pub use crm::{
    CrmPreset, MAX_CRM_STAGE_LEN, MAX_MAPPING_ENTRIES, StageMapping, StageSource, crm_stage_key,
};
pub use evidence::{
    ABSTAIN_BELOW, InferenceInput, InferredTags, KindEvidence, TagEvidence, TagSource, Trust,
    audience_leaning, infer_tags,
};
pub use factor::{Factor, MAX_WEIGHT, WeightOverrides, Weights};
pub use feedback::{
    Choice, DEFAULT_PROFILE, Experiment, ID_TAIL_LEN, JourneyEvent, ListContext, ListMeasures,
    ListSigner, LoggedFeedback, MAX_LIST_ID_BYTES, MOVED_FORWARD_DAYS, MOVED_FORWARD_EVENTS,
    NONCE_LEN, RankingProfile, SignedList, Variant, count_per_list, ideal_dcg5, list_key,
    list_measures, moved_forward_counts, parse_name, rate, two_proportion_test, weights_from_json,
    weights_to_json, wilson_interval,
};
pub use filter::AssetFilter;
pub use search::{
    FacetCount, FacetField, Highlight, MAX_QUERY_CHARS, MAX_QUERY_NESTING, MAX_QUERY_TERMS,
    MAX_QUERY_WORDS, SearchHit, SearchPage, SearchRequest, SimilarAssets, SimilarityBasis,
    SortOrder, check_query_text, identifier_words, is_identifier, is_stop_word, query_nesting,
};
pub use synonyms::{MAX_EXPANSIONS, Synonyms, is_one_word};
pub use taxonomy::{
    AssetStatus, Concern, ContentType, EngagementKind, IndustrySlug, Language, Role, Stage,
    TaxonomyValue,
};
pub use webhook::{
    DeliveryState, MAX_RETRY_INTERVAL, OutboxEvent, SECRET_LENGTH, WebhookEvent, retry_delay,
    signature,
};
