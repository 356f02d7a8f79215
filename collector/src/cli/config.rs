//! `--config FILE`: flags from a TOML file, read through clap's own definitions so that a new
//! flag needs no code here. Keys are long flag names; a `[command]` table (`[serve]`,
//! `[paths]`, `[keys.init]`) holds that command's flags, and top-level keys apply to every
//! command that has the flag (`db = "/var/lib/hopcap/hopcap.db"` once for serve and the
//! queries). Each value is checked by the flag's own value parser, so the messages are the
//! flags' own, prefixed with the file, line and key. The file's flags go after the command
//! line's, and only those the command line did not give (nor one it conflicts with): the
//! command line wins, and a list on it replaces the file's.

use super::Cli;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory};
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Why the config file cannot be used; its Display names the file (and line, key).
#[derive(Debug)]
pub struct ConfigError {
    path: PathBuf,
    /// 1-based; `None` when the message carries its own position (TOML syntax errors).
    line: Option<usize>,
    what: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.what),
            None => write!(f, "{}: {}", self.path.display(), self.what),
        }
    }
}

impl std::error::Error for ConfigError {}

/// `argv` (program name first) with the `--config` file's flags added; `argv` itself when
/// there is no `--config`, or when it does not parse (clap then says why).
pub fn with_config(argv: Vec<OsString>) -> Result<Vec<OsString>, ConfigError> {
    let mut cmd = Cli::command();
    cmd.build();
    let Ok(matches) = cmd.clone().ignore_errors(true).try_get_matches_from(&argv) else {
        return Ok(argv);
    };
    // The command that runs, and what the command line gave it (globals included).
    let (mut leaf, mut given, mut path) = (&cmd, &matches, Vec::new());
    while let Some((name, sub)) = given.subcommand() {
        let Some(next) = leaf.find_subcommand(name) else {
            break;
        };
        (leaf, given, path) = (next, sub, [path, vec![name.to_string()]].concat());
    }
    let Some(file) = given
        .try_get_one::<PathBuf>("config")
        .ok()
        .flatten()
        .or_else(|| matches.try_get_one::<PathBuf>("config").ok().flatten())
    else {
        return Ok(argv);
    };
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
        path: file.clone(),
        line: None,
        what: format!("cannot read it: {e}"),
    })?;
    let reader = FileReader {
        path: file,
        text: &text,
    };
    let table = DeTable::parse(&text).map_err(|e| ConfigError {
        path: file.clone(),
        line: None,
        what: e.to_string().trim_end().to_string(),
    })?;
    let settings = reader.settings(&cmd, table.get_ref(), &path)?;
    let mut out = argv;
    for (arg, _, value) in settings {
        if given.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine)
            || conflicts_with_given(leaf, arg, given)
        {
            continue;
        }
        out.extend(reader.flag_args(leaf, arg, value)?);
    }
    Ok(out)
}

/// Whether `arg` conflicts (either way round) with a flag the command line gave.
fn conflicts_with_given(cmd: &Command, arg: &Arg, given: &ArgMatches) -> bool {
    let on_command_line =
        |a: &Arg| given.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine);
    cmd.get_arguments().any(|other| {
        on_command_line(other)
            && (cmd
                .get_arg_conflicts_with(arg)
                .iter()
                .any(|c| c.get_id() == other.get_id())
                || cmd
                    .get_arg_conflicts_with(other)
                    .iter()
                    .any(|c| c.get_id() == arg.get_id()))
    })
}

/// A key of the file, with its place.
type Key<'a> = &'a Spanned<toml::de::DeString<'a>>;
type Val<'a> = &'a Spanned<DeValue<'a>>;

struct FileReader<'t> {
    path: &'t Path,
    text: &'t str,
}

impl<'t> FileReader<'t> {
    fn error(&self, at: usize, what: String) -> ConfigError {
        ConfigError {
            path: self.path.into(),
            line: Some(1 + self.text[..at.min(self.text.len())].matches('\n').count()),
            what,
        }
    }

    /// Checks every key of the file against the commands (also those not running now), and
    /// returns the settings for the command at `path`: the top level's, then its table's,
    /// which override them.
    fn settings<'a>(
        &self,
        root: &'a Command,
        table: &'a DeTable<'a>,
        path: &[String],
    ) -> Result<Vec<(&'a Arg, Key<'a>, Val<'a>)>, ConfigError> {
        let leaf = path
            .iter()
            .try_fold(root, |c, name| c.find_subcommand(name))
            .unwrap_or(root);
        let mut out = Vec::new();
        for (key, value) in table.iter() {
            if matches!(value.get_ref(), DeValue::Table(_)) {
                continue;
            }
            let name: &str = key.get_ref();
            let anywhere = std::iter::once(root).chain(all_subcommands(root));
            if !anywhere.clone().any(|c| settable(c, name).is_some()) {
                return Err(self.error(
                    key.span().start,
                    format!("{name}: unknown key (no hopcap-collector command has --{name})"),
                ));
            }
            if let Some(arg) = settable(leaf, name) {
                out.push((arg, key, value));
            }
        }
        self.check_tables(root, table, &[], path, &mut out)?;
        Ok(out)
    }

    /// The `[command]` tables under `cmd`: each must name a subcommand, each key one of its
    /// flags; the keys of the table at `running` go into `out`, replacing top-level ones.
    fn check_tables<'a>(
        &self,
        cmd: &'a Command,
        table: &'a DeTable<'a>,
        at: &[String],
        running: &[String],
        out: &mut Vec<(&'a Arg, Key<'a>, Val<'a>)>,
    ) -> Result<(), ConfigError> {
        for (key, value) in table.iter() {
            let DeValue::Table(inner) = value.get_ref() else {
                continue;
            };
            let name: &str = key.get_ref();
            let here = [at, &[name.to_string()]].concat();
            let Some(sub) = cmd.find_subcommand(name).filter(|s| s.get_name() != "help") else {
                let known: Vec<&str> = cmd
                    .get_subcommands()
                    .map(Command::get_name)
                    .filter(|n| *n != "help")
                    .collect();
                return Err(self.error(
                    key.span().start,
                    format!(
                        "[{}]: not a command (tables: {})",
                        here.join("."),
                        known.join(", ")
                    ),
                ));
            };
            for (k, v) in inner.iter() {
                if matches!(v.get_ref(), DeValue::Table(_)) {
                    continue;
                }
                let flag: &str = k.get_ref();
                let Some(arg) = settable(sub, flag) else {
                    return Err(self.error(
                        k.span().start,
                        format!(
                            "{flag}: unknown key in [{}] (`hopcap-collector {}` has no --{flag})",
                            here.join("."),
                            here.join(" ")
                        ),
                    ));
                };
                if here == running {
                    out.retain(|(a, _, _)| a.get_id() != arg.get_id());
                    out.push((arg, k, v));
                }
            }
            self.check_tables(sub, inner, &here, running, out)?;
        }
        Ok(())
    }

    /// The command-line words for one setting, its values checked by the flag's parser.
    fn flag_args(
        &self,
        cmd: &Command,
        arg: &Arg,
        value: Val<'_>,
    ) -> Result<Vec<OsString>, ConfigError> {
        let long = arg.get_long().unwrap_or_default();
        let at = value.span().start;
        let wrong = |want: &str| {
            self.error(
                at,
                format!(
                    "{long}: expected {want}, not {}",
                    type_name(value.get_ref())
                ),
            )
        };
        let flag = format!("--{long}");
        let words: Vec<String> = match (arg.get_action(), value.get_ref()) {
            (ArgAction::SetTrue, DeValue::Boolean(on)) => {
                [flag].into_iter().filter(|_| *on).collect()
            }
            (ArgAction::SetTrue, _) => return Err(wrong("true or false")),
            (ArgAction::Count, DeValue::Boolean(on)) => {
                [flag].into_iter().filter(|_| *on).collect()
            }
            (ArgAction::Count, DeValue::Integer(n)) => match integer(n) {
                Some(n @ 0..=9) => vec![flag; n as usize],
                _ => return Err(wrong("true, false or a count from 0 to 9")),
            },
            (ArgAction::Count, _) => return Err(wrong("true, false or a count")),
            (ArgAction::Append, DeValue::Array(items)) => {
                let mut words = Vec::new();
                for item in items.iter() {
                    let Some(text) = scalar(item.get_ref()) else {
                        return Err(self.error(
                            item.span().start,
                            format!("{long}: expected a list of strings or numbers"),
                        ));
                    };
                    words.push(format!("{flag}={text}"));
                }
                words
            }
            (ArgAction::Set | ArgAction::Append, v) => match scalar(v) {
                Some(text) => vec![format!("{flag}={text}")],
                None if matches!(arg.get_action(), ArgAction::Append) => {
                    return Err(wrong("a string, a number or a list of them"))
                }
                None => return Err(wrong("a string or a number")),
            },
            _ => return Err(wrong("nothing: it is not a setting")),
        };
        for word in &words {
            check_value(cmd, word).map_err(|e| self.error(at, format!("{long}: {e}")))?;
        }
        Ok(words.into_iter().map(OsString::from).collect())
    }
}

/// A flag a file may set on `cmd`: one with a long name, not hidden, not an action.
fn settable<'a>(cmd: &'a Command, long: &str) -> Option<&'a Arg> {
    cmd.get_arguments().find(|a| {
        a.get_long() == Some(long)
            && !a.is_hide_set()
            && !matches!(long, "config" | "help" | "version")
    })
}

fn all_subcommands(cmd: &Command) -> Vec<&Command> {
    cmd.get_subcommands()
        .flat_map(|s| std::iter::once(s).chain(all_subcommands(s)))
        .collect()
}

/// A string, integer or float as the command line would spell it.
fn scalar(v: &DeValue<'_>) -> Option<String> {
    match v {
        DeValue::String(s) => Some(s.to_string()),
        DeValue::Integer(i) => integer(i).map(|i| i.to_string()),
        DeValue::Float(f) => Some(f.as_str().to_string()),
        _ => None,
    }
}

/// A TOML integer's value (hex, octal and binary too); `None` beyond 64 bits.
fn integer(i: &toml::de::DeInteger<'_>) -> Option<i64> {
    i64::from_str_radix(i.as_str(), i.radix()).ok()
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "true/false",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

/// `word` (`--name=value`) parsed by `cmd` alone, so that the message is clap's for that
/// flag (`invalid value 'x' for '--idle-timeout <SECS>': ...`). Flags that this one needs
/// may be given elsewhere: their absence is not this value's fault.
fn check_value(cmd: &Command, word: &str) -> Result<(), String> {
    match cmd
        .clone()
        .no_binary_name(true)
        .try_get_matches_from([word])
    {
        Err(e) if e.kind() != clap::error::ErrorKind::MissingRequiredArgument => {
            // clap's message without its `error: ` and its advice on --help.
            let text = e.render().to_string();
            let lines: Vec<&str> = text
                .lines()
                .map(|l| l.trim_start_matches("error: ").trim())
                .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                .collect();
            Err(lines.join(" "))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command as Cmd;
    use clap::Parser;

    /// A config file named for this process and `name` (tests run in parallel).
    fn file(name: &str, text: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("hopcap-config-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    fn argv(words: &[&str]) -> Vec<OsString> {
        std::iter::once("hopcap-collector")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn parse(words: &[&str]) -> Result<Cli, String> {
        let all = with_config(argv(words)).map_err(|e| e.to_string())?;
        Cli::try_parse_from(all).map_err(|e| e.to_string())
    }

    const FLEET: &str = "# the fleet's collector\n\
        db = \"/var/lib/hopcap/hopcap.db\"\n\
        verbose = 1\n\
        \n\
        [serve]\n\
        listen = \"127.0.0.1:7000\"\n\
        insecure = true\n\
        index = [\"fingerprint\", \"link\"]\n\
        retain-hours = 1.5\n\
        idle-timeout = 30\n\
        \n\
        [paths]\n\
        db = \"/srv/paths.db\"\n\
        json = true\n\
        \n\
        [keys.init]\n\
        boards = [\"pi1\", \"pi2\"]\n";

    #[test]
    fn the_file_gives_flags_and_the_command_line_wins() {
        assert_eq!(
            with_config(argv(&["boards", "--db", "x"])).unwrap(),
            argv(&["boards", "--db", "x"]),
            "no --config: the command line as it is"
        );
        let path = file("fleet", FLEET);
        let path = path.to_str().unwrap();
        let cli = parse(&["--config", path, "serve"]).unwrap();
        let Cmd::Serve(serve) = &cli.command else {
            panic!("serve")
        };
        assert_eq!(serve.listen.to_string(), "127.0.0.1:7000");
        assert!(serve.insecure);
        assert_eq!(serve.index, ["fingerprint", "link"]);
        assert_eq!(serve.retain_hours, Some(1.5));
        assert_eq!(serve.idle_timeout, 30);
        assert_eq!(serve.db.db, PathBuf::from("/var/lib/hopcap/hopcap.db"));
        assert_eq!(cli.verbose, 1);

        // Given here: a scalar overrides, a list replaces, and a flag that conflicts with
        // one given here (--key against the file's insecure) is left out.
        let cli = parse(&[
            "serve",
            "--config",
            path,
            "--idle-timeout",
            "5",
            "--index",
            "flow",
            "--key",
            "k",
            "--trusted",
            "t",
            "-vv",
        ])
        .unwrap();
        let Cmd::Serve(serve) = &cli.command else {
            panic!("serve")
        };
        assert_eq!(serve.idle_timeout, 5);
        assert_eq!(serve.index, ["flow"]);
        assert!(!serve.insecure);
        assert_eq!(serve.key, Some(PathBuf::from("k")));
        assert_eq!(cli.verbose, 2);

        // A table overrides the top level; nested tables reach nested commands.
        let cli = parse(&["--config", path, "paths"]).unwrap();
        let Cmd::Paths(paths) = &cli.command else {
            panic!("paths")
        };
        assert_eq!(paths.query.db.db, PathBuf::from("/srv/paths.db"));
        assert!(paths.query.json);
        let cli = parse(&["--config", path, "keys", "init", "/tmp/k"]).unwrap();
        let Cmd::Keys(crate::cli::KeysCommand::Init { boards, .. }) = &cli.command else {
            panic!("keys init")
        };
        assert_eq!(boards, &["pi1", "pi2"]);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn the_shipped_example_config_reads() {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/hopcap-collector.toml");
        let cli = parse(&["--config", example, "serve"]).unwrap();
        let Cmd::Serve(serve) = &cli.command else {
            panic!("serve")
        };
        assert_eq!(serve.retain_hours, Some(168.0));
        assert_eq!(serve.db.db, PathBuf::from("/var/lib/hopcap/hopcap.db"));
        assert!(parse(&["--config", example, "paths", "--follow"]).is_ok());
    }

    #[test]
    fn bad_settings_name_the_file_line_and_key() {
        let path = file("bad", "");
        let shown = |text: &str, words: &[&str]| {
            std::fs::write(&path, text).unwrap();
            let mut all = vec!["--config", path.to_str().unwrap()];
            all.extend(words);
            let e = parse(&all).map(|_| ()).unwrap_err();
            e.strip_prefix(&format!("{}:", path.display()))
                .unwrap_or(&e)
                .to_string()
        };
        let serve = &["serve"][..];
        assert_eq!(
            shown("[serve]\nidle-timeout = \"soon\"", serve),
            "2: idle-timeout: invalid value 'soon' for '--idle-timeout <SECS>': invalid digit \
             found in string"
        );
        assert_eq!(
            shown("# x\n\n[serve]\nindex = [\"nope\"]", serve),
            "4: index: invalid value 'nope' for '--index <NAME>' [possible values: \
             fingerprint, link, flow]"
        );
        assert_eq!(
            shown("[serve]\nfrob = 1", serve),
            "2: frob: unknown key in [serve] (`hopcap-collector serve` has no --frob)"
        );
        assert_eq!(
            shown("frob = 1", serve),
            "1: frob: unknown key (no hopcap-collector command has --frob)"
        );
        assert_eq!(
            shown("[serve]\ndebug-commit-delay-ms = 1", serve),
            "2: debug-commit-delay-ms: unknown key in [serve] (`hopcap-collector serve` has \
             no --debug-commit-delay-ms)"
        );
        assert_eq!(
            shown("[servee]\n", serve),
            "1: [servee]: not a command (tables: serve, timeline, boards, links, paths, \
             flows, diagram, report, export, correlate, keys, completions, man)"
        );
        assert_eq!(
            shown("[keys.nope]\n", serve),
            "1: [keys.nope]: not a command (tables: init, add, revoke)"
        );
        assert_eq!(
            shown("[serve]\ninsecure = \"yes\"", serve),
            "2: insecure: expected true or false, not a string"
        );
        assert_eq!(
            shown("[serve]\nlisten = [\"a\"]", serve),
            "2: listen: expected a string or a number, not a list"
        );
        assert_eq!(
            shown("verbose = 12", serve),
            "1: verbose: expected true, false or a count from 0 to 9, not an integer"
        );
        assert_eq!(
            shown("[keys.init]\nboards = [true]", &["keys", "init", "d"]),
            "2: boards: expected a list of strings or numbers"
        );
        assert_eq!(
            shown("config = \"other.toml\"", serve),
            "1: config: unknown key (no hopcap-collector command has --config)"
        );
        // A key of another command's table is checked too, though that command is not run.
        assert_eq!(
            shown("[paths]\njsn = true", serve),
            "2: jsn: unknown key in [paths] (`hopcap-collector paths` has no --jsn)"
        );
        let e = shown("a = = 1", serve);
        assert!(
            e.starts_with(" TOML parse error at line 1, column 5"),
            "{e}"
        );
        std::fs::remove_file(&path).unwrap();
        let e = shown_missing(&path);
        assert!(
            e.ends_with("cannot read it: No such file or directory (os error 2)"),
            "{e}"
        );
    }

    fn shown_missing(path: &Path) -> String {
        parse(&["--config", path.to_str().unwrap(), "boards"])
            .map(|_| ())
            .unwrap_err()
    }
}
