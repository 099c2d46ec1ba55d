//! Text from a request made safe for one log line: cut to a byte budget (the full length noted)
//! and with control, line-separator and bidi characters escaped, so a client can neither flood
//! the log with one huge method or path nor forge a line break or reorder what an operator reads.

use std::fmt;

/// Bytes of a method, path or object name written to the log; the rest is counted, not written.
pub const LOG_BUDGET: usize = 256;

/// `text` as it goes into a log line: at most `budget` bytes of it (cut on a character
/// boundary), each unsafe character as `\u{XXXX}`, and ` [N bytes]` when it was cut.
#[derive(Clone, Copy)]
pub struct Escaped<'a> {
    text: &'a str,
    budget: usize,
    quoted: bool,
}

impl<'a> Escaped<'a> {
    /// `text` with the default budget, [`LOG_BUDGET`] bytes.
    #[must_use]
    pub const fn new(text: &'a str) -> Self {
        Self::with_budget(text, LOG_BUDGET)
    }

    /// `text` cut at `budget` bytes.
    #[must_use]
    pub const fn with_budget(text: &'a str, budget: usize) -> Self {
        Self {
            text,
            budget,
            quoted: false,
        }
    }

    /// `text` cut at `budget` bytes, between double quotes, its own `"` and `\` escaped too: for
    /// free text in the middle of a line (an error message quoting an object name), so that
    /// what a client put in it (`x request_id=… status=200`) cannot pass for the line's fields.
    #[must_use]
    pub const fn quoted(text: &'a str, budget: usize) -> Self {
        Self {
            text,
            budget,
            quoted: true,
        }
    }
}

/// Characters that must not reach a log line raw: C0 and C1 controls (newlines, escapes),
/// DEL, the Unicode line and paragraph separators, and the bidi controls (which reorder the
/// text a terminal shows: U+061C, U+200E/F, U+202A..U+202E, U+2066..U+2069).
#[must_use]
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = self.text.floor_char_boundary(self.budget);
        let shown = self.text.get(..end).unwrap_or_default();
        if self.quoted {
            f.write_str("\"")?;
        }
        let mut plain = 0;
        for (at, c) in shown.char_indices() {
            if is_unsafe(c) || (self.quoted && matches!(c, '"' | '\\')) {
                f.write_str(shown.get(plain..at).unwrap_or_default())?;
                write!(f, "\\u{{{:04X}}}", u32::from(c))?;
                plain = at + c.len_utf8();
            }
        }
        f.write_str(shown.get(plain..).unwrap_or_default())?;
        if end < self.text.len() {
            write!(f, "… [{} bytes]", self.text.len())?;
        }
        if self.quoted {
            f.write_str("\"")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_controls_and_bidi_are_escaped() {
        let shown = Escaped::new("/a\u{2028}b\u{202E}c\nd\u{1b}[1m").to_string();
        assert_eq!(shown, "/a\\u{2028}b\\u{202E}c\\u{000A}d\\u{001B}[1m");
        assert_eq!(
            Escaped::new("/api/v1/upload-url").to_string(),
            "/api/v1/upload-url"
        );
    }

    #[test]
    fn quoted_text_cannot_close_its_quotes() {
        let forged = r#"x" request_id=deadbeef status=200 \"#;
        let shown = Escaped::quoted(forged, 512).to_string();
        assert_eq!(
            shown,
            r#""x\u{0022} request_id=deadbeef status=200 \u{005C}""#
        );
        assert_eq!(shown.matches('"').count(), 2, "{shown}");
    }

    #[test]
    fn long_text_is_cut_with_its_length() {
        let long = "x".repeat(200_000);
        let shown = Escaped::new(&long).to_string();
        assert!(shown.starts_with(&"x".repeat(LOG_BUDGET)), "{shown}");
        assert!(shown.ends_with("… [200000 bytes]"), "{shown}");
        assert!(shown.len() < LOG_BUDGET + 32);
        // Never inside a character.
        let wide = "é".repeat(200);
        let shown = Escaped::new(&wide).to_string();
        assert!(shown.starts_with(&"é".repeat(128)), "{shown}");
        assert!(shown.ends_with("… [400 bytes]"), "{shown}");
    }
}
