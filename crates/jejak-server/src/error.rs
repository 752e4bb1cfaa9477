//! Library errors as gRPC statuses: through the one error table
//! (`jejak_proto::ErrorCode`), with the rich error details. A fault of the
//! server is logged here, once, where it becomes INTERNAL.

use jejak_proto::{ErrorCode, ServiceError};
use tonic::Status;

/// The status a caller gets for `e`.
pub fn status(e: &(impl ServiceError + ?Sized)) -> Status {
    if matches!(e.error_code(), ErrorCode::Internal) {
        tracing::error!(error = %e, reason = e.reason(), "server fault");
    }
    jejak_proto::to_status(e)
}
