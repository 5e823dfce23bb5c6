//! Body of the `jwt` target: untrusted bearer tokens and JWKS documents (OIDC identity).

use gitgate::identity::oidc::{claims, jwks, token};
use std::path::Path;

/// The same bytes as a token (shape, header, payload, claims checks) and as a JWKS document:
/// never a panic, limits hold, and key lookups on a parsed set stay within it.
pub fn jwt(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = token::looks_like_jwt(&text);
    let _ = token::peek_claims(&text);
    if let Ok(parsed) = token::parse(&text) {
        assert!(text.len() <= token::MAX_TOKEN_BYTES);
        assert!(parsed.signed.len() < text.len());
        let config = gitgate::config::parse(
            "[[oidc]]\nissuer = \"https://issuer.example.com\"\naudience = \"api://gitgate\"\n\
             groups_claim = \"realm_access.roles\"\nallowed_clients = [\"cli\"]\n\
             required_claims = { tid = \"t\" }\n",
            Path::new("fuzz.toml"),
        )
        .expect("the fuzz config parses");
        if let Some(oidc) = config.oidc.first() {
            let _ = claims::check(&parsed.claims, oidc, 1_800_000_000);
        }
    }
    if let Ok(set) = jwks::KeySet::parse(data) {
        assert!(set.keys.len() <= jwks::MAX_KEYS);
        for alg in ["RS256", "PS256", "ES256", "ES384", "EdDSA"] {
            if let Some(alg) = token::Alg::parse(alg) {
                if let Ok(keys) = set.candidates(None, alg) {
                    assert!(keys.iter().all(|k| k.verifies(alg)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn jwt_body_runs_over_its_corpus() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/jwt");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus/jwt").flatten() {
            let data = std::fs::read(entry.path()).unwrap_or_default();
            for cut in (0..=data.len()).step_by(1 + data.len() / 64) {
                super::jwt(data.get(..cut).unwrap_or_default());
            }
            n += 1;
        }
        assert!(n >= 3, "seeds missing in {}", dir.display());
    }
}
