//! Commit headers, parsed defensively (the bytes come from the client): author and committer
//! emails, whether a signature is present, the message.

use crate::policy::CommitFacts;

/// Messages longer than this are cut before being matched by rules.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Parses the facts rules need from a commit object's bytes. Missing headers give empty
/// strings (the pack reader has already checked that the commit is well-formed).
pub fn parse_commit(id: &str, data: &[u8]) -> CommitFacts {
    let (headers, message) = match find(data, b"\n\n") {
        Some(at) => (
            data.get(..at).unwrap_or_default(),
            data.get(at + 2..).unwrap_or_default(),
        ),
        None => (data, &b""[..]),
    };
    let mut facts = CommitFacts {
        id: id.to_string(),
        author: String::new(),
        author_email: String::new(),
        committer: String::new(),
        committer_email: String::new(),
        message: String::from_utf8_lossy(message.get(..MAX_MESSAGE_BYTES).unwrap_or(message))
            .into_owned(),
        signed: false,
    };
    for line in headers.split(|b| *b == b'\n') {
        if let Some(rest) = line.strip_prefix(b"author ") {
            facts.author = person(rest);
            facts.author_email = email(rest);
        } else if let Some(rest) = line.strip_prefix(b"committer ") {
            facts.committer = person(rest);
            facts.committer_email = email(rest);
        } else if line.starts_with(b"gpgsig ") || line.starts_with(b"gpgsig-sha256 ") {
            facts.signed = true;
        }
    }
    facts
}

/// `Name <email>` of an ident line (`Name <email> 1700000000 +0000`): up to the last `>`.
fn person(ident: &[u8]) -> String {
    let end = ident
        .iter()
        .rposition(|b| *b == b'>')
        .map_or(ident.len(), |e| e + 1);
    let text = String::from_utf8_lossy(ident.get(..end).unwrap_or(ident));
    text.chars().take(MAX_PERSON_CHARS).collect()
}

/// Longer author/committer strings are cut (they are recorded, and come from the client).
const MAX_PERSON_CHARS: usize = 512;

fn email(ident: &[u8]) -> String {
    let start = ident.iter().position(|b| *b == b'<');
    let end = ident.iter().rposition(|b| *b == b'>');
    match (start, end) {
        (Some(s), Some(e)) if s < e => {
            String::from_utf8_lossy(ident.get(s + 1..e).unwrap_or_default()).into_owned()
        }
        _ => String::new(),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_emails_signature_and_message() {
        let data = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A U <a@x.org> 1 +0000\ncommitter C <c@y.org> 2 +0000\ngpgsig -----BEGIN SSH SIGNATURE-----\n abc\n -----END SSH SIGNATURE-----\n\nSubject\n\nBody\n";
        let f = parse_commit("abc", data);
        assert_eq!(f.author_email, "a@x.org");
        assert_eq!(f.author, "A U <a@x.org>");
        assert_eq!(f.committer, "C <c@y.org>");
        assert_eq!(f.committer_email, "c@y.org");
        assert!(f.signed);
        assert_eq!(f.message, "Subject\n\nBody\n");
    }

    #[test]
    fn unsigned_and_odd_commits() {
        let f = parse_commit("x", b"tree t\nauthor nobody 1 +0000\n\nm");
        assert!(!f.signed);
        assert_eq!(f.author_email, "");
        assert_eq!(f.message, "m");
        let f = parse_commit("x", b"");
        assert_eq!(f.message, "");
    }
}
