//! The protobuf API of jejak: generated prost/tonic code for `proto/`, the
//! file descriptor set (for reflection and JSON), and the conversions between
//! proto messages and domain types.

#[allow(unreachable_pub, clippy::all, clippy::pedantic)] // generated code
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/jejak.v1.rs"));
}

mod convert;

pub use convert::*;

/// The encoded `FileDescriptorSet` of every file in `proto/`, with imports.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/jejak_descriptor.bin"));

/// The descriptor pool of the API, for canonical JSON encoding and decoding.
pub fn descriptor_pool() -> prost_reflect::DescriptorPool {
    prost_reflect::DescriptorPool::decode(FILE_DESCRIPTOR_SET)
        .expect("the descriptor set is produced by the build script from valid protos")
}
