//! OIDC identity: tokens from a real provider (`oidc-provider`) clone and push through the
//! gateway, their groups drive policy; forged tokens are refused with a generic 401 while the
//! log and the record name the precise reason (never the token); keys rotate and disappear;
//! an issuer that goes down keeps being served from a warm cache, a cold one fails closed.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::harness::gateway::{run, Gateway};
use crate::harness::http;
use crate::harness::oidc::{
    self, claims, oidc_toml, raw_token, KeyServer, Provider, Signer, TestCa,
};
use crate::harness::{Kind, Stack};

const UPLOAD_REFS: &str = "repo.git/info/refs?service=git-upload-pack";

/// Agents fetch and push `agent/*`; everyone else nothing (default deny).
const POLICY: &str = r#"
[policy]
default = "deny"

[[rule]]
name     = "agents-fetch"
subjects = ["group:agents"]
ops      = ["fetch"]
action   = "allow"

[[rule]]
name     = "agents-push-agent-branches"
subjects = ["group:agents"]
refs     = ["refs/heads/agent/**"]
action   = "allow"
"#;

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn audit_log(s: &Stack) -> Vec<Value> {
    let config = s.gateway.config_path.to_string_lossy().into_owned();
    let out = run(
        s.gateway.dir(),
        &["audit", "log", "--format", "json", "--config", &config],
    );
    out.assert_ok();
    json_lines(&out.stdout)
}

/// `GET info/refs` with `Authorization: Bearer TOKEN`.
fn bearer_get(s: &Stack, token: &str) -> http::Response {
    http::get(
        s.gateway.addr(),
        &s.target(UPLOAD_REFS),
        &[("Authorization", &format!("Bearer {token}"))],
    )
}

#[test]
fn provider_tokens_clone_and_push_and_groups_drive_policy() {
    let provider = Provider::start(&[
        ("ci-agent", "ci-secret", &["agents"]),
        ("visitor", "visitor-secret", &["visitors"]),
    ]);
    let s = Stack::start_with(
        Kind::File,
        &format!("{}\n{POLICY}", oidc_toml(&provider.issuer, "")),
    );
    let token = provider.token("ci-agent", "ci-secret");

    // Bearer through http.extraHeader.
    let git = s.git.bearer(&token);
    let dest = s.work("bearer-clone");
    let out = git.clone(&s.anon_url("repo.git"), &dest, &[]);
    assert!(
        out.success(),
        "clone with a provider token: {out}\n{}",
        s.logs()
    );

    // The same token as the Basic password (any user name).
    let basic = s.work("basic-clone");
    let url = s
        .gateway
        .url_with_token("agent", &token, &format!("{}/repo.git", s.name));
    let out = s.git.clone(&url, &basic, &[]);
    assert!(
        out.success(),
        "clone with the token as password: {out}\n{}",
        s.logs()
    );
    let commit = s
        .git
        .commit_file(&basic, "oidc.txt", b"from an oidc agent\n", "oidc push");
    let out = s
        .git
        .push(&basic, &["origin", "HEAD:refs/heads/agent/oidc"]);
    assert!(out.success(), "push to agent/oidc: {out}\n{}", s.logs());
    assert_eq!(s.repo.rev("refs/heads/agent/oidc"), Some(commit));

    // Groups drive the policy: agents may not push main (default deny)...
    let out = s.git.push(&basic, &["origin", "HEAD:refs/heads/main"]);
    assert!(!out.success(), "push to main should be denied: {out}");
    assert!(
        out.stderr.contains("[remote rejected]"),
        "push to main: {out}"
    );
    // ...and a client of another group may not even fetch.
    let visitor = provider.token("visitor", "visitor-secret");
    let r = bearer_get(&s, &visitor);
    assert_eq!(r.status, 403, "visitor fetch: {r}\n{}", s.logs());

    let log = audit_log(&s);
    let pushed = log
        .iter()
        .find(|r| r["service"] == "receive-pack" && r["decision"] == "allow")
        .unwrap_or_else(|| panic!("no allowed push in the record: {log:?}"));
    assert_eq!(pushed["identity"], "ci-agent", "{pushed}");
    assert_eq!(pushed["auth"], "oidc", "{pushed}");
    assert!(
        !s.gateway.output().contains(&token),
        "the token appears in the gateway's log"
    );
}

/// Issuer: the test's key server (signing keys of every accepted kind).
struct Forge {
    s: Stack,
    server: KeyServer,
    rsa: Signer,
    es256: Signer,
    ed: Signer,
    ps: Signer,
    /// ES384, RS384, RS512.
    others: Vec<Signer>,
}

fn forge(extra_oidc: &str) -> Forge {
    let rsa = Signer::new("rsa-1", Algorithm::RS256);
    let es256 = Signer::new("ec-1", Algorithm::ES256);
    let ed = Signer::new("ed-1", Algorithm::EdDSA);
    let ps = Signer::new("rsa-ps", Algorithm::PS256);
    let others = vec![
        Signer::new("ec-384", Algorithm::ES384),
        Signer::new("rsa-384", Algorithm::RS384),
        Signer::new("rsa-512", Algorithm::RS512),
    ];
    let mut keys = vec![rsa.jwk(), es256.jwk(), ed.jwk(), ps.jwk()];
    keys.extend(others.iter().map(Signer::jwk));
    let server = KeyServer::start(keys);
    let s = Stack::start_with(
        Kind::File,
        &format!("{}\n{POLICY}", oidc_toml(&server.issuer, extra_oidc)),
    );
    Forge {
        s,
        server,
        rsa,
        es256,
        ed,
        ps,
        others,
    }
}

/// Asserts `token` is refused with a generic 401 and that the log and the record carry `reason`
/// (and never the token).
#[track_caller]
fn assert_refused(f: &Forge, what: &str, token: &str, reason: &str) {
    let r = bearer_get(&f.s, token);
    assert_eq!(r.status, 401, "{what}: {r}\n{}", f.s.logs());
    assert!(
        !r.text().contains(reason) && r.text().contains("invalid credentials"),
        "{what}: the client must get a generic answer: {r}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f.s.gateway.output().contains(reason) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let logs = f.s.gateway.output();
    assert!(
        logs.contains(reason),
        "{what}: log lacks {reason:?}:\n{logs}"
    );
    assert!(
        !logs.contains(token),
        "{what}: the token appears in the log"
    );
    let log = audit_log(&f.s);
    assert!(
        log.iter()
            .any(|r| r["reason"].as_str().is_some_and(|t| t.contains(reason))),
        "{what}: no record with {reason:?}: {log:?}"
    );
}

#[track_caller]
fn assert_accepted(f: &Forge, what: &str, token: &str) {
    let r = bearer_get(&f.s, token);
    assert_eq!(r.status, 200, "{what}: {r}\n{}", f.s.logs());
}

#[test]
fn forged_tokens_are_refused_with_the_reason_in_log_and_record() {
    let f = forge("");
    let iss = f.server.issuer.clone();
    let good = claims(&iss, "forge-agent", &["agents"]);

    // Controls: each accepted algorithm works, so the refusals below are about what they change.
    assert_accepted(&f, "RS256", &f.rsa.sign(&good));
    assert_accepted(&f, "ES256", &f.es256.sign(&good));
    assert_accepted(&f, "EdDSA", &f.ed.sign(&good));
    assert_accepted(&f, "PS256", &f.ps.sign(&good));
    for signer in &f.others {
        assert_accepted(&f, &format!("{:?}", signer.alg), &signer.sign(&good));
    }
    // Through git too, with the token as Basic password.
    let url =
        f.s.gateway
            .url_with_token("x", &f.rsa.sign(&good), &format!("{}/repo.git", f.s.name));
    assert!(
        f.s.git.ls_remote(&url).is_ok(),
        "ls-remote with a forged-but-valid token"
    );

    let mut c = good.clone();
    c["exp"] = json!(oidc::now() - 120);
    c["iat"] = json!(oidc::now() - 600);
    c["nbf"] = json!(oidc::now() - 600);
    assert_refused(&f, "expired", &f.rsa.sign(&c), "expired at");

    let mut c = good.clone();
    c["nbf"] = json!(oidc::now() + 600);
    assert_refused(&f, "not yet valid", &f.rsa.sign(&c), "not valid before");

    let mut c = good.clone();
    c["aud"] = json!(["api://other", "api://another"]);
    assert_refused(
        &f,
        "wrong audience",
        &f.rsa.sign(&c),
        "does not include \"api://gitgate\"",
    );

    let mut c = good.clone();
    c["iss"] = json!("https://evil.example.com");
    assert_refused(
        &f,
        "wrong issuer",
        &f.rsa.sign(&c),
        "issuer \"https://evil.example.com\" is not configured",
    );

    // Entra ID's groups overage: no groups claim, a pointer to Graph instead. Refused.
    let mut c = good.clone();
    c.as_object_mut().map(|m| m.remove("groups"));
    c["_claim_names"] = json!({"groups": "src1"});
    c["_claim_sources"] =
        json!({"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}});
    assert_refused(&f, "groups overage", &f.rsa.sign(&c), "groups overage");

    let none = raw_token(&json!({"alg": "none", "typ": "JWT"}), &good, "");
    assert_refused(&f, "alg none", &none, "algorithm \"none\" is not accepted");

    // HS256 keyed with the RSA public key (the classic key-confusion attack).
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(f.rsa.kid.clone());
    let hs = jsonwebtoken::encode(
        &header,
        &good,
        &EncodingKey::from_secret(&f.rsa.public_pem()),
    )
    .expect("sign HS256");
    assert_refused(
        &f,
        "HS256 with the public key",
        &hs,
        "algorithm \"HS256\" is not accepted",
    );

    // An RS256 header naming the EC key: the key's type does not fit the algorithm.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(f.es256.kid.clone());
    let other_rsa = Signer::new("x", Algorithm::RS256);
    let confused = jsonwebtoken::encode(
        &header,
        &good,
        &EncodingKey::from_rsa_pem(&other_rsa.pem).expect("pem"),
    )
    .expect("sign");
    assert_refused(&f, "RS256 with an EC kid", &confused, "cannot verify RS256");

    // Tampered payload: a signed token whose groups were edited afterwards.
    let signed = f.rsa.sign(&claims(&iss, "forge-agent", &["visitors"]));
    let mut parts: Vec<&str> = signed.split('.').collect();
    let mut tampered_claims = good.clone();
    tampered_claims["jti"] = json!("tampered-1");
    let payload = raw_token(&json!({}), &tampered_claims, "");
    let forged_payload = payload.split('.').nth(1).expect("payload").to_string();
    parts[1] = &forged_payload;
    let tampered = parts.join(".");
    assert_refused(
        &f,
        "tampered payload",
        &tampered,
        "signature does not verify",
    );

    // Unknown kid: signed by a key the issuer never published.
    let stranger = Signer::new("stranger", Algorithm::RS256);
    assert_refused(
        &f,
        "unknown kid",
        &stranger.sign(&good),
        "no key with kid \"stranger\"",
    );

    // A flood of forged kids does not reach the issuer: within jwks_min_refresh_seconds (30 s
    // by default) of the last fetch, no refresh happens at all.
    let before = f.server.fetches();
    for i in 0..20 {
        let r = bearer_get(&f.s, &stranger.with_kid(&format!("flood-{i}")).sign(&good));
        assert_eq!(r.status, 401);
    }
    assert_eq!(
        f.server.fetches(),
        before,
        "forged kids made the gateway fetch keys"
    );
    assert!(f.s.gateway.output().contains("refresh rate-limited"));
}

#[test]
fn rotated_keys_are_accepted_after_a_refresh_and_removed_keys_refused() {
    // The key server stands in for the provider's key rotation: the test publishes a new key,
    // then withdraws the old one.
    let f = forge("jwks_refresh_seconds = 2\njwks_min_refresh_seconds = 1");
    let iss = f.server.issuer.clone();
    let good = claims(&iss, "rotating-agent", &["agents"]);
    assert_accepted(&f, "before rotation", &f.rsa.sign(&good));

    let next = Signer::new("rsa-2", Algorithm::RS256);
    std::thread::sleep(Duration::from_millis(1100));
    assert_refused(
        &f,
        "not yet published",
        &next.sign(&good),
        "no key with kid \"rsa-2\"",
    );

    // Rotation: the new key appears in the JWKS; an unknown kid triggers a refresh.
    f.server.set_keys(vec![f.rsa.jwk(), next.jwk()]);
    std::thread::sleep(Duration::from_millis(1100));
    assert_accepted(&f, "rotated in", &next.sign(&good));

    // Removal: the old key leaves the JWKS; once the cache refreshed (every 2 s here), its
    // tokens are refused.
    f.server.set_keys(vec![next.jwk()]);
    let old = f.rsa.sign(&good);
    let deadline = Instant::now() + Duration::from_secs(10);
    while bearer_get(&f.s, &old).status == 200 {
        assert!(
            Instant::now() < deadline,
            "a removed key still verifies after 10 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_refused(&f, "removed", &old, "no key with kid \"rsa-1\"");
    assert_accepted(&f, "new key still fine", &next.sign(&good));
}

#[test]
fn a_down_issuer_is_served_from_a_warm_cache_and_a_cold_cache_fails_closed() {
    let mut f = forge("jwks_refresh_seconds = 1\njwks_min_refresh_seconds = 0");
    let good = claims(&f.server.issuer.clone(), "steady-agent", &["agents"]);
    assert_accepted(&f, "issuer up", &f.rsa.sign(&good));
    f.server.stop();
    std::thread::sleep(Duration::from_millis(1500));
    assert_accepted(&f, "issuer down, warm cache", &f.rsa.sign(&good));
    assert!(
        f.s.gateway
            .output()
            .contains("cannot fetch the issuer's keys"),
        "the failed refresh is logged:\n{}",
        f.s.gateway.output()
    );

    // Cold: an issuer that never answered.
    let dead = KeyServer::start(Vec::new());
    let issuer = dead.issuer.clone();
    drop(dead);
    let signer = Signer::new("cold", Algorithm::RS256);
    let g = Gateway::start(&format!(
        "[[upstream]]\nname = \"local\"\nurl = \"file:///nonexistent\"\n{}\n",
        oidc_toml(&issuer, "")
    ));
    let r = http::get(
        g.addr(),
        "/local/repo.git/info/refs?service=git-upload-pack",
        &[(
            "Authorization",
            &format!(
                "Bearer {}",
                signer.sign(&claims(&issuer, "cold-agent", &["agents"]))
            ),
        )],
    );
    assert_eq!(
        r.status,
        401,
        "cold cache must fail closed: {r}\n{}",
        g.output()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !g.output().contains("keys are unavailable") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        g.output().contains("keys are unavailable"),
        "{}",
        g.output()
    );
}

#[test]
fn check_accepts_the_new_keys_and_refuses_a_duplicate_issuer() {
    let tmp = crate::harness::Tmp::new("oidc-check");
    let path = tmp.join("gitgate.toml");
    let one = "[[oidc]]\nissuer = \"https://login.microsoftonline.com/t/v2.0\"\naudience = \"api://gitgate\"\n\
         jwks_refresh_seconds = 600\njwks_min_refresh_seconds = 10\n\
         required_claims = { tid = \"t\", \"realm_access.roles\" = \"git\" }\n";
    std::fs::write(&path, one).expect("write");
    let check = || run(tmp.path(), &["check", "--config", &path.to_string_lossy()]);
    let out = check();
    assert_eq!(out.code(), Some(0), "{out}");
    let twice = format!(
        "{one}[[oidc]]\nissuer = \"https://login.microsoftonline.com/t/v2.0\"\naudience = \"x\"\n"
    );
    std::fs::write(&path, twice).expect("write");
    let out = check();
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(
        out.all()
            .contains("gitgate.toml:8: [[oidc]] issuer: duplicate issuer"),
        "the duplicate issuer is named: {out}"
    );
}

#[test]
fn https_discovery_trusts_ca_file_and_nothing_else() {
    // The same issuer over https: with its CA in ca_file the keys load and tokens verify;
    // without it, the certificate is not trusted, the cache stays cold and the token is refused.
    let ca = TestCa::new();
    let signer = Signer::new("tls-1", Algorithm::ES256);
    let server = KeyServer::start_tls(vec![signer.jwk()], &ca);
    assert!(server.issuer.starts_with("https://"), "{}", server.issuer);
    let token = signer.sign(&claims(&server.issuer, "tls-agent", &["agents"]));
    let ca_file = format!("ca_file = \"{}\"", ca.ca_file.display());
    let trusted = Stack::start_with(
        Kind::File,
        &format!("{}\n{POLICY}", oidc_toml(&server.issuer, &ca_file)),
    );
    let r = bearer_get(&trusted, &token);
    assert_eq!(r.status, 200, "{r}\n{}", trusted.logs());

    let untrusted = Stack::start_with(
        Kind::File,
        &format!("{}\n{POLICY}", oidc_toml(&server.issuer, "")),
    );
    let r = bearer_get(&untrusted, &token);
    assert_eq!(r.status, 401, "{r}\n{}", untrusted.logs());
    assert!(
        untrusted.gateway.output().contains("keys are unavailable"),
        "{}",
        untrusted.gateway.output()
    );
}

#[test]
fn an_unreadable_ca_file_stops_the_gateway_from_starting() {
    let tmp = crate::harness::Tmp::new("oidc-ca");
    let path = tmp.join("gitgate.toml");
    std::fs::write(
        &path,
        "[server]\nhttp_listen = \"127.0.0.1:0\"\n\
         [[oidc]]\nissuer = \"https://login.example.com\"\naudience = \"x\"\nca_file = \"missing.pem\"\n",
    )
    .expect("write");
    let out = run(tmp.path(), &["serve", "--config", &path.to_string_lossy()]);
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains("ca_file") && out.stderr.contains("missing.pem"),
        "{out}"
    );
}

/// The SSH certificate exchange with a real provider's token: an agent trades its OIDC JWT for
/// an OpenSSH user certificate signed by the gateway's CA (key id = the identity's name,
/// principals = its groups, valid no longer than `max_cert_ttl` nor the token), then clones
/// and pushes with the real OpenSSH client. A tampered token gets no certificate.
#[test]
fn a_provider_token_is_exchanged_for_an_ssh_certificate() {
    use crate::harness::ssh::SshStack;
    let provider = Provider::start(&[("ci-agent", "ci-secret", &["agents"])]);
    let s = SshStack::start_with(
        Kind::File,
        "max_cert_ttl_seconds = 600",
        &oidc_toml(&provider.issuer, ""),
    );
    let token = provider.token("ci-agent", "ci-secret");
    let key = s.new_key("oidc-agent");
    let addr = s.stack.gateway.addr();
    let bearer = format!("Bearer {token}");
    let r = http::post(
        addr,
        "/api/ssh/certificate",
        &[("Authorization", bearer.as_str())],
        key.public_line().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.logs());
    let cert = s.keys.join("oidc-agent-certificate");
    std::fs::write(&cert, &r.body).expect("write the certificate");
    let shown = std::process::Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(&cert)
        .output()
        .expect("ssh-keygen -L");
    let text = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(text.contains("user certificate"), "{text}");
    assert!(text.contains("Key ID: \"ci-agent\""), "{text}");
    assert!(text.contains("agents"), "principals are the groups: {text}");

    let client = s.client.with_key(&key).with_cert(&cert);
    let git = s.git_with(&client);
    let dest = s.stack.work("oidc-ssh");
    let out = git.clone(&s.url("repo.git"), &dest, &[]);
    assert!(out.success(), "{out}\n{}", s.logs());
    let head = git.commit_file(&dest, "o.txt", b"o\n", "over ssh with an oidc certificate");
    let out = git.push(&dest, &["origin", "HEAD:refs/heads/agent/oidc-ssh"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.stack.repo.rev("refs/heads/agent/oidc-ssh"), Some(head));

    // A token whose payload was changed after signing: refused, no certificate.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    assert_eq!(parts.len(), 3);
    parts[1] = format!("{}x", &parts[1][..parts[1].len() - 1]);
    let forged = format!("Bearer {}", parts.join("."));
    let r = http::post(
        addr,
        "/api/ssh/certificate",
        &[("Authorization", forged.as_str())],
        key.public_line().as_bytes(),
    );
    assert_eq!(r.status, 401, "{}", r.text());
}
