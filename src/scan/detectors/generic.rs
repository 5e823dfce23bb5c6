//! Generic credentials: `password`/`secret`/`token`/`api_key` assignments in code, `.env`,
//! JSON, YAML, TOML, XML and `#define`s; JWTs and their signing secrets; `Authorization`
//! headers; `.netrc` entries.
//!
//! These key on names, so their values must look like secrets: long enough, several character
//! classes, random enough, and neither a word nor a reference (`os.environ[...]`, `${VAR}`).
//! Last in priority: a provider detector that sees the same value wins.

use super::assigned;
use crate::scan::detector::{Detector, Examples, Filter::*, Window};

pub(super) const DETECTORS: &[Detector] = &[
    Detector {
        id: "jwt",
        description: "JSON Web Token",
        keywords: &["eyJ"],
        pattern: r"(?m)(?:^|[^A-Za-z0-9_-])(?P<v>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,})(?:[^A-Za-z0-9_.-]|$)",
        filters: &[Jwt, NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            // header {"alg":"HS256","typ":"JWT"}; payloads {"sub":"svc-42","iat":1716239022},
            // {"sub":"svc-42","exp":4102444800} (2100) and {"sub":"svc-42","exp":1300819380}
            // (2011: expired, harmless).
            positive: &[
                "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJz{-}dmMtNDIiLCJpYXQiOjE3MTYyMzkwMjJ9.{u:43}",
                "token: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJz{-}dmMtNDIiLCJleHAiOjQxMDI0NDQ4MDB9.{u:43}",
            ],
            negative: &[
                "eyJ{u:20}.eyJ{u:20}.{u:43}",
                "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzdmMtNDIiLCJpYXQiOjE3MTYyMzkwMjJ9.{u:43}",
                "token: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJz{-}dmMtNDIiLCJleHAiOjEzMDA4MTkzODB9.{u:43}",
            ],
        },
    },
    Detector {
        id: "jwt-signing-secret",
        description: "JWT signing secret assigned in code or configuration",
        keywords: &["jwt"],
        pattern: assigned!(
            r"jwt[\w.-]{0,20}(?:secret|key|signing)",
            r#"[^\s"'`,;<>(){}\[\]]{12,256}"#
        ),
        filters: &[MinLen(12), Classes(2), NotPlaceholder, NotWord, Entropy(3.3)],
        window: Window::Line,
        examples: Examples {
            positive: &["JWT_SECRET={a:32}", "jwtSigningKey: \"{p:24}\""],
            negative: &["JWT_SECRET=${JWT_SECRET}", "jwt_secret = \"your-256-bit-secret\"", "JWT_SECRET=changeme"],
        },
    },
    Detector {
        id: "authorization-basic",
        description: "HTTP Basic credentials (base64 user:password)",
        keywords: &["basic "],
        pattern: r"(?m)(?i:\bbasic)\s+(?P<v>[A-Za-z0-9+/]{12,}={0,2})(?:[^A-Za-z0-9+/=]|$)",
        filters: &[BasicAuth],
        window: Window::Line,
        examples: Examples {
            // base64 of "deploy:Zq8#vN3kLp2w", split.
            positive: &["curl -H 'Authorization: Basic ZGVwbG95{-}OlpxOCN2TjNrTHAydw==' https://x"],
            negative: &["Authorization: Basic dXNlcjpwYXNzd29yZA==", "Basic authentication is supported"],
        },
    },
    Detector {
        id: "authorization-bearer",
        description: "HTTP Bearer token written out",
        keywords: &["bearer "],
        pattern: r"(?m)(?i:\bbearer)\s+(?P<v>[A-Za-z0-9._~+/-]{24,}=*)(?:[^A-Za-z0-9._~+/=-]|$)",
        filters: &[MinLen(24), Classes(3), NotPlaceholder, NotWord, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["-H \"Authorization: Bearer {a:40}\""],
            negative: &["Authorization: Bearer ${TOKEN}", "Authorization: Bearer <token>", "bearer {l:30}"],
        },
    },
    Detector {
        id: "netrc-password",
        description: "Password in a .netrc entry",
        keywords: &["machine"],
        pattern: r"(?m)\bmachine\s+[\w.-]+\s+login\s+\S+\s+password\s+(?P<v>\S{6,128})",
        filters: &[Classes(2), NotPlaceholder, NotWord],
        window: Window::Lines(2),
        examples: Examples {
            positive: &["machine api.acme.io login bot password {a:20}"],
            negative: &["machine api.acme.io login bot password PASSWORD"],
        },
    },
    Detector {
        id: "generic-password",
        description: "Password assigned in code, .env, JSON, YAML, TOML or XML",
        keywords: &["password", "passwd", "passphrase", "pwd"],
        pattern: assigned!(
            r"password|passwd|passphrase|pwd",
            r#"[^\s"'`,;<>(){}\[\]]{8,128}"#
        ),
        filters: &[MinLen(8), Classes(3), NotPlaceholder, NotWord, Entropy(2.8)],
        window: Window::Line,
        examples: Examples {
            positive: &[
                "DB_PASSWORD={p:14}",
                "\"password\": \"{p:12}\",",
                "  password: {p:16}",
                "const DB_PASSWORD = \"{p:12}\";",
                "#define ADMIN_PWD \"{p:12}\"",
                "<password>{p:12}</password>",
                "<add key=\"DbPassword\" value=\"{p:12}\" />",
                "smtp_passwd = '{p:10}'",
                "let password = \"{p:12}\";",
            ],
            negative: &[
                "password = os.environ[\"DB_PASSWORD\"]",
                "password: ${DB_PASSWORD}",
                "\"password\": \"<your-password>\"",
                "password = \"changeme\"",
                "PASSWORD=********",
                "password = self.password",
                "password: Optional[str] = None",
                "password = getpass.getpass()",
                "if password == \"Hunter2!\":",
                "password: String,",
                "password=Passw0rd!",
                "DB_PASSWORD=xxxxxxxxxx",
            ],
        },
    },
    Detector {
        id: "generic-secret",
        description: "Secret assigned in code, .env, JSON, YAML, TOML or XML",
        keywords: &["secret"],
        pattern: assigned!(r"secret", r#"[^\s"'`,;<>(){}\[\]]{16,256}"#),
        filters: &[MinLen(16), Classes(2), NotPlaceholder, NotWord, Entropy(3.5)],
        window: Window::Line,
        examples: Examples {
            positive: &[
                "CLIENT_SECRET={a:32}",
                "\"client_secret\": \"{u:40}\"",
                "SECRET_KEY = '{p:50}'",
                "app:\n  webhook_secret: {h:40}\n",
            ],
            negative: &[
                "SECRET_KEY = 'django-insecure-{l:40}'",
                "client_secret: ${CLIENT_SECRET}",
                "secret = settings.SECRET_KEY_FALLBACK",
                "SECRET_KEY={l:30}",
            ],
        },
    },
    Detector {
        id: "generic-api-key",
        description: "API key assigned in code, .env, JSON, YAML, TOML or XML",
        keywords: &["api_key", "apikey", "api-key", "api.key", "access_key", "accesskey", "access-key", "app_key", "appkey"],
        pattern: assigned!(
            r"api[_.-]?key|access[_-]?key|app[_-]?key",
            r#"[^\s"'`,;<>(){}\[\]]{16,256}"#
        ),
        filters: &[MinLen(16), Classes(2), NotPlaceholder, NotWord, Entropy(3.5)],
        window: Window::Line,
        examples: Examples {
            positive: &[
                "WEATHER_API_KEY={a:32}",
                "\"apiKey\": \"{h:32}\"",
                "x-api-key: {u:40}",
                "<add key=\"ApiKey\" value=\"{a:24}\" />",
            ],
            negative: &["api_key = os.getenv('API_KEY')", "apiKey: '<YOUR_API_KEY>'", "API_KEY={l:24}"],
        },
    },
    Detector {
        id: "generic-token",
        description: "Token assigned in code, .env, JSON, YAML, TOML or XML",
        keywords: &["token"],
        pattern: assigned!(r"token", r#"[^\s"'`,;<>(){}\[\]]{20,256}"#),
        filters: &[MinLen(20), Classes(3), NotPlaceholder, NotWord, Entropy(3.8)],
        window: Window::Line,
        examples: Examples {
            positive: &["AUTH_TOKEN={a:32}", "\"access_token\": \"{u:40}\"", "botToken: '{a:30}'"],
            negative: &["token = request.headers.get(\"X-Token\")", "AUTH_TOKEN=${AUTH_TOKEN}", "token_type: bearer", "TOKEN={h:40}", "let token = \"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9\";", "token = \"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ0ZXN0IiwiZXhwIjoxMzAwODE5MzgwfQ.\""],
        },
    },
];
