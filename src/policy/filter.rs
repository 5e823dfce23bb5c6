//! [`RefFilter`]: the refs a caller may neither see nor fetch.

use crate::config::Pattern;

/// The refs hidden from one caller in one repo ([`super::Policy::ref_filter`]).
///
/// Apply it wherever refs reach the client: the v0/v1 advertisement, v2 `ls-refs`, and the
/// `want-ref`s of v2 `fetch` (and refuse a `want` of an id only a hidden ref advertises). A
/// symbolic ref (`HEAD`) whose target is hidden must be hidden too: check the target's name
/// as well, or the symref leaks the hidden tip.
#[derive(Debug, Clone, Default)]
pub struct RefFilter {
    // Each glob with the name of the rule that hides it, in file order.
    hidden: Vec<(Pattern, String)>,
}

impl RefFilter {
    pub(super) fn new(hidden: Vec<(Pattern, String)>) -> RefFilter {
        RefFilter { hidden }
    }

    /// Whether `refname` is hidden. A peeled tag `R^{}` is hidden when `R` is.
    pub fn is_hidden(&self, refname: &str) -> bool {
        self.hidden_by(refname).is_some()
    }

    /// The first rule (in file order) hiding `refname`, if any.
    pub fn hidden_by(&self, refname: &str) -> Option<&str> {
        let name = refname.strip_suffix("^{}").unwrap_or(refname);
        self.hidden
            .iter()
            .find(|(pattern, _)| pattern.is_match(name))
            .map(|(_, rule)| rule.as_str())
    }

    /// Whether nothing is hidden (the advertisement can be relayed as it is).
    pub fn is_empty(&self) -> bool {
        self.hidden.is_empty()
    }
}
