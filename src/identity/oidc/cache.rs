//! One issuer's keys: fetched on first use (cold cache), refreshed when older than
//! `jwks_refresh_seconds`, and refreshed when a token names an unknown `kid` (key rotation) —
//! but never more often than once per `jwks_min_refresh_seconds`, so a flood of tokens with
//! forged `kid`s cannot hammer the issuer (a cold cache retries at most once a second). A failed refresh keeps the keys already known (warm
//! cache: the gateway keeps serving while the issuer is down); without keys it fails closed.
//! One fetch at a time: concurrent callers wait for it and share its result.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::error::{FetchError, OidcError};
use super::jwks::KeySet;

/// How often a cold cache (no keys yet) may try again.
const COLD_RETRY: Duration = Duration::from_secs(1);

/// Where keys come from (discovery in production, a stand-in in unit tests).
pub trait KeySource: Send + Sync {
    /// Fetches the current key set.
    fn fetch(&self) -> BoxFuture<'_, Result<KeySet, FetchError>>;
}

/// How often to refresh.
#[derive(Debug, Clone, Copy)]
pub struct CacheOptions {
    /// Refresh keys older than this.
    pub refresh: Duration,
    /// At most one fetch per this interval (unknown `kid`, failures, refreshes).
    pub min_refresh: Duration,
}

#[derive(Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
    last_error: Option<FetchError>,
    /// Bumped by every fetch attempt, so that callers that waited for one do not repeat it.
    generation: u64,
}

/// The cached keys of one issuer.
pub struct KeyCache {
    issuer: String,
    source: Box<dyn KeySource>,
    options: CacheOptions,
    state: Mutex<State>,
    fetching: tokio::sync::Mutex<()>,
}

/// Keys as seen at one moment.
pub struct Snapshot {
    /// The keys.
    pub keys: Arc<KeySet>,
    generation: u64,
}

impl KeyCache {
    /// An empty (cold) cache for `issuer` (used in log lines).
    pub fn new(issuer: &str, source: Box<dyn KeySource>, options: CacheOptions) -> Self {
        KeyCache {
            issuer: issuer.to_string(),
            source,
            options,
            state: Mutex::new(State::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is a few plain fields updated in one step: usable even after a panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn may_fetch(&self, state: &State) -> bool {
        // Without any key every token is refused, so a cold cache retries sooner (an issuer
        // that came up after the gateway is usable within a second), still bounded.
        let interval = if state.keys.is_none() {
            self.options.min_refresh.min(COLD_RETRY)
        } else {
            self.options.min_refresh
        };
        state.attempted.is_none_or(|t| t.elapsed() >= interval)
    }

    /// The keys to verify with. A cold cache is fetched first (the caller waits); a stale one
    /// keeps serving while a refresh runs in the background, so a slow issuer slows nobody.
    pub async fn keys(self: &Arc<Self>) -> Result<Snapshot, OidcError> {
        let (cold, stale, may, generation) = {
            let s = self.state();
            let stale = s
                .fetched
                .is_none_or(|t| t.elapsed() >= self.options.refresh);
            (s.keys.is_none(), stale, self.may_fetch(&s), s.generation)
        };
        if cold {
            // Also when rate-limited: a fetch may be under way (the background warm-up at
            // start), and waiting for it beats refusing; `refresh` re-checks the limit.
            self.refresh(generation).await;
        } else if stale && may {
            let cache = Arc::clone(self);
            tokio::spawn(async move { cache.refresh(generation).await });
        }
        let s = self.state();
        match &s.keys {
            Some(keys) => Ok(Snapshot {
                keys: keys.clone(),
                generation: s.generation,
            }),
            None => Err(OidcError::KeysUnavailable(
                s.last_error.clone().unwrap_or(FetchError::RateLimited),
            )),
        }
    }

    /// After a token named a `kid` missing from `seen`: fetches again unless rate-limited.
    /// `Some` with the keys when a fetch happened since `seen` (by us or a concurrent caller).
    pub async fn refresh_for_unknown_kid(&self, seen: &Snapshot) -> Option<Snapshot> {
        self.refresh(seen.generation).await;
        let s = self.state();
        match &s.keys {
            Some(keys) if s.generation != seen.generation => Some(Snapshot {
                keys: keys.clone(),
                generation: s.generation,
            }),
            _ => None,
        }
    }

    /// Warms a cold cache and refreshes a stale one (the background task's step).
    pub async fn maintain(&self) {
        let (stale, may, generation) = {
            let s = self.state();
            let stale = s
                .fetched
                .is_none_or(|t| t.elapsed() >= self.options.refresh);
            (stale, self.may_fetch(&s), s.generation)
        };
        if stale && may {
            self.refresh(generation).await;
        }
    }

    /// How long the background task may sleep before the next [`KeyCache::maintain`].
    pub fn next_check(&self) -> Duration {
        if self.state().keys.is_some() {
            self.options.refresh
        } else {
            COLD_RETRY
        }
    }

    async fn refresh(&self, seen_generation: u64) {
        let _one_at_a_time = self.fetching.lock().await;
        {
            let mut s = self.state();
            if s.generation != seen_generation || !self.may_fetch(&s) {
                return; // someone fetched while we waited, or the rate limit says no
            }
            s.attempted = Some(Instant::now());
        }
        let result = self.source.fetch().await;
        let mut s = self.state();
        s.generation += 1;
        match result {
            Ok(keys) => {
                tracing::info!(
                    issuer = %self.issuer,
                    keys = keys.keys.len(),
                    skipped = keys.skipped,
                    "oidc: fetched the issuer's keys"
                );
                s.keys = Some(Arc::new(keys));
                s.fetched = Some(Instant::now());
                s.last_error = None;
            }
            Err(e) => {
                tracing::warn!(
                    issuer = %self.issuer,
                    error = %e,
                    cached = s.keys.is_some(),
                    "oidc: cannot fetch the issuer's keys"
                );
                s.last_error = Some(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Serves whatever `set` holds; counts fetches.
    struct Fake {
        set: Mutex<Result<KeySet, FetchError>>,
        fetches: Arc<AtomicUsize>,
    }

    impl KeySource for Fake {
        fn fetch(&self) -> BoxFuture<'_, Result<KeySet, FetchError>> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            let r = self
                .set
                .lock()
                .map(|s| s.clone())
                .unwrap_or(Err(FetchError::RateLimited));
            Box::pin(async move { r })
        }
    }

    fn down() -> Result<KeySet, FetchError> {
        Err(FetchError::Status {
            url: "u".into(),
            status: 503,
        })
    }

    fn cache(initial: Result<KeySet, FetchError>) -> (Arc<KeyCache>, Arc<AtomicUsize>, Arc<Fake>) {
        let fetches = Arc::new(AtomicUsize::new(0));
        let fake = Arc::new(Fake {
            set: Mutex::new(initial),
            fetches: fetches.clone(),
        });
        struct Shared(Arc<Fake>);
        impl KeySource for Shared {
            fn fetch(&self) -> BoxFuture<'_, Result<KeySet, FetchError>> {
                self.0.fetch()
            }
        }
        let options = CacheOptions {
            refresh: Duration::from_secs(600),
            min_refresh: Duration::from_secs(30),
        };
        let c = KeyCache::new("https://issuer", Box::new(Shared(fake.clone())), options);
        (Arc::new(c), fetches, fake)
    }

    #[tokio::test(start_paused = true)]
    async fn cold_cache_fails_closed_and_is_rate_limited() {
        let (c, fetches, fake) = cache(down());
        assert!(matches!(
            c.keys().await,
            Err(OidcError::KeysUnavailable(FetchError::Status { .. }))
        ));
        assert!(c.keys().await.is_err());
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "second failure came from the cache"
        );
        *fake.set.lock().expect("lock") = Ok(KeySet::default());
        // A cold cache retries after a second, not after min_refresh (30 s here).
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert!(c.keys().await.is_ok());
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cold_caller_waits_for_a_fetch_under_way() {
        struct Slow;
        impl KeySource for Slow {
            fn fetch(&self) -> BoxFuture<'_, Result<KeySet, FetchError>> {
                Box::pin(async {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    Ok(KeySet::default())
                })
            }
        }
        let options = CacheOptions {
            refresh: Duration::from_secs(600),
            min_refresh: Duration::from_secs(30),
        };
        let c = Arc::new(KeyCache::new("https://issuer", Box::new(Slow), options));
        let warming = {
            let c = c.clone();
            tokio::spawn(async move { c.maintain().await })
        };
        tokio::task::yield_now().await; // the warm-up holds the fetch now
        assert!(
            c.keys().await.is_ok(),
            "waited for the warm-up instead of refusing"
        );
        let _ = warming.await;
    }

    #[tokio::test(start_paused = true)]
    async fn warm_cache_survives_a_down_issuer() {
        let (c, fetches, fake) = cache(Ok(KeySet::default()));
        assert!(c.keys().await.is_ok());
        *fake.set.lock().expect("lock") = down();
        tokio::time::advance(Duration::from_secs(601)).await;
        assert!(c.keys().await.is_ok(), "stale keys keep serving");
        tokio::time::sleep(Duration::from_millis(1)).await; // the background refresh runs
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            2,
            "the stale cache tried a refresh"
        );
        assert!(c.keys().await.is_ok(), "a failed refresh keeps the keys");
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_kid_refresh_is_rate_limited() {
        let (c, fetches, _fake) = cache(Ok(KeySet::default()));
        let seen = c.keys().await.expect("keys");
        assert!(
            c.refresh_for_unknown_kid(&seen).await.is_none(),
            "too soon after the first fetch"
        );
        tokio::time::advance(Duration::from_secs(31)).await;
        let again = c.refresh_for_unknown_kid(&seen).await.expect("refreshed");
        for _ in 0..100 {
            assert!(c.refresh_for_unknown_kid(&again).await.is_none());
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }
}
