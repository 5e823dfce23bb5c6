//! Counting what runs: git operations per identity (`[ssh] max_sessions_per_identity`), and
//! operations per connection (graceful shutdown waits for them).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// Git operations over SSH per identity, with a limit.
pub struct PerIdentity {
    limit: usize,
    running: Arc<Mutex<HashMap<String, usize>>>,
}

/// One running operation of an identity; released on drop.
pub struct Permit {
    name: String,
    running: Arc<Mutex<HashMap<String, usize>>>,
}

impl PerIdentity {
    /// At most `limit` operations per identity.
    pub fn new(limit: usize) -> PerIdentity {
        PerIdentity {
            limit,
            running: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A permit for `name`, unless it already runs `limit` operations.
    pub fn acquire(&self, name: &str) -> Option<Permit> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let count = running.entry(name.to_string()).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(Permit {
            name: name.to_string(),
            running: self.running.clone(),
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = running.get_mut(&self.name) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                running.remove(&self.name);
            }
        }
    }
}

/// The number of operations running on one connection.
#[derive(Clone)]
pub struct Active(Arc<watch::Sender<usize>>);

/// One running operation; released on drop.
pub struct ActiveGuard(Arc<watch::Sender<usize>>);

impl Active {
    /// A counter at zero.
    pub fn new() -> Active {
        Active(Arc::new(watch::Sender::new(0)))
    }

    /// Counts one more operation until the guard is dropped.
    pub fn enter(&self) -> ActiveGuard {
        self.0.send_modify(|n| *n += 1);
        ActiveGuard(self.0.clone())
    }

    /// Waits until no operation runs.
    pub async fn idle(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

impl Default for Active {
    fn default() -> Self {
        Active::new()
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_counted_per_identity() {
        let limits = PerIdentity::new(2);
        let a1 = limits.acquire("a").expect("first");
        let _a2 = limits.acquire("a").expect("second");
        assert!(limits.acquire("a").is_none());
        let _b = limits.acquire("b").expect("other identity");
        drop(a1);
        assert!(limits.acquire("a").is_some());
    }

    #[tokio::test]
    async fn idle_waits_for_guards() {
        let active = Active::new();
        let guard = active.enter();
        let waiter = {
            let active = active.clone();
            tokio::spawn(async move { active.idle().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(guard);
        waiter.await.expect("joined");
    }
}
