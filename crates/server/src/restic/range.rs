//! The `Range` header of restic reads: one `bytes=` range, or the whole object.

use std::ops::Range;

use axum::http::{HeaderMap, header};

/// Parses a single `bytes=` range against `size`: `Ok(None)` serves everything (no or an
/// unparsable header, several ranges), `Err` is unsatisfiable.
pub(super) fn range(headers: &HeaderMap, size: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(spec) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = if a.is_empty() {
        // Suffix: the last `b` bytes.
        let Ok(n) = b.parse::<u64>() else {
            return Ok(None);
        };
        if n == 0 {
            return Err(());
        }
        size.saturating_sub(n)..size
    } else {
        let Ok(start) = a.parse::<u64>() else {
            return Ok(None);
        };
        let end = if b.is_empty() {
            size
        } else {
            match b.parse::<u64>() {
                // An end past the object (up to u64::MAX) means its end.
                Ok(e) if e >= start => e.saturating_add(1).min(size),
                _ => return Ok(None),
            }
        };
        start..end
    };
    if parsed.start >= size {
        return Err(());
    }
    Ok(Some(parsed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn ranges() {
        let mut h = HeaderMap::new();
        assert_eq!(range(&h, 10), Ok(None));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=0-"));
        assert_eq!(range(&h, 10), Ok(Some(0..10)));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=2-4"));
        assert_eq!(range(&h, 10), Ok(Some(2..5)));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=5-100"));
        assert_eq!(range(&h, 10), Ok(Some(5..10)));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=-3"));
        assert_eq!(range(&h, 10), Ok(Some(7..10)));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=10-"));
        assert_eq!(range(&h, 10), Err(()));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=4-2"));
        assert_eq!(range(&h, 10), Ok(None));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=0-1,3-4"));
        assert_eq!(range(&h, 10), Ok(None));
        h.insert(
            header::RANGE,
            HeaderValue::from_static("bytes=0-18446744073709551615"),
        );
        assert_eq!(range(&h, 10), Ok(Some(0..10)));
        h.insert(
            header::RANGE,
            HeaderValue::from_static("bytes=-18446744073709551615"),
        );
        assert_eq!(range(&h, 10), Ok(Some(0..10)));
    }

    /// What RFC 9110 says a single `bytes=` range selects, computed in 128 bits: `None`
    /// serves the whole object, `Some(None)` is unsatisfiable (416).
    fn model(first: Option<u64>, last: Option<u64>, size: u64) -> Option<Option<(u128, u128)>> {
        let size = u128::from(size);
        let (a, b) = match (first, last) {
            (None, None) => return None,
            (None, Some(0)) => return Some(None),
            (None, Some(n)) => (size.saturating_sub(u128::from(n)), size),
            (Some(a), None) => (u128::from(a), size),
            (Some(a), Some(b)) if b < a => return None,
            (Some(a), Some(b)) => (u128::from(a), (u128::from(b) + 1).min(size)),
        };
        Some((a < size).then_some((a, b)))
    }

    proptest::proptest! {
        #[test]
        fn every_range_gives_the_right_bytes_or_416(
            size in proptest::prop_oneof![0..64u64, proptest::num::u64::ANY],
            first in proptest::option::of(proptest::prop_oneof![
                0..80u64,
                u64::MAX - 2..=u64::MAX,
                proptest::num::u64::ANY
            ]),
            last in proptest::option::of(proptest::prop_oneof![
                0..80u64,
                u64::MAX - 2..=u64::MAX,
                proptest::num::u64::ANY
            ]),
        ) {
            let text = format!(
                "bytes={}-{}",
                first.map(|a| a.to_string()).unwrap_or_default(),
                last.map(|b| b.to_string()).unwrap_or_default()
            );
            let mut h = HeaderMap::new();
            h.insert(header::RANGE, HeaderValue::from_str(&text).unwrap());
            let got = range(&h, size);
            let want = model(first, last, size);
            match (got, want) {
                (Ok(None), None) | (Err(()), Some(None)) => {}
                (Ok(Some(r)), Some(Some((a, b)))) => {
                    proptest::prop_assert!(r.start < r.end && r.end <= size, "{text}: {r:?}");
                    proptest::prop_assert_eq!((u128::from(r.start), u128::from(r.end)), (a, b));
                }
                (got, want) => proptest::prop_assert!(false, "{text} of {size}: {got:?}, want {want:?}"),
            }
        }
    }
}
