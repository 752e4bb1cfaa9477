//! The client side of the API's authentication: every call carries
//! `authorization: Bearer <token>`.

/// Adds `authorization: Bearer <token>` to every request, when there is a token.
#[derive(Clone, Default)]
pub struct Bearer(Option<tonic::metadata::AsciiMetadataValue>);

impl Bearer {
    /// A blank token means none; a token that is not printable ASCII cannot
    /// be sent and is refused here.
    pub fn new(token: Option<&str>) -> Result<Bearer, String> {
        match token.map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => format!("Bearer {t}")
                .parse()
                .map(|v| Bearer(Some(v)))
                .map_err(|_| "the token is not printable ASCII; copy it again".to_string()),
            None => Ok(Bearer(None)),
        }
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            request.metadata_mut().insert("authorization", v.clone());
        }
        Ok(request)
    }
}

/// A channel whose calls carry a token (or none).
pub type Authenticated<C> = tonic::service::interceptor::InterceptedService<C, Bearer>;
