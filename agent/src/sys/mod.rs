//! The only `unsafe` code of the agent: packet sockets, the TPACKET_V3 ring, namespace entry
//! and rtnetlink. Everything outside this module is safe Rust.

pub mod netlink;
pub mod netns;
pub mod ring;
pub mod socket;
