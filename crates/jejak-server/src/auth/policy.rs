//! Who may call what: the route table ([`need`]) and the caller the
//! authentication layer established ([`Caller`]), with the view it reads
//! through.

use std::net::SocketAddr;
use std::sync::Arc;

use jejak_domain::Role;
use jejak_proto::{ErrorCode, Refusal};
use jejak_read::View;
use tonic::{Request, Status};

/// What a route needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone, token or not: label lookup, the public view of a lot, health.
    Public,
    /// Any valid token; the handler narrows what the caller sees.
    Token,
    /// A token that may write: administrators and operators (the handler
    /// checks the facility).
    Capture,
    /// Administrators and regulators: exports of the whole log.
    Regulator,
    /// Administrators only.
    Admin,
}

/// What each route needs. Every RPC of the API is listed; anything else
/// (an unknown path) needs an administrator, so a route added without a
/// line here is closed, not open.
pub fn need(path: &str) -> Need {
    // Label URIs, label images and the resolver's description: for anyone
    // who scans a product.
    if jejak_resolver::is_public_path(path) {
        return Need::Public;
    }
    // The transparency log's checkpoint, key and tiles: commitments only.
    if path.starts_with(crate::tlog::PREFIX) {
        return Need::Public;
    }
    // Whole documents of the log: like ExportEvents.
    if path == crate::epcis::EXPORT {
        return Need::Regulator;
    }
    // Capture and its jobs; each event's facility is checked by the job.
    if path == crate::epcis::CAPTURE || path.starts_with("/epcis/capture/") {
        return Need::Capture;
    }
    // The console: its pages sign in with a token and keep a session of
    // their own; each handler checks it.
    if path == crate::console::PREFIX || path.starts_with("/console/") {
        return Need::Public;
    }
    // Filings: a token; the reader decides whose lots and facilities.
    if path.starts_with(crate::regulator::PREFIX) {
        return Need::Token;
    }
    // EPCIS queries: anyone; the view decides what each caller receives.
    if path.starts_with(crate::epcis::PREFIX) {
        return Need::Public;
    }
    let Some((service, method)) = path.trim_start_matches('/').split_once('/') else {
        return Need::Admin;
    };
    match (service, method) {
        ("grpc.health.v1.Health", _)
        | ("grpc.reflection.v1.ServerReflection", _)
        | ("grpc.reflection.v1alpha.ServerReflection", _) => Need::Public,
        (
            "jejak.v1.TraceService",
            "LookupLabel" | "GetLot" | "GetStatus" | "GetBundle" | "GetCheckpoint" | "ProveConsistency",
        ) => Need::Public,
        ("jejak.v1.TraceService", "ProveInclusion" | "WatchAlerts") => Need::Token,
        (
            "jejak.v1.TraceService",
            "BackwardTrace" | "ForwardTrace" | "RecallReport" | "OriginShares" | "LotHistory",
        ) => Need::Token,
        ("jejak.v1.TraceService", "ExportEvents" | "ExportLog") => Need::Regulator,
        (
            "jejak.v1.CaptureService",
            "RegisterParty" | "RegisterProduct" | "ReceiveMaterial" | "InspectLot" | "ProcessLots" | "PackLot"
            | "ShipLot" | "ChangeLotStatus" | "VoidEvent" | "CaptureStream",
        ) => Need::Capture,
        ("jejak.v1.CaptureService", "RegisterFacility" | "RegisterQualityStandard") => Need::Admin,
        ("jejak.v1.AdminService", _) => Need::Admin,
        _ => Need::Admin,
    }
}

/// Who is calling, as the authentication layer established it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub peer: Option<SocketAddr>,
    pub principal: Principal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No token.
    Public,
    Token {
        id: String,
        role: Role,
        /// Operators: where they may capture.
        facilities: Arc<[String]>,
        /// Members: the party they speak for.
        party: Option<String>,
    },
}

impl Caller {
    /// The caller of a request that passed the layer; public when the
    /// layer did not run (it always does in a server).
    pub fn of<T>(request: &Request<T>) -> Caller {
        request.extensions().get::<Caller>().cloned().unwrap_or(Caller {
            peer: request.remote_addr(),
            principal: Principal::Public,
        })
    }

    pub fn role(&self) -> Option<Role> {
        match &self.principal {
            Principal::Public => None,
            Principal::Token { role, .. } => Some(*role),
        }
    }

    /// What every event this caller causes records as its actor.
    pub fn actor(&self) -> String {
        match &self.principal {
            Principal::Public => "public".into(),
            Principal::Token { id, role, .. } => format!("token:{id} ({role})"),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match &self.principal {
            Principal::Public => "a caller without a token".into(),
            Principal::Token { id, role, .. } => format!("token {id} ({role})"),
        }
    }

    /// How much of each lot this caller sees: administrators and
    /// regulators everything, operators their facilities' lots and members
    /// their party's, the rest (and callers without a token) the public view.
    pub fn view(&self) -> View {
        match &self.principal {
            Principal::Public => View::Public,
            Principal::Token {
                role: Role::Admin | Role::Regulator,
                ..
            } => View::Full,
            Principal::Token {
                id,
                role,
                facilities,
                party,
            } => View::Scoped {
                who: format!("token {id} ({role})"),
                facilities: facilities.clone(),
                party: party.clone(),
            },
        }
    }

    /// Whether this caller passes `need` (the facility-level check of
    /// capture is the handler's).
    pub fn allows(&self, need: Need) -> bool {
        match (need, self.role()) {
            (Need::Public, _) => true,
            (_, None) => false,
            (Need::Token, Some(_)) => true,
            (Need::Capture, Some(r)) => matches!(r, Role::Admin | Role::Operator),
            (Need::Regulator, Some(r)) => matches!(r, Role::Admin | Role::Regulator),
            (Need::Admin, Some(r)) => r == Role::Admin,
        }
    }

    /// UNAUTHENTICATED without a token, PERMISSION_DENIED with one that
    /// does not reach.
    pub fn require(&self, need: Need, what: &str) -> Result<(), Status> {
        self.refusal(need, what)
            .map_or(Ok(()), |r| Err(jejak_proto::to_status(&r)))
    }

    /// Why this caller does not pass `need`, if it does not.
    pub fn refusal(&self, need: Need, what: &str) -> Option<Refusal> {
        if self.allows(need) {
            return None;
        }
        Some(match self.principal {
            Principal::Public => Refusal::new(
                ErrorCode::Unauthenticated,
                format!("{what} needs an access token: send `authorization: Bearer <token>`"),
            ),
            _ => Refusal::new(
                ErrorCode::PermissionDenied,
                format!("{} may not {what}", self.describe()),
            ),
        })
    }

    /// May this caller record events at `facility`?
    pub fn may_capture_at(&self, facility: &str) -> Result<(), Status> {
        self.capture_refusal(facility)
            .map_or(Ok(()), |r| Err(jejak_proto::to_status(&r)))
    }

    /// Why this caller may not record events at `facility`, if it may not.
    pub fn capture_refusal(&self, facility: &str) -> Option<Refusal> {
        if let Some(r) = self.refusal(Need::Capture, "capture events") {
            return Some(r);
        }
        match &self.principal {
            Principal::Token {
                role: Role::Operator,
                facilities,
                id,
                ..
            } if !facilities.iter().any(|f| f == facility) => Some(
                Refusal::new(
                    ErrorCode::PermissionDenied,
                    format!(
                        "token {id} (operator of {}) may not capture at facility {}",
                        facilities.join(", "),
                        jejak_domain::quote(facility)
                    ),
                )
                .with_reason("WRONG_FACILITY"),
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_route_has_its_need_and_unknown_routes_are_closed() {
        assert_eq!(need("/jejak.v1.TraceService/LookupLabel"), Need::Public);
        assert_eq!(need("/log/tile/0/000"), Need::Public);
        assert_eq!(need("/jejak.v1.TraceService/BackwardTrace"), Need::Token);
        assert_eq!(need("/jejak.v1.CaptureService/ReceiveMaterial"), Need::Capture);
        assert_eq!(need("/jejak.v1.CaptureService/RegisterFacility"), Need::Admin);
        assert_eq!(need("/jejak.v1.CaptureService/CaptureStream"), Need::Capture);
        assert_eq!(need("/jejak.v1.TraceService/ExportEvents"), Need::Regulator);
        assert_eq!(need("/jejak.v1.TraceService/ExportLog"), Need::Regulator);
        assert_eq!(need("/grpc.health.v1.Health/Check"), Need::Public);
        assert_eq!(need("/metrics"), Need::Admin);
        assert_eq!(need("/jejak.v1.CaptureService/Unknown"), Need::Admin);
        assert_eq!(need("/"), Need::Admin);
    }
}
