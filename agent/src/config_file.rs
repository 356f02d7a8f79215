//! `--config FILE`: the TOML subset that the agent's flags need, read without a TOML crate
//! (the agent ships to small boards; every KB counts). Each line is blank, a `# comment`, or
//! `key = value` with a bare key and a value that is a string (`"basic"` with the usual
//! escapes, or `'literal'`), a decimal integer, `true`/`false`, or a one-line array of
//! strings. Anything else TOML allows (tables, dotted or quoted keys, floats, dates,
//! multi-line strings or arrays, hex integers) is refused with its line number, never
//! guessed at. What a key means is the command line's business: this module only reads.

use std::fmt;

/// One `key = value` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// 1-based.
    pub line: usize,
    pub key: String,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<String>),
}

/// A line that cannot be read; its Display is `line N: what`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadError {
    pub line: usize,
    pub kind: ErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not TOML at all.
    Syntax(&'static str),
    /// TOML, but more than this reader takes.
    Unsupported(&'static str),
    /// TOML forbids a key twice.
    Duplicate(String),
    /// The file is not UTF-8 (TOML requires it).
    NotUtf8,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.kind)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Syntax(what) => f.write_str(what),
            ErrorKind::Unsupported(what) => {
                write!(f, "{what} not supported by hopcap-agent's config reader")
            }
            ErrorKind::Duplicate(key) => write!(f, "key `{key}` given twice"),
            ErrorKind::NotUtf8 => f.write_str("not UTF-8 text"),
        }
    }
}

/// Every `key = value` of `bytes`, in file order.
pub fn read(bytes: &[u8]) -> Result<Vec<Entry>, ReadError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ReadError {
        line: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
        kind: ErrorKind::NotUtf8,
    })?;
    let mut entries: Vec<Entry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |kind| ReadError { line, kind };
        let mut rest = raw.trim_start_matches([' ', '\t']);
        if rest.is_empty() || rest.starts_with('#') {
            continue;
        }
        if rest.starts_with('[') {
            return Err(err(ErrorKind::Unsupported("a [table] is")));
        }
        let key_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        let key = &rest[..key_len];
        rest = rest[key_len..].trim_start_matches([' ', '\t']);
        if key.is_empty() {
            return Err(err(if rest.starts_with(['"', '\'']) {
                ErrorKind::Unsupported("a quoted key is")
            } else {
                ErrorKind::Syntax("expected `key = value`")
            }));
        }
        if rest.starts_with('.') {
            return Err(err(ErrorKind::Unsupported("a dotted key is")));
        }
        let Some(after_eq) = rest.strip_prefix('=') else {
            return Err(err(ErrorKind::Syntax("expected `=` after the key")));
        };
        let mut cursor = Cursor(after_eq.trim_start_matches([' ', '\t']));
        let value = cursor.value().map_err(err)?;
        cursor.end_of_line().map_err(err)?;
        if entries.iter().any(|e| e.key == key) {
            return Err(err(ErrorKind::Duplicate(key.into())));
        }
        entries.push(Entry {
            line,
            key: key.into(),
            value,
        });
    }
    Ok(entries)
}

/// The unread rest of one line.
struct Cursor<'a>(&'a str);

impl Cursor<'_> {
    fn skip_blanks(&mut self) {
        self.0 = self.0.trim_start_matches([' ', '\t']);
    }

    fn value(&mut self) -> Result<Value, ErrorKind> {
        let s = self.0;
        if s.starts_with("\"\"\"") || s.starts_with("'''") {
            return Err(ErrorKind::Unsupported("a multi-line string is"));
        }
        if s.starts_with(['"', '\'']) {
            return self.string().map(Value::Str);
        }
        if let Some(rest) = s.strip_prefix('[') {
            self.0 = rest;
            return self.list().map(Value::List);
        }
        if s.starts_with('{') {
            return Err(ErrorKind::Unsupported("an inline table is"));
        }
        let word_len = s
            .find(|c: char| c == ' ' || c == '\t' || c == '#' || c == ',' || c == ']')
            .unwrap_or(s.len());
        let word = &s[..word_len];
        self.0 = &s[word_len..];
        match word {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            "" => Err(ErrorKind::Syntax("expected a value after `=`")),
            _ => integer(word).map(Value::Int),
        }
    }

    /// A `"basic"` or `'literal'` string on this line.
    fn string(&mut self) -> Result<String, ErrorKind> {
        let mut chars = self.0.char_indices();
        let quote = chars.next().map(|(_, c)| c);
        let mut out = String::new();
        while let Some((at, c)) = chars.next() {
            match c {
                _ if Some(c) == quote => {
                    self.0 = &self.0[at + 1..];
                    return Ok(out);
                }
                '\\' if quote == Some('"') => {
                    let escaped = match chars.next().map(|(_, e)| e) {
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some('b') => '\u{8}',
                        Some('f') => '\u{c}',
                        Some('e') => '\u{1b}',
                        Some(u @ ('u' | 'U')) => {
                            let digits = if u == 'u' { 4 } else { 8 };
                            let hex: String = chars.by_ref().take(digits).map(|(_, h)| h).collect();
                            let code = (hex.len() == digits)
                                .then(|| u32::from_str_radix(&hex, 16).ok())
                                .flatten();
                            code.and_then(char::from_u32)
                                .ok_or(ErrorKind::Syntax("bad \\u escape in a string"))?
                        }
                        _ => return Err(ErrorKind::Syntax("unknown escape in a string")),
                    };
                    out.push(escaped);
                }
                // TOML allows tab but no other control character in a string.
                c if c.is_control() && c != '\t' => {
                    return Err(ErrorKind::Syntax("control character in a string"))
                }
                c => out.push(c),
            }
        }
        Err(ErrorKind::Syntax("string not closed on its line"))
    }

    /// The rest of `[ "a", "b", ]`, after the `[`.
    fn list(&mut self) -> Result<Vec<String>, ErrorKind> {
        let mut items = Vec::new();
        loop {
            self.skip_blanks();
            if let Some(rest) = self.0.strip_prefix(']') {
                self.0 = rest;
                return Ok(items);
            }
            if self.0.is_empty() || self.0.starts_with('#') {
                return Err(ErrorKind::Unsupported("an array over several lines is"));
            }
            match self.value()? {
                Value::Str(s) => items.push(s),
                _ => return Err(ErrorKind::Unsupported("an array of other than strings is")),
            }
            self.skip_blanks();
            if let Some(rest) = self.0.strip_prefix(',') {
                self.0 = rest;
            } else if !self.0.starts_with(']') {
                return Err(ErrorKind::Syntax("expected `,` or `]` in an array"));
            }
        }
    }

    /// Only blanks and a comment may follow a value.
    fn end_of_line(&mut self) -> Result<(), ErrorKind> {
        self.skip_blanks();
        if self.0.is_empty() || self.0.starts_with('#') {
            Ok(())
        } else {
            Err(ErrorKind::Syntax("unexpected text after the value"))
        }
    }
}

/// A TOML decimal integer: optional sign, no leading zero, `_` only between digits.
fn integer(word: &str) -> Result<i64, ErrorKind> {
    let digits = word.strip_prefix(['+', '-']).unwrap_or(word);
    if digits.starts_with("0x") || digits.starts_with("0o") || digits.starts_with("0b") {
        return Err(ErrorKind::Unsupported("a hex, octal or binary integer is"));
    }
    let numeric = digits.starts_with(|c: char| c.is_ascii_digit());
    if matches!(digits, "inf" | "nan") || (numeric && digits.contains(['.', 'e', 'E'])) {
        return Err(ErrorKind::Unsupported("a float is"));
    }
    if numeric && (digits.contains(':') || digits.matches('-').count() >= 2) {
        return Err(ErrorKind::Unsupported("a date or time is"));
    }
    let well_formed = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && !(digits.len() > 1 && digits.starts_with('0'));
    if !well_formed {
        return Err(ErrorKind::Syntax(
            "expected a value: \"string\", integer, true, false or [\"list\"]",
        ));
    }
    word.replace('_', "")
        .parse()
        .map_err(|_| ErrorKind::Syntax("integer out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(line: usize, key: &str, value: Value) -> Entry {
        Entry {
            line,
            key: key.into(),
            value,
        }
    }

    fn err(bytes: &[u8]) -> String {
        read(bytes).unwrap_err().to_string()
    }

    #[test]
    fn reads_every_value_form() {
        let file = b"# hopcap-agent\n\
            \n\
            collector = \"10.0.0.1:7878\"   # the collector\n\
            \tkey='/etc/hopcap/board.key'\n\
            sample = 10\n\
            count = +1_000\n\
            offset = -37\n\
            insecure = true\n\
            recv = false\n\
            interface = [\"eth*\", 'wlan0',]\n\
            exclude = []\n\
            filter = \"port 53 and \\\"x\\\\y\\u00e9\\n\\t\"\n";
        assert_eq!(
            read(file).unwrap(),
            [
                entry(3, "collector", Value::Str("10.0.0.1:7878".into())),
                entry(4, "key", Value::Str("/etc/hopcap/board.key".into())),
                entry(5, "sample", Value::Int(10)),
                entry(6, "count", Value::Int(1000)),
                entry(7, "offset", Value::Int(-37)),
                entry(8, "insecure", Value::Bool(true)),
                entry(9, "recv", Value::Bool(false)),
                entry(
                    10,
                    "interface",
                    Value::List(vec!["eth*".into(), "wlan0".into()])
                ),
                entry(11, "exclude", Value::List(vec![])),
                entry(12, "filter", Value::Str("port 53 and \"x\\yé\n\t".into())),
            ]
        );
        assert_eq!(read(b"").unwrap(), []);
        assert_eq!(
            read(b"a = 0\r\n# c\r\n").unwrap(),
            [entry(1, "a", Value::Int(0))]
        );
        // A literal string keeps backslashes.
        assert_eq!(
            read(br"f = 'a\nb'").unwrap(),
            [entry(1, "f", Value::Str(r"a\nb".into()))]
        );
    }

    #[test]
    fn refuses_what_it_does_not_read_with_the_line() {
        let unsupported =
            |what: &str| format!("{what} not supported by hopcap-agent's config reader");
        for (file, line, msg) in [
            (&b"a = 1\n[agent]\n"[..], 2, unsupported("a [table] is")),
            (b"[[x]]", 1, unsupported("a [table] is")),
            (b"\"a\" = 1", 1, unsupported("a quoted key is")),
            (b"a.b = 1", 1, unsupported("a dotted key is")),
            (b"a = 1.5", 1, unsupported("a float is")),
            (b"a = 1e3", 1, unsupported("a float is")),
            (b"a = inf", 1, unsupported("a float is")),
            (
                b"a = 0x1f",
                1,
                unsupported("a hex, octal or binary integer is"),
            ),
            (b"a = 2026-12-01", 1, unsupported("a date or time is")),
            (b"a = 07:32:00", 1, unsupported("a date or time is")),
            (
                b"a = \"\"\"x\"\"\"",
                1,
                unsupported("a multi-line string is"),
            ),
            (b"a = '''x'''", 1, unsupported("a multi-line string is")),
            (b"a = { b = 1 }", 1, unsupported("an inline table is")),
            (
                b"a = [\n\"x\"]",
                1,
                unsupported("an array over several lines is"),
            ),
            (
                b"a = [\"x\", # c",
                1,
                unsupported("an array over several lines is"),
            ),
            (
                b"a = [1, 2]",
                1,
                unsupported("an array of other than strings is"),
            ),
            (
                b"a = [true]",
                1,
                unsupported("an array of other than strings is"),
            ),
        ] {
            let want = format!("line {line}: {msg}");
            assert_eq!(err(file), want, "{}", String::from_utf8_lossy(file));
        }
    }

    #[test]
    fn malformed_lines_are_errors_with_the_line() {
        for (file, line, msg) in [
            (
                &b"# ok\nnothing here\n"[..],
                2,
                "expected `=` after the key",
            ),
            (b"= 1", 1, "expected `key = value`"),
            (b"a =", 1, "expected a value after `=`"),
            (b"a = # no value", 1, "expected a value after `=`"),
            (
                b"a = yes",
                1,
                "expected a value: \"string\", integer, true, false or [\"list\"]",
            ),
            (
                b"a = 007",
                1,
                "expected a value: \"string\", integer, true, false or [\"list\"]",
            ),
            (
                b"a = 1__0",
                1,
                "expected a value: \"string\", integer, true, false or [\"list\"]",
            ),
            (
                b"a = _1",
                1,
                "expected a value: \"string\", integer, true, false or [\"list\"]",
            ),
            (b"a = 99999999999999999999", 1, "integer out of range"),
            (b"a = \"open", 1, "string not closed on its line"),
            (b"a = 'open", 1, "string not closed on its line"),
            (b"a = \"x\\q\"", 1, "unknown escape in a string"),
            (b"a = \"\\u12\"", 1, "bad \\u escape in a string"),
            (b"a = \"\\ud800\"", 1, "bad \\u escape in a string"),
            (b"a = \"x\x01\"", 1, "control character in a string"),
            (b"a = \"x\" \"y\"", 1, "unexpected text after the value"),
            (b"a = 1 2", 1, "unexpected text after the value"),
            (b"a = [\"x\" \"y\"]", 1, "expected `,` or `]` in an array"),
            (b"a = 1\nb = 2\na = 3", 3, "key `a` given twice"),
            (b"a = 1\n\xff = 2", 2, "not UTF-8 text"),
        ] {
            let want = format!("line {line}: {msg}");
            assert_eq!(err(file), want, "{}", String::from_utf8_lossy(file));
        }
    }
}
