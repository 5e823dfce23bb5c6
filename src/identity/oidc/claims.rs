//! The claims of a token whose signature verified: times, audience, client, required claims,
//! then the identity (`name_claim`, `groups_claim`).

use serde_json::{Map, Value};

use super::error::{shorten, OidcError};
use crate::config::Oidc as Config;

/// Longest name or group accepted (they end up in logs, records and policy matching).
const MAX_NAME_CHARS: usize = 256;
/// Most groups accepted from one token.
const MAX_GROUPS: usize = 1024;

/// What a token's claims say, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The identity's name.
    pub name: String,
    /// Its groups.
    pub groups: Vec<String>,
    /// `exp`, seconds since the epoch.
    pub exp: i64,
}

/// A claim by name: the exact name first (claim names may contain dots, e.g. Auth0's
/// namespaced `https://example.com/roles`), else a dotted path into nested objects
/// (`realm_access.roles`).
pub fn lookup<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut current = claims.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

/// A NumericDate (RFC 7519 section 2): a JSON number of seconds, fractions truncated.
fn time(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, OidcError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) => Ok(Some(v)),
            None => match n.as_f64() {
                Some(f) if f.is_finite() && f.abs() < 1e15 => Ok(Some(f.trunc() as i64)),
                _ => Err(bad(name, "is not a valid time")),
            },
        },
        Some(_) => Err(bad(name, "is not a number")),
    }
}

fn bad(claim: &str, problem: &'static str) -> OidcError {
    OidcError::BadClaim {
        claim: claim.to_string(),
        problem,
    }
}

/// Checks `claims` against `config` at `now` (seconds since the epoch). The `iss` claim already
/// selected `config`.
pub fn check(claims: &Map<String, Value>, config: &Config, now: i64) -> Result<Checked, OidcError> {
    let leeway = config.leeway.as_secs();
    let slack = i64::try_from(leeway).unwrap_or(i64::MAX);
    let exp = time(claims, "exp")?.ok_or_else(|| OidcError::MissingClaim {
        claim: "exp".into(),
    })?;
    if now >= exp.saturating_add(slack) {
        return Err(OidcError::Expired { exp, now, leeway });
    }
    if let Some(nbf) = time(claims, "nbf")? {
        if now.saturating_add(slack) < nbf {
            return Err(OidcError::NotYetValid { nbf, now, leeway });
        }
    }
    if let Some(iat) = time(claims, "iat")? {
        if now.saturating_add(slack) < iat {
            return Err(OidcError::IssuedInFuture { iat, now, leeway });
        }
    }
    audience(claims, &config.audience)?;
    client(claims, &config.allowed_clients)?;
    for (claim, expected) in &config.required_claims {
        if !satisfies(lookup(claims, claim), expected) {
            return Err(OidcError::RequiredClaim {
                claim: claim.clone(),
                expected: expected.clone(),
            });
        }
    }
    Ok(Checked {
        name: name(claims, &config.name_claim)?,
        groups: groups(claims, &config.groups_claim)?,
        exp,
    })
}

fn audience(claims: &Map<String, Value>, expected: &str) -> Result<(), OidcError> {
    let ok = match claims.get("aud") {
        None => {
            return Err(OidcError::MissingClaim {
                claim: "aud".into(),
            })
        }
        Some(Value::String(aud)) => aud == expected,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(expected)),
        Some(_) => return Err(bad("aud", "is not a string or a list of strings")),
    };
    if ok {
        return Ok(());
    }
    let found = claims.get("aud").map(Value::to_string).unwrap_or_default();
    Err(OidcError::Audience {
        expected: expected.to_string(),
        found: shorten(&found, 200),
    })
}

/// `azp` (OpenID Connect), `appid` (Azure AD v1 access tokens) or `client_id` (RFC 9068).
fn client(claims: &Map<String, Value>, allowed: &[String]) -> Result<(), OidcError> {
    if allowed.is_empty() {
        return Ok(());
    }
    let found = ["azp", "appid", "client_id"]
        .iter()
        .find_map(|c| claims.get(*c).and_then(Value::as_str));
    match found {
        Some(c) if allowed.iter().any(|a| a == c) => Ok(()),
        _ => Err(OidcError::Client {
            client: found.map(|c| shorten(c, 128)),
        }),
    }
}

/// A required value is met by an equal string, a list holding it, or a boolean or number
/// whose JSON text equals it (`"true"`, `"42"`).
fn satisfies(value: Option<&Value>, expected: &str) -> bool {
    match value {
        Some(Value::String(s)) => s == expected,
        Some(Value::Array(list)) => list.iter().any(|v| satisfies(Some(v), expected)),
        Some(v @ (Value::Bool(_) | Value::Number(_))) => v.to_string().as_str() == expected,
        _ => false,
    }
}

fn clean(claim: &str, value: &str) -> Result<String, OidcError> {
    if value.is_empty() {
        return Err(bad(claim, "is empty"));
    }
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(bad(claim, "is too long"));
    }
    if value.chars().any(char::is_control) {
        return Err(bad(claim, "contains control characters"));
    }
    Ok(value.to_string())
}

fn name(claims: &Map<String, Value>, claim: &str) -> Result<String, OidcError> {
    match lookup(claims, claim) {
        None => Err(OidcError::MissingClaim {
            claim: claim.to_string(),
        }),
        Some(Value::String(s)) => clean(claim, s),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(_) => Err(bad(claim, "is not a string")),
    }
}

fn groups(claims: &Map<String, Value>, claim: &str) -> Result<Vec<String>, OidcError> {
    match lookup(claims, claim) {
        Some(Value::String(s)) => Ok(vec![clean(claim, s)?]),
        Some(Value::Array(list)) => {
            if list.len() > MAX_GROUPS {
                return Err(bad(claim, "lists too many groups"));
            }
            list.iter()
                .map(|v| match v {
                    Value::String(s) => clean(claim, s),
                    _ => Err(bad(claim, "is not a list of strings")),
                })
                .collect()
        }
        Some(_) => Err(bad(claim, "is not a string or a list of strings")),
        None => {
            // Azure AD / Entra ID leaves the groups out when there are too many (over 200 in
            // JWTs) and says so with `_claim_names` (pointing at Graph) or `hasgroups`.
            let listed = claims
                .get("_claim_names")
                .and_then(Value::as_object)
                .is_some_and(|names| names.contains_key(claim) || names.contains_key("groups"));
            if listed {
                return Err(OidcError::GroupsOverage {
                    claim: claim.to_string(),
                    marker: "_claim_names",
                });
            }
            if claims.get("hasgroups") == Some(&Value::Bool(true)) {
                return Err(OidcError::GroupsOverage {
                    claim: claim.to_string(),
                    marker: "hasgroups",
                });
            }
            Ok(Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const NOW: i64 = 1_800_000_000;

    fn config() -> Config {
        Config {
            issuer: url::Url::parse("https://login.example.com").expect("url"),
            iss: "https://login.example.com".into(),
            audience: "api://gitgate".into(),
            groups_claim: "groups".into(),
            name_claim: "sub".into(),
            allowed_clients: Vec::new(),
            leeway: Duration::from_secs(60),
            required_claims: Vec::new(),
            jwks_refresh: Duration::from_secs(3600),
            jwks_min_refresh: Duration::from_secs(30),
            ca_file: None,
        }
    }

    fn claims(json: &str) -> Map<String, Value> {
        let base = format!(
            r#"{{"sub":"agent","aud":"api://gitgate","exp":{},"iat":{NOW}{json}}}"#,
            NOW + 300
        );
        serde_json::from_str(&base).expect("json")
    }

    fn run(json: &str) -> Result<Checked, OidcError> {
        check(&claims(json), &config(), NOW)
    }

    #[test]
    fn accepts_and_maps_identity() {
        let c = run(r#","groups":["a","b"]"#).expect("accepted");
        assert_eq!(
            (c.name.as_str(), c.groups.len(), c.exp),
            ("agent", 2, NOW + 300)
        );
        assert_eq!(
            run(r#","groups":"solo""#).map(|c| c.groups),
            Ok(vec!["solo".to_string()])
        );
        assert_eq!(run("").map(|c| c.groups), Ok(vec![]));
        assert!(run(r#","aud":["x","api://gitgate"]"#).is_ok());
    }

    #[test]
    fn times_with_leeway() {
        let at = |exp: i64| check(&claims(&format!(r#","exp":{exp}"#)), &config(), NOW);
        assert!(at(NOW - 59).is_ok(), "inside the leeway");
        assert!(matches!(at(NOW - 60), Err(OidcError::Expired { .. })));
        assert!(matches!(
            run(r#","nbf":1800000061"#),
            Err(OidcError::NotYetValid { .. })
        ));
        assert!(run(r#","nbf":1800000059"#).is_ok());
        assert!(matches!(
            run(r#","iat":1800000100"#),
            Err(OidcError::IssuedInFuture { .. })
        ));
        assert!(matches!(
            run(r#","exp":"soon""#),
            Err(OidcError::BadClaim { .. })
        ));
        let mut no_exp = claims("");
        no_exp.remove("exp");
        assert!(matches!(
            check(&no_exp, &config(), NOW),
            Err(OidcError::MissingClaim { .. })
        ));
    }

    #[test]
    fn audience_and_clients() {
        assert!(matches!(
            run(r#","aud":"other""#),
            Err(OidcError::Audience { .. })
        ));
        assert!(matches!(
            run(r#","aud":["a","b"]"#),
            Err(OidcError::Audience { .. })
        ));
        assert!(matches!(
            run(r#","aud":5"#),
            Err(OidcError::BadClaim { .. })
        ));
        let mut cfg = config();
        cfg.allowed_clients = vec!["cli".into()];
        assert!(check(&claims(r#","azp":"cli""#), &cfg, NOW).is_ok());
        assert!(check(&claims(r#","appid":"cli""#), &cfg, NOW).is_ok());
        assert!(matches!(
            check(&claims(r#","client_id":"other""#), &cfg, NOW),
            Err(OidcError::Client { client: Some(_) })
        ));
        assert!(matches!(
            check(&claims(""), &cfg, NOW),
            Err(OidcError::Client { client: None })
        ));
    }

    #[test]
    fn dotted_paths_and_required_claims() {
        let mut cfg = config();
        cfg.groups_claim = "realm_access.roles".into();
        cfg.name_claim = "https://example.com/name".into();
        cfg.required_claims = vec![
            ("tid".into(), "t1".into()),
            ("email_verified".into(), "true".into()),
        ];
        let c = check(
            &claims(r#","realm_access":{"roles":["git"]},"https://example.com/name":"n","tid":"t1","email_verified":true"#),
            &cfg,
            NOW,
        )
        .expect("accepted");
        assert_eq!((c.name.as_str(), c.groups), ("n", vec!["git".to_string()]));
        assert!(matches!(
            check(
                &claims(r#","https://example.com/name":"n","tid":"t2","email_verified":true"#),
                &cfg,
                NOW
            ),
            Err(OidcError::RequiredClaim { .. })
        ));
    }

    #[test]
    fn groups_overage_is_refused() {
        assert!(matches!(
            run(r#","_claim_names":{"groups":"src1"},"_claim_sources":{"src1":{"endpoint":"x"}}"#),
            Err(OidcError::GroupsOverage {
                marker: "_claim_names",
                ..
            })
        ));
        assert!(matches!(
            run(r#","hasgroups":true"#),
            Err(OidcError::GroupsOverage {
                marker: "hasgroups",
                ..
            })
        ));
    }

    #[test]
    fn bad_identity_claims() {
        assert!(matches!(
            run(r#","sub":"""#),
            Err(OidcError::BadClaim { .. })
        ));
        assert!(matches!(
            run(r#","sub":"a\nb""#),
            Err(OidcError::BadClaim { .. })
        ));
        assert!(matches!(
            run(r#","groups":[1]"#),
            Err(OidcError::BadClaim { .. })
        ));
        assert!(matches!(
            run(r#","groups":{"a":1}"#),
            Err(OidcError::BadClaim { .. })
        ));
    }
}
