//! Which namespaces and links to capture: `--netns`, `-i` and `--exclude`, with a tiny glob
//! (`*` any run, `?` one character) matched on a link's `name` and on `netns:name`.

/// Which namespaces besides the agent's own to capture (`--netns`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum NetnsSpec {
    /// Only the agent's own namespace (the default).
    #[default]
    None,
    /// Every namespace found: /run/netns/* and those of running processes.
    All,
    /// Namespaces whose label matches one of these globs.
    Named(Vec<String>),
}

impl NetnsSpec {
    /// Reads a `--netns` value: `all`, `none` or a comma list of names (globs allowed).
    pub fn parse(value: &str) -> NetnsSpec {
        match value.trim() {
            "all" => NetnsSpec::All,
            "none" | "" => NetnsSpec::None,
            list => NetnsSpec::Named(split_list(list)),
        }
    }

    /// Whether a namespace with this label is to be captured.
    pub fn wants(&self, label: &str) -> bool {
        match self {
            NetnsSpec::None => false,
            NetnsSpec::All => true,
            NetnsSpec::Named(globs) => globs.iter().any(|g| glob_match(g, label)),
        }
    }
}

/// The capture choices that shape a link table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub netns: NetnsSpec,
    /// `-i` globs; empty means every up, non-loopback link.
    pub include: Vec<String>,
    /// `--exclude` globs; win over `include`.
    pub exclude: Vec<String>,
}

impl Options {
    /// Adds one `-i` value (a comma list of globs).
    pub fn include(&mut self, value: &str) {
        self.include.extend(split_list(value));
    }

    /// Adds one `--exclude` value (a comma list of globs).
    pub fn exclude(&mut self, value: &str) {
        self.exclude.extend(split_list(value));
    }

    /// Whether to capture a link. `netns` is the namespace label ("" for the agent's own).
    /// A link must be up; loopback is left out unless an `-i` glob names it.
    pub fn selects(&self, netns: &str, name: &str, up: bool, loopback: bool) -> bool {
        let matches = |g: &String| {
            glob_match(g, name) || (!netns.is_empty() && glob_match_qualified(g, netns, name))
        };
        if !up || self.exclude.iter().any(matches) {
            return false;
        }
        if self.include.is_empty() {
            !loopback
        } else {
            self.include.iter().any(matches)
        }
    }
}

fn split_list(value: &str) -> Vec<String> {
    let parts = value.split(',').map(str::trim).filter(|p| !p.is_empty());
    parts.map(str::to_owned).collect()
}

/// Matches `pattern` on `netns:name` without building that string.
fn glob_match_qualified(pattern: &str, netns: &str, name: &str) -> bool {
    let text: Vec<u8> = netns.bytes().chain(*b":").chain(name.bytes()).collect();
    glob_bytes(pattern.as_bytes(), &text)
}

/// `*` matches any run (also empty), `?` one byte, anything else itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    glob_bytes(pattern.as_bytes(), text.as_bytes())
}

/// Iterative matcher: on a mismatch, the last `*` takes one more byte (linear in practice, never
/// recursive, so no pattern can blow the stack).
fn glob_bytes(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || Some(&c) == text.get(t) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_a_shell() {
        let cases = [
            ("eth0", "eth0", true),
            ("eth*", "eth0", true),
            ("eth*", "eth", true),
            ("eth?", "eth", false),
            ("veth*", "eth0", false),
            ("*0", "vethab0", true),
            ("*a*b*", "xxaxxbxx", true),
            ("*a*b", "xxaxxbxx", false),
            ("?", "", false),
            ("", "", true),
            ("*", "", true),
            ("a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(glob_match(pattern, text), want, "{pattern:?} on {text:?}");
        }
    }

    #[test]
    fn netns_spec_reads_all_none_and_lists() {
        assert_eq!(NetnsSpec::parse("all"), NetnsSpec::All);
        assert_eq!(NetnsSpec::parse("none"), NetnsSpec::None);
        let named = NetnsSpec::parse("ctr, web*,");
        assert_eq!(named, NetnsSpec::Named(vec!["ctr".into(), "web*".into()]));
        assert!(named.wants("web1") && named.wants("ctr") && !named.wants("ctr2"));
        assert!(NetnsSpec::All.wants("pid:42") && !NetnsSpec::None.wants("ctr"));
    }

    #[test]
    fn default_selection_is_up_and_not_loopback() {
        let opts = Options::default();
        assert!(opts.selects("", "eth0", true, false));
        assert!(!opts.selects("", "eth0", false, false));
        assert!(!opts.selects("", "lo", true, true));
    }

    #[test]
    fn include_and_exclude_match_name_or_netns_name() {
        let mut opts = Options::default();
        opts.include("veth*,ctr:eth0");
        opts.exclude("vethbad");
        assert!(opts.selects("", "veth12", true, false));
        assert!(!opts.selects("", "vethbad", true, false));
        assert!(opts.selects("ctr", "eth0", true, false));
        assert!(!opts.selects("rtr", "eth0", true, false));
        assert!(!opts.selects("", "eth0", true, false));
        let mut lo = Options::default();
        lo.include("lo");
        assert!(lo.selects("", "lo", true, true));
        let mut ex = Options::default();
        ex.exclude("*:eth0");
        assert!(ex.selects("", "eth0", true, false));
        assert!(!ex.selects("ctr", "eth0", true, false));
    }
}
