//! Tracked share links: a sales tool asks for a link per recipient (a contact) to one asset,
//! maybe from a recommendation list; opening it records a `VIEW` for that contact (and a
//! click on the list), then sends the reader on to the asset. A link is a random 128-bit
//! token; only its SHA-256 is stored. Mail security scanners and link unfurlers open links
//! too, within seconds of sending: their opens are counted as scans, never as views.

use chrono::Utc;
use sha2::Digest;

use super::Library;
use crate::domain::{AssetId, AssetStatus, ContactId, EngagementDraft, EngagementKind, Given};
use crate::error::{AppError, AppResult};
use crate::store::StoredShareLink;

/// Days a link lives by default, and at most.
pub const DEFAULT_SHARE_DAYS: u32 = 30;
pub const MAX_SHARE_DAYS: u32 = 365;
/// Links listed at most.
pub const MAX_SHARE_LINKS: u64 = 500;
/// A token is 22 characters (16 bytes, base64url); anything much longer is not one.
const MAX_TOKEN_LEN: usize = 64;

/// What `createShareLink` made: the link as stored, and its address (the only copy of the
/// token there will be).
pub struct ShareLink {
    pub link: StoredShareLink,
    pub url: Option<String>,
    pub token: Option<String>,
}

/// What opening a link does.
#[derive(Debug, PartialEq, Eq)]
pub enum ShareOpen {
    /// Send the reader on to this address.
    Go(String),
    /// No such link, or expired, or revoked: a plain page says so.
    Gone,
}

/// User agents of the mail security gateways, link unfurlers and preview fetchers that
/// open links before (or instead of) a person: matched as lowercase substrings.
const SCANNERS: &[&str] = &[
    "bot",
    "crawler",
    "spider",
    "slurp",
    "preview",
    "scanner",
    "proofpoint",
    "mimecast",
    "barracuda",
    "safelinks",
    "microsoft office",
    "ms-office",
    "outlook-ios-linkpreview",
    "slackbot",
    "slack-imgproxy",
    "facebookexternalhit",
    "whatsapp",
    "skypeuripreview",
    "teams",
    "linkedinbot",
    "twitterbot",
    "discordbot",
    "googleimageproxy",
    "yahoomailproxy",
    "curl/",
    "wget/",
    "python-requests",
    "go-http-client",
    "headlesschrome",
];

/// Whether an open is a scanner's: a `HEAD` request, no user agent, or one of
/// [`SCANNERS`].
pub fn is_scanner(head: bool, user_agent: Option<&str>) -> bool {
    if head {
        return true;
    }
    let Some(agent) = user_agent.map(str::trim).filter(|a| !a.is_empty()) else {
        return true;
    };
    let agent = agent.to_ascii_lowercase();
    SCANNERS.iter().any(|s| agent.contains(s))
}

fn token_id(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Library {
    /// A new link to `asset_id` for `contact_id` (of any account), living `days`.
    pub async fn create_share_link(
        &self,
        asset_id: &str,
        contact_id: &str,
        recommendation_id: Option<&str>,
        days: u32,
    ) -> AppResult<ShareLink> {
        if !(1..=MAX_SHARE_DAYS).contains(&days) {
            return Err(AppError::bad_input(format!(
                "expiresInDays: 1 to {MAX_SHARE_DAYS}, got {days}"
            )));
        }
        ContactId::parse(contact_id).map_err(|e| AppError::bad_input(format!("contactId: {e}")))?;
        AssetId::parse(asset_id).map_err(|e| AppError::bad_input(format!("assetId: {e}")))?;
        let contact = self
            .store
            .get_contact(contact_id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no contact with id {contact_id:?}")))?;
        let asset = self
            .asset(asset_id)
            .await?
            .filter(|a| a.status == AssetStatus::Published)
            .ok_or_else(|| {
                AppError::NotFound(format!("no published asset with id {asset_id:?}"))
            })?;
        if !crate::domain::is_http_url(&asset.url) {
            return Err(AppError::bad_input(format!(
                "assetId: {asset_id:?} has no absolute address (url {:?}) to send a reader to",
                asset.url
            )));
        }
        let mut position = None;
        if let Some(id) = recommendation_id {
            let list = self.open_list(id)?;
            if list
                .context
                .account
                .as_deref()
                .is_some_and(|a| a != contact.account_id.as_str())
            {
                return Err(AppError::bad_input(
                    "recommendationId: the list was shown to another account",
                ));
            }
            position = Some(self.signer()?.place(&list, asset_id, None).ok_or_else(|| {
                AppError::bad_input(format!(
                    "assetId: {asset_id:?} was not in the list of that recommendationId"
                ))
            })?);
        }
        let mut random = [0u8; 16];
        getrandom::fill(&mut random)
            .map_err(|e| AppError::internal(anyhow::anyhow!("no randomness for a link: {e}")))?;
        let token =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, random);
        let now = Utc::now().timestamp();
        let link = StoredShareLink {
            id: token_id(&token),
            account_id: contact.account_id.to_string(),
            contact_id: contact.id.to_string(),
            asset_id: asset.id.to_string(),
            recommendation_id: recommendation_id.map(str::to_owned),
            position,
            created_at: now,
            expires_at: now + i64::from(days) * 86_400,
            revoked_at: None,
            opens: 0,
            scans: 0,
            first_opened_at: None,
            last_opened_at: None,
        };
        self.store.insert_share_link(&link).await?;
        Ok(ShareLink {
            url: Some(format!("{}/l/{token}", self.public_url)),
            token: Some(token),
            link,
        })
    }

    /// Links to a contact and/or of an asset, newest first.
    pub async fn share_links(
        &self,
        contact_id: Option<&str>,
        asset_id: Option<&str>,
        first: u64,
    ) -> AppResult<Vec<StoredShareLink>> {
        if contact_id.is_none() && asset_id.is_none() {
            return Err(AppError::bad_input("give contactId, assetId or both"));
        }
        if let Some(id) = contact_id {
            ContactId::parse(id).map_err(|e| AppError::bad_input(format!("contactId: {e}")))?;
        }
        if let Some(id) = asset_id {
            AssetId::parse(id).map_err(|e| AppError::bad_input(format!("assetId: {e}")))?;
        }
        self.store
            .share_links(contact_id, asset_id, first.min(MAX_SHARE_LINKS))
            .await
    }

    /// Ends a link: it opens nothing from now on.
    pub async fn revoke_share_link(&self, id: &str) -> AppResult<StoredShareLink> {
        self.store
            .revoke_share_link(id, Utc::now().timestamp())
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no share link with id {id:?}")))
    }

    /// Opens a link: a person's open records a `VIEW` of the contact (tied to the list
    /// the link came from, while that list is within the retention) and counts; a
    /// scanner's only counts as a scan. Either way the reader is sent on.
    pub async fn open_share_link(&self, token: &str, scanner: bool) -> AppResult<ShareOpen> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(ShareOpen::Gone);
        }
        let Some(link) = self.store.share_link(&token_id(token)).await? else {
            return Ok(ShareOpen::Gone);
        };
        let now = Utc::now().timestamp();
        if link.revoked_at.is_some() || link.expires_at <= now {
            return Ok(ShareOpen::Gone);
        }
        let Some(asset) = self.asset(&link.asset_id).await? else {
            return Ok(ShareOpen::Gone);
        };
        let mut view = Vec::new();
        if !scanner {
            let draft = |attributed: bool| EngagementDraft {
                account_id: Some(link.account_id.clone()),
                contact_id: Some(link.contact_id.clone()),
                asset_id: Some(link.asset_id.clone()),
                kind: Some(Given::Value(EngagementKind::View)),
                recommendation_id: link.recommendation_id.clone().filter(|_| attributed),
                position: link.position.map(i64::from).filter(|_| attributed),
                ..Default::default()
            };
            // A list past the retention (or the contact gone) still opens the link.
            view = match self.prepare_engagements(vec![draft(true)]).await {
                Ok((rows, _)) => rows,
                Err(AppError::BadUserInput { .. }) if link.recommendation_id.is_some() => self
                    .prepare_engagements(vec![draft(false)])
                    .await
                    .map(|(rows, _)| rows)
                    .unwrap_or_default(),
                Err(_) => Vec::new(),
            };
        }
        self.store
            .record_share_link_open(&link, scanner, Utc::now(), &view)
            .await?;
        if !scanner {
            self.accounts_changed(std::slice::from_ref(&link.account_id))
                .await;
        }
        Ok(ShareOpen::Go(asset.url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanners_and_unfurlers_are_told_from_people() {
        let people = [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
        ];
        for agent in people {
            assert!(!is_scanner(false, Some(agent)), "{agent}");
            assert!(is_scanner(true, Some(agent)), "HEAD: {agent}");
        }
        let scanners = [
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "Mozilla/5.0 (compatible; Proofpoint URL Defense)",
            "Mozilla/4.0 (compatible; ms-office; MSOffice 16)",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36",
            "LinkedInBot/1.0 (compatible; Mozilla/5.0)",
            "WhatsApp/2.23.20.0",
            "curl/8.5.0",
        ];
        for agent in scanners {
            assert!(is_scanner(false, Some(agent)), "{agent}");
        }
        assert!(is_scanner(false, None) && is_scanner(false, Some("  ")));
    }
}
