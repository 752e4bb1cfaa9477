//! The codec of the generated servers: prost, except that a request that does
//! not decode (a string that is not UTF-8, a truncated field) is answered
//! INVALID_ARGUMENT naming the message and field, not INTERNAL. The generated
//! clients keep tonic-prost's codec: a reply that does not decode is the
//! server's fault.

use prost::Message;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::Status;
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// `tonic_prost::ProstCodec` with request decoding errors as INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct RequestCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for RequestCodec<T, U> {
    fn default() -> Self {
        RequestCodec(ProstCodec::default())
    }
}

impl<T, U> Codec for RequestCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = RequestDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder(self.0.decoder())
    }
}

/// Decodes a request; see [`RequestCodec`].
#[derive(Debug, Clone)]
pub struct RequestDecoder<U>(ProstDecoder<U>);

impl<U: Message + Default> Decoder for RequestDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        // prost's error names the message and field, e.g.
        // "ReceiveMaterialRequest.lot_id: invalid string value: data is not UTF-8 encoded".
        U::decode(buf).map(Some).map_err(|e| {
            crate::to_status(
                &crate::Refusal::new(
                    crate::ErrorCode::InvalidArgument,
                    format!(
                        "the request could not be decoded: {e}; strings must be UTF-8 and fields of the declared types"
                    ),
                )
                .with_reason("UNDECODABLE_REQUEST"),
            )
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
