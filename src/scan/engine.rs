//! The [`Scanner`]: one keyword pass per blob, then each hit detector's regex on a window
//! around the hit, then the filters, cheapest first.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::bytes::Regex;

use super::allow::{Allow, INLINE_MARKERS};
use super::detector::{Detector, Filter, Window};
use super::finding::{fingerprint, preview};
use super::{filter, Finding, Options, Outcome, SkipReason};

/// Bytes looked at for a NUL to call a blob binary (git's `buffer_is_binary` looks at 8000).
const BINARY_PROBE: usize = 8 << 10;

/// A compiled detector set. Build it once ([`Scanner::new`]) and share it (`Arc`): it is
/// `Send + Sync` and scanning takes `&self`.
pub struct Scanner {
    options: Options,
    detectors: Vec<Detector>,
    compiled: Vec<Compiled>,
    keywords: Option<AhoCorasick>,
    /// Per keyword pattern: the exact bytes required (case-sensitive keywords) and the
    /// detectors it triggers.
    triggers: Vec<Trigger>,
    /// Detectors without keywords: their regex runs over the whole blob.
    always: Vec<u16>,
    /// Per detector: whether a keyword hit of it depends on its own line only (a `Line`
    /// window and no pair rule reaching other lines). [`Scanner::scan_regions`] looks for
    /// these keywords on the lines next to a change only.
    one_line: Vec<bool>,
    /// The keywords of the detectors that look at several lines (`Lines` windows, pair
    /// rules), with their triggers: [`Scanner::scan_regions`] looks for them within
    /// `context_lines` lines of a change.
    multi_line: Option<(AhoCorasick, Vec<Trigger>)>,
    /// The longest keyword, in bytes: regions are widened by it so that a keyword across
    /// their edge is found.
    max_keyword: usize,
    /// [`Scanner::scan_regions`] scans whole blobs: detectors without keywords, or keywords
    /// holding a newline, are loaded.
    whole_only: bool,
    /// The keywords of detectors whose window is a block after the keyword (`After`: PEM
    /// keys), which a change any distance away may reach: a blob holding one is scanned whole by
    /// [`Scanner::scan_regions`]. Keywords with a capital letter only trigger on their exact
    /// bytes, so they are searched case-sensitively (a far faster search); the others ignoring
    /// case, as the keyword pass does.
    far_keywords: Vec<AhoCorasick>,
    /// Lines of context [`Scanner::scan_regions`] adds around a change for the multi-line
    /// detectors: the most any one's window and pair rule span together, plus one.
    context_lines: usize,
    allow: Allow,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("options", &self.options)
            .field("detectors", &self.detectors.len())
            .finish_non_exhaustive()
    }
}

struct Trigger {
    exact: Option<Vec<u8>>,
    detectors: Vec<u16>,
}

/// A detector's regexes, compiled on first use: most detectors never fire on a given blob,
/// and compiling all of them up front would cost more than scanning a typical push.
struct Compiled {
    pattern: &'static str,
    regex: OnceLock<Option<Pattern>>,
    filters: Vec<Filter>,
    near: Vec<(&'static str, u8, OnceLock<Option<Regex>>)>,
    window: Window,
}

/// A compiled pattern and the indexes of its value groups (`v`, `v1`, `v2`, ...).
struct Pattern {
    regex: Regex,
    value_groups: Vec<usize>,
}

impl Compiled {
    fn pattern(&self) -> Option<&Pattern> {
        self.regex
            .get_or_init(|| {
                let regex = build(self.pattern)?;
                let value_groups = regex
                    .capture_names()
                    .enumerate()
                    .filter(|(_, name)| name.is_some_and(is_value_group))
                    .map(|(i, _)| i)
                    .collect();
                Some(Pattern {
                    regex,
                    value_groups,
                })
            })
            .as_ref()
    }
}

/// Value groups are named `v` or `v` followed by digits (alternatives of one pattern).
fn is_value_group(name: &str) -> bool {
    name.strip_prefix('v')
        .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit()))
}

/// Compiles `pattern` in ASCII mode (`\w`, `\b`, classes over bytes: faster, and what
/// secrets are made of), or as written when it needs Unicode (imported rules).
fn build(pattern: &str) -> Option<Regex> {
    let compile = |p: &str| {
        regex::bytes::RegexBuilder::new(p)
            .size_limit(16 << 20)
            .build()
            .ok()
    };
    compile(&format!("(?-u){pattern}")).or_else(|| compile(pattern))
}

/// A detector set that does not compile.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A detector's pattern (or pair pattern) is not a valid regex.
    #[error("detector {id}: invalid regex: {reason}")]
    Regex {
        /// The detector.
        id: String,
        /// What the regex compiler said.
        reason: String,
    },
    /// The keyword automaton could not be built.
    #[error("keywords: {0}")]
    Keywords(String),
    /// More detectors than the engine indexes.
    #[error("too many detectors ({0})")]
    TooMany(usize),
}

/// A value that passed its detector's filters: `(detector index, value range)`.
#[derive(Debug, Clone)]
struct Candidate {
    detector: u16,
    value: Range<usize>,
}

impl Scanner {
    /// The built-in detectors with `options`.
    pub fn new(options: Options) -> Scanner {
        // The built-in table is static and every pattern is compiled by the tests.
        Scanner::with(options, super::detectors::all(), Allow::default())
            .expect("the built-in detectors compile")
    }

    /// `detectors` (e.g. the built-ins followed by imported ones) with an allowlist.
    /// Where two detectors' values overlap, the one earlier in `detectors` is reported.
    pub fn with(
        options: Options,
        detectors: Vec<Detector>,
        allow: Allow,
    ) -> Result<Scanner, BuildError> {
        if detectors.len() > usize::from(u16::MAX) {
            return Err(BuildError::TooMany(detectors.len()));
        }
        let mut compiled = Vec::with_capacity(detectors.len());
        let (mut patterns, mut triggers): (Vec<&str>, Vec<Trigger>) = (Vec::new(), Vec::new());
        let (mut multi, mut multi_triggers): (Vec<&str>, Vec<Trigger>) = (Vec::new(), Vec::new());
        let mut always = Vec::new();
        let mut one_line = Vec::with_capacity(detectors.len());
        let mut far: Vec<&str> = Vec::new();
        let mut context_lines = 1usize;
        let builtin: std::collections::HashSet<(&str, &str)> = super::detectors::all()
            .iter()
            .map(|d| (d.id, d.pattern))
            .collect();
        for (index, d) in detectors.iter().enumerate() {
            let index = index as u16;
            compiled.push(compile(d, builtin.contains(&(d.id, d.pattern)))?);
            if d.keywords.is_empty() {
                always.push(index);
            }
            for &kw in d.keywords {
                add_trigger(&mut patterns, &mut triggers, kw, index);
            }
            let near_lines = d
                .filters
                .iter()
                .filter_map(|f| match f {
                    Filter::Near { lines, .. } => Some(usize::from(*lines)),
                    _ => None,
                })
                .max();
            let single = matches!(d.window, Window::Line) && near_lines.unwrap_or(0) == 0;
            one_line.push(single);
            match d.window {
                // A block after its header (a PEM key) may be any distance from a change: a blob
                // holding the keyword is scanned whole.
                Window::After(_) => far.extend(d.keywords),
                _ if single => {}
                window => {
                    let window_lines = match window {
                        Window::Lines(n) => usize::from(n),
                        _ => 0,
                    };
                    context_lines = context_lines.max(window_lines + near_lines.unwrap_or(0) + 1);
                    for &kw in d.keywords {
                        add_trigger(&mut multi, &mut multi_triggers, kw, index);
                    }
                }
            }
        }
        let max_keyword = patterns.iter().map(|p| p.len()).max().unwrap_or(0);
        // Regions are whole lines: a keyword across lines would be missed at their edges.
        let whole_only = !always.is_empty() || patterns.iter().any(|p| p.contains('\n'));
        let (exact, folded): (Vec<&str>, Vec<&str>) = far
            .into_iter()
            .partition(|k| k.bytes().any(|b| b.is_ascii_uppercase()));
        let mut far_keywords = Vec::new();
        for (keywords, fold) in [(exact, false), (folded, true)] {
            if !keywords.is_empty() {
                far_keywords.push(
                    AhoCorasick::builder()
                        .ascii_case_insensitive(fold)
                        .build(&keywords)
                        .map_err(|e| BuildError::Keywords(e.to_string()))?,
                );
            }
        }
        let automaton = |patterns: &[&str]| {
            AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .kind(Some(AhoCorasickKind::DFA))
                .build(patterns)
                .map_err(|e| BuildError::Keywords(e.to_string()))
        };
        let keywords = if patterns.is_empty() {
            None
        } else {
            Some(automaton(&patterns)?)
        };
        let multi_line = if multi.is_empty() {
            None
        } else {
            Some((automaton(&multi)?, multi_triggers))
        };
        Ok(Scanner {
            options,
            detectors,
            compiled,
            keywords,
            triggers,
            always,
            one_line,
            multi_line,
            max_keyword,
            whole_only,
            far_keywords,
            context_lines,
            allow,
        })
    }

    /// The detectors, in priority order.
    pub fn detectors(&self) -> &[Detector] {
        &self.detectors
    }

    /// Compiles every detector's regexes now. They are otherwise compiled on first use; a
    /// gateway may call this at start-up (~0.3 s of CPU) so that no push pays for it.
    pub fn compile_all(&self) {
        for c in &self.compiled {
            let _ = c.pattern();
            for (pattern, _, cell) in &c.near {
                let _ = cell.get_or_init(|| build(pattern));
            }
        }
    }

    /// Ids of detectors whose pattern (or pair pattern) does not compile in the engine.
    #[cfg(test)]
    pub(crate) fn uncompilable(&self) -> Vec<&'static str> {
        self.compile_all();
        self.detectors
            .iter()
            .zip(&self.compiled)
            .filter(|(_, c)| {
                c.pattern().is_none()
                    || c.near
                        .iter()
                        .any(|(_, _, cell)| cell.get().is_none_or(Option::is_none))
            })
            .map(|(d, _)| d.id)
            .collect()
    }

    /// The options it was built with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Whether the allowlist permits `finding` (by path or fingerprint): for findings whose
    /// path was set after [`Scanner::scan`] (which applied the allowlist with the path given).
    pub fn permits(&self, finding: &Finding) -> bool {
        self.allow.permits(finding)
    }

    /// Scans one blob. `path` is only copied into the findings.
    pub fn scan(&self, path: &str, data: &[u8]) -> Outcome {
        let bytes = data.len() as u64;
        if bytes > self.options.max_blob_bytes {
            return Outcome {
                findings: Vec::new(),
                skipped: Some(SkipReason::TooLarge {
                    bytes,
                    limit: self.options.max_blob_bytes,
                }),
            };
        }
        let probe = data.get(..BINARY_PROBE).unwrap_or(data);
        if memchr::memchr(0, probe).is_some() {
            return Outcome {
                findings: Vec::new(),
                skipped: Some(SkipReason::Binary),
            };
        }
        let mut hits = Vec::new();
        if let Some(ac) = &self.keywords {
            keyword_hits(
                ac,
                &self.triggers,
                data,
                std::slice::from_ref(&(0..data.len())),
                |_| true,
                &mut hits,
            );
        }
        let mut candidates = Vec::new();
        for &d in &self.always {
            self.run(d, data, 0..data.len(), &mut candidates);
        }
        self.candidates(data, hits, &mut candidates);
        Outcome {
            findings: self.findings(path, data, candidates),
            skipped: None,
        }
    }

    /// Scans only around `changed` (byte ranges of `data`; empty ranges are places), e.g. what
    /// a delta changed in a blob whose base was scanned. The findings, their lines and columns,
    /// and the skip decisions are those [`Scanner::scan`] gives for the whole blob, for every
    /// secret whose detector looked at a changed byte or place: keywords are looked for only
    /// where a change can reach what their detector looks at, then each hit is handled as in a
    /// whole scan (same window, pair rule and inline marker, over the whole blob).
    ///
    /// - The keywords of one-line detectors are looked for on the lines holding a change and
    ///   one line on each side (at most [`ONE_LINE_REACH`] bytes away on long lines);
    /// - the keywords of multi-line detectors within as many lines as their windows and pair
    ///   rules span (at most [`MULTI_LINE_REACH`] bytes away);
    /// - a blob holding the keyword of a block detector (a PEM key: its window may be anywhere
    ///   after the header), or scanned by detectors without keywords, or where the lines to
    ///   search make half of it, is scanned whole.
    pub fn scan_regions(&self, path: &str, data: &[u8], changed: &[Range<usize>]) -> Outcome {
        let whole = data.len() as u64 > self.options.max_blob_bytes
            || self.whole_only
            || self.far_keywords.iter().any(|far| far.is_match(data));
        if whole {
            return self.scan(path, data);
        }
        let mut sorted = changed.to_vec();
        sorted.sort_unstable_by_key(|r| r.start);
        let near = line_regions(data, &sorted, 1, ONE_LINE_REACH, self.max_keyword);
        let covered: usize = near.iter().map(ExactSizeIterator::len).sum();
        if covered >= data.len() / 2 {
            return self.scan(path, data);
        }
        let probe = data.get(..BINARY_PROBE).unwrap_or(data);
        if memchr::memchr(0, probe).is_some() {
            return Outcome {
                findings: Vec::new(),
                skipped: Some(SkipReason::Binary),
            };
        }
        let mut candidates = Vec::new();
        let mut near = near;
        if let Some((ac, triggers)) = &self.multi_line {
            let around = line_regions(
                data,
                &sorted,
                self.context_lines,
                MULTI_LINE_REACH,
                self.max_keyword,
            );
            let mut hits = Vec::new();
            keyword_hits(ac, triggers, data, &around, |_| true, &mut hits);
            self.candidates(data, hits, &mut candidates);
            // A value found there may overlap one of a one-line detector that comes first
            // (and wins, in a whole scan): its lines are searched too.
            if !candidates.is_empty() {
                let mut values: Vec<Range<usize>> =
                    candidates.iter().map(|c| c.value.clone()).collect();
                values.sort_unstable_by_key(|r| r.start);
                near.extend(line_regions(
                    data,
                    &values,
                    0,
                    ONE_LINE_REACH,
                    self.max_keyword,
                ));
                near = merge(near);
            }
        }
        if let Some(ac) = &self.keywords {
            let one_line = |d: u16| self.one_line.get(usize::from(d)) == Some(&true);
            let mut hits = Vec::new();
            keyword_hits(ac, &self.triggers, data, &near, one_line, &mut hits);
            self.candidates(data, hits, &mut candidates);
        }
        Outcome {
            findings: self.findings(path, data, candidates),
            skipped: None,
        }
    }

    /// Each keyword hit's detector run on the hit's window (windows of one detector that
    /// overlap are merged): what passes its filters is added to `out`.
    fn candidates(
        &self,
        data: &[u8],
        mut hits: Vec<(u16, usize, usize)>,
        out: &mut Vec<Candidate>,
    ) {
        if hits.is_empty() {
            return;
        }
        hits.sort_unstable();
        let mut current: Option<(u16, Range<usize>)> = None;
        for (d, start, end) in hits {
            let Some(compiled) = self.compiled.get(usize::from(d)) else {
                continue;
            };
            let window = window(data, compiled.window, start, end);
            match &mut current {
                Some((cd, range)) if *cd == d && window.start <= range.end => {
                    range.end = range.end.max(window.end);
                }
                _ => {
                    if let Some((cd, range)) = current.take() {
                        self.run(cd, data, range, out);
                    }
                    current = Some((d, window));
                }
            }
        }
        if let Some((cd, range)) = current {
            self.run(cd, data, range, out);
        }
    }

    /// Runs detector `d` on `data[range]`.
    fn run(&self, d: u16, data: &[u8], range: Range<usize>, out: &mut Vec<Candidate>) {
        let Some(compiled) = self.compiled.get(usize::from(d)) else {
            return;
        };
        let (Some(pattern), Some(haystack)) = (compiled.pattern(), data.get(range.clone())) else {
            return;
        };
        let offset = range.start;
        let mut push = |value: Range<usize>| {
            let Some(bytes) = haystack.get(value.clone()) else {
                return;
            };
            let start = offset + value.start;
            if compiled.filters.iter().all(|f| filter::passes(f, bytes))
                && compiled.near.iter().all(|(p, lines, re)| {
                    re.get_or_init(|| build(p))
                        .as_ref()
                        .is_some_and(|re| near(data, start, re, *lines))
                })
                && !self.allow.permits_value(bytes)
            {
                out.push(Candidate {
                    detector: d,
                    value: start..offset + value.end,
                });
            }
        };
        if pattern.value_groups.is_empty() {
            for m in pattern.regex.find_iter(haystack) {
                push(m.range());
            }
        } else {
            for caps in pattern.regex.captures_iter(haystack) {
                if let Some(m) = pattern.value_groups.iter().find_map(|&g| caps.get(g)) {
                    push(m.range());
                }
            }
        }
    }

    /// Overlaps resolved by priority, inline markers honoured, positions computed.
    fn findings(&self, path: &str, data: &[u8], mut candidates: Vec<Candidate>) -> Vec<Finding> {
        if candidates.is_empty() {
            return Vec::new();
        }
        candidates.sort_by_key(|c| (c.detector, c.value.start));
        // Accepted value ranges, start -> (end, candidate); never overlapping.
        let mut accepted: BTreeMap<usize, (usize, u16)> = BTreeMap::new();
        for c in candidates {
            let overlaps = accepted
                .range(..c.value.end.max(c.value.start + 1))
                .next_back()
                .is_some_and(|(_, (end, _))| *end > c.value.start);
            if !overlaps {
                accepted.insert(c.value.start, (c.value.end, c.detector));
            }
        }
        let mut findings = Vec::with_capacity(accepted.len());
        let (mut line, mut line_start, mut scanned) = (1u32, 0usize, 0usize);
        for (start, (end, d)) in accepted {
            let Some(detector) = self.detectors.get(usize::from(d)) else {
                continue;
            };
            let value = data.get(start..end).unwrap_or_default();
            if allowed_inline(data, start) || allowed_inline(data, end.saturating_sub(1)) {
                continue;
            }
            for nl in memchr::memchr_iter(b'\n', data.get(scanned..start).unwrap_or_default()) {
                line = line.saturating_add(1);
                line_start = scanned + nl + 1;
            }
            scanned = start;
            let finding = Finding {
                path: path.to_owned(),
                line,
                column: u32::try_from(start - line_start + 1).unwrap_or(u32::MAX),
                detector: detector.id,
                description: detector.description,
                preview: preview(value),
                fingerprint: fingerprint(detector.id, value),
            };
            if !self.allow.permits(&finding) {
                findings.push(finding);
            }
        }
        findings
    }
}

/// How far from a change [`Scanner::scan_regions`] looks for the keywords of one-line
/// detectors on a long line: their window reaches 256 bytes before the keyword and 1 KiB after
/// it, the inline marker check 4 KiB around the value; and a keyword of another detector whose
/// value overlaps that one is found too.
pub const ONE_LINE_REACH: usize = 8 << 10;

/// The same for multi-line detectors: their windows reach 4 KiB from the keyword, their pair
/// rules and the inline marker check 4 KiB from the value.
pub const MULTI_LINE_REACH: usize = 10 << 10;

/// `ranges` sorted and merged where they overlap or touch.
fn merge(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    ranges.sort_unstable_by_key(|r| r.start);
    let mut out: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// Adds keyword `kw` of detector `index` to `patterns` (once) and its trigger.
fn add_trigger<'a>(
    patterns: &mut Vec<&'a str>,
    triggers: &mut Vec<Trigger>,
    kw: &'a str,
    index: u16,
) {
    match patterns.iter().position(|p| *p == kw) {
        Some(at) => {
            if let Some(t) = triggers.get_mut(at) {
                t.detectors.push(index);
            }
        }
        None => {
            patterns.push(kw);
            let exact = kw
                .bytes()
                .any(|b| b.is_ascii_uppercase())
                .then(|| kw.as_bytes().to_vec());
            triggers.push(Trigger {
                exact,
                detectors: vec![index],
            });
        }
    }
}

/// The hits of `ac` within each of `ranges` of `data` (positions in `data`), for the detectors
/// of `triggers` that `keep` accepts, as `(detector, start, end)`.
fn keyword_hits(
    ac: &AhoCorasick,
    triggers: &[Trigger],
    data: &[u8],
    ranges: &[Range<usize>],
    keep: impl Fn(u16) -> bool,
    hits: &mut Vec<(u16, usize, usize)>,
) {
    for range in ranges {
        if range.start >= range.end || range.end > data.len() {
            continue;
        }
        let input = aho_corasick::Input::new(data).span(range.clone());
        for m in ac.find_overlapping_iter(input) {
            let Some(trigger) = triggers.get(m.pattern().as_usize()) else {
                continue;
            };
            if let Some(exact) = &trigger.exact {
                if data.get(m.range()) != Some(exact.as_slice()) {
                    continue;
                }
            }
            for &d in &trigger.detectors {
                if keep(d) {
                    hits.push((d, m.start(), m.end()));
                }
            }
        }
    }
}

/// `changed` (sorted by start) widened to the lines holding each change, plus `lines` lines on
/// each side, but not more than `reach` bytes (then by `pad` more, so that a keyword across
/// that cut is found); merged.
fn line_regions(
    data: &[u8],
    changed: &[Range<usize>],
    lines: usize,
    reach: usize,
    pad: usize,
) -> Vec<Range<usize>> {
    let len = data.len();
    let mut out: Vec<Range<usize>> = Vec::new();
    // The change the last region's end was computed from, and whether it was cut at `reach`.
    let mut last_change_end = 0usize;
    let mut last_cut = true;
    for r in changed {
        let s = r.start.min(len);
        let e = r.end.clamp(s, len);
        // A change on the same line as the one before, inside its region: nothing new.
        if let Some(last) = out.last() {
            if !last_cut
                && e >= last_change_end
                && e < last.end
                && memchr::memchr(b'\n', data.get(last_change_end..e).unwrap_or_default()).is_none()
            {
                continue;
            }
        }
        let hi = e.saturating_add(reach).min(len);
        let mut end = e;
        for _ in 0..=lines {
            if end >= hi {
                break;
            }
            // Past the newline ending the line holding `end`.
            end = memchr::memchr(b'\n', data.get(end..hi).unwrap_or_default())
                .map_or(hi, |i| end + i + 1);
        }
        last_cut = end >= hi && hi < len;
        last_change_end = e;
        // A keyword across the edge of a line cut short: widened so that it is found.
        let end = if last_cut { (end + pad).min(len) } else { end };
        if let Some(last) = out.last_mut() {
            if s <= last.end {
                last.end = last.end.max(end);
                continue;
            }
        }
        let lo = s.saturating_sub(reach);
        let mut start = s;
        for _ in 0..=lines {
            if start <= lo {
                break;
            }
            // The start of the line holding `start - 1`.
            start = memchr::memrchr(b'\n', data.get(lo..start - 1).unwrap_or_default())
                .map_or(lo, |i| lo + i + 1);
        }
        let start = if start <= lo {
            start.saturating_sub(pad)
        } else {
            start
        };
        match out.last_mut() {
            Some(last) if start <= last.end => last.end = last.end.max(end),
            _ => out.push(start..end),
        }
    }
    out
}

/// Prepares `d`. Built-in patterns compile on first use (the tests compile every one);
/// others (imported rules) are compiled now, so that a bad one is an error, not a detector
/// that silently never fires.
fn compile(d: &Detector, builtin: bool) -> Result<Compiled, BuildError> {
    let invalid = |pattern: &str| BuildError::Regex {
        id: d.id.to_owned(),
        reason: regex::bytes::Regex::new(pattern)
            .err()
            .map_or_else(|| "too large".to_owned(), |e| e.to_string()),
    };
    let mut filters: Vec<Filter> = d
        .filters
        .iter()
        .copied()
        .filter(|f| !matches!(f, Filter::Near { .. }))
        .collect();
    filters.sort_by_key(filter::cost);
    let mut near = Vec::new();
    for f in d.filters {
        if let Filter::Near { pattern, lines } = f {
            let cell = OnceLock::new();
            if !builtin {
                let re = build(pattern).ok_or_else(|| invalid(pattern))?;
                let _ = cell.set(Some(re));
            }
            near.push((*pattern, *lines, cell));
        }
    }
    let compiled = Compiled {
        pattern: d.pattern,
        regex: OnceLock::new(),
        filters,
        near,
        window: d.window,
    };
    if !builtin && compiled.pattern().is_none() {
        return Err(invalid(d.pattern));
    }
    Ok(compiled)
}

/// Start of the line holding `at`, not before `lo`.
fn line_start(data: &[u8], at: usize, lo: usize) -> usize {
    match memchr::memrchr(b'\n', data.get(lo..at).unwrap_or_default()) {
        Some(nl) => lo + nl + 1,
        None => lo,
    }
}

/// End (exclusive, at the newline) of the line holding `at`, not after `hi`.
fn line_end(data: &[u8], at: usize, hi: usize) -> usize {
    match memchr::memchr(b'\n', data.get(at..hi).unwrap_or_default()) {
        Some(nl) => at + nl,
        None => hi.max(at).min(data.len()),
    }
}

fn window(data: &[u8], window: Window, start: usize, end: usize) -> Range<usize> {
    let len = data.len();
    match window {
        Window::Line => {
            line_start(data, start, start.saturating_sub(256))
                ..line_end(data, end, end.saturating_add(1024).min(len))
        }
        Window::Lines(n) => {
            let lo = start.saturating_sub(4096);
            let hi = end.saturating_add(4096).min(len);
            let mut from = line_start(data, start, lo);
            for _ in 0..n {
                if from <= lo {
                    break;
                }
                from = line_start(data, from - 1, lo);
            }
            let mut to = line_end(data, end, hi);
            for _ in 0..n {
                if to >= hi {
                    break;
                }
                to = line_end(data, to + 1, hi);
            }
            from..to
        }
        Window::After(n) => {
            line_start(data, start, start.saturating_sub(256))
                ..end.saturating_add(n as usize).min(len)
        }
    }
}

/// Whether `re` matches within `lines` lines of `at`.
fn near(data: &[u8], at: usize, re: &Regex, lines: u8) -> bool {
    let region = window(data, Window::Lines(lines), at, at);
    data.get(region).is_some_and(|r| re.is_match(r))
}

/// Whether the line holding `at` carries an inline allow marker.
fn allowed_inline(data: &[u8], at: usize) -> bool {
    let from = line_start(data, at, at.saturating_sub(4096));
    let to = line_end(data, at, at.saturating_add(4096).min(data.len()));
    let line = data.get(from..to).unwrap_or_default();
    INLINE_MARKERS
        .iter()
        .any(|m| memchr::memmem::find(line, m.as_bytes()).is_some())
}
