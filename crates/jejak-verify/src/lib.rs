//! Checks jejak's transparency log offline, with no network, storage or
//! runtime: RFC 6962 Merkle proofs, C2SP signed notes, checkpoints,
//! cosignatures and tlog-proofs, the salted field commitments of leaves,
//! and whole provenance bundles.
//!
//! **Invariant:** no tokio, sled or network dependency (other tools, or a
//! browser through WebAssembly, reuse it); the server builds what this
//! crate checks with the same functions.

pub mod bundle;
pub mod checkpoint;
pub mod commit;
pub mod merkle;
pub mod note;
