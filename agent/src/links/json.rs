//! A tiny, bounded JSON look-up: the value of one key of an object, and a string value decoded.
//! Enough to read a container runtime's state files (Docker's config.v2.json, an OCI bundle's
//! config.json, daemon.json) without a JSON crate in the agent.
//!
//! No recursion and no allocation but the decoded string: nesting is skipped by counting
//! brackets outside strings. Input that is not JSON, truncated or too deep gives `None`, never a
//! panic. Only the object's own keys match: the same key inside a nested object or a string
//! (`"Labels":{"Name":"x"}`, `"Env":["\"Name\":..."]`) does not.

/// Deepest nesting skipped inside one value; deeper input is refused (`None`).
const MAX_DEPTH: usize = 512;
/// Longest decoded string returned.
const MAX_STRING: usize = 4096;

/// The raw bytes of the value of `key` in the object `json` (leading whitespace allowed), e.g.
/// `"\"/web\""` or `{...}`. The first occurrence of the key wins.
pub fn member<'a>(json: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let mut at = skip_ws(json, 0);
    if json.get(at) != Some(&b'{') {
        return None;
    }
    at += 1;
    loop {
        at = skip_ws(json, at);
        match json.get(at)? {
            b'}' => return None,
            b'"' => {}
            _ => return None,
        }
        let key_end = string_end(json, at)?;
        let name = json.get(at + 1..key_end - 1)?;
        at = skip_ws(json, key_end);
        if json.get(at) != Some(&b':') {
            return None;
        }
        at = skip_ws(json, at + 1);
        let value_end = value_end(json, at)?;
        if name == key.as_bytes() {
            return json.get(at..value_end);
        }
        at = skip_ws(json, value_end);
        match json.get(at)? {
            b',' => at += 1,
            _ => return None,
        }
    }
}

/// A JSON string value (`"..."`, as [`member`] returns it) decoded. Only printable ASCII is
/// kept (escaped or not); anything else gives `None`: the names read here are plain ASCII.
pub fn string(value: &[u8]) -> Option<String> {
    let value = value.get(..string_end(value, 0)?)?;
    let inner = value.get(1..value.len() - 1)?;
    let mut out = String::new();
    let mut bytes = inner.iter().copied();
    while let Some(b) = bytes.next() {
        let c = match b {
            b'\\' => match bytes.next()? {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'u' => {
                    let mut code = 0u32;
                    for _ in 0..4 {
                        code = code * 16 + char::from(bytes.next()?).to_digit(16)?;
                    }
                    char::from_u32(code).filter(|c| c.is_ascii() && !c.is_ascii_control())?
                }
                // \b \f \n \r \t: control characters, never in a name.
                _ => return None,
            },
            // Control characters, and anything not ASCII: never in a name.
            0..=0x1f | 0x7f.. => return None,
            _ => char::from(b),
        };
        out.push(c);
        if out.len() > MAX_STRING {
            return None;
        }
    }
    Some(out)
}

fn skip_ws(json: &[u8], mut at: usize) -> usize {
    while json
        .get(at)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        at += 1;
    }
    at
}

/// The index just past the string starting at `at` (which must be `"`).
fn string_end(json: &[u8], at: usize) -> Option<usize> {
    if json.get(at) != Some(&b'"') {
        return None;
    }
    let mut i = at + 1;
    loop {
        match json.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The index just past the value starting at `at`.
fn value_end(json: &[u8], at: usize) -> Option<usize> {
    match json.get(at)? {
        b'"' => string_end(json, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match json.get(i)? {
                    b'"' => {
                        i = string_end(json, i)?;
                        continue;
                    }
                    b'{' | b'[' => {
                        depth += 1;
                        if depth > MAX_DEPTH {
                            return None;
                        }
                    }
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        // A number, true, false or null: up to the next delimiter.
        _ => {
            let mut i = at;
            while json
                .get(i)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                i += 1;
            }
            (i > at && i < json.len()).then_some(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(json: &[u8]) -> Option<String> {
        member(json, "Name").and_then(string)
    }

    #[test]
    fn finds_a_top_level_key_after_nested_ones() {
        let json = br#"{"State":{"Running":true,"Pid":13450},"Config":{"Labels":{"Name":"evil"},
            "Env":["Name=evil","\"Name\":\"evil\""]},"Args":[1,[2,{"Name":"x"}]],"n":-1.5e3,
            "t":true,"z":null,"Name":"/web","Driver":"overlay2"}"#;
        assert_eq!(name(json).as_deref(), Some("/web"));
        assert_eq!(member(json, "n"), Some(&b"-1.5e3"[..]));
        assert_eq!(member(json, "z"), Some(&b"null"[..]));
        assert_eq!(member(json, "Missing"), None);
    }

    #[test]
    fn escaped_quotes_and_brackets_in_strings_do_not_confuse_it() {
        let json = br#"{"a":"x\"}, \"Name\":\"evil\"","b":"{[","Name":"/w\"e\\b\u0041\/"}"#;
        assert_eq!(name(json).as_deref(), Some("/w\"e\\bA/"));
        let key_escaped = br#"{"Na\"me":"no","Name":"yes"}"#;
        assert_eq!(name(key_escaped).as_deref(), Some("yes"));
    }

    #[test]
    fn truncated_missing_or_hostile_input_gives_none() {
        assert_eq!(name(b""), None);
        assert_eq!(name(b"[]"), None);
        assert_eq!(name(b"\"Name\""), None);
        assert_eq!(name(br#"{"Name""#), None);
        assert_eq!(name(br#"{"Name":"/we"#), None);
        assert_eq!(name(br#"{"Name":"/web\"#), None);
        assert_eq!(name(br#"{"a":{"b":[1,2}"#), None);
        assert_eq!(name(br#"{"a" "Name":"x"}"#), None);
        assert_eq!(name(br#"{"a":1 "Name":"x"}"#), None);
        assert_eq!(name(br#"{"Name":5}"#), None);
        assert_eq!(name(br#"{"Name":"a\nb"}"#), None);
        assert_eq!(name(br#"{"Name":"a\u00e9"}"#), None);
        assert_eq!(name(br#"{"Name":"a\u12"}"#), None);
        assert_eq!(name(b"{\"Name\":\"a\x01b\"}"), None);
        assert_eq!(name(b"{\"Name\":\"a\xffb\"}"), None);
        // A number that runs to the end of the input is not known to be whole.
        assert_eq!(member(b"{\"n\":12", "n"), None);
    }

    #[test]
    fn deep_nesting_and_huge_input_are_bounded() {
        let mut deep = b"{\"a\":".to_vec();
        deep.extend(std::iter::repeat_n(b'[', 100_000));
        deep.extend(std::iter::repeat_n(b']', 100_000));
        deep.extend(br#","Name":"/web"}"#);
        assert_eq!(name(&deep), None);
        let mut long = br#"{"Env":[""#.to_vec();
        long.extend(std::iter::repeat_n(b'x', 4 << 20));
        long.extend(br#""],"Name":"/web"}"#);
        assert_eq!(name(&long).as_deref(), Some("/web"));
        let mut huge_name = br#"{"Name":""#.to_vec();
        huge_name.extend(std::iter::repeat_n(b'x', MAX_STRING + 1));
        huge_name.extend(br#""}"#);
        assert_eq!(name(&huge_name), None);
        // Lone backslashes, quotes and brackets: every prefix of a document is safe, and
        // gives the value once it holds it whole (a capped read keeps what came first).
        let doc = br#"{"a":["\\",{"b":"\""}],"Name":"/web"}"#;
        let whole = doc.len() - 1;
        for n in 0..doc.len() {
            let want = (n >= whole).then_some("/web");
            assert_eq!(name(&doc[..n]).as_deref(), want, "prefix {n}");
        }
        assert_eq!(name(doc).as_deref(), Some("/web"));
    }

    #[test]
    fn non_ascii_strings_are_refused() {
        assert_eq!(string("\"caf\u{e9}\"".as_bytes()), None);
        assert_eq!(string(br#""plain""#).as_deref(), Some("plain"));
    }
}
