//! `diagram` and `report --html` through the command line, on a database filled from a
//! synthetic bed (the test kit's Pi + Docker flood: a container pinging and uploading to a
//! second Pi through the masquerade, Pi 2's clock 37 ms ahead) plus a board whose names are
//! hostile markup. The SVG and the page parse as XML; the page is rendered by headless
//! Chromium, which must log nothing to its console, and the screenshot must not be blank.
//!
//! Chromium is Debian's `chromium` package (scripts/test.sh installs it); without it the
//! rendering test fails and says so.

#[path = "fill/mod.rs"]
mod fill;

use hopcap_collector::store::sqlite::command::WriteCmd;
use hopcap_collector::store::sqlite::writer::WriterConfig;
use hopcap_collector::store::sqlite::{open_for_writing, WriterHandle};
use hopcap_collector::store::{BoardStats, ObservationBatch};
use hopcap_proto::record::LinkKind;
use hopcap_testkit::bed::{flood, icmp_echo, link, Bed};
use hopcap_testkit::ScratchDir;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hopcap-collector");
/// Sorts after `pi1`: the correlator's reference clock is the first board by name, and a
/// board with no traffic to the others as reference would leave every offset untied.
const HOSTILE_BOARD: &str = "z<script>alert(1)</script>&\"'\u{1b}[2J";
const HOSTILE_LINK: &str = "<img src=x onerror=alert(2)>";

/// The flood bed, and a board with hostile names that sees one echo on two links.
fn bed() -> Bed {
    let mut bed = flood(300, 5_000_000, 37_000_000, 7);
    let a = bed.add(link(HOSTILE_BOARD, "", HOSTILE_LINK, 2, LinkKind::Physical));
    let b = bed.add(link(HOSTILE_BOARD, "n\"s&", "eth0", 3, LinkKind::Veth));
    let echo = icmp_echo([10, 9, 0, 1], [10, 9, 0, 2], true, 5, 1, 9);
    let t = 1_700_000_000_000_000_000;
    bed.see(1_000_000, (HOSTILE_BOARD, b), true, t, &echo);
    bed.see(1_000_000, (HOSTILE_BOARD, a), true, t + 40_000, &echo);
    bed
}

/// Writes the bed through the library's writer, as ingest would: hello with the link table,
/// batches of 500 observations, and two stats reports per board (kernel drops 0 then 3).
fn fill(path: &Path, bed: Bed) {
    let w =
        WriterHandle::spawn(open_for_writing(path).unwrap(), WriterConfig::default(), 8).unwrap();
    let parts = bed.into_parts();
    for (name, links) in &parts.links {
        let s = fill::hello(&w, name, links);
        let rows = fill::rows_of(&parts.hops, name, &s);
        for (seq, chunk) in rows.chunks(500).enumerate() {
            let batch = ObservationBatch {
                seq: Some(seq as u64),
                ..ObservationBatch::new(s.board, chunk.to_vec())
            };
            w.sender().send(WriteCmd::Batch(batch)).unwrap();
        }
        for kernel_drops in [0, 3] {
            let stats = BoardStats {
                kernel_packets: 1000,
                kernel_drops,
                ..BoardStats::default()
            };
            w.sender()
                .send(WriteCmd::Stats {
                    board: s.board,
                    stats,
                })
                .unwrap();
        }
    }
    w.finish();
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn filled(dir: &ScratchDir) -> PathBuf {
    let db = dir.join("r.db");
    fill(&db, bed());
    db
}

#[test]
fn diagram_in_every_format() {
    let dir = ScratchDir::new("cli-diagram").unwrap();
    let db = filled(&dir);
    let db = db.to_str().unwrap();
    let svg_path = dir.join("d.svg");
    ok(run(&[
        "diagram",
        "--db",
        db,
        "-o",
        svg_path.to_str().unwrap(),
    ]));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    let titles: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("title"))
        .filter_map(|n| n.text())
        .collect();
    for hop in [
        "pi1:ctr:eth0",
        "pi1:vethc426d5b",
        "pi1:docker0",
        "pi1:wlan0",
        "pi2:wlan0",
    ] {
        assert!(titles.contains(&hop), "{hop} in {titles:?}");
    }
    assert!(titles.contains(&"z<script>alert(1)</script>&\"'\\x1b[2J:<img src=x onerror=alert(2)>"));
    assert!(doc
        .descendants()
        .all(|n| !n.has_tag_name("script") && !n.has_tag_name("img")));
    assert!(svg.contains("SNAT ×"), "the masquerade is on an edge");

    let dot =
        String::from_utf8(ok(run(&["diagram", "--db", db, "--format", "dot"])).stdout).unwrap();
    assert!(dot.starts_with("digraph hopcap {") && dot.contains("subgraph cluster_"));
    assert!(dot.contains("label=\"pi1:docker0\\nbridge"), "{dot}");
    let mermaid = String::from_utf8(
        ok(run(&[
            "diagram", "--db", db, "--format", "mermaid", "--filter", "tcp",
        ]))
        .stdout,
    )
    .unwrap();
    assert!(mermaid.starts_with("flowchart LR\n"));
    assert!(
        !mermaid.contains("#60;script"),
        "filtered to tcp: the hostile board's echo is out"
    );

    let bad = run(&["diagram", "--db", db, "--format", "png"]);
    assert!(!bad.status.success());
    let unwritable = run(&["diagram", "--db", db, "-o", "/nonexistent-hopcap-dir/d.svg"]);
    assert!(!unwritable.status.success());
    assert!(
        String::from_utf8_lossy(&unwritable.stderr).contains("/nonexistent-hopcap-dir/d.svg"),
        "the error names the file"
    );
}

/// Headless Chromium, found on PATH (Debian: `chromium`).
fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        });
        if let Some(p) = found {
            return p;
        }
    }
    panic!(
        "headless Chromium is needed to render the report: `apt-get install -y chromium` \
         (scripts/test.sh installs it, so CI has it)"
    );
}

/// Runs Chromium headless on `page` with `args`, in its own process group and profile,
/// killed (the group) after 90 s. Returns stdout, stderr and how long it took.
fn headless(page: &Path, profile: &Path, args: &[&str]) -> (String, String, Duration) {
    use std::os::unix::process::CommandExt;
    let started = Instant::now();
    let child = Command::new(chromium())
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let pid = child.id();
    let (done, waited) = std::sync::mpsc::channel();
    let watchdog = std::thread::spawn(move || {
        if waited.recv_timeout(Duration::from_secs(90)).is_err() {
            // Still running: kill the group we started (the browser and its helpers).
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
    });
    let out = child.wait_with_output().expect("chromium output");
    let _ = done.send(());
    let _ = watchdog.join();
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "chromium failed ({:?} after {took:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        took,
    )
}

/// Console lines Chromium logged (`INFO:CONSOLE…`: a script error, a refused load).
fn console_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect()
}

/// Pixels of an RGB(A) PNG that are not near white, and those with clear colour (not grey).
fn ink(png_path: &Path) -> (usize, usize, usize) {
    let decoder = png::Decoder::new(std::fs::File::open(png_path).expect("screenshot"));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let channels = info.color_type.samples();
    assert!(
        channels >= 3 && info.bit_depth == png::BitDepth::Eight,
        "{info:?}"
    );
    let pixels = buf[..info.buffer_size()].chunks(channels);
    let total = (info.width * info.height) as usize;
    let (mut dark, mut coloured) = (0, 0);
    for p in pixels {
        let (lo, hi) = (p[..3].iter().min().unwrap(), p[..3].iter().max().unwrap());
        dark += usize::from(*lo < 220);
        coloured += usize::from(hi - lo > 60);
    }
    (total, dark, coloured)
}

#[test]
fn report_renders_in_headless_chromium() {
    let dir = ScratchDir::new("cli-report").unwrap();
    let db = filled(&dir);
    let html_path = dir.join("report.html");
    let started = Instant::now();
    ok(run(&[
        "report",
        "--db",
        db.to_str().unwrap(),
        "--html",
        html_path.to_str().unwrap(),
    ]));
    let made = started.elapsed();
    let html = std::fs::read_to_string(&html_path).unwrap();
    let doc = roxmltree::Document::parse(html.trim_start_matches("<!DOCTYPE html>\n"))
        .expect("the page parses as XML");
    assert!(
        doc.descendants().all(|n| !n.has_tag_name("script")
            && !n.has_tag_name("img")
            && n.attribute("src").is_none()),
        "no script, nothing to fetch"
    );
    assert!(
        html.contains("<td class=\"n\">+37.0"),
        "pi2's clock offset, 37 ms"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));

    // A control page first: the console check must see what a broken page logs.
    let control = dir.join("control.html");
    std::fs::write(
        &control,
        "<!DOCTYPE html><html><body><script>console.error('control'); nothing();</script></body></html>",
    )
    .unwrap();
    let (_, err, _) = headless(&control, &dir.join("profile-control"), &["--dump-dom"]);
    assert_eq!(console_lines(&err).len(), 2, "{err}");

    let shot = dir.join("report.png");
    let (_, err, took) = headless(
        &html_path,
        &dir.join("profile"),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,2000",
            "--hide-scrollbars",
        ],
    );
    assert!(
        console_lines(&err).is_empty(),
        "console: {:?}",
        console_lines(&err)
    );
    let (total, dark, coloured) = ink(&shot);
    eprintln!(
        "report: {} bytes, made in {made:?}, screenshot in {took:?}: {dark} of {total} pixels drawn, {coloured} in colour",
        html.len()
    );
    // To look at them: HOPCAP_REPORT_COPY=DIR keeps the page, its screenshot and the
    // database there.
    if let Some(keep) = std::env::var_os("HOPCAP_REPORT_COPY") {
        let keep = PathBuf::from(keep);
        let _ = std::fs::copy(&html_path, keep.join("report.html"));
        let _ = std::fs::copy(&shot, keep.join("report.png"));
        let _ = std::fs::copy(&db, keep.join("report.db"));
    }
    assert!(dark * 100 > total, "blank page? {dark} of {total} pixels");
    assert!(
        coloured > 2_000,
        "no diagram or histogram drawn? {coloured}"
    );

    let (dom, err, _) = headless(&html_path, &dir.join("profile-dom"), &["--dump-dom"]);
    assert!(
        console_lines(&err).is_empty(),
        "console: {:?}",
        console_lines(&err)
    );
    for id in ["diagram", "flows", "latency", "loss", "clocks", "drops"] {
        assert!(
            dom.contains(&format!("<section id=\"{id}\">")),
            "section {id}"
        );
    }
    assert!(dom.contains("<svg") && dom.contains("<figure>"));
}
