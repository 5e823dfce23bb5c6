//! The webhook: one JSON POST per new pending approval and per decision, with a
//! Slack-compatible `text` field. Sent from a background task, retried with exponential
//! backoff; failures are logged (never the URL: webhook URLs often embed a secret) and never
//! block or fail the push path.

use std::time::Duration;

use serde_json::{json, Value};

use super::{Approval, Status};

/// Attempts per event.
const ATTEMPTS: u32 = 5;
/// Delay before the second attempt; doubled for each later one.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Deadline of one POST.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What happened to an approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A push asked for it.
    Pending,
    /// It was decided (approved, denied) or expired: its status says which.
    Decided,
}

/// Sends webhook events; does nothing without a `webhook_url`. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    url: Option<url::Url>,
    public_url: Option<url::Url>,
    client: reqwest::Client,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("enabled", &self.url.is_some())
            .finish()
    }
}

impl Notifier {
    /// A notifier posting to `url` (none: disabled); `public_url` goes into the messages.
    pub fn new(url: Option<url::Url>, public_url: Option<url::Url>) -> Notifier {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Notifier {
            url,
            public_url,
            client,
        }
    }

    /// Whether a webhook is configured.
    pub fn enabled(&self) -> bool {
        self.url.is_some()
    }

    /// Queues `event` about `approval`; returns at once. Must run inside a tokio runtime.
    pub fn notify(&self, event: Event, approval: &Approval) {
        let Some(url) = self.url.clone() else {
            return;
        };
        let payload = payload(event, approval, self.public_url.as_ref()).to_string();
        let client = self.client.clone();
        let id = approval.id.clone();
        tokio::spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            for attempt in 1..=ATTEMPTS {
                let sent = client
                    .post(url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(payload.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => {
                        tracing::debug!(approval = %id, attempt, "webhook delivered");
                        return;
                    }
                    Ok(r) => {
                        tracing::warn!(approval = %id, attempt, status = r.status().as_u16(), "webhook refused the event")
                    }
                    Err(e) => {
                        // reqwest errors name the URL; keep only the kind.
                        let kind = if e.is_timeout() {
                            "timeout"
                        } else if e.is_connect() {
                            "connect"
                        } else {
                            "request"
                        };
                        tracing::warn!(approval = %id, attempt, error = kind, "webhook failed");
                    }
                }
                if attempt < ATTEMPTS {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
            tracing::error!(approval = %id, "webhook: event dropped after {ATTEMPTS} attempts");
        });
    }
}

/// The JSON body of one event.
pub fn payload(event: Event, approval: &Approval, public_url: Option<&url::Url>) -> Value {
    let a = approval;
    let short = |id: &str| id.chars().take(8).collect::<String>();
    let (name, text) = match (event, a.status) {
        (Event::Pending, _) | (_, Status::Pending) => (
            "approval.pending",
            format!(
                "gitgate: {} asks to update {} in {} ({}..{}), rule {}. Approve: gitgate approvals approve {}",
                a.identity,
                a.refname,
                a.repo,
                short(&a.old),
                short(&a.new),
                a.rule,
                a.id
            ),
        ),
        (Event::Decided, Status::Expired) => (
            "approval.expired",
            format!(
                "gitgate: approval {} ({} in {} by {}) expired undecided",
                a.id, a.refname, a.repo, a.identity
            ),
        ),
        (Event::Decided, status) => (
            if status == Status::Approved {
                "approval.approved"
            } else {
                "approval.denied"
            },
            format!(
                "gitgate: approval {} ({} in {} by {}) {} by {}{}",
                a.id,
                a.refname,
                a.repo,
                a.identity,
                status,
                a.by.as_deref().unwrap_or("?"),
                a.comment
                    .as_deref()
                    .map(|c| format!(": {c}"))
                    .unwrap_or_default()
            ),
        ),
    };
    let mut body = json!({
        "event": name,
        "text": text,
        "approval": a,
    });
    if let (Some(base), Some(obj)) = (public_url, body.as_object_mut()) {
        obj.insert("url".into(), Value::String(link(base, &a.id)));
    }
    body
}

/// A link to approval `id` under the gateway's public URL.
pub fn link(base: &url::Url, id: &str) -> String {
    format!("{}/approvals/{id}", base.as_str().trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::Outcome;

    fn approval(status: Status) -> Approval {
        Approval {
            id: "ap-1".into(),
            status,
            identity: "agent-1".into(),
            repo: "local/demo".into(),
            refname: "refs/heads/main".into(),
            old: "a".repeat(40),
            new: "b".repeat(40),
            rule: "review-main".into(),
            reason: "review-main: needs approval".into(),
            op: "op".into(),
            session: "s".into(),
            created: "2024-01-01T00:00:00.000Z".into(),
            expires: "2024-01-02T00:00:00.000Z".into(),
            decided_at: None,
            by: Some("alice".into()),
            comment: Some("ok".into()),
            outcome: Some(Outcome::Applied),
            outcome_detail: None,
        }
    }

    #[test]
    fn events_carry_a_slack_text_and_the_approval() {
        let base = url::Url::parse("https://gitgate.example/").ok();
        let p = payload(Event::Pending, &approval(Status::Pending), base.as_ref());
        assert_eq!(p["event"], "approval.pending");
        let text = p["text"].as_str().unwrap_or_default();
        assert!(text.contains("agent-1 asks to update refs/heads/main in local/demo"));
        assert!(text.contains("gitgate approvals approve ap-1"));
        assert_eq!(p["approval"]["ref"], "refs/heads/main");
        assert_eq!(p["url"], "https://gitgate.example/approvals/ap-1");

        let p = payload(Event::Decided, &approval(Status::Approved), None);
        assert_eq!(p["event"], "approval.approved");
        assert!(p["text"]
            .as_str()
            .unwrap_or_default()
            .ends_with("approved by alice: ok"));
        assert!(p.get("url").is_none());
        let p = payload(Event::Decided, &approval(Status::Denied), None);
        assert_eq!(p["event"], "approval.denied");
        let p = payload(Event::Decided, &approval(Status::Expired), None);
        assert_eq!(p["event"], "approval.expired");
    }
}
