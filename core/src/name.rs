//! Object names: parsed once, trusted afterwards.

use std::fmt;
use thiserror::Error;

/// S3's limit on a key, in bytes. Any prefix the service adds counts against it.
pub const MAX_KEY_BYTES: usize = 1024;

/// A valid object name: the key a draft has in the draft bucket and will have in main.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectName(String);

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// The name is empty.
    #[error("object name is empty")]
    Empty,
    /// Longer than the key limit left for it.
    #[error("object name is {len} bytes; at most {max} are allowed")]
    TooLong {
        /// Bytes of the name.
        len: usize,
        /// Bytes allowed.
        max: usize,
    },
    /// The bytes are not UTF-8.
    #[error("object name is not valid UTF-8")]
    InvalidUtf8,
    /// A C0 or C1 control character or DEL (Unicode general category `Cc`).
    #[error("object name contains a control character at byte {at}")]
    ControlCharacter {
        /// Byte offset of the character.
        at: usize,
    },
    /// A character that breaks or reorders a line when the name is shown or logged: U+2028
    /// LINE SEPARATOR, U+2029 PARAGRAPH SEPARATOR, or a Unicode `Bidi_Control` character
    /// (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069).
    #[error(
        "object name contains U+{code:04X} at byte {at}: line separators and bidirectional \
         controls are not allowed"
    )]
    LineOrBidiControl {
        /// Byte offset of the character.
        at: usize,
        /// Its code point.
        code: u32,
    },
    /// A leading `/` would be an empty first segment.
    #[error("object name starts with '/'")]
    LeadingSlash,
    /// A `.` or `..` segment: HTTP clients remove them before sending.
    #[error("object name contains a '.' or '..' segment")]
    DotSegment,
    /// An empty segment (`//`) or a trailing `/`.
    #[error("object name contains an empty segment ('//', or a trailing '/')")]
    EmptySegment,
    /// A backslash: some clients turn it into `/`.
    #[error("object name contains a backslash")]
    Backslash,
    /// The name starts with DraftStore's reserved prefix `.draftstore/`
    /// ([`crate::events::RESERVED_PREFIX`]), where its event queue lives.
    #[error("object names '.draftstore' and those starting with '.draftstore/' are reserved")]
    Reserved,
}

impl ObjectName {
    /// Parses a name with the whole S3 key limit available.
    ///
    /// # Errors
    /// A [`NameError`] naming the first rule broken.
    pub fn parse(name: &str) -> Result<Self, NameError> {
        Self::parse_within(name, MAX_KEY_BYTES)
    }

    /// Parses a name that must fit in `max_bytes` (the key limit minus any prefix added later,
    /// e.g. a tenant's).
    ///
    /// # Errors
    /// A [`NameError`] naming the first rule broken.
    pub fn parse_within(name: &str, max_bytes: usize) -> Result<Self, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > max_bytes {
            return Err(NameError::TooLong {
                len: name.len(),
                max: max_bytes,
            });
        }
        check_characters(name)?;
        if name.contains('\\') {
            return Err(NameError::Backslash);
        }
        if name.starts_with('/') {
            return Err(NameError::LeadingSlash);
        }
        if crate::events::is_reserved(name) {
            return Err(NameError::Reserved);
        }
        for segment in name.split('/') {
            match segment {
                "." | ".." => return Err(NameError::DotSegment),
                // Also a trailing '/': a folder marker is not an upload.
                "" => return Err(NameError::EmptySegment),
                _ => {}
            }
        }
        Ok(Self(name.to_owned()))
    }

    /// Parses `name` and places it in `folder` (`folder/name`), the folder and its `/` counted
    /// against the key limit. Two valid names joined by `/` are a valid name, so nothing is
    /// checked twice.
    ///
    /// # Errors
    /// As [`ObjectName::parse_within`], with the room the folder leaves.
    pub fn parse_in(folder: &Self, name: &str) -> Result<Self, NameError> {
        let room = MAX_KEY_BYTES.saturating_sub(folder.0.len() + 1);
        let name = Self::parse_within(name, room)?;
        let mut key = String::with_capacity(folder.0.len() + 1 + name.0.len());
        key.push_str(&folder.0);
        key.push('/');
        key.push_str(&name.0);
        Ok(Self(key))
    }

    /// Parses a name from bytes (gRPC strings, URL paths): invalid UTF-8 is its own error.
    ///
    /// # Errors
    /// [`NameError::InvalidUtf8`], or as [`ObjectName::parse`].
    pub fn parse_bytes(name: &[u8]) -> Result<Self, NameError> {
        std::str::from_utf8(name)
            .map_err(|_| NameError::InvalidUtf8)
            .and_then(Self::parse)
    }

    /// The name as given (valid UTF-8, byte for byte).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Refuses characters that can forge or reorder a log line: controls (C0, DEL, C1: U+0085 is a
/// line break too), the Unicode line and paragraph separators, and bidirectional controls.
fn check_characters(name: &str) -> Result<(), NameError> {
    // Every refused character but the C0 controls and DEL is outside ASCII.
    if name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Ok(());
    }
    for (at, c) in name.char_indices() {
        if c.is_control() {
            return Err(NameError::ControlCharacter { at });
        }
        if is_line_or_bidi_control(c) {
            return Err(NameError::LineOrBidiControl {
                at,
                code: u32::from(c),
            });
        }
    }
    Ok(())
}

/// U+2028, U+2029 and Unicode's `Bidi_Control` set (PropList.txt).
const fn is_line_or_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{2028}' | '\u{2029}' | '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

impl fmt::Debug for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ObjectName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_rule_has_its_own_reason() {
        let cases: &[(&str, NameError)] = &[
            ("", NameError::Empty),
            ("a\u{0}b", NameError::ControlCharacter { at: 1 }),
            ("a\nb", NameError::ControlCharacter { at: 1 }),
            ("\u{1f}", NameError::ControlCharacter { at: 0 }),
            ("a\u{7f}", NameError::ControlCharacter { at: 1 }),
            ("/a", NameError::LeadingSlash),
            ("a/./b", NameError::DotSegment),
            ("a/../b", NameError::DotSegment),
            ("..", NameError::DotSegment),
            ("./a", NameError::DotSegment),
            ("a/..", NameError::DotSegment),
            ("a//b", NameError::EmptySegment),
            ("a/", NameError::EmptySegment),
            ("a\\b", NameError::Backslash),
            (".draftstore/events/x.json", NameError::Reserved),
            (".draftstore", NameError::Reserved),
            ("a\u{85}b", NameError::ControlCharacter { at: 1 }),
            ("é\u{9f}", NameError::ControlCharacter { at: 2 }),
            (
                "log\u{2028}forged",
                NameError::LineOrBidiControl {
                    at: 3,
                    code: 0x2028,
                },
            ),
            (
                "a\u{2029}",
                NameError::LineOrBidiControl {
                    at: 1,
                    code: 0x2029,
                },
            ),
            (
                "invoice\u{202e}gpj.exe",
                NameError::LineOrBidiControl {
                    at: 7,
                    code: 0x202e,
                },
            ),
            (
                "\u{2066}x",
                NameError::LineOrBidiControl {
                    at: 0,
                    code: 0x2066,
                },
            ),
            (
                "x\u{200f}",
                NameError::LineOrBidiControl {
                    at: 1,
                    code: 0x200f,
                },
            ),
        ];
        for (name, want) in cases {
            assert_eq!(ObjectName::parse(name).as_ref(), Err(want), "{name:?}");
        }
        assert_eq!(
            ObjectName::parse(&"x".repeat(1025)),
            Err(NameError::TooLong {
                len: 1025,
                max: 1024
            })
        );
        assert_eq!(
            ObjectName::parse_bytes(b"a\xffb"),
            Err(NameError::InvalidUtf8)
        );
    }

    #[test]
    fn the_limit_counts_bytes_and_any_prefix() {
        assert!(ObjectName::parse(&"x".repeat(1024)).is_ok());
        // 'é' is two bytes: 512 of them are 1024 bytes, 513 are too many.
        assert!(ObjectName::parse(&"é".repeat(512)).is_ok());
        assert!(ObjectName::parse(&"é".repeat(513)).is_err());
        assert!(ObjectName::parse_within("tenant-name", 10).is_err());
        assert!(ObjectName::parse_within("tenant", 10).is_ok());
    }

    #[test]
    fn unusual_but_valid_names_survive_byte_for_byte() {
        for name in [
            "file.jpg",
            "a b/c d.txt",
            "a+b=c&d%e?f#g",
            "ሴ/😀/é",
            "...",
            ".hidden/x..y/z.",
            "~user/%2F%00",
        ] {
            assert_eq!(ObjectName::parse(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn names_in_a_folder_count_the_folder_against_the_limit() {
        let folder = ObjectName::parse("acme").unwrap();
        assert_eq!(
            ObjectName::parse_in(&folder, "a/b.jpg").unwrap().as_str(),
            "acme/a/b.jpg"
        );
        let fits = "x".repeat(MAX_KEY_BYTES - 5);
        assert_eq!(
            ObjectName::parse_in(&folder, &fits).unwrap().as_str().len(),
            MAX_KEY_BYTES
        );
        assert_eq!(
            ObjectName::parse_in(&folder, &format!("{fits}x")),
            Err(NameError::TooLong {
                len: MAX_KEY_BYTES - 4,
                max: MAX_KEY_BYTES - 5
            })
        );
        assert_eq!(
            ObjectName::parse_in(&folder, "../up"),
            Err(NameError::DotSegment)
        );
    }

    proptest! {
        /// What `parse_in` makes without checking is what `parse` accepts.
        #[test]
        fn a_name_in_a_folder_is_the_name_parse_accepts(folder in "[a-z0-9-]{1,63}", name in "\\PC{0,40}|[ -~]{0,40}") {
            let folder = ObjectName::parse(&folder).unwrap();
            match ObjectName::parse_in(&folder, &name) {
                Ok(joined) => prop_assert_eq!(ObjectName::parse(joined.as_str()), Ok(joined.clone())),
                Err(_) => prop_assert!(ObjectName::parse_within(&name, MAX_KEY_BYTES - folder.as_str().len() - 1).is_err()),
            }
        }

        /// Any name holding a line separator or a bidi control is refused with the rule's
        /// error, whatever surrounds it.
        #[test]
        fn line_and_bidi_controls_are_refused_anywhere(
            before in "[a-z/é😀]{0,20}",
            bad in prop::sample::select(vec![
                '\u{2028}', '\u{2029}', '\u{61c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}',
                '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
            ]),
            after in "[a-z.é]{0,20}",
        ) {
            let name = format!("x{before}{bad}{after}");
            let at = 1 + before.len();
            let want = NameError::LineOrBidiControl { at, code: u32::from(bad) };
            prop_assert_eq!(ObjectName::parse(&name), Err(want.clone()));
            let message = want.to_string();
            prop_assert!(message.contains(&format!("U+{:04X}", u32::from(bad))), "{}", message);
        }

        /// Neighbours of the refused ranges stay valid names.
        #[test]
        fn characters_next_to_the_refused_ranges_are_kept(
            c in prop::sample::select(vec!['\u{a0}', '\u{2027}', '\u{202f}', '\u{2065}', '\u{206a}', '\u{200d}', '\u{61b}']),
        ) {
            let name = format!("a{c}b");
            prop_assert_eq!(ObjectName::parse(&name).map(|n| n.as_str().to_owned()), Ok(name));
        }

        #[test]
        fn parse_never_panics_and_keeps_what_it_accepts(name in "\\PC{0,40}|[ -~]{0,40}") {
            if let Ok(parsed) = ObjectName::parse(&name) {
                prop_assert_eq!(parsed.as_str(), name.as_str());
                prop_assert!(!parsed.as_str().split('/').any(|s| s.is_empty() || s == "." || s == ".."));
                prop_assert!(!parsed.as_str().chars().any(|c| c.is_control() || is_line_or_bidi_control(c)));
            }
        }
    }
}
