//! Words for a packet: `ICMP echo request 172.17.0.2 > 198.51.100.101 id 16384 seq 0`, and
//! for a flow: `ICMP 172.17.0.2 > 198.51.100.101 id 16384` (proto's short descriptions).

use hopcap_proto::print::{write_description, write_flow_label};
use hopcap_proto::summary::Summary;

/// A short description of a packet: `ICMP echo request 172.17.0.2 > 198.51.100.101 id 16384 seq 0`.
pub fn describe(s: &Summary) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = write_description(&mut out, s);
    out
}

/// `ICMP 172.17.0.2 > 198.51.100.101 id 16384`, `TCP 10.0.0.1:40000 > 10.0.0.2:80`.
pub fn flow_label(s: &Summary) -> String {
    let mut out = String::new();
    let _ = write_flow_label(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::testbed::tcp4;
    use hopcap_proto::summary::Transport;

    #[test]
    fn descriptions() {
        let syn = tcp4(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80), 7, 0x002, 1, 0);
        assert_eq!(
            describe(&syn),
            "TCP 10.0.0.1:40000 > 10.0.0.2:80 [S] seq 7 len 0"
        );
        let mut psh = tcp4(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80), 7, 0x018, 1, 10);
        assert_eq!(
            describe(&psh),
            "TCP 10.0.0.1:40000 > 10.0.0.2:80 [P.] seq 7 ack 1 len 10"
        );
        if let Transport::Tcp { hdr_len, .. } = &mut psh.transport {
            *hdr_len = 0;
        }
        assert_eq!(
            describe(&psh),
            "TCP 10.0.0.1:40000 > 10.0.0.2:80 [P.] seq 7 ack 1"
        );
    }
}
