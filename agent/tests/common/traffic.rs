//! Traffic inside a bed, from in-process sockets made in its namespaces (and the system
//! `ping`): every conversation stays between the bed's namespaces.

use super::bed::{Bed, FAR};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

/// `ping -c count -i interval FAR` from a container; panics unless every reply came.
pub fn ping(bed: &Bed, role: &str, count: u32, interval: &str) {
    bed.exec(
        role,
        &[
            "ping",
            "-q",
            "-n",
            "-c",
            &count.to_string(),
            "-i",
            interval,
            "-W",
            "2",
            FAR,
        ],
    );
}

/// A TCP conversation: a server in `server_role` listening on `listen`, a client in
/// `client_role` connecting to `connect` (a DNAT address or the server's own), `rounds`
/// request/reply exchanges, then a clean close. Returns the client's local port.
pub fn tcp(
    bed: &Bed,
    (server_role, listen): (&str, &str),
    (client_role, connect): (&str, &str),
    rounds: usize,
) -> u16 {
    let listener = bed.in_ns(server_role, || TcpListener::bind(listen).expect("listen"));
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(WAIT)).expect("timeout");
        let mut buf = [0u8; 64];
        loop {
            let n = conn.read(&mut buf).expect("server read");
            if n == 0 {
                return;
            }
            let reply: Vec<u8> = buf[..n].iter().map(u8::to_ascii_uppercase).collect();
            conn.write_all(&reply).expect("server write");
        }
    });
    let connect = connect.to_string();
    let mut client = bed.in_ns(client_role, move || {
        TcpStream::connect_timeout(&connect.parse().expect("address"), WAIT).expect("connect")
    });
    client.set_read_timeout(Some(WAIT)).expect("timeout");
    let port = client.local_addr().expect("local address").port();
    for i in 0..rounds {
        let msg = format!("hello {i}");
        client.write_all(msg.as_bytes()).expect("client write");
        let mut reply = vec![0u8; msg.len()];
        client.read_exact(&mut reply).expect("client read");
        assert_eq!(reply, msg.to_ascii_uppercase().into_bytes());
    }
    drop(client);
    server.join().expect("server");
    port
}

/// `count` UDP datagrams from a client in `client_role` to a server in `server_role` at
/// `server` (its own address), each echoed back. Returns the client's port.
pub fn udp(bed: &Bed, server_role: &str, server: &str, client_role: &str, count: usize) -> u16 {
    let addr = server.to_string();
    let sock = bed.in_ns(server_role, move || UdpSocket::bind(&addr).expect("bind"));
    sock.set_read_timeout(Some(WAIT)).expect("timeout");
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        for _ in 0..count {
            let (n, from) = sock.recv_from(&mut buf).expect("server recv");
            sock.send_to(&buf[..n], from).expect("server send");
        }
    });
    let target = server.to_string();
    let client = bed.in_ns(client_role, move || {
        let c = UdpSocket::bind("0.0.0.0:0").expect("bind");
        c.connect(&target).expect("connect");
        c
    });
    client.set_read_timeout(Some(WAIT)).expect("timeout");
    for i in 0..count {
        // Distinct contents: datagrams differ in their fingerprint even with IPv4 id 0.
        let msg = format!("datagram {i}");
        client.send(msg.as_bytes()).expect("client send");
        let mut buf = [0u8; 64];
        let n = client.recv(&mut buf).expect("client recv");
        assert_eq!(&buf[..n], msg.as_bytes());
    }
    echo.join().expect("echo");
    client.local_addr().expect("local address").port()
}
