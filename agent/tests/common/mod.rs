//! Helpers of the live tests: beds, the agent process, traffic, and path checks.

#![allow(dead_code)]

pub mod agent;
pub mod bed;
pub mod collector;
pub mod hops;
pub mod traffic;
