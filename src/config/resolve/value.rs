//! Checked leaf values: each turns a spanned raw value into its resolved type or an error
//! naming the key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::Tbl;
use crate::config::error::{ConfigError, Problem};
use crate::config::raw::S;

/// Longest accepted duration: ten years. Far beyond any sensible setting, and far below
/// what would overflow `Instant + Duration` at runtime.
const MAX_SECONDS: i64 = 10 * 365 * 24 * 3600;

impl Tbl<'_> {
    /// A non-empty, single-line string: names and messages end up in log lines and in
    /// `ng <ref> <reason>` pkt-lines, where a line break would corrupt the protocol.
    pub(super) fn text(&self, key: &str, v: &S<String>) -> Result<String, ConfigError> {
        let s = v.get_ref();
        if s.is_empty() {
            return Err(self.err(&v.span(), key, Problem::Empty));
        }
        if s.chars().any(char::is_control) {
            return Err(self.err(&v.span(), key, Problem::ControlCharacter));
        }
        Ok(s.clone())
    }

    /// A list of [`Tbl::text`] values.
    pub(super) fn words(&self, key: &str, list: &[S<String>]) -> Result<Vec<String>, ConfigError> {
        list.iter().map(|v| self.text(key, v)).collect()
    }

    /// A name usable as a URL segment: `[A-Za-z0-9._-]+`, not `.` or `..`.
    pub(super) fn name(&self, key: &str, v: &S<String>) -> Result<String, ConfigError> {
        let s = self.text(key, v)?;
        let charset = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !charset || s.bytes().all(|b| b == b'.') {
            return Err(self.err(&v.span(), key, Problem::BadName { name: s }));
        }
        Ok(s)
    }

    /// A path, relative to the config file's folder unless absolute. Not checked to exist.
    pub(super) fn path(&self, key: &str, v: &S<String>) -> Result<PathBuf, ConfigError> {
        let s = v.get_ref();
        if s.is_empty() {
            return Err(self.err(&v.span(), key, Problem::Empty));
        }
        Ok(self.cx.base.join(s))
    }

    /// [`Tbl::path`], or `default` (relative to the config folder) when absent.
    pub(super) fn path_or(
        &self,
        key: &str,
        v: Option<&S<String>>,
        default: &str,
    ) -> Result<PathBuf, ConfigError> {
        match v {
            Some(v) => self.path(key, v),
            None => Ok(self.cx.base.join(default)),
        }
    }

    /// A socket address `IP:PORT` (`[::1]:22` for IPv6); host names are not resolved here.
    pub(super) fn addr(&self, key: &str, v: &S<String>) -> Result<SocketAddr, ConfigError> {
        v.get_ref().parse().map_err(|_| {
            self.err(
                &v.span(),
                key,
                Problem::BadAddress {
                    value: v.get_ref().clone(),
                },
            )
        })
    }

    /// A SHA-256 written as 64 hex digits (either case).
    pub(super) fn sha256(&self, key: &str, v: &S<String>) -> Result<[u8; 32], ConfigError> {
        let s = v.get_ref();
        let mut out = [0u8; 32];
        let got = if s.len() != 64 {
            format!("{} characters", s.chars().count())
        } else if hex::decode_to_slice(s, &mut out).is_err() {
            "a non-hex character".to_string()
        } else {
            return Ok(out);
        };
        Err(self.err(&v.span(), key, Problem::BadSha256 { got }))
    }

    /// An absolute `http://` or `https://` URL without credentials or fragment.
    pub(super) fn http_url(&self, key: &str, v: &S<String>) -> Result<url::Url, ConfigError> {
        let url = self.url(key, v)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(self.bad_url(key, v, "expected an http:// or https:// URL"));
        }
        self.no_userinfo(key, v, &url)?;
        if url.fragment().is_some() {
            return Err(self.bad_url(key, v, "must not have a #fragment"));
        }
        Ok(url)
    }

    /// Any absolute URL.
    pub(super) fn url(&self, key: &str, v: &S<String>) -> Result<url::Url, ConfigError> {
        url::Url::parse(v.get_ref()).map_err(|e| self.bad_url(key, v, &e.to_string()))
    }

    /// Credentials in a URL would leak through logs and `Debug`; they have their own keys.
    pub(super) fn no_userinfo(
        &self,
        key: &str,
        v: &S<String>,
        url: &url::Url,
    ) -> Result<(), ConfigError> {
        if !url.username().is_empty() || url.password().is_some() {
            return Err(self.bad_url(key, v, "must not contain a user name or password"));
        }
        Ok(())
    }

    /// A [`Problem::BadUrl`] error about `v`.
    pub(super) fn bad_url(&self, key: &str, v: &S<String>, reason: &str) -> ConfigError {
        self.err(
            &v.span(),
            key,
            Problem::BadUrl {
                value: v.get_ref().clone(),
                reason: reason.to_string(),
            },
        )
    }

    /// Whole seconds from `min` to ten years, or `default`.
    pub(super) fn seconds(
        &self,
        key: &str,
        v: Option<&S<i64>>,
        default: u64,
        min: i64,
    ) -> Result<Duration, ConfigError> {
        let secs = match v {
            Some(v) => self.range(key, v, min, MAX_SECONDS)?,
            None => default,
        };
        Ok(Duration::from_secs(secs))
    }

    /// A positive byte count, or `default`.
    pub(super) fn bytes(
        &self,
        key: &str,
        v: Option<&S<i64>>,
        default: i64,
    ) -> Result<u64, ConfigError> {
        match v {
            Some(v) => self.range(key, v, 1, i64::MAX),
            None => Ok(default.unsigned_abs()),
        }
    }

    /// A positive number (at least 1).
    pub(super) fn positive(&self, key: &str, v: &S<i64>) -> Result<u64, ConfigError> {
        self.range(key, v, 1, i64::MAX)
    }

    /// A positive count up to `u32::MAX`, or `default`.
    pub(super) fn count(
        &self,
        key: &str,
        v: Option<&S<i64>>,
        default: usize,
    ) -> Result<usize, ConfigError> {
        match v {
            Some(v) => {
                let n = self.range(key, v, 1, i64::from(u32::MAX))?;
                usize::try_from(n).map_err(|_| self.out_of_range(key, v, 1, i64::from(u32::MAX)))
            }
            None => Ok(default),
        }
    }

    /// `v` within `min..=max` (with `min >= 0`), as `u64`.
    fn range(&self, key: &str, v: &S<i64>, min: i64, max: i64) -> Result<u64, ConfigError> {
        let n = *v.get_ref();
        if n < min || n > max {
            return Err(self.out_of_range(key, v, min, max));
        }
        u64::try_from(n).map_err(|_| self.out_of_range(key, v, min, max))
    }

    fn out_of_range(&self, key: &str, v: &S<i64>, min: i64, max: i64) -> ConfigError {
        self.err(
            &v.span(),
            key,
            Problem::OutOfRange {
                value: *v.get_ref(),
                min,
                max,
            },
        )
    }

    /// One of a fixed set of words; `expected` lists them for the message.
    pub(super) fn choice<T: Copy>(
        &self,
        key: &str,
        v: &S<String>,
        options: &[(&str, T)],
        expected: &'static str,
    ) -> Result<T, ConfigError> {
        options
            .iter()
            .find(|(word, _)| *word == v.get_ref())
            .map(|(_, value)| *value)
            .ok_or_else(|| {
                self.err(
                    &v.span(),
                    key,
                    Problem::BadChoice {
                        value: v.get_ref().clone(),
                        expected,
                    },
                )
            })
    }
}
