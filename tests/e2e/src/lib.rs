//! End-to-end tests on a real cluster: see `tests/product.rs`, one suite for two clusters. What they need to make a
//! cluster run the product's own binaries lives here: container images without Docker (`image`), what the suite asks
//! of a cluster (`cluster`), a real one-node cluster on this machine (`node`) and a kind cluster (`kind`).

pub mod cluster;
pub mod image;
pub mod kind;
pub mod node;
