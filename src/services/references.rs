//! Whether what an engagement event names exists: its account, its contact (at that
//! account) and its asset. One rule and one wording for the API (`recordEngagement(s)`) and
//! for imports (`stagefit import --engagements`), which differ only in where they look.

use std::collections::{HashMap, HashSet};

use crate::domain::{Account, Engagement};
use crate::error::AppResult;
use crate::store::Store;

/// The accounts, contacts and assets a batch of events may name.
#[derive(Debug, Default)]
pub(super) struct EventReferences {
    accounts: HashMap<String, Account>,
    /// Contact id -> its account's id.
    contacts: HashMap<String, String>,
    assets: HashSet<String>,
}

impl EventReferences {
    /// What the store holds of the accounts, contacts and assets `events` name, drafts
    /// included: an import is the content team's own. (Through the API a draft answers as
    /// no asset does, so `known` is given the released assets only.)
    pub(super) async fn load(store: &Store, events: &[&Engagement]) -> AppResult<Self> {
        let account_ids = super::distinct(events.iter().map(|e| e.account_id.to_string()));
        let asset_ids = super::distinct(events.iter().map(|e| e.asset_id.to_string()));
        let accounts = store
            .load_accounts(&account_ids)
            .await?
            .into_iter()
            .map(|a| (a.id.to_string(), a))
            .collect();
        let contacts = store
            .contacts_of_accounts(&account_ids)
            .await?
            .into_iter()
            .map(|c| (c.id.to_string(), c.account_id.to_string()))
            .collect();
        let assets = store.asset_stages(&asset_ids).await?.into_keys().collect();
        Ok(EventReferences {
            accounts,
            contacts,
            assets,
        })
    }

    /// From accounts already loaded (with their contacts) and the assets found.
    pub(super) fn known(
        accounts: impl IntoIterator<Item = (Account, Vec<String>)>,
        assets: HashSet<String>,
    ) -> Self {
        let mut refs = EventReferences {
            assets,
            ..Default::default()
        };
        for (account, contacts) in accounts {
            for contact in contacts {
                refs.contacts.insert(contact, account.id.to_string());
            }
            refs.accounts.insert(account.id.to_string(), account);
        }
        refs
    }

    pub(super) fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.get(id)
    }

    /// The first thing `e` names that does not exist: the field and what is wrong.
    pub(super) fn missing(&self, e: &Engagement) -> Option<(&'static str, String)> {
        let account = e.account_id.as_str();
        if !self.accounts.contains_key(account) {
            return Some(("account_id", format!("no account with id {account:?}")));
        }
        if let Some(contact) = &e.contact_id
            && self.contacts.get(contact.as_str()).map(String::as_str) != Some(account)
        {
            return Some((
                "contact_id",
                format!(
                    "no contact with id {:?} at account {account:?}",
                    contact.as_str()
                ),
            ));
        }
        let asset = e.asset_id.as_str();
        (!self.assets.contains(asset)).then(|| ("asset_id", format!("no asset with id {asset:?}")))
    }
}
