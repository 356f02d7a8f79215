//! Zero-copy header views, one file per header.
