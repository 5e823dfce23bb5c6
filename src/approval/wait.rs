//! Holding a push: poll the store (cheap: one indexed row per held update) until every held
//! approval is decided or the wait is over, calling back at each keep-alive interval so the
//! pipeline can tell the client it is still waiting.
//!
//! Polling rather than in-process signalling is deliberate: decisions may come from another
//! process (`gitgate approvals approve` while `serve` runs).

use std::time::Duration;

use tokio::time::Instant;

use super::{Approval, ApprovalError, Approvals, Status};

/// How often the store is asked.
const POLL: Duration = Duration::from_millis(250);

/// What the wait ended with.
#[derive(Debug)]
pub struct Waited {
    /// The held approvals as they stand now, in the order asked.
    pub approvals: Vec<Approval>,
    /// Whether the wait ran out (or the client went away) with some still pending.
    pub timed_out: bool,
}

/// Waits up to `wait` for the approvals `ids` to be decided. `keepalive` is called at once
/// and then every `interval`; when it returns `false` (the client went away) the wait ends.
pub async fn wait_for(
    store: &Approvals,
    ids: &[String],
    wait: Duration,
    interval: Duration,
    mut keepalive: impl FnMut() -> bool + Send,
) -> Result<Waited, ApprovalError> {
    let deadline = Instant::now() + wait;
    let mut next_keepalive = Instant::now();
    loop {
        let wanted = ids.to_vec();
        let approvals = store
            .run(move |s| {
                let mut out = Vec::with_capacity(wanted.len());
                for id in &wanted {
                    out.push(
                        s.get(id)?
                            .ok_or_else(|| ApprovalError::Unknown { id: id.clone() })?,
                    );
                }
                Ok(out)
            })
            .await?;
        let pending = approvals.iter().any(|a| a.status == Status::Pending);
        let now = Instant::now();
        if !pending {
            return Ok(Waited {
                approvals,
                timed_out: false,
            });
        }
        if now >= deadline {
            return Ok(Waited {
                approvals,
                timed_out: true,
            });
        }
        if now >= next_keepalive {
            if !keepalive() {
                return Ok(Waited {
                    approvals,
                    timed_out: true,
                });
            }
            next_keepalive = now + interval;
        }
        let sleep_until = deadline.min(next_keepalive).min(now + POLL);
        tokio::time::sleep_until(sleep_until).await;
    }
}
