//! [`Pattern`]: the globs of rules (`repos`, `refs`, `paths`, `hide_refs`).

/// A compiled glob: `*` stays within a `/`-separated segment, `**` crosses segments.
///
/// The lone pattern `*` matches everything (it is the documented default of `repos` and `refs`).
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    // `None` for the lone `*`.
    matcher: Option<globset::GlobMatcher>,
}

impl Pattern {
    /// Compiles `glob` (gitignore-style separators).
    pub fn new(glob: &str) -> Result<Pattern, globset::Error> {
        if glob == "*" {
            return Ok(Pattern::any());
        }
        let matcher = globset::GlobBuilder::new(glob)
            .literal_separator(true)
            .backslash_escape(true)
            .build()?
            .compile_matcher();
        Ok(Pattern {
            source: glob.to_string(),
            matcher: Some(matcher),
        })
    }

    /// The pattern `*`, which matches everything.
    pub fn any() -> Pattern {
        Pattern {
            source: "*".to_string(),
            matcher: None,
        }
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `s` matches.
    pub fn is_match(&self, s: &str) -> bool {
        match &self.matcher {
            Some(m) => m.is_match(s),
            None => true,
        }
    }
}
