//! The `seedtab` command line (being written).
fn main() {}
