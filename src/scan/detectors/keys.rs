//! Private keys: PEM (RSA, EC, DSA, PKCS#8 plain and encrypted), OpenSSH, PGP, PuTTY.
//!
//! The value is the key's body; a body shorter than 64 bytes or of low entropy (a `...` or
//! `<key>` placeholder in docs) is not reported. Examples split the header with `{-}`.

use crate::scan::detector::{Detector, Examples, Filter::*, Window};

/// How far after the header the footer may be: a 16384-bit RSA key in PEM is ~12 KiB.
const BLOCK: Window = Window::After(16 << 10);

pub(super) const DETECTORS: &[Detector] = &[
    Detector {
        id: "private-key-rsa",
        description: "RSA private key (PEM)",
        keywords: &["-----BEGIN RSA PRIVATE KEY"],
        pattern: r"(?s)-----BEGIN RSA PRIVATE KEY-----(?:\s|\\[nr])*(?P<v>.{64,}?)-----END RSA PRIVATE KEY",
        filters: &[MinLen(64), Entropy(4.5)],
        window: BLOCK,
        examples: Examples {
            positive: &[
                "-----BEGIN RSA PRIV{-}ATE KEY-----\nMIIE{b:60}\n{b:64}\n{b:64}\n{b:64}\n{b:30}==\n-----END RSA PRIV{-}ATE KEY-----\n",
                "key = \"-----BEGIN RSA PRIV{-}ATE KEY-----\\nMIIE{b:60}\\n{b:64}\\n{b:40}\\n-----END RSA PRIV{-}ATE KEY-----\\n\"",
            ],
            negative: &["-----BEGIN RSA PRIV{-}ATE KEY-----\nMIIEowIBAAKCAQEA...\n-----END RSA PRIV{-}ATE KEY-----"],
        },
    },
    Detector {
        id: "private-key-ec",
        description: "EC private key (PEM)",
        keywords: &["-----BEGIN EC PRIVATE KEY"],
        pattern: r"(?s)-----BEGIN EC PRIVATE KEY-----(?:\s|\\[nr])*(?P<v>.{64,}?)-----END EC PRIVATE KEY",
        filters: &[MinLen(64), Entropy(4.5)],
        window: BLOCK,
        examples: Examples {
            positive: &["-----BEGIN EC PRIV{-}ATE KEY-----\nMHcC{b:60}\n{b:56}==\n-----END EC PRIV{-}ATE KEY-----"],
            negative: &["-----BEGIN EC PRIV{-}ATE KEY-----\n<your key here>\n-----END EC PRIV{-}ATE KEY-----"],
        },
    },
    Detector {
        id: "private-key-dsa",
        description: "DSA private key (PEM)",
        keywords: &["-----BEGIN DSA PRIVATE KEY"],
        pattern: r"(?s)-----BEGIN DSA PRIVATE KEY-----(?:\s|\\[nr])*(?P<v>.{64,}?)-----END DSA PRIVATE KEY",
        filters: &[MinLen(64), Entropy(4.5)],
        window: BLOCK,
        examples: Examples {
            positive: &["-----BEGIN DSA PRIV{-}ATE KEY-----\nMIIB{b:60}\n{b:64}\n{b:64}\n-----END DSA PRIV{-}ATE KEY-----"],
            negative: &["-----BEGIN DSA PRIV{-}ATE KEY-----\n...\n-----END DSA PRIV{-}ATE KEY-----"],
        },
    },
    Detector {
        id: "private-key-pkcs8",
        description: "Private key (PKCS#8 PEM)",
        keywords: &["-----BEGIN PRIVATE KEY"],
        pattern: r"(?s)-----BEGIN PRIVATE KEY-----(?:\s|\\[nr])*(?P<v>.{64,}?)-----END PRIVATE KEY",
        filters: &[MinLen(64), Entropy(4.5)],
        window: BLOCK,
        examples: Examples {
            positive: &["-----BEGIN PRIV{-}ATE KEY-----\nMIIE{b:60}\n{b:64}\n{b:64}\n{b:20}=\n-----END PRIV{-}ATE KEY-----"],
            negative: &["-----BEGIN PRIV{-}ATE KEY-----\n-----END PRIV{-}ATE KEY-----"],
        },
    },
    Detector {
        id: "private-key-pkcs8-encrypted",
        description: "Encrypted private key (PKCS#8 PEM)",
        keywords: &["-----BEGIN ENCRYPTED PRIVATE KEY"],
        pattern: r"(?s)-----BEGIN ENCRYPTED PRIVATE KEY-----(?:\s|\\[nr])*(?P<v>.{64,}?)-----END ENCRYPTED PRIVATE KEY",
        filters: &[MinLen(64), Entropy(4.5)],
        window: BLOCK,
        examples: Examples {
            positive: &["-----BEGIN ENCRYPTED PRIV{-}ATE KEY-----\nMIIF{b:60}\n{b:64}\n{b:64}\n-----END ENCRYPTED PRIV{-}ATE KEY-----"],
            negative: &["-----BEGIN ENCRYPTED PRIV{-}ATE KEY-----\n....\n-----END ENCRYPTED PRIV{-}ATE KEY-----"],
        },
    },
    Detector {
        id: "openssh-private-key",
        description: "OpenSSH private key",
        keywords: &["-----BEGIN OPENSSH PRIVATE KEY"],
        pattern: r"(?s)-----BEGIN OPENSSH PRIVATE KEY-----(?:\s|\\[nr])*(?P<v>.{64,}?)-----END OPENSSH PRIVATE KEY",
        filters: &[MinLen(64), Entropy(4.5)],
        window: BLOCK,
        examples: Examples {
            positive: &["-----BEGIN OPENSSH PRIV{-}ATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA{b:46}\n{b:70}\n{b:70}\n{b:20}==\n-----END OPENSSH PRIV{-}ATE KEY-----\n"],
            negative: &["-----BEGIN OPENSSH PRIV{-}ATE KEY-----\n[redacted]\n-----END OPENSSH PRIV{-}ATE KEY-----"],
        },
    },
    Detector {
        id: "pgp-private-key",
        description: "PGP private key block",
        keywords: &["-----BEGIN PGP PRIVATE KEY BLOCK"],
        pattern: r"(?s)-----BEGIN PGP PRIVATE KEY BLOCK-----(?:\s|\\[nr])*(?P<v>.{64,}?)-----END PGP PRIVATE KEY BLOCK",
        filters: &[MinLen(64), Entropy(4.5)],
        window: Window::After(64 << 10),
        examples: Examples {
            positive: &["-----BEGIN PGP PRIV{-}ATE KEY BLOCK-----\n\nlQdGBF{b:58}\n{b:64}\n{b:64}\n={b:4}\n-----END PGP PRIV{-}ATE KEY BLOCK-----"],
            negative: &["-----BEGIN PGP PRIV{-}ATE KEY BLOCK-----\n...\n-----END PGP PRIV{-}ATE KEY BLOCK-----"],
        },
    },
    Detector {
        id: "putty-private-key",
        description: "PuTTY private key (.ppk)",
        keywords: &["PuTTY-User-Key-File-"],
        pattern: r"(?s)PuTTY-User-Key-File-[23]: [^\r\n]+.{0,4000}?Private-Lines: [0-9]+\r?\n(?P<v>[A-Za-z0-9+/=\r\n]{40,})",
        filters: &[Entropy(4.5)],
        window: BLOCK,
        examples: Examples {
            positive: &["PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: k\nPublic-Lines: 2\nAAAAC3NzaC1lZDI1NTE5AAAAI{b:39}\n{b:20}\nPrivate-Lines: 1\nAAAAI{b:43}\nPrivate-MAC: {h:64}\n"],
            negative: &["PuTTY-User-Key-File-3: ssh-ed25519\nPrivate-Lines: 1\nAAAA\n"],
        },
    },
];
