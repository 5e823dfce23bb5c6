//! Package registries: npm, PyPI, RubyGems, crates.io, NuGet, Docker Hub, JFrog Artifactory,
//! Clojars.

use crate::scan::detector::{Checksum, Detector, Examples, Filter::*, Window};

pub(super) const DETECTORS: &[Detector] = &[
    Detector {
        id: "npm-access-token",
        description: "npm access token",
        keywords: &["npm_"],
        pattern: r"(?m)(?:^|[^A-Za-z0-9_])(?P<v>npm_[A-Za-z0-9]{36})\b",
        filters: &[Checksum(Checksum::Crc32Base62), NotPlaceholder],
        window: Window::Line,
        examples: Examples {
            positive: &["//registry.npmjs.org/:_authToken=npm_{a:30}{c}", "NPM_TOKEN=npm_{a:30}{c}"],
            negative: &["npm_{a:36}", "npm_install_dependencies_for_the_project"],
        },
    },
    Detector {
        id: "npmrc-auth-token",
        description: "npm registry auth token in .npmrc",
        keywords: &["_authtoken"],
        pattern: r#"(?i)_authToken\s*=\s*["']?(?P<v>[A-Za-z0-9._~+/=-]{20,})"#,
        filters: &[NotPlaceholder, NotWord, Entropy(3.5)],
        window: Window::Line,
        examples: Examples {
            positive: &["//registry.npmjs.org/:_authToken={h:8}-{h:4}-{h:4}-{h:4}-{h:12}"],
            negative: &["//registry.npmjs.org/:_authToken=${NPM_TOKEN}"],
        },
    },
    Detector {
        id: "pypi-upload-token",
        description: "PyPI (or TestPyPI) upload token",
        keywords: &["pypi-AgEIcHlwaS5vcmc", "pypi-AgENdGVzdC5weXBpLm9yZw"],
        pattern: r"(?P<v>pypi-AgE(?:IcHlwaS5vcmc|NdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,})",
        filters: &[NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["password = pypi-AgEIcHlwaS5vcmc{u:120}"],
            negative: &["pypi-AgEIcHlwaS5vcmc{u:10}"],
        },
    },
    Detector {
        id: "rubygems-api-key",
        description: "RubyGems API key",
        keywords: &["rubygems_"],
        pattern: r"\b(?P<v>rubygems_[a-f0-9]{48})\b",
        filters: &[NotPlaceholder, Entropy(3.2)],
        window: Window::Line,
        examples: Examples {
            positive: &[":rubygems_api_key: rubygems_{h:48}"],
            negative: &["rubygems_{h:10}"],
        },
    },
    Detector {
        id: "crates-io-token",
        description: "crates.io API token",
        keywords: &["cio"],
        pattern: r"(?m)(?:^|[^A-Za-z0-9_])(?P<v>cio[A-Za-z0-9]{32})(?:[^A-Za-z0-9_]|$)",
        filters: &[Classes(3), NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["CARGO_REGISTRY_TOKEN=cio{a:32}", "[registry]\ntoken = \"cio{a:32}\""],
            negative: &["cio{l:32}", "cio{a:12}"],
        },
    },
    Detector {
        id: "nuget-api-key",
        description: "NuGet API key",
        keywords: &["oy2"],
        pattern: r"(?m)(?:^|[^a-z0-9])(?P<v>oy2[a-z0-9]{43})(?:[^a-z0-9]|$)",
        filters: &[Classes(2), NotPlaceholder, Entropy(3.8)],
        window: Window::Line,
        examples: Examples {
            positive: &["dotnet nuget push x.nupkg --api-key oy2{l:20}{d:3}{l:20}"],
            negative: &["oy2{l:10}"],
        },
    },
    Detector {
        id: "docker-hub-token",
        description: "Docker Hub personal or organization access token",
        keywords: &["dckr_pat_", "dckr_oat_"],
        pattern: r"(?m)(?P<v>dckr_(?:pat|oat)_[A-Za-z0-9_-]{27,32})(?:[^A-Za-z0-9_-]|$)",
        filters: &[NotPlaceholder, Entropy(3.8)],
        window: Window::Line,
        examples: Examples {
            positive: &["echo dckr_pat_{u:27} | docker login -u bot --password-stdin"],
            negative: &["dckr_pat_{u:8}"],
        },
    },
    Detector {
        id: "docker-config-auth",
        description: "Registry credentials in a Docker config.json (auths)",
        keywords: &["\"auths\""],
        pattern: r#""auth"\s*:\s*"(?P<v>[A-Za-z0-9+/]{16,}={0,2})""#,
        filters: &[BasicAuth],
        window: Window::Lines(6),
        examples: Examples {
            // base64 of "ci-bot:Kq7#mW2pLx9v", split so that no credential is committed whole.
            positive: &["{\"auths\": {\"registry.acme.io\": {\"auth\": \"Y2ktYm90{-}OktxNyNtVzJwTHg5dg==\"}}}"],
            negative: &["{\"auths\": {\"r.io\": {\"auth\": \"dXNlcjpwYXNzd29yZA==\"}}}"],
        },
    },
    Detector {
        id: "artifactory-api-key",
        description: "JFrog Artifactory API key",
        keywords: &["AKCp"],
        pattern: r"\b(?P<v>AKCp[A-Za-z0-9]{69})\b",
        filters: &[NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["ARTIFACTORY_API_KEY=AKCp{a:69}"],
            negative: &["AKCp{a:20}"],
        },
    },
    Detector {
        id: "artifactory-reference-token",
        description: "JFrog Artifactory reference token",
        keywords: &["cmVmdGtu"],
        pattern: r"\b(?P<v>cmVmdGtu[A-Za-z0-9]{56})\b",
        filters: &[NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["JFROG_TOKEN=cmVmdGtu{a:56}"],
            negative: &["cmVmdGtu{a:10}"],
        },
    },
    Detector {
        id: "clojars-token",
        description: "Clojars deploy token",
        keywords: &["CLOJARS_"],
        pattern: r"\b(?P<v>CLOJARS_[a-z0-9]{60})\b",
        filters: &[NotPlaceholder, Entropy(3.5)],
        window: Window::Line,
        examples: Examples {
            positive: &["CLOJARS_TOKEN=CLOJARS_{l:30}{d:30}"],
            negative: &["CLOJARS_{l:10}"],
        },
    },
];
