//! OpenID Connect for the tests: the real provider (`oidc-provider` on Node, started from
//! `fixtures/oidc/provider.mjs`), keys made by `openssl genpkey` that sign tokens the tests
//! forge, and a tiny loopback key server that plays an issuer whose JWKS the test changes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::http;
use super::process::{self, Daemon};
use super::tmp::Tmp;

/// The audience every test token is for.
pub const AUDIENCE: &str = "api://gitgate";

/// Where scripts/install-test-deps.sh installs `oidc-provider` (keep the two in sync).
pub fn modules_dir() -> PathBuf {
    let cache = std::env::var_os("GITGATE_TEST_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("gitgate-test"))
        })
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/gitgate-test")))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-cache"));
    cache.join("oidc-provider")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/oidc")
        .join(name)
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// The `[[oidc]]` table for `issuer` with the test audience and `extra` keys.
pub fn oidc_toml(issuer: &str, extra: &str) -> String {
    format!("[[oidc]]\nissuer = \"{issuer}\"\naudience = \"{AUDIENCE}\"\n{extra}\n")
}

/// A running `oidc-provider` with client_credentials clients; killed on drop.
pub struct Provider {
    /// Its issuer URL, `http://127.0.0.1:PORT`.
    pub issuer: String,
    addr: SocketAddr,
    daemon: Daemon,
    _tmp: Tmp,
}

impl Provider {
    /// Starts the provider with `clients` as `(client_id, secret, groups)`.
    #[track_caller]
    pub fn start(clients: &[(&str, &str, &[&str])]) -> Provider {
        let modules = modules_dir();
        assert!(
            modules
                .join("node_modules/oidc-provider/package.json")
                .exists(),
            "oidc-provider is not installed in {}: run scripts/install-test-deps.sh",
            modules.display()
        );
        let tmp = Tmp::new("oidc-provider");
        let clients: Vec<Value> = clients
            .iter()
            .map(|(id, secret, groups)| json!({"id": id, "secret": secret, "groups": groups}))
            .collect();
        let config = json!({
            "modules": modules,
            "audience": AUDIENCE,
            "ttl": 300,
            "clients": clients,
        });
        let config_path = tmp.join("provider.json");
        std::fs::write(&config_path, config.to_string()).expect("write provider.json");
        let mut cmd = Command::new("node");
        cmd.arg(fixture("provider.mjs")).arg(&config_path);
        let mut daemon = Daemon::spawn("oidc-provider", &mut cmd, tmp.path());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = daemon.output();
            if let Some(issuer) = out
                .lines()
                .find_map(|l| l.strip_prefix("listening "))
                .map(str::trim)
            {
                let port: u16 = issuer
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("port in the provider's issuer");
                return Provider {
                    issuer: issuer.to_string(),
                    addr: SocketAddr::from(([127, 0, 0, 1], port)),
                    daemon,
                    _tmp: tmp,
                };
            }
            if let Some(status) = daemon.exited() {
                panic!("oidc-provider exited with {status}:\n{out}");
            }
            assert!(
                Instant::now() < deadline,
                "oidc-provider did not start within 30s:\n{out}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// An access token for `client` (client_credentials grant, resource = the test audience).
    #[track_caller]
    pub fn token(&self, client: &str, secret: &str) -> String {
        let body = format!(
            "grant_type=client_credentials&scope=git&resource={}",
            AUDIENCE.replace(':', "%3A").replace('/', "%2F")
        );
        let r = http::post(
            self.addr,
            "/token",
            &[
                ("Authorization", &http::basic(client, secret)),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            body.as_bytes(),
        );
        assert_eq!(
            r.status,
            200,
            "token request: {r}\n{}",
            self.daemon.output()
        );
        let answer: Value = serde_json::from_slice(&r.body).expect("token answer is JSON");
        answer["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// What it printed.
    pub fn output(&self) -> String {
        self.daemon.output()
    }
}

/// A signing key made by `openssl genpkey`, with the JWK of its public half.
pub struct Signer {
    /// Its `kid`.
    pub kid: String,
    /// Its algorithm.
    pub alg: Algorithm,
    key: EncodingKey,
    /// The private key in PEM.
    pub pem: Vec<u8>,
}

impl Signer {
    /// A new key for `alg` (RS*/PS*: RSA 2048; ES256: P-256; ES384: P-384; EdDSA: Ed25519).
    #[track_caller]
    pub fn new(kid: &str, alg: Algorithm) -> Signer {
        let tmp = Tmp::new("key");
        let path = tmp.join("key.pem");
        let mut cmd = Command::new("openssl");
        match alg {
            // PKCS#1 ("RSA PRIVATE KEY"), which jsonwebtoken reads directly.
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256 => cmd
                .args(["genrsa", "-traditional", "-out"])
                .arg(&path)
                .arg("2048"),
            Algorithm::ES256 => cmd
                .args([
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-out",
                ])
                .arg(&path),
            Algorithm::ES384 => cmd
                .args([
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-384",
                    "-out",
                ])
                .arg(&path),
            Algorithm::EdDSA => cmd
                .args(["genpkey", "-algorithm", "ed25519", "-out"])
                .arg(&path),
            other => panic!("no test keys for {other:?}"),
        };
        process::run(&mut cmd, Duration::from_secs(60)).assert_ok();
        let pem = std::fs::read(&path).expect("read key.pem");
        let key = match alg {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
            _ => EncodingKey::from_rsa_pem(&pem),
        }
        .expect("openssl key");
        Signer {
            kid: kid.to_string(),
            alg,
            key,
            pem,
        }
    }

    /// The same key under another `kid`.
    pub fn with_kid(&self, kid: &str) -> Signer {
        Signer {
            kid: kid.to_string(),
            alg: self.alg,
            key: self.key.clone(),
            pem: self.pem.clone(),
        }
    }

    /// The public JWK, with `kid`, `use` and `alg`.
    pub fn jwk(&self) -> Value {
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&self.key, self.alg).expect("jwk");
        let mut v = serde_json::to_value(jwk).expect("jwk json");
        v["kid"] = json!(self.kid);
        v["use"] = json!("sig");
        v
    }

    /// The public key in PEM (`openssl pkey -pubout`): what an attacker would key HS256 with.
    pub fn public_pem(&self) -> Vec<u8> {
        let tmp = Tmp::new("key");
        let path = tmp.join("key.pem");
        std::fs::write(&path, &self.pem).expect("write key");
        let mut cmd = Command::new("openssl");
        cmd.args(["pkey", "-pubout", "-in"]).arg(&path);
        process::run(&mut cmd, Duration::from_secs(30))
            .assert_ok()
            .stdout
            .clone()
            .into_bytes()
    }

    /// A token with `claims`, signed by this key, `kid` in the header.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).expect("sign")
    }
}

/// Valid claims for `issuer`: `sub`, the test audience, `groups`, five minutes of validity.
pub fn claims(issuer: &str, sub: &str, groups: &[&str]) -> Value {
    let now = now();
    json!({
        "iss": issuer,
        "sub": sub,
        "aud": AUDIENCE,
        "groups": groups,
        "iat": now,
        "nbf": now - 5,
        "exp": now + 300,
        "jti": format!("test-{sub}-{}", rand_suffix()),
    })
}

fn rand_suffix() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A token with `header` and `claims` as given and `signature` (already base64url): for
/// tokens no honest library would make (`alg: none`, tampered payloads).
pub fn raw_token(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// A stand-in for an issuer's key rotation: serves discovery and a JWKS the test changes, on a
/// loopback port; counts JWKS fetches; [`KeyServer::stop`] takes it down (connections refused).
pub struct KeyServer {
    /// Its issuer URL, `http://127.0.0.1:PORT`.
    pub issuer: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl KeyServer {
    /// Starts serving `keys` (public JWKs) over plain http.
    pub fn start(keys: Vec<Value>) -> KeyServer {
        KeyServer::start_with(keys, None)
    }

    /// Starts serving `keys` over https with `tls`'s certificate.
    pub fn start_tls(keys: Vec<Value>, tls: &TestCa) -> KeyServer {
        KeyServer::start_with(keys, Some(tls.server_config()))
    }

    fn start_with(keys: Vec<Value>, tls: Option<Arc<rustls::ServerConfig>>) -> KeyServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the key server");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let issuer = format!("{scheme}://127.0.0.1:{port}");
        let keys = Arc::new(Mutex::new(keys));
        let fetches = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (issuer, keys, fetches, stop) =
                (issuer.clone(), keys.clone(), fetches.clone(), stop.clone());
            thread::spawn(move || {
                // Bounded: it serves until stopped or dropped, one connection at a time.
                while !stop.load(Ordering::SeqCst) {
                    let stream = match listener.accept() {
                        Ok((stream, _)) => stream,
                        Err(_) => {
                            thread::sleep(Duration::from_millis(10));
                            continue;
                        }
                    };
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    match &tls {
                        None => serve(stream, &issuer, &keys, &fetches),
                        Some(config) => {
                            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                                continue;
                            };
                            serve(
                                rustls::StreamOwned::new(conn, stream),
                                &issuer,
                                &keys,
                                &fetches,
                            );
                        }
                    }
                }
            })
        };
        KeyServer {
            issuer,
            keys,
            fetches,
            stop,
            thread: Some(thread),
        }
    }

    /// Replaces the published keys.
    pub fn set_keys(&self, keys: Vec<Value>) {
        *self.keys.lock().expect("keys") = keys;
    }

    /// How many times the JWKS was fetched.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Takes the issuer down: its port refuses connections from now on.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for KeyServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(stream: impl Read + Write, issuer: &str, keys: &Mutex<Vec<Value>>, fetches: &AtomicUsize) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Skip the headers (GET requests have no body).
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = match path {
        "/.well-known/openid-configuration" => (
            "200 OK",
            json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")}).to_string(),
        ),
        "/jwks" => {
            fetches.fetch_add(1, Ordering::SeqCst);
            let keys = keys.lock().map(|k| k.clone()).unwrap_or_default();
            ("200 OK", json!({ "keys": keys }).to_string())
        }
        _ => ("404 Not Found", String::new()),
    };
    let stream = reader.get_mut();
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

/// A test certificate authority (made by `openssl`) and a server certificate it signed for
/// `127.0.0.1`.
pub struct TestCa {
    /// The CA certificate (PEM), what `ca_file` points at.
    pub ca_file: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    _tmp: Tmp,
}

impl TestCa {
    /// Makes the CA and the server certificate.
    #[track_caller]
    pub fn new() -> TestCa {
        let tmp = Tmp::new("test-ca");
        let path = |name: &str| tmp.join(name).to_string_lossy().into_owned();
        std::fs::write(
            tmp.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write server.ext");
        let steps: [&[&str]; 3] = [
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=gitgate test CA",
                "-keyout",
                &path("ca.key"),
                "-out",
                &path("ca.pem"),
            ],
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                &path("server.key"),
                "-out",
                &path("server.csr"),
            ],
            &[
                "x509",
                "-req",
                "-in",
                &path("server.csr"),
                "-CA",
                &path("ca.pem"),
                "-CAkey",
                &path("ca.key"),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &path("server.ext"),
                "-out",
                &path("server.pem"),
            ],
        ];
        for args in steps {
            let mut cmd = Command::new("openssl");
            cmd.args(args);
            process::run(&mut cmd, Duration::from_secs(60)).assert_ok();
        }
        TestCa {
            ca_file: tmp.join("ca.pem"),
            cert: tmp.join("server.pem"),
            key: tmp.join("server.key"),
            _tmp: tmp,
        }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let cert_pem = std::fs::read(&self.cert).expect("server.pem");
        let key_pem = std::fs::read(&self.key).expect("server.key");
        let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .expect("certificates");
        let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
            .expect("key")
            .expect("a private key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config");
        Arc::new(config)
    }
}
