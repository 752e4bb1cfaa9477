//! Who may do what: every RPC called with every kind of caller (each role,
//! no token, a revoked, an expired and a malformed token, another
//! facility's operator), what each role sees of a lot, the actor on every
//! event, rate limits, the token CLI, failed-authentication logs, and TLS.

use jejak_server::demo::ids::{
    DEMAK, DRIED_PADDY, FARMERS_TANIMAJU, PADDY, PADDY_INTAKE_STANDARD, PREMIUM_RICE_GTIN, RICE_BAG_LOT, TEGAL,
    UKM_BERKAH,
};
use std::sync::Arc;
use std::time::Duration;

use jejak_domain::{ManualClock, Time};

use jejak_proto::v1 as p;
use jejak_testkit::{run_cli, wait_until, Conn, Server, ServerOptions};
use tonic::Code;

use crate::support::WAIT;

/// The callers of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Admin,
    Operator,
    OtherOperator,
    Member,
    Regulator,
    Public,
    Revoked,
    Expired,
    Malformed,
}

const EVERYONE: [Who; 9] = [
    Who::Admin,
    Who::Operator,
    Who::OtherOperator,
    Who::Member,
    Who::Regulator,
    Who::Public,
    Who::Revoked,
    Who::Expired,
    Who::Malformed,
];

struct Callers {
    admin: String,
    operator: String,
    other_operator: String,
    member: String,
    regulator: String,
    revoked: String,
    expired: String,
}

impl Callers {
    fn token(&self, who: Who) -> Option<String> {
        Some(match who {
            Who::Admin => self.admin.clone(),
            Who::Operator => self.operator.clone(),
            Who::OtherOperator => self.other_operator.clone(),
            Who::Member => self.member.clone(),
            Who::Regulator => self.regulator.clone(),
            Who::Revoked => self.revoked.clone(),
            Who::Expired => self.expired.clone(),
            Who::Malformed => "jejak_tk00_not-a-token".into(),
            Who::Public => return None,
        })
    }
}

fn token_id(token: &str) -> String {
    token.split('_').nth(1).expect("jejak_<id>_<secret>").to_string()
}

/// A demo server in this process, on a clock the test moves, with a token
/// for every caller; the expired one expired by moving the clock, not by
/// waiting.
async fn demo_with_callers(opts: ServerOptions) -> (Server, Callers) {
    let clock = Arc::new(ManualClock::new(Time::now()));
    let server = Server::start(ServerOptions {
        demo: true,
        clock: Some(clock.clone()),
        ..opts
    })
    .expect("start a demo server");
    let owner = server
        .trace()
        .await
        .expect("trace client")
        .get_lot(p::GetLotRequest {
            lot_id: RICE_BAG_LOT.into(),
        })
        .await
        .expect("the demo lot")
        .into_inner()
        .owner_id;
    let year = Duration::from_secs(365 * 86_400);
    let issue = |role, facilities: &'static [&'static str], party: String, life| {
        let server = &server;
        async move {
            server
                .issue_token(role, facilities, &party, life)
                .await
                .expect("issue a token")
        }
    };
    let revoked = issue(p::AccessRole::Operator, &[DEMAK], String::new(), year).await;
    let hour = Duration::from_secs(3600);
    let expired = issue(p::AccessRole::Operator, &[DEMAK], String::new(), hour).await;
    let callers = Callers {
        admin: server.admin_token.clone().expect("an administrator token"),
        operator: issue(p::AccessRole::Operator, &[DEMAK], String::new(), year).await,
        other_operator: issue(p::AccessRole::Operator, &[TEGAL], String::new(), year).await,
        member: issue(p::AccessRole::Member, &[], owner, year).await,
        regulator: issue(p::AccessRole::Regulator, &[], String::new(), year).await,
        revoked,
        expired,
    };
    server
        .admin()
        .await
        .expect("admin client")
        .revoke_token(p::RevokeTokenRequest {
            command_id: "revoke-test".into(),
            token_id: token_id(&callers.revoked),
            reason: "tablet lost".into(),
        })
        .await
        .expect("revoke");
    // The short-lived token expires when the clock passes its hour.
    let mut t =
        p::trace_service_client::TraceServiceClient::new(server.conn(Some(&callers.expired)).await.expect("conn"));
    t.get_status(p::GetStatusRequest {})
        .await
        .expect("the short-lived token works within its hour");
    clock.advance(2 * hour);
    let refusal = t
        .get_status(p::GetStatusRequest {})
        .await
        .expect_err("two hours later the token has expired");
    assert_eq!(refusal.code(), Code::Unauthenticated);
    assert!(refusal.message().contains("expired"), "{}", refusal.message());
    (server, callers)
}

/// Every RPC of the API, in order; each returns the call's status code.
const RPCS: [&str; 24] = [
    "RegisterParty",
    "RegisterFacility",
    "RegisterProduct",
    "RegisterQualityStandard",
    "ReceiveMaterial",
    "InspectLot",
    "ProcessLots",
    "PackLot",
    "ShipLot",
    "ChangeLotStatus",
    "VoidEvent",
    "BackwardTrace",
    "ForwardTrace",
    "OriginShares",
    "LotHistory",
    "GetLot",
    "LookupLabel",
    "GetStatus",
    "ExportEvents",
    "CreateToken",
    "ListTokens",
    "RevokeToken",
    "Health",
    "Metrics",
];

fn code<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Code {
    match r {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

/// Calls `rpc` as `token`. Capture commands are well-formed; those past
/// authorisation either write (receipts, registrations) or are refused by
/// a domain rule (unknown lot), never by authorisation.
async fn call(server: &Server, token: Option<&str>, rpc: &str, n: usize) -> Code {
    let conn: Conn = server.conn(token).await.expect("connect");
    let mut c = p::capture_service_client::CaptureServiceClient::new(conn.clone());
    let mut t = p::trace_service_client::TraceServiceClient::new(conn.clone());
    let mut a = p::admin_service_client::AdminServiceClient::new(conn.clone());
    let id = format!("m-{rpc}-{n}");
    let target = || {
        Some(p::Target {
            kind: Some(p::target::Kind::LotId(RICE_BAG_LOT.into())),
        })
    };
    match rpc {
        "RegisterParty" => code(
            c.register_party(p::RegisterPartyRequest {
                command_id: id.clone(),
                party: Some(p::Party {
                    id: format!("pty-{n}"),
                    name: "Kelompok Tani Uji".into(),
                    roles: vec![p::PartyRole::Supplier as i32],
                    ..Default::default()
                }),
            })
            .await,
        ),
        "RegisterFacility" => code(
            c.register_facility(p::RegisterFacilityRequest {
                command_id: id.clone(),
                facility: Some(p::Facility {
                    id: format!("fac-new-{n}"),
                    name: "Sentra Baru".into(),
                    sector: p::Sector::Rice as i32,
                    district: "Demak".into(),
                    operator_id: "op-dmk-kud-sidorukun".into(),
                    location: None,
                    gln: String::new(),
                    requires_timber_legality: false,
                }),
            })
            .await,
        ),
        "RegisterProduct" => code(
            c.register_product(p::RegisterProductRequest {
                command_id: id.clone(),
                product: Some(p::Product {
                    id: format!("prd-new-{n}"),
                    name: "Gabah Uji".into(),
                    sector: p::Sector::Rice as i32,
                    kind: p::ProductKind::Raw as i32,
                    unit: p::Unit::Kg as i32,
                    gtin: String::new(),
                }),
            })
            .await,
        ),
        "RegisterQualityStandard" => code(
            c.register_quality_standard(p::RegisterQualityStandardRequest {
                command_id: id.clone(),
                standard: Some(p::QualityStandard {
                    id: format!("std-new-{n}"),
                    name: "Uji".into(),
                    reference: "uji".into(),
                    parameters: vec![p::Parameter {
                        code: "kadar_air".into(),
                        name: "Kadar air".into(),
                        unit: "%".into(),
                        min: String::new(),
                        max: "14".into(),
                        required: true,
                    }],
                }),
            })
            .await,
        ),
        "ReceiveMaterial" => code(
            c.receive_material(p::ReceiveMaterialRequest {
                command_id: id.clone(),
                facility_id: DEMAK.into(),
                lot_id: format!("MX-{n}"),
                product_id: PADDY.into(),
                quantity: Some(p::Quantity {
                    value: "100".into(),
                    unit: p::Unit::Kg as i32,
                }),
                owner_id: UKM_BERKAH.into(),
                supplier_id: FARMERS_TANIMAJU.into(),
                ..Default::default()
            })
            .await,
        ),
        "InspectLot" => code(
            c.inspect_lot(p::InspectLotRequest {
                command_id: id.clone(),
                facility_id: DEMAK.into(),
                lot_id: "NO-SUCH-RICE_BAG_LOT".into(),
                standard_id: PADDY_INTAKE_STANDARD.into(),
                ..Default::default()
            })
            .await,
        ),
        "ProcessLots" => code(
            c.process_lots(p::ProcessLotsRequest {
                command_id: id.clone(),
                facility_id: DEMAK.into(),
                process_step: "pengeringan".into(),
                inputs: vec![p::LotInput {
                    lot_id: "NO-SUCH-RICE_BAG_LOT".into(),
                    quantity: Some(p::Quantity {
                        value: "1".into(),
                        unit: p::Unit::Kg as i32,
                    }),
                }],
                outputs: vec![p::LotOutput {
                    lot_id: format!("MXO-{n}"),
                    product_id: DRIED_PADDY.into(),
                    quantity: Some(p::Quantity {
                        value: "1".into(),
                        unit: p::Unit::Kg as i32,
                    }),
                    owner_id: String::new(),
                }],
                ..Default::default()
            })
            .await,
        ),
        "PackLot" => code(
            c.pack_lot(p::PackLotRequest {
                command_id: id.clone(),
                facility_id: DEMAK.into(),
                lot_id: "NO-SUCH-RICE_BAG_LOT".into(),
                gtin: PREMIUM_RICE_GTIN.into(),
                packages: vec![p::Package {
                    serial: format!("MXS-{n}"),
                    quantity: Some(p::Quantity {
                        value: "5".into(),
                        unit: p::Unit::Kg as i32,
                    }),
                }],
                ..Default::default()
            })
            .await,
        ),
        "ShipLot" => code(
            c.ship_lot(p::ShipLotRequest {
                command_id: id.clone(),
                facility_id: DEMAK.into(),
                lot_id: "NO-SUCH-RICE_BAG_LOT".into(),
                quantity: Some(p::Quantity {
                    value: "1".into(),
                    unit: p::Unit::Kg as i32,
                }),
                consignee_id: "cus-dmk-bulog".into(),
                ..Default::default()
            })
            .await,
        ),
        "ChangeLotStatus" => code(
            c.change_lot_status(p::ChangeLotStatusRequest {
                command_id: id.clone(),
                facility_id: DEMAK.into(),
                lot_id: "NO-SUCH-RICE_BAG_LOT".into(),
                status: p::LotStatus::OnHold as i32,
                reason: "uji".into(),
                ..Default::default()
            })
            .await,
        ),
        "VoidEvent" => code(
            c.void_event(p::VoidEventRequest {
                command_id: id.clone(),
                facility_id: DEMAK.into(),
                event_id: "no-such-event".into(),
                reason: "uji".into(),
                ..Default::default()
            })
            .await,
        ),
        "BackwardTrace" => code(
            t.backward_trace(p::TraceRequest {
                target: target(),
                ..Default::default()
            })
            .await,
        ),
        "ForwardTrace" => code(
            t.forward_trace(p::TraceRequest {
                target: target(),
                ..Default::default()
            })
            .await,
        ),
        "OriginShares" => code(t.origin_shares(p::OriginSharesRequest { target: target() }).await),
        "LotHistory" => code(
            t.lot_history(p::LotHistoryRequest {
                lot_id: RICE_BAG_LOT.into(),
                as_of: None,
            })
            .await,
        ),
        "GetLot" => code(
            t.get_lot(p::GetLotRequest {
                lot_id: RICE_BAG_LOT.into(),
            })
            .await,
        ),
        "LookupLabel" => code(
            t.lookup_label(p::LookupLabelRequest {
                uri: format!("https://id.example.org/01/08997001001018/10/{RICE_BAG_LOT}/21/DMK5P-000001"),
            })
            .await,
        ),
        "GetStatus" => code(t.get_status(p::GetStatusRequest {}).await),
        "ExportEvents" => match t
            .export_events(p::ExportEventsRequest {
                from_position: 1,
                limit: 3,
            })
            .await
        {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                let mut n = 0;
                while let Some(e) = stream.message().await.expect("the export streams") {
                    assert_eq!(e.position, n + 1);
                    n += 1;
                }
                assert_eq!(n, 3, "limit 3");
                Code::Ok
            }
            Err(s) => s.code(),
        },
        "CreateToken" => code(
            a.create_token(p::CreateTokenRequest {
                command_id: id.clone(),
                role: p::AccessRole::Regulator as i32,
                // A month from now.
                expires_at: Some(prost_types::Timestamp {
                    seconds: i64::try_from(
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .expect("after 1970")
                            .as_secs(),
                    )
                    .expect("fits")
                        + 30 * 86_400,
                    nanos: 0,
                }),
                label: "matrix".into(),
                ..Default::default()
            })
            .await,
        ),
        "ListTokens" => code(a.list_tokens(p::ListTokensRequest { include_inactive: true }).await),
        "RevokeToken" => code(
            a.revoke_token(p::RevokeTokenRequest {
                command_id: id.clone(),
                token_id: "tk0000000000000000".into(),
                reason: "uji".into(),
            })
            .await,
        ),
        "Health" => code(
            tonic_health::pb::health_client::HealthClient::new(conn)
                .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
                .await,
        ),
        "Metrics" => {
            let reply = http_get(server, "/metrics", token).expect("GET /metrics");
            // The HTTP status, mapped to the gRPC code it stands for.
            match reply.split_whitespace().nth(1) {
                Some("200") => Code::Ok,
                Some("401") => Code::Unauthenticated,
                Some("403") => Code::PermissionDenied,
                other => panic!("/metrics answered {other:?}: {reply}"),
            }
        }
        other => panic!("no call for {other}"),
    }
}

/// What `who` calling `rpc` must get: `Ok(())` for "past authorisation"
/// (the call's own outcome), or the refusal code.
fn expected(rpc: &str, who: Who) -> Result<(), Code> {
    use Who::*;
    if matches!(who, Revoked | Expired | Malformed) {
        // A bad token is refused everywhere, public routes included.
        return Err(Code::Unauthenticated);
    }
    let allowed: &[Who] = match rpc {
        "GetLot" | "LookupLabel" | "GetStatus" | "Health" => &EVERYONE,
        "RegisterParty" | "RegisterProduct" => &[Admin, Operator, OtherOperator],
        "RegisterFacility" | "RegisterQualityStandard" | "CreateToken" | "ListTokens" | "RevokeToken" | "Metrics" => {
            &[Admin]
        }
        "ExportEvents" => &[Admin, Regulator],
        // The member's party owns the lot; the other operator's facility is elsewhere.
        "BackwardTrace" | "ForwardTrace" | "OriginShares" | "LotHistory" => &[Admin, Operator, Member, Regulator],
        _ => &[Admin, Operator],
    };
    match (allowed.contains(&who), who) {
        (true, _) => Ok(()),
        (false, Public) => Err(Code::Unauthenticated),
        (false, _) => Err(Code::PermissionDenied),
    }
}

/// Codes that mean the call passed authorisation.
fn passed(rpc: &str, code: Code) -> bool {
    match rpc {
        // Well-formed and new: recorded.
        "RegisterParty"
        | "RegisterFacility"
        | "RegisterProduct"
        | "RegisterQualityStandard"
        | "ReceiveMaterial"
        | "CreateToken" => code == Code::Ok,
        // Refused by the domain, not by authorisation.
        "InspectLot" | "ProcessLots" | "PackLot" | "ShipLot" | "ChangeLotStatus" | "VoidEvent" | "RevokeToken" => {
            code == Code::NotFound
        }
        _ => code == Code::Ok,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_with_every_caller_is_allowed_or_refused_as_its_role_says() {
    let (server, callers) = demo_with_callers(ServerOptions::default()).await;
    let mut n = 0;
    let mut failures = Vec::new();
    for who in EVERYONE {
        let token = callers.token(who);
        let before = server.status().await.expect("status").log_position;
        for rpc in RPCS {
            n += 1;
            let got = call(&server, token.as_deref(), rpc, n).await;
            let ok = match expected(rpc, who) {
                Ok(()) => passed(rpc, got),
                Err(want) => got == want,
            };
            if !ok {
                failures.push(format!("{who:?} {rpc}: got {got:?}, expected {:?}", expected(rpc, who)));
            }
        }
        let after = server.status().await.expect("status").log_position;
        let writes = match who {
            // Four registrations, a receipt and a token.
            Who::Admin => 6,
            // Party, product and a receipt.
            Who::Operator => 3,
            Who::OtherOperator => 2,
            _ => 0,
        };
        if after - before != writes {
            failures.push(format!("{who:?} wrote {} events, expected {writes}", after - before));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_sees_what_it_may_and_every_event_names_its_actor() {
    let (server, callers) = demo_with_callers(ServerOptions::default()).await;
    let lot = |who: Who| {
        let server = &server;
        let token = callers.token(who);
        async move {
            p::trace_service_client::TraceServiceClient::new(server.conn(token.as_deref()).await.expect("conn"))
                .get_lot(p::GetLotRequest {
                    lot_id: RICE_BAG_LOT.into(),
                })
                .await
                .expect("get the lot")
                .into_inner()
        }
    };
    let full = lot(Who::Admin).await;
    assert!(full.quantity.is_some() && full.balance.is_some());
    assert!(full.inspections.iter().any(|i| !i.measurements.is_empty()));
    for who in [Who::Operator, Who::Member, Who::Regulator] {
        assert_eq!(lot(who).await, full, "{who:?} sees the lot in full");
    }
    for who in [Who::Public, Who::OtherOperator] {
        let l = lot(who).await;
        assert_eq!(
            (l.lot_id.as_str(), l.owner_id.as_str()),
            (RICE_BAG_LOT, full.owner_id.as_str())
        );
        assert_eq!(l.verdict, full.verdict, "{who:?} sees the verdict");
        assert_eq!((l.quantity, l.balance), (None, None), "{who:?} sees no quantities");
        assert!(l.shipments.is_empty() && l.documents.is_empty() && l.packages.is_empty());
        assert!(l
            .inspections
            .iter()
            .all(|i| i.measurements.is_empty() && i.findings.is_empty()));
    }
    // A member tracing its own lot sees the other UKM's lots in the public view only.
    let trace = p::trace_service_client::TraceServiceClient::new(
        server.conn(callers.token(Who::Member).as_deref()).await.expect("conn"),
    )
    .backward_trace(p::TraceRequest {
        target: Some(p::Target {
            kind: Some(p::target::Kind::LotId(RICE_BAG_LOT.into())),
        }),
        ..Default::default()
    })
    .await
    .expect("the member traces its lot")
    .into_inner();
    for node in &trace.nodes {
        let l = node.lot.as_ref().expect("a lot");
        if l.owner_id != full.owner_id && l.supplier_id != full.owner_id {
            assert_eq!(l.quantity, None, "{} is not the member's", l.lot_id);
        }
    }

    // The operator's receipt is recorded with the operator's token as its actor.
    let mut c = p::capture_service_client::CaptureServiceClient::new(
        server
            .conn(callers.token(Who::Operator).as_deref())
            .await
            .expect("conn"),
    );
    let n = 1_000_000;
    assert_eq!(
        call(&server, callers.token(Who::Operator).as_deref(), "ReceiveMaterial", n).await,
        Code::Ok
    );
    let history = server
        .trace()
        .await
        .expect("trace")
        .lot_history(p::LotHistoryRequest {
            lot_id: format!("MX-{n}"),
            as_of: None,
        })
        .await
        .expect("history")
        .into_inner();
    assert_eq!(
        history.entries[0].actor,
        format!("token:{} (operator)", token_id(&callers.operator))
    );
    // The token events are in the exported log with theirs.
    let mut export = server
        .trace()
        .await
        .expect("trace")
        .export_events(p::ExportEventsRequest::default())
        .await
        .expect("export")
        .into_inner();
    let mut issued = 0;
    let mut revoked = Vec::new();
    while let Some(e) = export.message().await.expect("export streams") {
        match e.event.and_then(|e| e.kind) {
            Some(p::event::Kind::TokenIssued(_)) => issued += 1,
            Some(p::event::Kind::TokenRevoked(r)) => revoked.push((r.token_id, e.actor)),
            _ => {}
        }
    }
    assert_eq!(issued, 7, "the bootstrap administrator's and six test tokens");
    assert_eq!(
        revoked,
        vec![(
            token_id(&callers.revoked),
            format!("token:{} (admin)", token_id(&callers.admin))
        )]
    );
    // An operator may not capture at another facility; nothing is written.
    let before = server.status().await.expect("status").log_position;
    let mut req = p::ReceiveMaterialRequest {
        command_id: "elsewhere".into(),
        facility_id: TEGAL.into(),
        ..Default::default()
    };
    req.lot_id = "MX-ELSEWHERE".into();
    let denied = c.receive_material(req).await.expect_err("another facility");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(denied.message().contains(TEGAL), "{}", denied.message());
    assert_eq!(server.status().await.expect("status").log_position, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_over_its_rate_is_resource_exhausted_and_so_is_an_address_without_one() {
    let server = Server::start(ServerOptions {
        demo: true,
        rate_limits: Some((5.0, 5.0)),
        ..Default::default()
    })
    .expect("start");
    for token in [server.admin_token.clone(), None] {
        let mut t =
            p::trace_service_client::TraceServiceClient::new(server.conn(token.as_deref()).await.expect("conn"));
        let mut codes = Vec::new();
        for _ in 0..20 {
            codes.push(code(t.get_status(p::GetStatusRequest {}).await));
        }
        let exhausted = codes.iter().filter(|c| **c == Code::ResourceExhausted).count();
        assert!(
            codes[0] == Code::Ok && exhausted >= 10,
            "token {:?}: {codes:?}",
            token.is_some()
        );
        // The bucket refills: calls are admitted again.
        wait_until(std::time::Instant::now() + WAIT, || {
            let mut t = t.clone();
            async move { Ok((code(t.get_status(p::GetStatusRequest {}).await) == Code::Ok).then_some(())) }
        })
        .await
        .expect("the bucket refills");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_cli_creates_lists_and_revokes_and_failures_are_logged_without_the_token() {
    let log = tempfile::NamedTempFile::new().expect("log file");
    let server = Server::start(ServerOptions {
        log_file: Some(log.path().to_path_buf()),
        ..Default::default()
    })
    .expect("start");
    let admin = server.admin_token.clone().expect("an administrator token");
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--server", &server.url, "--token", &admin]);
        let (status, out, err) = run_cli(&all).expect("run jejak");
        assert!(status.success(), "jejak {args:?}: {err}");
        out
    };
    let token = cli(&[
        "token",
        "create",
        "--role",
        "regulator",
        "--label",
        "BPOM Semarang",
        "--expires-in",
        "30d",
    ])
    .trim()
    .to_string();
    assert!(token.starts_with("jejak_tk"), "{token}");
    let id = token_id(&token);
    let listed = cli(&["token", "list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.contains(&id) && l.contains("regulator") && l.contains("active")),
        "{listed}"
    );
    assert!(!listed.contains(&token), "a list never shows secrets");
    // The new token works; revoked, it stops working and is listed as such.
    let mut t = p::trace_service_client::TraceServiceClient::new(server.conn(Some(&token)).await.expect("conn"));
    assert_eq!(
        code(
            t.export_events(p::ExportEventsRequest {
                from_position: 1,
                limit: 1
            })
            .await
        ),
        Code::Ok
    );
    cli(&["token", "revoke", &id, "--reason", "audit finished"]);
    let refused = t
        .export_events(p::ExportEventsRequest::default())
        .await
        .expect_err("revoked");
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(refused.message().contains("revoked"), "{}", refused.message());
    assert!(
        !cli(&["token", "list"]).contains(&id),
        "inactive tokens are hidden by default"
    );
    assert!(cli(&["token", "list", "--all"])
        .lines()
        .any(|l| l.contains(&id) && l.contains("revoked")));
    // Bad input to the admin API: a clear refusal, nothing written.
    let (status, _, err) = run_cli(&[
        "token",
        "create",
        "--role",
        "operator",
        "--server",
        &server.url,
        "--token",
        &admin,
    ])
    .expect("run jejak");
    assert!(!status.success());
    assert!(err.contains("facility_ids"), "{err}");

    // The failed attempt is in the server's log with the caller's address,
    // and the token is not.
    let logged = wait_until(std::time::Instant::now() + WAIT, || async {
        let text = std::fs::read_to_string(log.path())?;
        Ok(text.contains("authentication failed").then_some(text))
    })
    .await;
    let text = logged.unwrap_or_else(|_| std::fs::read_to_string(log.path()).unwrap_or_default());
    let line = text
        .lines()
        .find(|l| l.contains("authentication failed"))
        .unwrap_or_else(|| panic!("no failed authentication logged:\n{text}"));
    assert!(line.contains("127.0.0.1") && line.contains("revoked"), "{line}");
    assert!(
        !text.contains(&token[20..]),
        "the log shows the token's secret:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_grpc_and_http_to_clients_that_trust_its_ca_and_nobody_else() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/tls");
    let server = Server::start(ServerOptions {
        extra_args: vec![
            "--tls-cert".into(),
            dir.join("server.pem").display().to_string(),
            "--tls-key".into(),
            dir.join("server.key").display().to_string(),
        ],
        ca_file: Some(dir.join("ca.pem")),
        ..Default::default()
    })
    .expect("start with TLS");
    assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);
    // A real handshake: health, a public call and an authenticated one.
    let conn = server
        .conn(server.admin_token.as_deref())
        .await
        .expect("TLS connection");
    let health = tonic_health::pb::health_client::HealthClient::new(conn.clone())
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .expect("health over TLS")
        .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let tokens = p::admin_service_client::AdminServiceClient::new(conn)
        .list_tokens(p::ListTokensRequest::default())
        .await
        .expect("an authenticated call over TLS")
        .into_inner();
    assert_eq!(tokens.tokens.len(), 1);
    // The HTTP routes on the same TLS port (HTTP/2, as ALPN offers).
    let (status, body) = tls_get(&server, "/metrics", server.admin_token.as_deref()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("jejak_append_conflicts_total"), "{body}");
    assert_eq!(tls_get(&server, "/metrics", None).await.0, 401);
    // The label resolver too, without a token, naming itself by https.
    let (status, body) = tls_get(&server, "/.well-known/gs1resolver", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"resolverRoot\":\"https://127.0.0.1:"), "{body}");
    let (status, body) = tls_get(&server, "/01/08997001001018/10/NO-SUCH-RICE_BAG_LOT", None).await;
    assert_eq!(status, 404, "{body}");
    // The CLI with the CA file.
    let (status, out, err) = run_cli(&[
        "status",
        "--server",
        &server.url,
        "--ca-file",
        &dir.join("ca.pem").display().to_string(),
    ])
    .expect("run jejak");
    assert!(status.success(), "{err}");
    assert!(out.contains("log position 1"), "{out}");
    // Without the CA, or in plain text, nothing gets through.
    let (status, _, err) = run_cli(&["status", "--server", &server.url]).expect("run jejak");
    assert!(!status.success() && err.contains("--ca-file"), "{err}");
    let plain = server.url.replace("https://", "http://");
    let refused = tonic::transport::Endpoint::from_shared(plain)
        .expect("url")
        .connect()
        .await;
    let plain_call = match refused {
        Err(_) => Err(()),
        Ok(ch) => p::trace_service_client::TraceServiceClient::new(ch)
            .get_status(p::GetStatusRequest {})
            .await
            .map(|_| ())
            .map_err(|_| ()),
    };
    assert!(plain_call.is_err(), "a plain-text call was answered");
    // HTTP over the same TLS port: an HTTP/1.1 request in clear text is no TLS handshake.
    assert!(http_get(&server, "/metrics", None).map_or(true, |r| !r.contains("200 OK")));
}

/// `GET path` over the server's TLS connection: (HTTP status, body).
async fn tls_get(server: &Server, path: &str, token: Option<&str>) -> (u16, String) {
    use tonic::codegen::Service;
    let mut channel = server.channel().await.expect("TLS channel");
    let mut request = tonic::codegen::http::Request::get(format!("{}{path}", server.url));
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    let request = request.body(tonic::body::Body::empty()).expect("request");
    std::future::poll_fn(|cx| channel.poll_ready(cx)).await.expect("ready");
    let response = channel.call(request).await.expect("GET over TLS");
    let status = response.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_plain_text_beyond_loopback_is_warned_about() {
    let log = tempfile::NamedTempFile::new().expect("log file");
    let _server = Server::start(ServerOptions {
        extra_args: vec!["--listen".into(), "0.0.0.0:0".into()],
        log_file: Some(log.path().to_path_buf()),
        ..Default::default()
    })
    .expect("start on every address");
    let warning = "serving without TLS on an address other than loopback";
    wait_until(std::time::Instant::now() + WAIT, || async {
        Ok(std::fs::read_to_string(log.path())?.contains(warning).then_some(()))
    })
    .await
    .unwrap_or_else(|e| {
        let text = std::fs::read_to_string(log.path()).unwrap_or_default();
        panic!("no warning ({e}) in:\n{text}")
    });
}

/// `GET path` over plain HTTP/1.1 on the server's port.
fn http_get(server: &Server, path: &str, token: Option<&str>) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let addr = server.url.trim_start_matches("http://").trim_start_matches("https://");
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    Ok(reply)
}
