//! The agent's `--completions` and `--man`, made from its help text: every flag is offered,
//! and no line of the help becomes a roff request.

use hopcap_agent::cli::USAGE;
use hopcap_agent::docs::{completions, flags, man_page};

#[test]
fn every_flag_of_the_help_is_offered() {
    let f = flags(USAGE);
    for want in [
        "collector",
        "netns",
        "read",
        "doctor",
        "completions",
        "man",
        "write",
    ] {
        assert!(f.iter().any(|(_, n)| n == want), "--{want} missing: {f:?}");
    }
    assert!(f.contains(&(Some('w'), "write".into())));
    let bash = completions(USAGE, "bash").unwrap();
    assert!(
        bash.contains(" -w --write ") && bash.contains("--list-links"),
        "{bash}"
    );
    assert!(completions(USAGE, "fish")
        .unwrap()
        .contains("-s D -l list-links"));
    assert!(completions(USAGE, "tcsh").is_none());
}

#[test]
fn the_man_page_is_roff_with_the_options() {
    let page = man_page(USAGE);
    assert!(page.starts_with(".TH HOPCAP-AGENT 1"));
    assert!(page.contains("\\-\\-netns SPEC"));
    // No line of the help can become a roff request.
    for line in page.lines().filter(|l| l.starts_with('.')) {
        let request = line.split_whitespace().next().unwrap();
        assert!([".TH", ".SH", ".nf", ".fi"].contains(&request), "{line}");
    }
}
