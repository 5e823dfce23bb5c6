//! The `Authorization` header: `Basic` (any user name, the token as password) or `Bearer`.

use base64::Engine;

use crate::secret::Secret;
use crate::session::Credential;

/// The credential carried by an `Authorization` header value (absent: [`Credential::None`]).
/// Malformed headers give an empty token, which authentication refuses as invalid.
pub fn credential(header: Option<&[u8]>) -> Credential {
    let Some(value) = header else {
        return Credential::None;
    };
    let Ok(value) = std::str::from_utf8(value) else {
        return invalid();
    };
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Credential::Token(Secret::new(rest.to_string()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return invalid();
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
        return invalid();
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return invalid();
    };
    let (user, password) = decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
    // `https://TOKEN@host/...` puts the token in the user name with an empty password.
    let token = if password.is_empty() { user } else { password };
    Credential::Token(Secret::new(token.to_string()))
}

fn invalid() -> Credential {
    Credential::Token(Secret::new(String::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str) -> Option<String> {
        match credential(Some(header.as_bytes())) {
            Credential::Token(t) => Some(t.expose().clone()),
            _ => None,
        }
    }

    #[test]
    fn basic_password_is_the_token() {
        // "x:tok" in base64
        assert_eq!(token("Basic eDp0b2s="), Some("tok".into()));
        assert_eq!(token("basic eDp0b2s="), Some("tok".into()));
    }

    #[test]
    fn basic_user_alone_is_the_token() {
        // "tok:" in base64
        assert_eq!(token("Basic dG9rOg=="), Some("tok".into()));
    }

    #[test]
    fn bearer() {
        assert_eq!(token("Bearer abc.def"), Some("abc.def".into()));
    }

    #[test]
    fn garbage_is_an_empty_token() {
        assert_eq!(token("Basic !!!"), Some(String::new()));
        assert_eq!(token("Digest foo"), Some(String::new()));
        assert!(matches!(credential(None), Credential::None));
    }
}
