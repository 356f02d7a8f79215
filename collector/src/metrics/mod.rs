//! `serve --metrics ADDR`: Prometheus text exposition over plain HTTP.
pub mod histogram;
