//! `--config FILE`: the TOML subset that the agent's flags need, read without a TOML crate
//! (the agent ships to small boards; every KB counts). Each line is blank, a `# comment`, or
//! `key = value` with a bare key and a value that is a string (`"basic"` with the escapes
//! `\" \\ \n \t \r`, or `'literal'`), a decimal integer, `true`/`false`, or a one-line array
//! of strings. Anything else TOML allows (tables, dotted or quoted keys, floats, dates,
//! multi-line strings or arrays, other escapes, hex integers) is refused with its line
//! number, never guessed at. What a key means is the command line's business: this module
//! only reads.

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

/// Every `key = value` of `bytes`, in file order. Read byte by byte: every character the
/// syntax looks at is ASCII, so UTF-8 in strings passes through untouched.
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
        let entry = Cursor(raw)
            .entry()
            .map_err(|kind| ReadError { line, kind })?;
        let Some((key, value)) = entry else {
            continue;
        };
        if entries.iter().any(|e| e.key == key) {
            return Err(ReadError {
                line,
                kind: ErrorKind::Duplicate(key.into()),
            });
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

impl<'a> Cursor<'a> {
    /// The next byte; 0 at the end of the line.
    fn peek(&self) -> u8 {
        self.0.as_bytes().first().copied().unwrap_or(0)
    }

    /// Moves past `n` bytes that end on a character boundary.
    fn bump(&mut self, n: usize) {
        self.0 = &self.0[n..];
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), b' ' | b'\t') {
            self.bump(1);
        }
    }

    /// The bytes up to the first ASCII one for which `stop` is true.
    fn word(&mut self, stop: fn(u8) -> bool) -> &'a str {
        let len = self.0.bytes().position(stop).unwrap_or(self.0.len());
        let word = &self.0[..len];
        self.bump(len);
        word
    }

    /// A whole line: `None` for a blank or comment line.
    fn entry(&mut self) -> Result<Option<(&'a str, Value)>, ErrorKind> {
        self.skip_blanks();
        match self.peek() {
            0 | b'#' => return Ok(None),
            b'[' => return Err(ErrorKind::Unsupported("a [table] is")),
            b'"' | b'\'' => return Err(ErrorKind::Unsupported("a quoted key is")),
            _ => {}
        }
        let key = self.word(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        self.skip_blanks();
        match self.peek() {
            _ if key.is_empty() => return Err(ErrorKind::Syntax("expected `key = value`")),
            b'.' => return Err(ErrorKind::Unsupported("a dotted key is")),
            b'=' => self.bump(1),
            _ => return Err(ErrorKind::Syntax("expected `=` after the key")),
        }
        self.skip_blanks();
        let value = self.value()?;
        self.skip_blanks();
        match self.peek() {
            0 | b'#' => Ok(Some((key, value))),
            _ => Err(ErrorKind::Syntax("unexpected text after the value")),
        }
    }

    fn value(&mut self) -> Result<Value, ErrorKind> {
        if self.0.starts_with("\"\"\"") || self.0.starts_with("'''") {
            return Err(ErrorKind::Unsupported("a multi-line string is"));
        }
        match self.peek() {
            b'"' | b'\'' => return self.string().map(Value::Str),
            b'[' => {
                self.bump(1);
                return self.list().map(Value::List);
            }
            b'{' => return Err(ErrorKind::Unsupported("an inline table is")),
            _ => {}
        }
        match self.word(|b| matches!(b, b' ' | b'\t' | b'#' | b',' | b']')) {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            "" => Err(ErrorKind::Syntax("expected a value after `=`")),
            word => integer(word).map(Value::Int),
        }
    }

    /// A `"basic"` or `'literal'` string on this line.
    fn string(&mut self) -> Result<String, ErrorKind> {
        let quote = self.peek();
        self.bump(1);
        let mut out = String::new();
        loop {
            let special = |b: u8| {
                b == quote || (b == b'\\' && quote == b'"') || (b < 0x20 && b != b'\t') || b == 0x7f
            };
            let Some(at) = self.0.bytes().position(special) else {
                return Err(ErrorKind::Syntax("string not closed on its line"));
            };
            out.push_str(&self.0[..at]);
            let b = self.0.as_bytes()[at];
            self.bump(at + 1);
            if b == quote {
                return Ok(out);
            }
            if b != b'\\' {
                // TOML allows tab but no other control character in a string.
                return Err(ErrorKind::Syntax("control character in a string"));
            }
            out.push(match self.peek() {
                b'"' => '"',
                b'\\' => '\\',
                b'n' => '\n',
                b't' => '\t',
                b'r' => '\r',
                _ => {
                    return Err(ErrorKind::Unsupported(
                        "an escape other than \\\" \\\\ \\n \\t \\r is",
                    ))
                }
            });
            self.bump(1);
        }
    }

    /// The rest of `[ "a", "b", ]`, after the `[`.
    fn list(&mut self) -> Result<Vec<String>, ErrorKind> {
        let mut items = Vec::new();
        loop {
            self.skip_blanks();
            match self.peek() {
                b']' => {
                    self.bump(1);
                    return Ok(items);
                }
                0 | b'#' => return Err(ErrorKind::Unsupported("an array over several lines is")),
                b'"' | b'\'' => items.push(self.string()?),
                _ => return Err(ErrorKind::Unsupported("an array of other than strings is")),
            }
            self.skip_blanks();
            match self.peek() {
                b',' => self.bump(1),
                b']' => {}
                _ => return Err(ErrorKind::Syntax("expected `,` or `]` in an array")),
            }
        }
    }
}

/// A TOML decimal integer: optional sign, no leading zero, `_` only between digits.
fn integer(word: &str) -> Result<i64, ErrorKind> {
    let body = word.strip_prefix(['+', '-']).unwrap_or(word).as_bytes();
    let digits_only = body.iter().all(|&b| b.is_ascii_digit() || b == b'_');
    let well_formed = digits_only
        && body.first().is_some_and(u8::is_ascii_digit)
        && body.last().is_some_and(u8::is_ascii_digit)
        && !body.windows(2).any(|w| w == b"__")
        && !(body.len() > 1 && body[0] == b'0');
    if well_formed {
        let negative = word.starts_with('-');
        let mut n: i64 = 0;
        for &b in body.iter().filter(|&&b| b != b'_') {
            let digit = i64::from(b - b'0');
            n = n
                .checked_mul(10)
                .and_then(|n| {
                    if negative {
                        n.checked_sub(digit)
                    } else {
                        n.checked_add(digit)
                    }
                })
                .ok_or(ErrorKind::Syntax("integer out of range"))?;
        }
        return Ok(n);
    }
    Err(match body.first() {
        Some(b'0'..=b'9') if !digits_only => {
            ErrorKind::Unsupported("a float, date, time or hex/octal/binary integer is")
        }
        _ if body == b"inf" || body == b"nan" => ErrorKind::Unsupported("a float is"),
        _ => ErrorKind::Syntax("expected a value: \"string\", integer, true, false or [\"list\"]"),
    })
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
        let file = "# hopcap-agent\n\
            \n\
            collector = \"10.0.0.1:7878\"   # the collector\n\
            \tkey='/etc/hopcap/board.key'\n\
            sample = 10\n\
            count = +1_000\n\
            offset = -9_223_372_036_854_775_808\n\
            insecure = true\n\
            recv = false\n\
            interface = [\"eth*\", 'wlan0',]\n\
            exclude = []\n\
            filter = \"port 53 and \\\"x\\\\yé\\n\\t\\r\" # é stays\n";
        assert_eq!(
            read(file.as_bytes()).unwrap(),
            [
                entry(3, "collector", Value::Str("10.0.0.1:7878".into())),
                entry(4, "key", Value::Str("/etc/hopcap/board.key".into())),
                entry(5, "sample", Value::Int(10)),
                entry(6, "count", Value::Int(1000)),
                entry(7, "offset", Value::Int(i64::MIN)),
                entry(8, "insecure", Value::Bool(true)),
                entry(9, "recv", Value::Bool(false)),
                entry(
                    10,
                    "interface",
                    Value::List(vec!["eth*".into(), "wlan0".into()])
                ),
                entry(11, "exclude", Value::List(vec![])),
                entry(12, "filter", Value::Str("port 53 and \"x\\yé\n\t\r".into())),
            ]
        );
        assert_eq!(read(b"").unwrap(), []);
        assert_eq!(
            read(b"a = 0\r\n# c\r\n").unwrap(),
            [entry(1, "a", Value::Int(0))]
        );
        // A literal string keeps backslashes; a tab is allowed in strings.
        assert_eq!(
            read(b"f = 'a\\nb\tc'").unwrap(),
            [entry(1, "f", Value::Str("a\\nb\tc".into()))]
        );
    }

    #[test]
    fn refuses_what_it_does_not_read_with_the_line() {
        let unsupported =
            |what: &str| format!("{what} not supported by hopcap-agent's config reader");
        let other = "a float, date, time or hex/octal/binary integer is";
        let escape = "an escape other than \\\" \\\\ \\n \\t \\r is";
        for (file, line, msg) in [
            (&b"a = 1\n[agent]\n"[..], 2, unsupported("a [table] is")),
            (b"[[x]]", 1, unsupported("a [table] is")),
            (b"\"a\" = 1", 1, unsupported("a quoted key is")),
            (b"a.b = 1", 1, unsupported("a dotted key is")),
            (b"a = 1.5", 1, unsupported(other)),
            (b"a = -1e3", 1, unsupported(other)),
            (b"a = 0x1f", 1, unsupported(other)),
            (b"a = 2026-12-01", 1, unsupported(other)),
            (b"a = 07:32:00", 1, unsupported(other)),
            (b"a = inf", 1, unsupported("a float is")),
            (b"a = -nan", 1, unsupported("a float is")),
            (b"a = \"\\u00e9\"", 1, unsupported(escape)),
            (b"a = \"\\q\"", 1, unsupported(escape)),
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
        let expected = "expected a value: \"string\", integer, true, false or [\"list\"]";
        for (file, line, msg) in [
            (
                &b"# ok\nnothing here\n"[..],
                2,
                "expected `=` after the key",
            ),
            (b"= 1", 1, "expected `key = value`"),
            (b"a =", 1, "expected a value after `=`"),
            (b"a = # no value", 1, "expected a value after `=`"),
            (b"a = yes", 1, expected),
            (b"a = 007", 1, expected),
            (b"a = 1__0", 1, expected),
            (b"a = _1", 1, expected),
            (b"a = 1_", 1, expected),
            (b"a = -", 1, expected),
            (b"a = 9223372036854775808", 1, "integer out of range"),
            (b"a = \"open", 1, "string not closed on its line"),
            (b"a = 'open", 1, "string not closed on its line"),
            (b"a = \"x\x01\"", 1, "control character in a string"),
            (b"a = 'x\x7f'", 1, "control character in a string"),
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
