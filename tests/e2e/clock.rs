//! Time comes from the server's clock, which a test can hold still and move:
//! events are recorded at its time, and "in the future" is judged by it.

use std::sync::Arc;
use std::time::Duration;

use jejak_domain::{ManualClock, Time};
use jejak_proto::v1 as p;
use jejak_server::demo::ids::{DEMAK, FARMERS_SUMBERREJEKI, PADDY, UKM_SIDOMAKMUR};
use jejak_testkit::{Server, ServerOptions};
use tonic::Code;

use crate::support::qty;

fn receipt(cmd: &str, lot: &str, occurred_at: Time) -> p::ReceiveMaterialRequest {
    p::ReceiveMaterialRequest {
        command_id: cmd.into(),
        facility_id: DEMAK.into(),
        lot_id: lot.into(),
        product_id: PADDY.into(),
        quantity: qty("1000", p::Unit::Kg),
        owner_id: UKM_SIDOMAKMUR.into(),
        supplier_id: FARMERS_SUMBERREJEKI.into(),
        occurred_at: Some(jejak_proto::time_to_proto(occurred_at)),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_recorded_at_the_servers_clock_which_also_judges_the_future() {
    // 2027-03-01T00:00:00Z, well after the wall clock of any test run.
    let start = Time::from_unix(1_803_859_200, 0).expect("in range");
    let clock = Arc::new(ManualClock::new(start));
    let server = Server::start(ServerOptions {
        demo: true,
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .expect("start a demo server in-process");
    let mut c = server.capture().await.expect("capture client");

    let hour = Duration::from_secs(3600);
    let later = Time(start.0 + 3600 * Time::NANOS_PER_SEC);
    // An hour ahead of the server's clock is in the future...
    let refused = c
        .receive_material(receipt("clk-1", "CLK-1", later))
        .await
        .expect_err("an hour ahead of the clock");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("future"), "{}", refused.message());

    // ...until the clock has moved on; the event is recorded at its time.
    clock.advance(2 * hour);
    let reply = c
        .receive_material(receipt("clk-2", "CLK-2", later))
        .await
        .expect("accepted once the clock has passed it")
        .into_inner();
    let recorded = reply.recorded_at.expect("a recording time");
    assert_eq!(
        Time::from_unix(recorded.seconds, recorded.nanos),
        Some(Time(start.0 + 2 * 3600 * Time::NANOS_PER_SEC))
    );
}
