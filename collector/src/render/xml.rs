//! Text meant for XML and HTML (the SVG diagram, the HTML report): names come from agents, so
//! markup characters become entities (no injected elements, attributes or scripts), and
//! characters XML 1.0 forbids or a reader should not get raw (controls, bidi overrides) are
//! shown escaped as `term` shows them, so the document always parses. The same function
//! serves element text and quoted attribute values.

use super::term;
use std::borrow::Cow;

/// `s` safe inside an element or a single- or double-quoted attribute.
pub fn escape(s: &str) -> Cow<'_, str> {
    let shown = term::clean(s);
    if !shown
        .chars()
        .any(|c| matches!(c, '&' | '<' | '>' | '"' | '\'' | '\u{fffe}' | '\u{ffff}'))
    {
        return shown;
    }
    let mut out = String::with_capacity(shown.len() + 16);
    for c in shown.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Not XML characters at all (no entity may name them either).
            '\u{fffe}' => out.push_str("\\u{fffe}"),
            '\u{ffff}' => out.push_str("\\u{ffff}"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_controls_are_escaped() {
        assert!(matches!(escape("pi1:ctr:eth0 → ±µs"), Cow::Borrowed(_)));
        assert_eq!(
            escape("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
        assert_eq!(escape("a\x1b[2J\n\u{0}b"), "a\\x1b[2J\\n\\x00b");
        assert_eq!(escape("\u{202e}x\u{fffe}"), "\\u{202e}x\\u{fffe}");
    }
}
