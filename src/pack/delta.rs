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
    let mut instructions = delta.get(start..).unwrap_or_default().iter();
    while let Some(&op) = instructions.next() {
        if op & 0x80 != 0 {
            let mut copy_offset = 0usize;
            let mut copy_size = 0usize;
            for (bit, shift) in [(0x01, 0), (0x02, 8), (0x04, 16), (0x08, 24)] {
                if op & bit != 0 {
                    let byte = instructions
                        .next()
                        .ok_or_else(|| bad("truncated copy instruction"))?;
                    copy_offset |= usize::from(*byte) << shift;
                }
            }
            for (bit, shift) in [(0x10, 0), (0x20, 8), (0x40, 16)] {
                if op & bit != 0 {
                    let byte = instructions
                        .next()
                        .ok_or_else(|| bad("truncated copy instruction"))?;
                    copy_size |= usize::from(*byte) << shift;
                }
            }
            if copy_size == 0 {
                copy_size = 0x10000;
            }
            let range = copy_offset
                .checked_add(copy_size)
                .and_then(|end| base.get(copy_offset..end))
                .ok_or_else(|| bad("copy out of the base's range"))?;
            if out.len() + range.len() > result_len {
                return Err(bad("result longer than declared"));
            }
            out.extend_from_slice(range);
        } else if op != 0 {
            let len = usize::from(op);
            let rest = instructions.as_slice();
            let literal = rest
                .get(..len)
                .ok_or_else(|| bad("truncated insert instruction"))?;
            if out.len() + len > result_len {
                return Err(bad("result longer than declared"));
            }
            out.extend_from_slice(literal);
            instructions = rest.get(len..).unwrap_or_default().iter();
        } else {
            return Err(bad("reserved instruction 0"));
        }
    }
    if out.len() != result_len {
        return Err(bad("result shorter than declared"));
    }
    Ok(())
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
}
