//! `--completions SHELL` and `--man`: made from the help text itself (the agent's one flag
//! table, `cli::USAGE`, which `main` passes in), so they list exactly the flags it parses; no
//! clap here.

/// The shells `--completions` knows.
pub const SHELLS: [&str; 3] = ["bash", "zsh", "fish"];

/// Every `-x` and `--name` that starts an option line of `usage`, in order, once each.
pub fn flags(usage: &str) -> Vec<(Option<char>, String)> {
    let mut out: Vec<(Option<char>, String)> = Vec::new();
    for line in usage.lines() {
        let line = line.trim_start();
        let (short, rest) = match line.strip_prefix('-') {
            Some(r) if !r.starts_with('-') => {
                let c = r.chars().next();
                (c, r.split_once(", ").map_or("", |x| x.1))
            }
            _ => (None, line),
        };
        let Some(name) = rest.strip_prefix("--") else {
            continue;
        };
        let name: String = name
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '-')
            .collect();
        if !name.is_empty() && !out.iter().any(|(_, n)| *n == name) {
            out.push((short, name));
        }
    }
    out
}

/// The completion script for `shell`, or `None` for a shell it does not know.
pub fn completions(usage: &str, shell: &str) -> Option<String> {
    let words: Vec<String> = flags(usage)
        .iter()
        .flat_map(|(s, l)| {
            s.map(|c| format!("-{c}"))
                .into_iter()
                .chain([format!("--{l}")])
        })
        .collect();
    let bash = format!(
        "# hopcap-agent {}: bash completion (files complete after every flag)\n\
         complete -o default -W \"{}\" hopcap-agent\n",
        env!("CARGO_PKG_VERSION"),
        words.join(" ")
    );
    match shell {
        "bash" => Some(bash),
        "zsh" => Some(format!(
            "#compdef hopcap-agent\nautoload -U +X bashcompinit && bashcompinit\n{bash}"
        )),
        "fish" => Some(
            flags(usage)
                .iter()
                .map(|(s, l)| match s {
                    Some(c) => format!("complete -c hopcap-agent -s {c} -l {l}\n"),
                    None => format!("complete -c hopcap-agent -l {l}\n"),
                })
                .collect(),
        ),
        _ => None,
    }
}

/// A man page (roff) holding the help text `usage`.
pub fn man_page(usage: &str) -> String {
    let mut page = format!(
        ".TH HOPCAP-AGENT 1 \"\" \"hopcap-agent {}\" \"User Commands\"\n\
         .SH NAME\nhopcap-agent \\- capture every link of a board and stream compact records \
         to hopcap-collector\n.SH SYNOPSIS\n.nf\n",
        env!("CARGO_PKG_VERSION")
    );
    let (synopsis, options) = usage.split_once("\n\n").unwrap_or((usage, ""));
    for line in synopsis.lines() {
        page.push_str(&roff_line(line.trim_start_matches("Usage: ").trim_start()));
    }
    page.push_str(".fi\n.SH OPTIONS\n.nf\n");
    for line in options.lines() {
        page.push_str(&roff_line(line));
    }
    page.push_str(".fi\n.SH SEE ALSO\nhopcap\\-collector(1), tcpdump(8), pcap\\-filter(7)\n");
    page
}

/// One literal line: backslashes doubled, a leading `.` or `'` made harmless.
fn roff_line(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}\n")
    } else {
        format!("{escaped}\n")
    }
}
