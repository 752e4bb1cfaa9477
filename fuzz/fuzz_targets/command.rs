//! Capture commands as they arrive: protobuf bytes off the network, or a
//! JSON line of an import file; then the field validation of the conversion
//! and the rules against a store holding the demo data. Nothing may panic.
#![no_main]

use std::sync::OnceLock;

use jejak_domain::{State, Time};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn demo_state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| {
        let mut state = State::new();
        let now = Time(1_800_000_000 * Time::NANOS_PER_SEC);
        for line in jejak_server::demo::DEMO.lines().filter(|l| !l.trim().is_empty()) {
            let kind = jejak_proto::json::parse_command(line).expect("demo lines parse");
            let (id, command) = jejak_proto::command_from_proto(kind).expect("demo commands convert");
            let event = state.decide(&id, command, now).expect("demo commands are accepted");
            state.apply(&id, &event);
        }
        state
    })
}

fuzz_target!(|data: &[u8]| {
    let kind = match std::str::from_utf8(data) {
        Ok(line) if line.starts_with('{') => match jejak_proto::json::parse_command(line) {
            Ok(kind) => kind,
            Err(_) => return,
        },
        _ => {
            let Ok(command) = jejak_proto::v1::Command::decode(data) else {
                return;
            };
            let Some(kind) = command.kind else { return };
            kind
        }
    };
    let Ok((id, command)) = jejak_proto::command_from_proto(kind) else {
        return;
    };
    let state = demo_state();
    let now = Time(1_800_000_000 * Time::NANOS_PER_SEC);
    if let Ok(event) = state.decide(&id, command, now) {
        // Whatever is accepted must apply to a copy without panicking.
        let mut copy = state.clone();
        copy.apply(&id, &event);
    }
});
