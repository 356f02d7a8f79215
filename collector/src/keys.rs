//! The fleet's keys: the collector's key pair, one key pair per board, and the file of trusted
//! boards (`NAME PUBLIC-KEY` per line). Keys are X25519, made by snow's resolver from the
//! operating system's CSPRNG (getrandom). Private key files are created 0600.
//!
//! A key directory (`hopcap-collector keys init DIR`):
//! ```text
//! DIR/collector.key       the collector's private key (0600): serve --key
//! DIR/collector.pub       its public key (what boards pin)
//! DIR/trusted-boards      the boards the collector accepts: serve --trusted
//! DIR/boards/NAME.key     one per board (0600): copy it to the board, hopcap-agent --key
//! ```
//! A board's key file holds its name, its private key and the collector's public key, so
//! one file is all a board needs.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The Noise protocol both ends speak (the agent's `export::noise::PATTERN`).
pub const PATTERN: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";

pub type PublicKey = [u8; 32];

/// The file names inside a key directory.
pub fn collector_key_path(dir: &Path) -> PathBuf {
    dir.join("collector.key")
}
pub fn collector_pub_path(dir: &Path) -> PathBuf {
    dir.join("collector.pub")
}
pub fn trusted_path(dir: &Path) -> PathBuf {
    dir.join("trusted-boards")
}
pub fn board_key_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("boards").join(format!("{name}.key"))
}

/// A private key (never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey(pub [u8; 32]);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(..)")
    }
}

/// A fresh X25519 key pair from the operating system's CSPRNG.
pub fn generate() -> io::Result<(PrivateKey, PublicKey)> {
    let params = PATTERN.parse().map_err(other)?;
    let pair = snow::Builder::new(params)
        .generate_keypair()
        .map_err(other)?;
    let mut private = [0u8; 32];
    let mut public = [0u8; 32];
    private.copy_from_slice(&pair.private);
    public.copy_from_slice(&pair.public);
    Ok((PrivateKey(private), public))
}

fn other(e: snow::Error) -> io::Error {
    io::Error::other(format!("noise: {e}"))
}

fn invalid(why: impl Into<String>) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, why.into())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A public key's fingerprint in logs: its first 8 bytes in hex (the agent prints the same).
pub fn fingerprint(key: &[u8]) -> String {
    hex(&key[..key.len().min(8)])
}

pub fn parse_key(text: &str) -> io::Result<[u8; 32]> {
    let text = text.as_bytes();
    if text.len() != 64 {
        return Err(invalid("a key is 64 hex digits"));
    }
    let mut key = [0u8; 32];
    for (i, pair) in text.chunks(2).enumerate() {
        let digit = |c: u8| {
            (c as char)
                .to_digit(16)
                .ok_or_else(|| invalid("a key is 64 hex digits"))
        };
        key[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Ok(key)
}

/// `(field, value)` per non-comment line; a line of one word is `("", word)`.
fn fields(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((f, v)) => (f, v.trim()),
            None => ("", l),
        })
}

/// Reads the collector's private key file (`private HEX`).
pub fn read_private(path: &Path) -> io::Result<PrivateKey> {
    let text = fs::read_to_string(path)?;
    let mode = fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        log::warn!(
            "{}: a private key readable by others (mode {:o}): chmod 600 it",
            path.display(),
            mode & 0o777
        );
    }
    let found = fields(&text).find(|(f, _)| *f == "private");
    match found {
        Some((_, v)) => parse_key(v).map(PrivateKey),
        None => Err(invalid("no `private` line: not a hopcap key file")),
    }
}

/// The X25519 public key of `private`.
pub fn public_of(private: &PrivateKey) -> PublicKey {
    curve25519_public(&private.0)
}

fn curve25519_public(private: &[u8; 32]) -> PublicKey {
    use snow::resolvers::CryptoResolver;
    // snow's resolver: the same X25519 the handshake uses.
    let mut dh = snow::resolvers::DefaultResolver
        .resolve_dh(&snow::params::DHChoice::Curve25519)
        .expect("the default resolver has X25519");
    dh.set(private);
    let mut public = [0u8; 32];
    public.copy_from_slice(dh.pubkey());
    public
}

/// Boards and their public keys, as the trusted file lists them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trusted {
    pub boards: Vec<(String, PublicKey)>,
}

impl Trusted {
    pub fn parse(text: &str) -> io::Result<Trusted> {
        let mut boards: Vec<(String, PublicKey)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(name), Some(key), None) = (words.next(), words.next(), words.next()) else {
                return Err(invalid(format!(
                    "line {}: expected `NAME PUBLIC-KEY`",
                    n + 1
                )));
            };
            check_name(name).map_err(|e| invalid(format!("line {}: {e}", n + 1)))?;
            let key = parse_key(key).map_err(|e| invalid(format!("line {}: {e}", n + 1)))?;
            if boards.iter().any(|(b, k)| b == name || *k == key) {
                return Err(invalid(format!(
                    "line {}: board {name:?} or its key listed twice",
                    n + 1
                )));
            }
            boards.push((name.to_string(), key));
        }
        Ok(Trusted { boards })
    }

    pub fn read(path: &Path) -> io::Result<Trusted> {
        Trusted::parse(&fs::read_to_string(path)?)
    }

    /// Key → board name.
    pub fn by_key(&self) -> HashMap<PublicKey, String> {
        self.boards.iter().map(|(n, k)| (*k, n.clone())).collect()
    }

    fn render(&self) -> String {
        let mut s = String::from(
            "# Boards this collector accepts: NAME PUBLIC-KEY (hex). Edited by\n\
             # `hopcap-collector keys add/revoke`; read again for every new connection.\n",
        );
        for (name, key) in &self.boards {
            s.push_str(&format!("{name} {}\n", hex(key)));
        }
        s
    }

    /// Replaces the file at once (a temporary file renamed over it): a collector reading it
    /// meanwhile sees the old list or the new one, never half of one.
    fn write(&self, path: &Path) -> io::Result<()> {
        let tmp = path.with_extension("tmp");
        write_file(&tmp, &self.render(), 0o644, false)?;
        fs::rename(&tmp, path)
    }
}

/// A board name: what `--id` says, a file name and one word of the trusted file.
pub fn check_name(name: &str) -> io::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "board name {name:?}: 1 to 64 of A-Z a-z 0-9 - _ . (not starting with .)"
        )))
    }
}

fn write_file(path: &Path, text: &str, mode: u32, new: bool) -> io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).mode(mode);
    if new {
        opts.create_new(true);
    } else {
        opts.create(true).truncate(true);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    // The mode applies at creation only, and under the umask: make sure.
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// What `keys init/add` made.
#[derive(Debug)]
pub struct Made {
    pub files: Vec<PathBuf>,
}

/// `keys init DIR --boards a,b`: the collector's key pair, an empty trusted file, and a key
/// for each board. Refuses to overwrite an existing collector key.
pub fn init(dir: &Path, boards: &[String]) -> io::Result<Made> {
    for b in boards {
        check_name(b)?;
    }
    fs::create_dir_all(dir.join("boards"))?;
    let key_path = collector_key_path(dir);
    if key_path.exists() {
        return Err(io::Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "{} exists: this directory has keys already (`keys add` adds a board)",
                key_path.display()
            ),
        ));
    }
    let (private, public) = generate()?;
    write_file(
        &key_path,
        &format!(
            "# hopcap collector private key: stays on the collector (serve --key)\nprivate {}\n",
            hex(&private.0)
        ),
        0o600,
        true,
    )?;
    write_file(
        &collector_pub_path(dir),
        &format!("{}\n", hex(&public)),
        0o644,
        false,
    )?;
    Trusted::default().write(&trusted_path(dir))?;
    let mut made = Made {
        files: vec![key_path, collector_pub_path(dir), trusted_path(dir)],
    };
    for b in boards {
        made.files.extend(add(dir, b, None)?.files);
    }
    Ok(made)
}

/// `keys add DIR NAME`: a new key pair for board NAME, trusted at once. With `public`, trusts
/// that existing key instead (no key file is written).
pub fn add(dir: &Path, name: &str, public: Option<PublicKey>) -> io::Result<Made> {
    check_name(name)?;
    let collector = public_of(&read_private(&collector_key_path(dir))?);
    let mut trusted = Trusted::read(&trusted_path(dir))?;
    if trusted.boards.iter().any(|(b, _)| b == name) {
        return Err(io::Error::new(
            ErrorKind::AlreadyExists,
            format!("board {name:?} is trusted already (`keys revoke` it first)"),
        ));
    }
    let mut files = Vec::new();
    let key = match public {
        Some(k) => k,
        None => {
            let (private, public) = generate()?;
            let path = board_key_path(dir, name);
            fs::create_dir_all(dir.join("boards"))?;
            let _ = fs::remove_file(&path);
            write_file(
                &path,
                &format!(
                    "# hopcap board key for {name}: copy it to the board (mode 0600), then\n\
                     # hopcap-agent --collector HOST:7878 --key FILE\n\
                     board {name}\nprivate {}\ncollector {}\n",
                    hex(&private.0),
                    hex(&collector)
                ),
                0o600,
                true,
            )?;
            files.push(path);
            public
        }
    };
    if let Some((other, _)) = trusted.boards.iter().find(|(_, k)| *k == key) {
        return Err(invalid(format!(
            "that key is trusted already, as {other:?}"
        )));
    }
    trusted.boards.push((name.to_string(), key));
    trusted.write(&trusted_path(dir))?;
    files.push(trusted_path(dir));
    Ok(Made { files })
}

/// `keys revoke DIR NAME`: no longer trusted (and its key file, if still here, removed).
pub fn revoke(dir: &Path, name: &str) -> io::Result<PublicKey> {
    let mut trusted = Trusted::read(&trusted_path(dir))?;
    let Some(at) = trusted.boards.iter().position(|(b, _)| b == name) else {
        return Err(io::Error::new(
            ErrorKind::NotFound,
            format!("board {name:?} is not in {}", trusted_path(dir).display()),
        ));
    };
    let (_, key) = trusted.boards.remove(at);
    trusted.write(&trusted_path(dir))?;
    let _ = fs::remove_file(board_key_path(dir, name));
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_add_revoke() {
        let dir = hopcap_testkit::ScratchDir::new("keys").unwrap();
        let d = dir.path();
        init(d, &["pi1".into(), "pi2".into()]).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&collector_key_path(d)), 0o600);
        assert_eq!(mode(&board_key_path(d, "pi1")), 0o600);
        let t = Trusted::read(&trusted_path(d)).unwrap();
        assert_eq!(t.boards.len(), 2);
        assert_ne!(t.boards[0].1, t.boards[1].1, "fresh keys");
        // The board key pins the collector's public key, and that matches collector.pub.
        let board = fs::read_to_string(board_key_path(d, "pi1")).unwrap();
        let public = fs::read_to_string(collector_pub_path(d)).unwrap();
        assert!(board.contains(&format!("collector {}", public.trim())));
        assert_eq!(
            hex(&public_of(&read_private(&collector_key_path(d)).unwrap())),
            public.trim()
        );
        assert!(init(d, &[]).is_err(), "never overwrites the collector key");
        assert!(add(d, "pi1", None).is_err(), "already trusted");
        assert!(add(d, "../x", None).is_err(), "a name that is no file name");
        add(d, "pi3", None).unwrap();
        assert_eq!(Trusted::read(&trusted_path(d)).unwrap().boards.len(), 3);
        revoke(d, "pi2").unwrap();
        let t = Trusted::read(&trusted_path(d)).unwrap();
        assert_eq!(
            t.boards.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["pi1", "pi3"]
        );
        assert!(!board_key_path(d, "pi2").exists());
        assert!(revoke(d, "pi2").is_err());
        add(d, "ext", Some([7; 32])).unwrap();
        assert!(!board_key_path(d, "ext").exists());
    }

    #[test]
    fn trusted_file_errors_name_the_line() {
        let k = "ab".repeat(32);
        assert!(Trusted::parse(&format!("# c\npi1 {k}  # x\n")).is_ok());
        let e = Trusted::parse(&format!("pi1 {k}\npi2 {k}\n")).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = Trusted::parse("pi1 abc\n").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        assert!(Trusted::parse(&format!("pi1 {k} extra\n")).is_err());
    }
}
