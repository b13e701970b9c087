//! Text that a remote party controls, bounded before it is logged or
//! stored: [`bounded_text`].

use std::borrow::Cow;

/// The bound used for text a relay or a remote server controls (`CLOSED`,
/// `NOTICE` and `OK` reasons, error texts): 256 bytes.
pub const REMOTE_TEXT_MAX_BYTES: usize = 256;

/// `text` when it is at most `max` bytes long; otherwise its longest prefix
/// of at most `max` bytes that ends on a character boundary, followed by
/// `…` and the original length, as in `abc… (10485760 bytes)`.
///
/// The marker adds at most 32 bytes, so the result is never longer than
/// `max + 32` bytes, whatever the input. Text a relay or a remote server
/// controls goes through this before it is logged or stored: a relay may
/// answer with megabytes of reason, and each new text stored in a
/// content-addressed document is a new row.
///
/// ```
/// use bigbrotr_utils::bounded_text;
///
/// assert_eq!(bounded_text("short", 8), "short");
/// assert_eq!(bounded_text("a longer text", 8), "a longer… (13 bytes)");
/// // Never cuts a character in two: `é` is 2 bytes.
/// assert_eq!(bounded_text("ééé", 3), "é… (6 bytes)");
/// ```
#[must_use]
pub fn bounded_text(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… ({} bytes)", &text[..end], text.len()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn text_at_or_under_the_bound_is_borrowed_unchanged() {
        assert!(matches!(bounded_text("", 0), Cow::Borrowed("")));
        assert!(matches!(bounded_text("", 10), Cow::Borrowed("")));
        assert!(matches!(bounded_text("abcd", 4), Cow::Borrowed("abcd")));
        assert!(matches!(bounded_text("ü", 2), Cow::Borrowed("ü")));
    }

    #[test]
    fn one_byte_over_the_bound_is_cut_with_the_marker() {
        assert_eq!(bounded_text("abcde", 4), "abcd… (5 bytes)");
        assert_eq!(bounded_text("abc", 0), "… (3 bytes)");
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        // "€" is 3 bytes, "🦀" is 4.
        assert_eq!(bounded_text("€€", 4), "€… (6 bytes)");
        assert_eq!(bounded_text("€€", 5), "€… (6 bytes)");
        assert_eq!(bounded_text("a🦀b", 4), "a… (6 bytes)");
        assert_eq!(bounded_text("a🦀b", 5), "a🦀… (6 bytes)");
        assert_eq!(bounded_text("🦀", 3), "… (4 bytes)");
    }

    #[test]
    fn ten_megabytes_become_a_few_hundred_bytes() {
        let huge = "x".repeat(10 * 1024 * 1024);
        let bounded = bounded_text(&huge, REMOTE_TEXT_MAX_BYTES);
        assert_eq!(
            bounded.len(),
            REMOTE_TEXT_MAX_BYTES + "… (10485760 bytes)".len()
        );
        assert!(bounded.ends_with("… (10485760 bytes)"));
    }

    proptest! {
        #[test]
        fn the_result_is_a_bounded_prefix_plus_marker(text in ".{0,64}", max in 0_usize..80) {
            let bounded = bounded_text(&text, max);
            prop_assert!(bounded.len() <= max + 32);
            if text.len() <= max {
                prop_assert_eq!(bounded.as_ref(), text.as_str());
            } else {
                let marker = format!("… ({} bytes)", text.len());
                prop_assert!(bounded.ends_with(&marker));
                let kept = &bounded[..bounded.len() - marker.len()];
                prop_assert!(kept.len() <= max);
                prop_assert!(text.starts_with(kept));
                // The longest such prefix: the next character would not fit.
                let next = text[kept.len()..].chars().next().map_or(0, char::len_utf8);
                prop_assert!(kept.len() + next > max);
            }
        }
    }
}
