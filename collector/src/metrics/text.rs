//! The Prometheus text exposition format, version 0.0.4: `# HELP` and `# TYPE` once per
//! family, then its samples; label values escaped (`\\`, `\"`, `\n`); histograms as
//! cumulative `_bucket{le=...}` lines ending in `+Inf`, then `_sum` and `_count`.
//! <https://prometheus.io/docs/instrumenting/exposition_formats/>

use super::histogram::Snapshot;
use std::fmt::Write;

/// The Content-Type of this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// A page being written, family by family.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

/// Escapes a label value.
fn label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A value as the format spells it: integers without a fraction, `+Inf`, `-Inf`, `NaN`.
fn number(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Nanoseconds as seconds, exactly (Display of f64 never uses an exponent).
pub fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts a family: its help (one line) and type.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn name_and_labels(&mut self, name: &str, labels: &[(&str, &str)], le: Option<&str>) {
        self.out.push_str(name);
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let mut first = true;
        for (k, v) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
            if !first {
                self.out.push(',');
            }
            first = false;
            self.out.push_str(k);
            self.out.push_str("=\"");
            label_value(v, &mut self.out);
            self.out.push('"');
        }
        self.out.push('}');
    }

    /// One sample of a counter or gauge.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.name_and_labels(name, labels, None);
        self.out.push(' ');
        number(value, &mut self.out);
        self.out.push('\n');
    }

    /// One histogram (of nanoseconds, exposed in seconds) under `name`.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Snapshot) {
        let bucket = format!("{name}_bucket");
        let mut le = String::new();
        for &(bound, count) in &h.buckets {
            le.clear();
            number(seconds(bound), &mut le);
            self.name_and_labels(&bucket, labels, Some(&le));
            let _ = writeln!(self.out, " {count}");
        }
        self.name_and_labels(&bucket, labels, Some("+Inf"));
        let _ = writeln!(self.out, " {}", h.count);
        self.name_and_labels(&format!("{name}_sum"), labels, None);
        self.out.push(' ');
        number(seconds(h.sum_ns), &mut self.out);
        self.out.push('\n');
        self.name_and_labels(&format!("{name}_count"), labels, None);
        let _ = writeln!(self.out, " {}", h.count);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escaping() {
        let mut e = Exposition::new();
        e.family("hopcap_x_total", Kind::Counter, "Things.\nMore");
        e.sample("hopcap_x_total", &[("board", "a\"b\\c\nd")], 3.0);
        e.sample("hopcap_y", &[], 0.25);
        e.sample("hopcap_z", &[], f64::INFINITY);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP hopcap_x_total Things.\\nMore\n# TYPE hopcap_x_total counter\n\
             hopcap_x_total{board=\"a\\\"b\\\\c\\nd\"} 3\nhopcap_y 0.25\nhopcap_z +Inf\n"
        );
    }

    #[test]
    fn histogram_lines() {
        let mut e = Exposition::new();
        let h = Snapshot {
            buckets: vec![(1_000, 1), (2_500_000, 3)],
            count: 4,
            sum_ns: 1_500_000_000,
        };
        e.histogram("h_seconds", &[("from", "a")], &h);
        assert_eq!(
            e.finish(),
            "h_seconds_bucket{from=\"a\",le=\"0.000001\"} 1\n\
             h_seconds_bucket{from=\"a\",le=\"0.0025\"} 3\n\
             h_seconds_bucket{from=\"a\",le=\"+Inf\"} 4\n\
             h_seconds_sum{from=\"a\"} 1.5\nh_seconds_count{from=\"a\"} 4\n"
        );
    }
}
