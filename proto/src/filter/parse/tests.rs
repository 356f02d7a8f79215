use super::*;
use core::fmt::Write;

fn parse_ok(s: &str) -> Filter {
    match parse(s) {
        Ok(f) => f,
        Err(e) => panic!("{s:?}: {e}"),
    }
}

fn shown(f: &Filter) -> heapless::String<512> {
    let mut out = heapless::String::new();
    write!(out, "{f}").unwrap();
    out
}

fn err_of(s: &str) -> (usize, ParseErrorKind) {
    let e = parse(s).expect_err(s);
    (e.offset, e.kind)
}

#[test]
fn and_or_have_equal_precedence_left_to_right() {
    let f = parse_ok("host 1.1.1.1 or host 2.2.2.2 and port 80");
    assert_eq!(shown(&f), "((host 1.1.1.1 or host 2.2.2.2) and port 80)");
    let f = parse_ok("tcp and udp || icmp && arp");
    assert_eq!(shown(&f), "(((tcp and udp) or icmp) and arp)");
}

#[test]
fn not_binds_tightest_and_parens_group() {
    assert_eq!(shown(&parse_ok("not tcp and udp")), "(not tcp and udp)");
    assert_eq!(shown(&parse_ok("!(tcp or udp)")), "not (tcp or udp)");
    assert_eq!(
        shown(&parse_ok("tcp and (udp or icmp)")),
        "(tcp and (udp or icmp))"
    );
    assert_eq!(shown(&parse_ok("! ! ip6")), "not not ip6");
}

#[test]
fn primitives_and_qualifiers() {
    for (input, want) in [
        ("src host 10.0.0.1", "src host 10.0.0.1"),
        ("ip dst host 10.0.0.1", "ip dst host 10.0.0.1"),
        ("ip6 host fe80::1", "ip6 host fe80::1"),
        ("arp host 10.0.0.1", "arp host 10.0.0.1"),
        ("src or dst host 10.0.0.1", "host 10.0.0.1"),
        ("dst and src host ::1", "src and dst host ::1"),
        ("net 10.0.0.0/8", "net 10.0.0.0 mask 255.0.0.0"),
        ("net 10", "net 10.0.0.0 mask 255.0.0.0"),
        ("net 192.168", "net 192.168.0.0 mask 255.255.0.0"),
        (
            "net 10.0.0.0 mask 255.0.255.0",
            "net 10.0.0.0 mask 255.0.255.0",
        ),
        ("net 10.1.2.3", "host 10.1.2.3"),
        ("src net 2001:db8::/32", "src net 2001:db8::/32"),
        ("net ::1", "host ::1"),
        ("port 53", "port 53"),
        ("tcp dst port 0x50", "tcp dst port 80"),
        ("udp portrange 2000-1000", "udp portrange 1000-2000"),
        ("portrange 7-7", "port 7"),
        ("proto 47", "proto 47"),
        ("ip proto \\udp", "ip proto 17"),
        ("proto \\udp", "udp"),
        ("ip6 proto 58", "icmp6"),
        ("ip proto 17", "ip proto 17"),
        ("proto \\tcp", "tcp"),
        ("icmp", "icmp"),
        ("vlan", "vlan"),
        ("vlan 4095", "vlan 4095"),
        ("arp or ip or ip6", "((arp or ip) or ip6)"),
        ("10.0.0.1", "host 10.0.0.1"),
        ("src 10.0.0.1", "src host 10.0.0.1"),
    ] {
        assert_eq!(shown(&parse_ok(input)), want, "{input}");
    }
}

#[test]
fn bare_ids_repeat_the_last_qualifiers() {
    assert_eq!(
        shown(&parse_ok("tcp dst port 80 or 443")),
        "(tcp dst port 80 or tcp dst port 443)"
    );
    assert_eq!(
        shown(&parse_ok("not host 10.0.0.1 and 10.0.0.2")),
        "(not host 10.0.0.1 and host 10.0.0.2)"
    );
    assert_eq!(
        shown(&parse_ok("net 10 or 172.16")),
        "(net 10.0.0.0 mask 255.0.0.0 or net 172.16.0.0 mask 255.255.0.0)"
    );
    assert_eq!(err_of("tcp or 80"), (7, ParseErrorKind::NothingToRepeat));
    assert_eq!(err_of("vlan 3 or 4"), (10, ParseErrorKind::NothingToRepeat));
}

#[test]
fn display_round_trips() {
    for input in [
        "not (src host 10.0.0.1 or dst net fd00::/8) and tcp port 22 or vlan 3",
        "ip6 src and dst host ::2 and portrange 1-1024 or ip proto 89",
        "arp and arp net 10.0.0.0 mask 255.0.255.0",
    ] {
        let f = parse_ok(input);
        assert_eq!(parse_ok(&shown(&f)), f, "{input}");
    }
}

#[test]
fn errors_name_offset_and_expectation() {
    use Expected as E;
    use ParseErrorKind as K;
    for (input, want) in [
        ("", (0, K::Expected(E::Primitive))),
        ("host", (4, K::Expected(E::Address))),
        ("host 1.2.3", (5, K::Expected(E::Address))),
        ("host 1.2.3.4 and", (16, K::Expected(E::Primitive))),
        ("(tcp", (4, K::Expected(E::CloseParen))),
        ("tcp)", (3, K::Expected(E::OperatorOrEnd))),
        ("(tcp = 1)", (5, K::UnexpectedByte)),
        ("tcp udp", (4, K::Expected(E::OperatorOrEnd))),
        ("frob", (0, K::Expected(E::Primitive))),
        ("net 10.0.0.1/8", (4, K::HostBitsSet)),
        ("net fd00::1/8", (4, K::HostBitsSet)),
        ("net 10.0.0.0/33", (13, K::OutOfRange)),
        ("net 10.0.0.0 mask 255.0", (18, K::Expected(E::Mask))),
        ("net 10.0.0.0/", (13, K::Expected(E::PrefixLen))),
        ("port 70000", (5, K::OutOfRange)),
        ("port http", (5, K::Expected(E::Port))),
        ("portrange 5", (10, K::Expected(E::PortRange))),
        ("vlan 4096", (5, K::OutOfRange)),
        ("ip proto 256", (9, K::OutOfRange)),
        ("proto frob", (6, K::Expected(E::Protocol))),
        ("tcp host 10.0.0.1", (4, K::IllegalQualifier)),
        ("arp port 1", (4, K::IllegalQualifier)),
        ("tcp src 10.0.0.1", (8, K::IllegalQualifier)),
        ("ip6 host 10.0.0.1", (9, K::FamilyMismatch)),
        ("ip net fd00::/8", (7, K::FamilyMismatch)),
        ("host 1.2.3.4 & tcp", (13, K::UnexpectedByte)),
    ] {
        assert_eq!(err_of(input), want, "{input}");
    }
}

#[test]
fn bounds_on_size_and_depth() {
    let mut long: heapless::String<1024> = heapless::String::new();
    long.push_str("tcp").unwrap();
    for _ in 0..40 {
        long.push_str(" or udp").unwrap();
    }
    let e = parse(&long).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::TooManyNodes);
    let mut deep: heapless::String<1024> = heapless::String::new();
    for _ in 0..40 {
        deep.push('(').unwrap();
    }
    deep.push_str("tcp").unwrap();
    assert_eq!(
        parse(&deep).unwrap_err(),
        ParseError {
            offset: MAX_DEPTH,
            kind: ParseErrorKind::TooDeep
        }
    );
    let mut nots: heapless::String<1024> = heapless::String::new();
    for _ in 0..(MAX_DEPTH - 1) {
        nots.push_str("!").unwrap();
    }
    nots.push_str("tcp").unwrap();
    assert!(parse(&nots).is_ok());
}

#[test]
fn error_display_is_readable() {
    let e = parse("host 1.2.3.4 and").unwrap_err();
    let mut s: heapless::String<128> = heapless::String::new();
    write!(s, "{e}").unwrap();
    assert_eq!(
        s,
        "filter error at byte 16: expected a primitive, 'not' or '('"
    );
}

#[test]
fn tcpdump_syntax_we_lack_says_so() {
    use ParseErrorKind::Unsupported as U;
    assert_eq!(err_of("ether host 01:02:03:04:05:06"), (0, U("ether")));
    assert_eq!(err_of("tcp and greater 100"), (8, U("greater")));
    assert_eq!(
        err_of("tcp[13] & 2 != 0"),
        (3, U("a byte test (proto[offset])"))
    );
    // A typo is still a typo.
    assert_eq!(
        err_of("portt 80"),
        (0, ParseErrorKind::Expected(Expected::Primitive))
    );
}
