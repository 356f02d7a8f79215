//! Text meant for a terminal: names come from agents (board ids, link and namespace names),
//! so every control character in them is shown escaped, never sent raw: no fake lines (a
//! newline), no escape sequences (clearing the screen, setting the title), no bidi overrides
//! reordering what is shown. JSON output escapes on its own and does not use this.

use std::borrow::Cow;
use std::fmt::Write as _;

fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with control characters (C0, DEL, C1) and bidi controls escaped: `\n`, `\t`, `\r`,
/// `\x1b`, `\u{202e}`. A backslash is left as it is.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if unsafe_char(c) && (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped() {
        assert!(matches!(clean("pi1:veth0 In"), Cow::Borrowed(_)));
        assert_eq!(clean("x\n09:00:00.000000 pi1"), "x\\n09:00:00.000000 pi1");
        assert_eq!(
            clean("\x1b[2J\x1b]0;owned\x07"),
            "\\x1b[2J\\x1b]0;owned\\x07"
        );
        assert_eq!(clean("a\u{9b}b\u{202e}c\x7f"), "a\\u{9b}b\\u{202e}c\\x7f");
        assert_eq!(clean("é µs → ±"), "é µs → ±");
    }
}
