//! Tokens of a filter expression. Words are runs of `[A-Za-z0-9.:_\-\\]`, so addresses
//! (`10.0.0.1`, `fe80::1`), port ranges (`1000-2000`) and escaped names (`\tcp`) are one word.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tok<'a> {
    Word(&'a str),
    LParen,
    RParen,
    /// `not` or `!`.
    Not,
    /// `and` or `&&`.
    And,
    /// `or` or `||`.
    Or,
    Slash,
    End,
    /// A byte that starts no token.
    Bad,
}

/// A token and the byte offset where it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub tok: Tok<'a>,
    pub offset: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'_' | b'-' | b'\\')
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Lexer<'a> {
        Lexer { src, pos: 0 }
    }

    pub fn peek(&self) -> Token<'a> {
        self.clone().next_token()
    }

    /// The token after the next one.
    pub fn peek2(&self) -> Token<'a> {
        let mut l = self.clone();
        l.next_token();
        l.next_token()
    }

    pub fn next_token(&mut self) -> Token<'a> {
        let bytes = self.src.as_bytes();
        while bytes.get(self.pos).is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
        let offset = self.pos;
        let Some(&b) = bytes.get(offset) else {
            return Token {
                tok: Tok::End,
                offset,
            };
        };
        let next = bytes.get(offset + 1).copied();
        let (tok, len) = match (b, next) {
            (b'(', _) => (Tok::LParen, 1),
            (b')', _) => (Tok::RParen, 1),
            (b'/', _) => (Tok::Slash, 1),
            (b'!', _) => (Tok::Not, 1),
            (b'&', Some(b'&')) => (Tok::And, 2),
            (b'|', Some(b'|')) => (Tok::Or, 2),
            _ if is_word_byte(b) => {
                let len = bytes.get(offset..).map_or(0, |rest| {
                    rest.iter().take_while(|&&c| is_word_byte(c)).count()
                });
                // Word bytes are ASCII, so both ends are char boundaries.
                let word = self.src.get(offset..offset + len).unwrap_or("");
                let tok = match word {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    w => Tok::Word(w),
                };
                (tok, len)
            }
            _ => (Tok::Bad, 0),
        };
        self.pos += len;
        Token { tok, offset }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> heapless::Vec<(Tok<'_>, usize), 16> {
        let mut l = Lexer::new(s);
        let mut v = heapless::Vec::new();
        loop {
            let t = l.next_token();
            v.push((t.tok, t.offset)).unwrap();
            if matches!(t.tok, Tok::End | Tok::Bad) {
                return v;
            }
        }
    }

    #[test]
    fn splits_words_and_operators_with_offsets() {
        let v = toks("!(src  fe80::1&&port 1-2)||net 10/8");
        let want = [
            (Tok::Not, 0),
            (Tok::LParen, 1),
            (Tok::Word("src"), 2),
            (Tok::Word("fe80::1"), 7),
            (Tok::And, 14),
            (Tok::Word("port"), 16),
            (Tok::Word("1-2"), 21),
            (Tok::RParen, 24),
            (Tok::Or, 25),
            (Tok::Word("net"), 27),
            (Tok::Word("10"), 31),
            (Tok::Slash, 33),
            (Tok::Word("8"), 34),
            (Tok::End, 35),
        ];
        assert_eq!(&v[..], &want[..]);
    }

    #[test]
    fn keywords_are_whole_words_and_stray_bytes_are_bad() {
        let v = toks("android or & x");
        assert_eq!(
            &v[..],
            &[(Tok::Word("android"), 0), (Tok::Or, 8), (Tok::Bad, 11)][..]
        );
        assert_eq!(&toks("é")[..], &[(Tok::Bad, 0)][..]);
    }
}
