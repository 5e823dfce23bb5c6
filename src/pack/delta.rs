//! Applying a git delta (`gitformat-pack`, "Deltified representation") to its base.
//!
//! A delta is two little-endian base-128 sizes (base, result) followed by instructions: a byte with
//! the high bit set copies a range of the base (offset in up to 4 bytes, size in up to 3, a size of
//! 0 meaning 0x10000), a byte from 1 to 127 inserts that many literal bytes, 0 is reserved. Every
//! range is checked; the result size is checked against the limit before anything is allocated
//! (delta bombs), and the result must have exactly the declared size.

use crate::pack::PackError;

/// The base and result sizes from a delta's header, and where the instructions start. `None` if
/// malformed or over 64 bits.
pub(crate) fn sizes(delta: &[u8]) -> Option<(u64, u64, usize)> {
    let mut at = 0usize;
    let mut sizes = [0u64; 2];
    for size in &mut sizes {
        let mut shift = 0u32;
        loop {
            let byte = *delta.get(at)?;
            at += 1;
            let part = u64::from(byte & 0x7f);
            if shift >= 64 || (part << shift) >> shift != part {
                return None;
            }
            *size |= part << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
    }
    Some((sizes[0], sizes[1], at))
}

/// One delta instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op<'a> {
    /// Copy `size` bytes of the base from `offset`.
    Copy { offset: usize, size: usize },
    /// Insert these bytes.
    Insert(&'a [u8]),
}

/// The instructions after a delta's size header; an item is `Err` with what is malformed.
fn ops(instructions: &[u8]) -> impl Iterator<Item = Result<Op<'_>, &'static str>> + '_ {
    let mut rest = instructions.iter();
    std::iter::from_fn(move || {
        let &op = rest.next()?;
        if op & 0x80 != 0 {
            let mut offset = 0usize;
            let mut size = 0usize;
            for (bit, shift) in [(0x01, 0), (0x02, 8), (0x04, 16), (0x08, 24)] {
                if op & bit != 0 {
                    let Some(byte) = rest.next() else {
                        return Some(Err("truncated copy instruction"));
                    };
                    offset |= usize::from(*byte) << shift;
                }
            }
            for (bit, shift) in [(0x10, 0), (0x20, 8), (0x40, 16)] {
                if op & bit != 0 {
                    let Some(byte) = rest.next() else {
                        return Some(Err("truncated copy instruction"));
                    };
                    size |= usize::from(*byte) << shift;
                }
            }
            if size == 0 {
                size = 0x10000;
            }
            Some(Ok(Op::Copy { offset, size }))
        } else if op != 0 {
            let len = usize::from(op);
            let slice = rest.as_slice();
            let Some(literal) = slice.get(..len) else {
                return Some(Err("truncated insert instruction"));
            };
            rest = slice.get(len..).unwrap_or_default().iter();
            Some(Ok(Op::Insert(literal)))
        } else {
            Some(Err("reserved instruction 0"))
        }
    })
}

/// Applies `delta` to `base`, replacing the content of `out` with the result.
///
/// `offset` (of the delta entry) only labels errors. Fails with [`PackError::DeltaResultTooLarge`]
/// when the declared result exceeds `max_result`, before allocating, and with
/// [`PackError::BadDelta`] for anything malformed.
pub(crate) fn apply(
    base: &[u8],
    delta: &[u8],
    out: &mut Vec<u8>,
    max_result: u64,
    offset: u64,
) -> Result<(), PackError> {
    let bad = |what: &str| PackError::BadDelta {
        detail: format!("delta at byte {offset}: {what}"),
    };
    let (base_size, result_size, start) =
        sizes(delta).ok_or_else(|| bad("malformed size header"))?;
    if base_size != base.len() as u64 {
        return Err(bad("its base has another size"));
    }
    if result_size > max_result {
        return Err(PackError::DeltaResultTooLarge {
            offset,
            size: result_size,
            limit: max_result,
        });
    }
    let result_len = usize::try_from(result_size).map_err(|_| bad("result too large"))?;
    out.clear();
    out.reserve_exact(result_len);
    for op in ops(delta.get(start..).unwrap_or_default()) {
        let literal = match op.map_err(bad)? {
            Op::Copy { offset, size } => offset
                .checked_add(size)
                .and_then(|end| base.get(offset..end))
                .ok_or_else(|| bad("copy out of the base's range"))?,
            Op::Insert(literal) => literal,
        };
        if out.len() + literal.len() > result_len {
            return Err(bad("result longer than declared"));
        }
        out.extend_from_slice(literal);
    }
    if out.len() != result_len {
        return Err(bad("result shorter than declared"));
    }
    Ok(())
}

/// Where a delta's result differs from a plain copy of its base: the ranges of the result
/// written by insert instructions, and an empty range wherever a copy does not continue the
/// previous one in the base (what was deleted there joins bytes that were not adjacent; the
/// start and the end of the result count as such places when they are not the base's). Any
/// stretch of the result that touches none of them was copied in one piece from the base.
/// `None` if `delta` is malformed (it was applied already: only a caller's mistake gets here).
pub fn changed_ranges(delta: &[u8]) -> Option<Vec<std::ops::Range<usize>>> {
    let (base_size, _, start) = sizes(delta)?;
    let mut changed: Vec<std::ops::Range<usize>> = Vec::new();
    let mut out = 0usize;
    // Where the previous copy ended in the base (`None` after an insert).
    let mut base_at = Some(0usize);
    for op in ops(delta.get(start..)?) {
        match op.ok()? {
            Op::Copy { offset, size } => {
                // A junction, unless an insert just ended here (its range covers the spot).
                if base_at != Some(offset) && changed.last().is_none_or(|l| l.end != out) {
                    changed.push(out..out);
                }
                out = out.checked_add(size)?;
                base_at = offset.checked_add(size);
            }
            Op::Insert(literal) => {
                let len = literal.len();
                match changed.last_mut() {
                    Some(last) if last.end == out => last.end = out + len,
                    _ => changed.push(out..out + len),
                }
                out += len;
                base_at = None;
            }
        }
    }
    let ends_as_base = base_at.is_some_and(|at| at as u64 == base_size);
    if !ends_as_base && changed.last().is_none_or(|l| l.end != out) {
        changed.push(out..out);
    }
    Some(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(base: u64, result: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for mut value in [base, result] {
            loop {
                let byte = (value & 0x7f) as u8;
                value >>= 7;
                if value == 0 {
                    out.push(byte);
                    break;
                }
                out.push(byte | 0x80);
            }
        }
        out
    }

    fn run(base: &[u8], delta: &[u8]) -> Result<Vec<u8>, PackError> {
        let mut out = vec![9; 3];
        apply(base, delta, &mut out, 1 << 20, 42).map(|()| out)
    }

    #[test]
    fn copies_and_inserts() {
        let base = b"0123456789";
        let mut delta = header(10, 9);
        // Copy 4 bytes from offset 2, insert "xyz", copy 2 bytes from offset 8.
        delta.extend_from_slice(&[0x91, 2, 4, 3, b'x', b'y', b'z', 0x91, 8, 2]);
        assert_eq!(run(base, &delta).expect("applies"), b"2345xyz89");
    }

    #[test]
    fn copy_size_zero_means_64_kib() {
        let base = vec![7u8; 0x10000];
        let mut delta = header(0x10000, 0x10000);
        delta.push(0x80);
        assert_eq!(run(&base, &delta).expect("applies"), base);
    }

    #[test]
    fn every_malformation_is_refused() {
        let base = b"abc";
        let cases: Vec<Vec<u8>> = vec![
            vec![0x80],                                                     // truncated size header
            [header(4, 3), vec![0x90, 3]].concat(),                         // wrong base size
            [header(3, 5), vec![0x90, 5]].concat(),                         // copy beyond the base
            [header(3, 2), vec![0x90, 3]].concat(), // result longer than declared
            [header(3, 4), vec![0x90, 3]].concat(), // result shorter than declared
            [header(3, 3), vec![0x05, b'a']].concat(), // truncated insert
            [header(3, 3), vec![0x91]].concat(),    // truncated copy
            [header(3, 3), vec![0x00]].concat(),    // reserved opcode
            [header(3, 3), vec![0x9f, 0xff, 0xff, 0xff, 0xff, 1]].concat(), // offset overflow
        ];
        for (i, delta) in cases.iter().enumerate() {
            match run(base, delta) {
                Err(PackError::BadDelta { detail }) => assert!(detail.contains("42"), "{detail}"),
                other => panic!("case {i}: expected BadDelta, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_huge_declared_result_is_refused_before_allocating() {
        let delta = [header(3, 1 << 40), vec![0x90, 3]].concat();
        match run(b"abc", &delta) {
            Err(PackError::DeltaResultTooLarge { size, limit, .. }) => {
                assert_eq!((size, limit), (1 << 40, 1 << 20));
            }
            other => panic!("expected DeltaResultTooLarge, got {other:?}"),
        }
    }

    /// A delta with these sizes and instructions.
    fn delta(base_len: u64, result_len: u64, ops: &[u8]) -> Vec<u8> {
        let mut d = header(base_len, result_len);
        d.extend_from_slice(ops);
        d
    }

    /// Copy `len` (< 256) bytes from `offset` (< 256).
    fn copy(offset: u8, len: u8) -> [u8; 3] {
        [0x80 | 0x01 | 0x10, offset, len]
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn changed_ranges_are_inserts_and_junctions() {
        let base = b"0123456789abcdefghij";
        // Unchanged: one copy of the whole base.
        assert_eq!(changed_ranges(&delta(20, 20, &copy(0, 20))), Some(vec![]));
        // An insert in the middle: its range only (the copies around it continue).
        let mut ops = copy(0, 10).to_vec();
        ops.extend_from_slice(&[3, b'X', b'Y', b'Z']);
        ops.extend_from_slice(&copy(10, 10));
        let inserted = delta(20, 23, &ops);
        assert_eq!(changed_ranges(&inserted), Some(vec![10..13]));
        let mut out = Vec::new();
        apply(base, &inserted, &mut out, 100, 0).expect("applies");
        assert_eq!(&out[10..13], b"XYZ");
        // A deletion in the middle: two copies that do not continue each other.
        let mut ops = copy(0, 5).to_vec();
        ops.extend_from_slice(&copy(8, 12));
        assert_eq!(changed_ranges(&delta(20, 17, &ops)), Some(vec![5..5]));
        // Cut at both ends: the start and the end are junctions.
        assert_eq!(
            changed_ranges(&delta(20, 10, &copy(5, 10))),
            Some(vec![0..0, 10..10])
        );
        // Inserts in a row are one range; an insert at the end covers the end.
        let mut ops = copy(0, 20).to_vec();
        ops.extend_from_slice(&[1, b'a', 2, b'b', b'c']);
        assert_eq!(changed_ranges(&delta(20, 23, &ops)), Some(vec![20..23]));
        // A copy after an insert that does not continue the copy before it: covered by the
        // insert's range, nothing more.
        let mut ops = copy(0, 5).to_vec();
        ops.extend_from_slice(&[1, b'-']);
        ops.extend_from_slice(&copy(9, 11));
        assert_eq!(changed_ranges(&delta(20, 17, &ops)), Some(vec![5..6]));
        // Malformed: the reserved instruction, a truncated insert.
        assert_eq!(changed_ranges(&delta(20, 20, &[0])), None);
        assert_eq!(changed_ranges(&delta(20, 20, &[5, b'a'])), None);
    }

    /// The promise of [`changed_ranges`], on random deltas: cut the result at every changed
    /// range and place, and each piece outside the inserted ranges is one stretch of the base.
    #[test]
    fn what_changed_ranges_leaves_out_was_copied_in_one_piece() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        for _ in 0..2000 {
            let base: Vec<u8> = (0..rng.random_range(1..200))
                .map(|_| rng.random_range(b'a'..=b'e'))
                .collect();
            let mut ops = Vec::new();
            let mut result_len = 0usize;
            for _ in 0..rng.random_range(0..8) {
                if rng.random_bool(0.7) {
                    let offset = rng.random_range(0..base.len());
                    let len = rng.random_range(1..=base.len() - offset).min(255);
                    ops.extend_from_slice(&copy(offset as u8, len as u8));
                    result_len += len;
                } else {
                    let len = rng.random_range(1..10u8);
                    ops.push(len);
                    ops.extend((0..len).map(|_| rng.random_range(b'A'..=b'C')));
                    result_len += usize::from(len);
                }
            }
            let d = delta(base.len() as u64, result_len as u64, &ops);
            let mut out = Vec::new();
            apply(&base, &d, &mut out, 1 << 20, 0).expect("applies");
            let changed = changed_ranges(&d).expect("parses");
            let mut cuts: Vec<usize> = vec![0, out.len()];
            for r in &changed {
                cuts.push(r.start);
                cuts.push(r.end);
            }
            cuts.sort_unstable();
            cuts.dedup();
            for w in cuts.windows(2) {
                let (a, b) = (w[0], w[1]);
                if changed
                    .iter()
                    .any(|r| r.start <= a && b <= r.end && r.start < r.end)
                {
                    continue;
                }
                let piece = &out[a..b];
                assert!(
                    base.windows(piece.len()).any(|x| x == piece),
                    "{piece:?} of {out:?} is not a stretch of {base:?} ({changed:?})"
                );
            }
        }
    }
}
