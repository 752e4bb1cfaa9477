//! The protobuf API of jejak: generated prost/tonic code for `proto/`, the
//! file descriptor set (for reflection and JSON), and the conversions between
//! proto messages and domain types.
//!
//! **Invariant:** the only crate that knows the wire format: every request
//! becomes a domain value here, once, naming the field that does not fit,
//! and every proto struct is destructured exhaustively, so a new field
//! breaks the build instead of being dropped. It also holds the one error
//! table every transport maps refusals through (`error`).

#[allow(unreachable_pub, clippy::all, clippy::pedantic)] // generated code
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/jejak.v1.rs"));
}

mod bearer;
pub mod codec;
mod convert;
pub mod csv;
pub mod error;
pub mod json;
mod read;
#[cfg(test)]
mod roundtrip;

pub use bearer::{Authenticated, Bearer};
pub use convert::*;
pub use error::{problem_json, to_status, ErrorCode, Refusal, ServiceError};

/// The largest request a server decodes (4 MiB); a larger one is refused
/// with RESOURCE_EXHAUSTED before it is read. The largest command the domain's
/// limits allow (a pack of `validate::MAX_PACKAGES` packages) is far smaller.
pub const MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// The encoded `FileDescriptorSet` of every file in `proto/`, with imports.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/jejak_descriptor.bin"));

/// The descriptor pool of the API, for canonical JSON encoding and decoding.
pub fn descriptor_pool() -> prost_reflect::DescriptorPool {
    prost_reflect::DescriptorPool::decode(FILE_DESCRIPTOR_SET)
        .expect("the descriptor set is produced by the build script from valid protos")
}

#[cfg(test)]
mod tests {
    use jejak_domain::validate;
    use prost::Message;

    use super::*;

    /// The largest pack command the domain allows, every field at its
    /// longest, fits in one request.
    #[test]
    fn the_largest_pack_command_fits_in_a_request() {
        let longest_value = format!("{}.{}", "9".repeat(20), "9".repeat(18));
        let package = |i: usize| v1::Package {
            serial: format!("{i:0>width$}", width = validate::MAX_LOT_ID_LEN),
            quantity: Some(v1::Quantity {
                value: longest_value.clone(),
                unit: v1::Unit::Kg as i32,
            }),
        };
        let pack = v1::PackLotRequest {
            command_id: "c".repeat(validate::MAX_ID_LEN),
            facility_id: "f".repeat(validate::MAX_ID_LEN),
            lot_id: "l".repeat(validate::MAX_LOT_ID_LEN),
            gtin: "08997001009991".into(),
            packages: (0..validate::MAX_PACKAGES).map(package).collect(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: i64::MAX,
                nanos: i32::MAX,
            }),
        };
        let len = pack.encoded_len();
        assert!(
            len * 4 < MAX_MESSAGE_SIZE,
            "a pack of {} packages is {len} bytes; keep it well under {MAX_MESSAGE_SIZE}",
            validate::MAX_PACKAGES
        );
    }
}
