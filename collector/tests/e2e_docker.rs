//! End to end with a real Docker engine (hopcap_testkit::docker: dockerd inside a board
//! namespace made here, the outside host in another). The real agent on the board streams to
//! the real collector on the outside host; it starts first, then `docker run --name web -p
//! 8080:80`. `paths` must show the container by its Docker name, its veth, docker0 and the
//! uplink, with Docker's MASQUERADE on the way out and its DNAT on the way in. Skipped,
//! saying why, where dockerd or busybox is not installed (scripts/test.sh installs both).
//!
//! Root only. Every process is ours, stopped by PID; the namespaces are deleted by name.

mod e2e;

use e2e::agent::Agent;
use e2e::collector::{Collector, PATIENCE};
use e2e::scratch;
use hopcap_testkit::docker::{self, DockerBed, IMAGE, OUTSIDE, UPLINK};
use serde_json::Value;
use std::time::{Duration, Instant};

const BOARD: &str = "pi1";
const SERVE: &str = "while true; do echo hello | nc -l -p 80; done";

/// A hop as `netns:link dir` (`link dir` in the board's own namespace), veths as `veth`.
fn hop(h: &Value) -> String {
    let (netns, link, dir) = (
        h["netns"].as_str().unwrap_or("?"),
        h["link"].as_str().unwrap_or("?"),
        h["dir"].as_str().unwrap_or("?"),
    );
    let link = if link.starts_with("veth") {
        "veth"
    } else {
        link
    };
    match netns {
        "" => format!("{link} {dir}"),
        ns => format!("{ns}:{link} {dir}"),
    }
}

fn route(j: &Value) -> Vec<String> {
    j["hops"]
        .as_array()
        .map(|hops| hops.iter().map(hop).collect())
        .unwrap_or_default()
}

/// The NAT rewrites of a journey as `KIND before→after at LINK`.
fn nat(j: &Value) -> Vec<String> {
    j["nat"]
        .as_array()
        .map(|n| {
            n.iter()
                .map(|r| {
                    format!(
                        "{} {}→{} at {}",
                        r["kind"].as_str().unwrap_or("?"),
                        r["before"].as_str().unwrap_or("?"),
                        r["after"].as_str().unwrap_or("?"),
                        r["link"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `paths --filter filter` until a journey satisfies `wanted`; returns it.
fn journey(collector: &Collector, filter: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let give_up = Instant::now() + PATIENCE;
    loop {
        let journeys = collector.json("paths", &["--filter", filter]);
        if let Some(j) = journeys.iter().find(|j| wanted(j)) {
            return j.clone();
        }
        assert!(
            Instant::now() < give_up,
            "no such journey for {filter:?}: {:#?}",
            journeys
                .iter()
                .map(|j| (j["packet"].clone(), route(j), nat(j)))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn paths_show_a_docker_container_by_its_name_with_the_nat_both_ways() {
    if let Some(why) = docker::missing() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = scratch("docker");
    let bed = DockerBed::up("paths");
    let listen = format!("{OUTSIDE}:7878");
    let mut collector = Collector::start(&bed.ns("out"), &listen, dir.path());
    let args = ["--id", BOARD, "--netns", "web*", "--collector", &listen];
    let mut agent = Agent::start(&bed.ns("board"), &args, 1, "agent", dir.path());
    bed.docker(&[
        "run", "-d", "--name", "web", "-p", "8080:80", IMAGE, "sh", "-c", SERVE,
    ]);
    agent
        .proc
        .wait_for("the container captured as web", PATIENCE, |p| {
            p.stderr().contains("capturing netns \"web\"")
        });
    std::thread::sleep(Duration::from_millis(500));
    let ip = bed.docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"]);
    let ip = ip.trim().to_owned();

    bed.docker(&["exec", "web", "ping", "-c", "3", "-W", "2", OUTSIDE]);
    let greeting = bed.exec("out", &["busybox", "nc", "-w", "3", UPLINK, "8080"]);
    assert_eq!(String::from_utf8_lossy(&greeting.stdout).trim(), "hello");

    let out_route = ["web:eth0 Out", "veth In", "docker0 In", "wlan0 Out"];
    let ping = journey(&collector, "icmp", |j| {
        j["packet"]
            .as_str()
            .is_some_and(|p| p.contains("echo request") && p.contains(ip.as_str()))
            && route(j).len() == 4
    });
    let mut got = route(&ping);
    // A bridge port receives frames for docker0's MAC as another host's: shown as In.
    got[1] = got[1].replace(" P", " In");
    assert_eq!(got, out_route, "{ping:#}");
    assert_eq!(
        nat(&ping),
        [format!("SNAT {ip}→{UPLINK} at {BOARD}:wlan0")],
        "{ping:#}"
    );

    let syn = journey(&collector, "tcp port 8080 or tcp port 80", |j| {
        j["packet"].as_str().is_some_and(|p| p.contains("[S]"))
            && route(j).first().is_some_and(|h| h == "wlan0 In")
            && route(j).len() == 4
    });
    assert_eq!(
        route(&syn),
        ["wlan0 In", "docker0 Out", "veth Out", "web:eth0 In"],
        "{syn:#}"
    );
    let dnat = nat(&syn);
    assert!(
        dnat.len() == 1 && dnat[0].starts_with("DNAT ") && dnat[0].contains(&ip),
        "{dnat:?}\n{syn:#}"
    );

    // The timeline names the hop the same way, by the container's name.
    let timeline = collector.json("timeline", &["--filter", "icmp"]);
    let on_web = timeline
        .iter()
        .filter(|l| l["netns"] == "web" && l["link"] == "eth0")
        .count();
    assert!(
        on_web >= 6,
        "3 requests and 3 replies on web:eth0: {timeline:#?}"
    );

    // `links`: the container's eth0 is the peer of a veth whose bridge is docker0.
    let links = collector.json("links", &["--board", BOARD]);
    let veth = links
        .iter()
        .find(|l| l["peer"] == format!("{BOARD}:web:eth0"))
        .unwrap_or_else(|| panic!("no veth peered with web:eth0: {links:#?}"));
    assert_eq!(veth["master"], format!("{BOARD}:docker0"), "{veth:#}");

    bed.docker(&["rm", "-f", "web"]);
    agent.proc.wait_for("the container let go", PATIENCE, |p| {
        p.stderr().contains(" gone")
    });
    agent.stop();
    collector.stop();
    // The collector's link table has the container's links, by name, and no longer present.
    let rows = collector
        .count("SELECT count(*) FROM links WHERE netns = 'web' AND present = 0 AND name = 'eth0'");
    assert_eq!(rows, 1, "{}", collector.log());
}
