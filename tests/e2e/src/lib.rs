//! End-to-end tests on a real cluster: see `tests/`. What they need to make a cluster run the product's own
//! binaries lives here: container images without Docker (`image`), and a real one-node cluster on this machine
//! (`node`).

pub mod image;
pub mod node;
