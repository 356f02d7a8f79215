//! The agent with a real Docker engine (hopcap_testkit::docker: dockerd inside a board
//! namespace this test makes, an outside host in another, an image made from busybox). The
//! agent starts first; then `docker run --name web -p 8080:80`. Its hop must be labelled
//! `web` (never the host's name or a transient label), a ping out must show the container's
//! eth0, its veth, docker0 and the uplink with Docker's MASQUERADE, a connection in through
//! the published port Docker's DNAT, and stopping or removing the container must release its
//! links. Skipped, saying why, where dockerd or busybox is not installed (scripts/test.sh
//! installs both) and under qemu-user (scripts/build-arm.sh --test). Root only.

mod common;

use common::agent::Agent;
use hopcap_testkit::docker::{self, DockerBed, IMAGE, OUTSIDE, UPLINK};
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(30);
/// The container's service: one greeting per connection on port 80.
const SERVE: &str = "while true; do echo hello | nc -l -p 80; done";

fn wait_for(what: &str, agent: &Agent, done: impl Fn(&Agent) -> bool) {
    let give_up = Instant::now() + PATIENCE;
    while !done(agent) {
        assert!(
            Instant::now() < give_up,
            "{what}: not within {PATIENCE:?}\nstderr: {:#?}\nstdout: {:#?}",
            agent.stderr(),
            agent.stdout()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (label, direction, rest) of a --print line: `12:00:00.000001 web:eth0 Out IP ...`.
fn fields(line: &str) -> Option<(&str, &str, &str)> {
    let mut parts = line.splitn(4, ' ');
    let _time = parts.next()?;
    Some((parts.next()?, parts.next()?, parts.next()?))
}

/// The links (label, direction) on which a line containing `what` was printed.
fn hops(lines: &[String], what: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = lines
        .iter()
        .filter_map(|l| fields(l))
        .filter(|(_, _, rest)| rest.contains(what))
        .map(|(label, dir, _)| (label.to_owned(), dir.to_owned()))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn is_veth(label: &str) -> bool {
    label.starts_with("veth") && !label.contains(':')
}

/// Lines logged after the first `from` ones that say a namespace went away.
fn namespaces_gone(agent: &Agent, from: usize) -> usize {
    let lines = agent.stderr();
    let new = lines.get(from..).unwrap_or_default();
    new.iter()
        .filter(|l| l.contains("namespace ") && l.ends_with(" gone"))
        .count()
}

#[test]
fn a_container_is_captured_by_its_docker_name_through_nat_and_released() {
    if let Some(why) = docker::missing() {
        eprintln!("skipped: {why}");
        return;
    }
    if common::agent::emulated() {
        // The engine is the machine's (x86_64); the naming code runs in the unit tests there.
        eprintln!("skipped: the agent runs under qemu-user (the engine test runs natively)");
        return;
    }
    let bed = DockerBed::up("name");
    let agent = Agent::start_in(&bed.ns("board"), &["--netns", "web*", "--print", "-v"], 1);
    bed.docker(&[
        "run", "-d", "--name", "web", "-p", "8080:80", IMAGE, "sh", "-c", SERVE,
    ]);
    wait_for("the container captured as web", &agent, |a| {
        a.stderr()
            .iter()
            .any(|l| l.contains("capturing netns \"web\""))
    });
    // Its kernel filter is attached right after the socket opens.
    std::thread::sleep(Duration::from_millis(500));
    // --doctor finds the engine's state (its --data-root, a temp folder here).
    let doctor = std::process::Command::new("ip")
        .args(["netns", "exec", &bed.ns("board")])
        .args(common::agent::argv())
        .arg("--doctor")
        .output()
        .expect("--doctor");
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        report.lines().any(|l| l.starts_with("ok")
            && l.contains("Docker state")
            && l.contains("named from it")),
        "{report}"
    );
    let ip = bed.docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"]);
    let ip = ip.trim();
    assert!(ip.starts_with("172.17."), "container address {ip:?}");

    // Out, masqueraded by Docker's own rule; in through the published port (DNAT).
    bed.docker(&["exec", "web", "ping", "-c", "3", "-W", "2", OUTSIDE]);
    let greeting = bed.exec("out", &["busybox", "nc", "-w", "3", UPLINK, "8080"]);
    assert_eq!(
        String::from_utf8_lossy(&greeting.stdout).trim(),
        "hello",
        "{greeting:?}"
    );
    let request_out = format!("IP {ip} > {OUTSIDE}: ICMP echo request");
    wait_for("the ping's request on four links", &agent, |a| {
        hops(&a.stdout(), &request_out).len() >= 3
            && !hops(
                &a.stdout(),
                &format!("IP {UPLINK} > {OUTSIDE}: ICMP echo request"),
            )
            .is_empty()
    });
    wait_for(
        "the connection's SYN on the container's eth0",
        &agent,
        |a| {
            let syn_in = format!("> {ip}.80: Flags [S]");
            hops(&a.stdout(), &syn_in).contains(&("web:eth0".into(), "In".into()))
        },
    );
    let lines = agent.stdout();

    // Out: eth0 → veth → docker0 untouched, then the uplink with the board's address.
    let inside = hops(&lines, &request_out);
    assert_eq!(inside.len(), 3, "{inside:?}\n{lines:#?}");
    assert_eq!(inside[0], ("docker0".into(), "In".into()));
    // A bridge port receives frames for docker0's MAC: "P" (another host's), not "In".
    assert!(
        is_veth(&inside[1].0) && ["In", "P"].contains(&inside[1].1.as_str()),
        "{inside:?}"
    );
    assert_eq!(inside[2], ("web:eth0".into(), "Out".into()));
    let veth = inside[1].0.clone();
    let masqueraded = hops(
        &lines,
        &format!("IP {UPLINK} > {OUTSIDE}: ICMP echo request"),
    );
    assert_eq!(masqueraded, [("wlan0".into(), "Out".into())], "{lines:#?}");
    // Back: the reply to the board's address on the uplink, to the container's inside.
    let reply_in = hops(&lines, &format!("IP {OUTSIDE} > {UPLINK}: ICMP echo reply"));
    assert_eq!(reply_in, [("wlan0".into(), "In".into())], "{lines:#?}");
    let reply_inside = hops(&lines, &format!("IP {OUTSIDE} > {ip}: ICMP echo reply"));
    let want: Vec<(String, String)> = vec![
        ("docker0".into(), "Out".into()),
        (veth.clone(), "Out".into()),
        ("web:eth0".into(), "In".into()),
    ];
    assert_eq!(reply_inside, want, "{lines:#?}");

    // In: the SYN to the published port on the uplink, DNATed to the container from docker0 on.
    let syn_outside = hops(&lines, &format!("> {UPLINK}.8080: Flags [S]"));
    assert_eq!(syn_outside, [("wlan0".into(), "In".into())], "{lines:#?}");
    let syn_inside = hops(&lines, &format!("> {ip}.80: Flags [S]"));
    assert_eq!(syn_inside, want, "{lines:#?}");

    // The board itself to the published port on its loopback: iptables does not DNAT
    // 127.0.0.0/8, so Docker's userland proxy takes it and opens a second connection, from
    // docker0's address: that one, not the first (on lo, not captured), reaches the container.
    let local = bed.exec("board", &["busybox", "nc", "-w", "3", "127.0.0.1", "8080"]);
    assert_eq!(String::from_utf8_lossy(&local.stdout).trim(), "hello");
    let proxied = format!("> {ip}.80: Flags [S]");
    wait_for("the proxy's own connection to the container", &agent, |a| {
        a.stdout().iter().any(|l| {
            fields(l).is_some_and(|(label, _, rest)| {
                label == "web:eth0" && rest.starts_with("IP 172.17.0.1.") && rest.contains(&proxied)
            })
        })
    });
    let lines = agent.stdout();

    // Never the host's name, nor a transient label, for the container's namespace.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = format!("{}:", host.trim());
    let labels: Vec<&str> = lines.iter().filter_map(|l| Some(fields(l)?.0)).collect();
    assert!(
        labels
            .iter()
            .all(|l| !l.contains(':') || l.starts_with("web:")),
        "{labels:?}"
    );
    assert!(!labels.iter().any(|l| l.starts_with(&host)), "{labels:?}");

    // Stop: the namespace and its links go (its veth on docker0 too).
    let before = agent.stderr().len();
    bed.docker(&["stop", "-t", "1", "web"]);
    wait_for("the stopped container's namespace let go", &agent, |a| {
        namespaces_gone(a, before) >= 1
    });
    let released = agent.stderr()[before..]
        .iter()
        .filter(|l| l.contains("link removed"))
        .count();
    // web:lo, web:eth0 and the veth: the host side may go before the rescan sees it.
    assert!(released >= 3, "{:#?}", &agent.stderr()[before..]);

    // Started again: a new namespace, named web again; removed: let go again.
    bed.docker(&["start", "web"]);
    wait_for("the restarted container captured as web", &agent, |a| {
        a.stderr()[before..]
            .iter()
            .any(|l| l.contains("capturing netns \"web\""))
    });
    let before = agent.stderr().len();
    bed.docker(&["rm", "-f", "web"]);
    wait_for("the removed container's namespace let go", &agent, |a| {
        namespaces_gone(a, before) >= 1
    });

    let done = agent.stop();
    // How the namespaces were first seen and renamed (for a reader of the test's output).
    for l in done.stderr.iter().filter(|l| l.contains(" is now ")) {
        eprintln!("{l}");
    }
    assert!(done.status.success(), "{:#?}", done.stderr);
    // The summary lists the namespaces still captured at the end: not web any more.
    assert!(
        !done.stderr.iter().any(|l| l.contains(" web: ")),
        "{:#?}",
        done.stderr
    );
}
