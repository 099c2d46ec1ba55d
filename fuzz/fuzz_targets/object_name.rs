//! Object-name parsing: what is accepted survives byte for byte and breaks no rule.
#![no_main]
use draftstore_core::ObjectName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&[u8], u16)| {
    let (bytes, max) = input;
    if let Ok(name) = ObjectName::parse_bytes(bytes) {
        assert_eq!(name.as_str().as_bytes(), bytes);
        assert!(!name.as_str().split('/').any(|s| s.is_empty() || s == "." || s == ".."));
        // No character that breaks or reorders a log line: controls, U+2028/U+2029, bidi controls.
        assert!(!name.as_str().chars().any(|c| c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{61c}' | '\u{200e}' | '\u{200f}'
                | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')));
    }
    let _ = std::str::from_utf8(bytes).map(|s| ObjectName::parse_within(s, usize::from(max)));
});
