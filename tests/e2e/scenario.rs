//! The scenario the domain and genealogy tests are written against, captured
//! over gRPC into a real server: what the server answers is what the
//! genealogy projects from the same events in memory, so the unit tests'
//! expectations hold over the wire.

use jejak_domain::{Target, Time};
use jejak_genealogy::{AppliedEvent, Genealogy, TraceLimits};
use jejak_proto::v1 as p;
use jejak_testkit::{capture_scenario, scenario, Server, ServerOptions};

fn lot_shape(l: &p::Lot) -> (String, String, Option<p::Quantity>, Option<p::Quantity>, String, i32) {
    (
        l.lot_id.clone(),
        l.owner_id.clone(),
        l.quantity.clone(),
        l.balance.clone(),
        l.created_as.clone(),
        l.made_by,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_scenario_over_grpc_answers_as_the_genealogy_projects_it() {
    let server = Server::start(ServerOptions::default()).expect("start a server");
    let story = scenario::rice_mill();
    capture_scenario(&server, &story)
        .await
        .expect("the server accepts every command of the scenario");

    let mut g = Genealogy::new();
    for (i, (id, event)) in story.events.iter().enumerate() {
        g.apply(AppliedEvent {
            position: i as u64 + 1,
            event_id: id,
            recorded_at: Time(scenario::Scenario::at(i).0 + 60 * Time::NANOS_PER_SEC),
            event,
            // Only a stored projection's anchor reads it.
            hash: [0; 32],
        });
    }

    let mut t = server.trace().await.expect("trace client");
    for lot in ["B2", "KB2", "DK1", "G1"] {
        let target = Target::Lot(lot.into());
        let request = || p::TraceRequest {
            target: Some(jejak_proto::target_to_proto(&target)),
            max_depth: 0,
            max_nodes: 0,
        };
        for backward in [true, false] {
            let (over_grpc, in_memory) = if backward {
                (
                    t.backward_trace(request()).await,
                    g.backward_trace(&target, 0, TraceLimits::default()),
                )
            } else {
                (
                    t.forward_trace(request()).await,
                    g.forward_trace(&target, 0, TraceLimits::default()),
                )
            };
            let over_grpc = over_grpc.expect("a trace over gRPC").into_inner();
            let in_memory = p::TraceReply::from(in_memory.expect("a trace in memory"));
            let nodes = |r: &p::TraceReply| {
                r.nodes
                    .iter()
                    .map(|n| (n.depth, n.lot.as_ref().map(lot_shape)))
                    .collect::<Vec<_>>()
            };
            assert!(!nodes(&over_grpc).is_empty(), "{lot}");
            assert_eq!(nodes(&over_grpc), nodes(&in_memory), "{lot}, backward {backward}");
            assert_eq!(over_grpc.edges, in_memory.edges, "{lot}, backward {backward}");
            assert_eq!(over_grpc.shipments, in_memory.shipments, "{lot}, backward {backward}");
        }
        let shares = t
            .origin_shares(p::OriginSharesRequest {
                target: Some(jejak_proto::target_to_proto(&target)),
            })
            .await
            .expect("shares over gRPC")
            .into_inner();
        let in_memory = p::OriginSharesReply::from(
            g.origin_shares(&target, &|_| true, jejak_genealogy::TraceLimits::default())
                .expect("shares in memory"),
        );
        assert_eq!(shares, in_memory, "{lot}");
    }
}
