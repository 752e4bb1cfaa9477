//! `jejak import`: sends capture commands to a running server, from JSON
//! Lines in the proto's canonical JSON mapping or from a CSV file of one
//! command type (`jejak_proto::csv`).

use jejak_proto::v1 as p;
use jejak_proto::v1::capture_service_client::CaptureServiceClient;

/// Sends one command to the RPC for its kind.
pub async fn send(
    client: &mut CaptureServiceClient<crate::Conn>,
    kind: p::command::Kind,
) -> Result<p::CaptureReply, tonic::Status> {
    use p::command::Kind;
    let reply = match kind {
        Kind::RegisterParty(r) => client.register_party(r).await,
        Kind::RegisterFacility(r) => client.register_facility(r).await,
        Kind::RegisterProduct(r) => client.register_product(r).await,
        Kind::RegisterQualityStandard(r) => client.register_quality_standard(r).await,
        Kind::ReceiveMaterial(r) => client.receive_material(r).await,
        Kind::InspectLot(r) => client.inspect_lot(r).await,
        Kind::ProcessLots(r) => client.process_lots(r).await,
        Kind::PackLot(r) => client.pack_lot(r).await,
        Kind::ShipLot(r) => client.ship_lot(r).await,
        Kind::ChangeLotStatus(r) => client.change_lot_status(r).await,
        Kind::VoidEvent(r) => client.void_event(r).await,
        Kind::IssueToken(_) | Kind::RevokeToken(_) => {
            return Err(tonic::Status::invalid_argument(
                "tokens are issued and revoked with `jejak token`, not imported",
            ))
        }
        Kind::ObserveEpcis(_) => {
            return Err(tonic::Status::invalid_argument(
                "EPCIS observations come in EPCIS documents: use `jejak epcis capture`",
            ))
        }
    }?;
    Ok(reply.into_inner())
}

/// Whether a refusal means "not now" rather than "not this command": the
/// server's rate limit, or no log answering (a NATS leader being elected).
/// Such a command is sent again, with the same command id.
fn retryable(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::ResourceExhausted | tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
    )
}

/// Whether a status was made on this side from a broken connection (its
/// transport error behind it), not sent by the server: the server may have
/// read and recorded what went out, and the same commands sent again are
/// answered as it did.
fn broken_connection(s: &tonic::Status) -> bool {
    std::error::Error::source(s).is_some()
}

/// Whether a stream ended because the server could not read its next
/// message: too large (RESOURCE_EXHAUSTED without a time to come back, or
/// OUT_OF_RANGE from an older server) or not a command.
fn unreadable(s: &tonic::Status) -> bool {
    match s.code() {
        tonic::Code::ResourceExhausted => !slow_down(s),
        tonic::Code::OutOfRange | tonic::Code::InvalidArgument => true,
        _ => false,
    }
}

/// Whether a stream's status is the server telling it to slow down (its
/// rate limit, which says when to come back), not a command too large.
fn slow_down(s: &tonic::Status) -> bool {
    s.code() == tonic::Code::ResourceExhausted && retry_after(s).is_some()
}

/// How long to wait before the `round`-th retry: what the server asked for
/// (RetryInfo), else doubling from 200 ms up to 10 s.
fn backoff(round: u32, asked: Option<std::time::Duration>) -> std::time::Duration {
    asked
        .unwrap_or_else(|| std::time::Duration::from_millis(200 << round.min(6)))
        .min(std::time::Duration::from_secs(10))
}

fn retry_after(s: &tonic::Status) -> Option<std::time::Duration> {
    use tonic_types::StatusExt;
    s.get_details_retry_info().and_then(|r| r.retry_delay)
}

/// One command's answer: its reply, or the refusal its unary RPC would give.
pub type Answer = Result<p::CaptureReply, p::CommandRefused>;

/// Rounds without a single answer after which a bulk capture gives up.
const ROUNDS_WITHOUT_PROGRESS: u32 = 8;

/// Sends `commands` in order on `CaptureStream` and returns each one's
/// answer, in the same order. A stream the server refuses for now (its
/// rate limit, no log answering) or that breaks is opened again after a
/// wait, carrying the commands still unanswered with their own command
/// ids, so each is recorded once; a command answered "not now" is sent
/// again likewise. Being told to slow down is never a reason to give up;
/// `ROUNDS_WITHOUT_PROGRESS` rounds in a row of anything else are. A
/// command sent on a stream that broke before answering it, and then
/// answered as already recorded, is answered as recorded: this import may
/// have recorded it. `bar` counts the answers.
pub async fn capture_all(
    client: &mut CaptureServiceClient<crate::Conn>,
    commands: Vec<p::command::Kind>,
    bar: &indicatif::ProgressBar,
) -> Vec<Answer> {
    capture_all_marked(client, commands, bar)
        .await
        .into_iter()
        .map(|(answer, uncertain)| match answer {
            Ok(mut reply) => {
                reply.replayed &= !uncertain;
                Ok(reply)
            }
            refused => refused,
        })
        .collect()
}

/// `capture_all`, each answer as the server gave it (a reply `replayed`
/// as it said), with whether its command went out on a stream that broke
/// before answering it: then a reply `replayed` may be for what this call
/// recorded on that stream, or for what was recorded before it.
pub async fn capture_all_marked(
    client: &mut CaptureServiceClient<crate::Conn>,
    commands: Vec<p::command::Kind>,
    bar: &indicatif::ProgressBar,
) -> Vec<(Answer, bool)> {
    let commands = std::sync::Arc::new(commands);
    let mut answers: Vec<Option<Answer>> = vec![None; commands.len()];
    // Sent on a stream that gave no final answer for them: maybe recorded.
    let mut uncertain = vec![false; commands.len()];
    let (mut round, mut idle_rounds) = (0u32, 0u32);
    let mut last_problem = String::new();
    loop {
        let todo: Vec<usize> = (0..commands.len()).filter(|&i| answers[i].is_none()).collect();
        if todo.is_empty() {
            break;
        }
        if idle_rounds >= ROUNDS_WITHOUT_PROGRESS {
            for i in todo {
                let fate = match uncertain[i] {
                    true => "sent, and maybe recorded, but not answered",
                    false => "not recorded",
                };
                answers[i] = Some(Err(p::CommandRefused {
                    code: tonic::Code::Unavailable as i32,
                    message: format!("{fate}: {last_problem}; run the import again (recorded lines are not repeated)"),
                    ..Default::default()
                }));
            }
            break;
        }
        // How many of `todo` the transport took to send: those may have
        // reached the server, the rest did not.
        let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let sending = {
            let (commands, todo, taken) = (commands.clone(), todo.clone(), taken.clone());
            tokio_stream::iter(todo.into_iter().map(move |i| {
                taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                p::Command {
                    kind: Some(commands[i].clone()),
                }
            }))
        };
        let mut progressed = false;
        // Told to slow down (the server's rate limit), in this round.
        let mut limited = false;
        let mut asked = None;
        // Refused for the rate limit, one by one: not recorded.
        let mut slowed = vec![false; commands.len()];
        // Whether the server may have read what was sent: not when it
        // answered the stream as a whole with a status of its own (it
        // refused it before reading any command), but when the connection
        // broke before its answer came (`broken_connection`) and once it
        // answered.
        let mut maybe_read = true;
        match client.capture_stream(sending).await {
            Err(s) if retryable(s.code()) || broken_connection(&s) => {
                last_problem = format!("{:?}: {}", s.code(), s.message());
                limited = slow_down(&s);
                asked = retry_after(&s);
                maybe_read = broken_connection(&s);
            }
            Err(s) => {
                // Refused as a whole (no token, a server without capture):
                // every command gets that answer.
                for i in todo {
                    answers[i] = Some(Err(refused_of(&s)));
                }
                break;
            }
            Ok(response) => {
                let mut replies = response.into_inner();
                // The next command of this stream to be answered.
                let mut next = 0usize;
                loop {
                    match replies.message().await {
                        Ok(Some(r)) => {
                            next = next.max(usize::try_from(r.index).map_or(next, |k| k + 1));
                            let Some(&i) = usize::try_from(r.index).ok().and_then(|k| todo.get(k)) else {
                                continue;
                            };
                            match r.outcome {
                                Some(p::capture_stream_reply::Outcome::Recorded(reply)) => {
                                    answers[i] = Some(Ok(reply));
                                }
                                Some(p::capture_stream_reply::Outcome::Refused(refusal)) => {
                                    let code = tonic::Code::from_i32(refusal.code);
                                    if retryable(code) {
                                        last_problem = refusal.message.clone();
                                        if code == tonic::Code::ResourceExhausted && refusal.reason == "RATE_LIMITED" {
                                            limited = true;
                                            slowed[i] = true;
                                        }
                                        continue;
                                    }
                                    answers[i] = Some(Err(refusal));
                                }
                                None => continue,
                            }
                            progressed = true;
                            bar.inc(1);
                        }
                        Ok(None) => break,
                        // The stream ended at the next command because the
                        // server could not read it (too large, say): that
                        // command's answer, and the rest go on.
                        Err(s) if !broken_connection(&s) && unreadable(&s) => {
                            if let Some(&i) = todo.get(next) {
                                answers[i] = Some(Err(refused_of(&s)));
                                progressed = true;
                                bar.inc(1);
                            }
                            break;
                        }
                        Err(s) => {
                            last_problem = format!("{:?}: {}", s.code(), s.message());
                            limited |= slow_down(&s);
                            asked = retry_after(&s);
                            break;
                        }
                    }
                }
            }
        }
        // What went out on this stream without a final answer may have
        // been recorded; what was refused for the rate limit was not, nor
        // what the transport never took.
        if maybe_read {
            let taken = taken.load(std::sync::atomic::Ordering::Relaxed).min(todo.len());
            for &i in &todo[..taken] {
                uncertain[i] |= answers[i].is_none() && !slowed[i];
            }
        }
        if progressed {
            idle_rounds = 0;
            round = 0;
        } else {
            // Told to slow down, it waits as long as it is told to.
            if !limited {
                idle_rounds += 1;
            }
            round += 1;
        }
        if answers.iter().any(Option::is_none) {
            tokio::time::sleep(backoff(round, asked)).await;
        }
    }
    answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(p::CommandRefused::default())))
        .zip(uncertain)
        .collect()
}

/// A whole-stream refusal as one command's.
fn refused_of(s: &tonic::Status) -> p::CommandRefused {
    p::CommandRefused {
        code: s.code() as i32,
        message: s.message().to_string(),
        ..Default::default()
    }
}

/// A refusal as a report line: the status code and the server's words.
pub fn describe(r: &p::CommandRefused) -> String {
    format!("{:?}: {}", tonic::Code::from_i32(r.code), r.message)
}

/// A progress bar on standard error (drawn only on a terminal).
pub fn progress_bar(total: usize, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} ({per_sec}, {eta} left)") {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub recorded: usize,
    pub already_recorded: usize,
    /// (line, event id, void id) of the lines answered "already recorded"
    /// whose event a void not in this file has since corrected: they do
    /// not stand, and only a new command id records them again.
    pub voided_earlier: Vec<(usize, String, String)>,
    /// (line number, reason) of every line that was refused.
    pub failed: Vec<(usize, String)>,
}

/// Sends every line of `text` in order on one bulk stream; blank lines and
/// lines starting with `#` or `//` are skipped, and a line that is not a
/// command is reported without stopping the others.
pub async fn import(client: &mut CaptureServiceClient<crate::Conn>, text: &str) -> ImportReport {
    let mut report = ImportReport::default();
    let mut lines = Vec::new();
    let mut commands = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("//") {
            continue;
        }
        match jejak_proto::json::parse_command(trimmed) {
            Ok(k) => {
                lines.push(n);
                commands.push(k);
            }
            Err(e) => report.failed.push((n, format!("not a valid command: {e}"))),
        }
    }
    // A file may hold an event and the void of it (an export of a log
    // does): its event then stands voided by this file's own word.
    let voids_here: std::collections::HashSet<String> = commands
        .iter()
        .filter_map(|k| match k {
            p::command::Kind::VoidEvent(v) => Some(v.command_id.clone()),
            _ => None,
        })
        .collect();
    let bar = progress_bar(commands.len(), "importing");
    let answers = capture_all(client, commands, &bar).await;
    bar.finish_and_clear();
    for (n, answer) in lines.into_iter().zip(answers) {
        match answer {
            Ok(r) if r.replayed && !r.voided_by.is_empty() && !voids_here.contains(&r.voided_by) => {
                report.voided_earlier.push((n, r.event_id, r.voided_by))
            }
            Ok(r) if r.replayed => report.already_recorded += 1,
            Ok(_) => report.recorded += 1,
            Err(r) => report.failed.push((n, describe(&r))),
        }
    }
    report.failed.sort_by_key(|(n, _)| *n);
    report
}

/// The facility a command is recorded at, to void it there.
fn facility_of(kind: &p::command::Kind) -> Option<&str> {
    use p::command::Kind;
    Some(match kind {
        Kind::ReceiveMaterial(r) => &r.facility_id,
        Kind::ShipLot(r) => &r.facility_id,
        Kind::ChangeLotStatus(r) => &r.facility_id,
        Kind::ProcessLots(r) => &r.facility_id,
        _ => return None,
    })
}

/// What a CSV import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CsvReport {
    pub recorded: usize,
    pub already_recorded: usize,
    /// (line, event id, void id) of the rows answered "already recorded"
    /// whose event has since been voided (an earlier run's rollback, say):
    /// they do not stand, and only a new `command_id` records them again.
    pub voided_earlier: Vec<(usize, String, String)>,
    /// (line, reason) of the rows refused.
    pub failed: Vec<(usize, String)>,
    /// Rows this import recorded and then voided again, because a later
    /// row was refused (without `proceed`).
    pub voided: usize,
    /// (line, event id) of the rows left recorded although a later row was
    /// refused (without `proceed`): sent on a stream that broke before
    /// answering them, then answered "already recorded", with nothing to
    /// tell whether this import or an earlier run recorded them. Voiding
    /// an earlier run's row is not this import's to do.
    pub kept: Vec<(usize, String)>,
}

/// Who recorded a row, as a CSV import's all or nothing needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// This import: voided again when a row is refused.
    Recorded,
    /// Before this import (answered "already recorded" on a stream that
    /// did not break before answering it).
    Earlier,
    /// This import on a stream that broke before answering, or an earlier
    /// run: nothing tells which.
    Unknown,
    Refused,
}

/// Who recorded each answered row. Positions in the log grow with time:
/// whatever was recorded after this import began is past `log_end` (where
/// the log ended before it, when the server said) and past the first row
/// answered as new, so a row answered "already recorded" after its first
/// stream broke, at a position past either, was recorded by this import
/// (or by another import of the same file running at the same time); at
/// or before `log_end`, before it.
fn fates(answers: &[(Answer, bool)], log_end: Option<u64>) -> Vec<Fate> {
    let first_new = answers
        .iter()
        .filter_map(|(answer, _)| match answer {
            Ok(r) if !r.replayed => Some(r.position),
            _ => None,
        })
        .min();
    let began = log_end.into_iter().chain(first_new).min();
    answers
        .iter()
        .map(|(answer, uncertain)| match answer {
            Err(_) => Fate::Refused,
            Ok(r) if !r.replayed => Fate::Recorded,
            Ok(_) if !uncertain => Fate::Earlier,
            Ok(r) if began.is_some_and(|began| r.position > began) => Fate::Recorded,
            Ok(_) if log_end.is_some() => Fate::Earlier,
            Ok(_) => Fate::Unknown,
        })
        .collect()
}

/// Imports a CSV file: every row is checked first, and a file with a bad
/// row writes nothing; then the rows are sent in order. Without `proceed`,
/// a row the server refuses stops the import, and the rows it recorded
/// are voided again, newest first (the log keeps them, voided), but for a
/// row it cannot tell from an earlier run's (`CsvReport::kept`); with it,
/// the good rows are kept and each refused one is reported.
///
/// `log_end` is where the log ended before the import (`GetStatus`), if the
/// server said: a row past it was recorded by this import.
pub async fn import_csv(
    client: &mut CaptureServiceClient<crate::Conn>,
    text: &str,
    proceed: bool,
    log_end: Option<u64>,
) -> Result<CsvReport, jejak_proto::csv::Problems> {
    let (_, rows) = jejak_proto::csv::parse(text)?;
    let mut report = CsvReport::default();
    let facilities: Vec<String> = rows
        .iter()
        .map(|r| facility_of(&r.kind).unwrap_or_default().to_string())
        .collect();
    let lines: Vec<usize> = rows.iter().map(|r| r.line).collect();
    let bar = progress_bar(rows.len(), "importing");
    let answers = capture_all_marked(client, rows.into_iter().map(|r| r.kind).collect(), &bar).await;
    bar.finish_and_clear();
    let fates = fates(&answers, log_end);
    let mut written: Vec<(String, String)> = Vec::new();
    let mut unknown: Vec<(usize, String)> = Vec::new();
    let mut first_refused = None;
    for (((line, facility), (answer, _)), fate) in lines.into_iter().zip(facilities).zip(answers).zip(fates) {
        match (answer, fate) {
            (Err(r), _) => {
                report.failed.push((line, describe(&r)));
                first_refused.get_or_insert(line);
            }
            // Voided already: an earlier run's (this one voids only after
            // every row is answered).
            (Ok(r), _) if !r.voided_by.is_empty() => report.voided_earlier.push((line, r.event_id, r.voided_by)),
            (Ok(_), Fate::Earlier) => report.already_recorded += 1,
            (Ok(r), Fate::Unknown) => {
                report.recorded += 1;
                unknown.push((line, r.event_id));
            }
            (Ok(r), _) => {
                report.recorded += 1;
                written.push((r.event_id, facility));
            }
        }
    }
    if let (Some(line), false) = (first_refused, proceed) {
        // All or nothing: what the stream recorded (before the refused row
        // and after it) is voided again, newest first.
        let voids: Vec<p::command::Kind> = written
            .iter()
            .rev()
            .map(|(event_id, facility)| {
                p::command::Kind::VoidEvent(p::VoidEventRequest {
                    command_id: jejak_domain::validate::undo_id(event_id),
                    facility_id: facility.clone(),
                    event_id: event_id.clone(),
                    reason: format!("CSV import stopped: line {line} was refused"),
                    ..Default::default()
                })
            })
            .collect();
        let bar = progress_bar(voids.len(), "voiding");
        let undone = capture_all(client, voids, &bar).await;
        bar.finish_and_clear();
        for ((event_id, _), answer) in written.iter().rev().zip(undone) {
            match answer {
                Ok(_) => report.voided += 1,
                Err(r) => report
                    .failed
                    .push((0, format!("{event_id} could not be voided: {}", r.message))),
            }
        }
        report.recorded = unknown.len();
        report.kept = unknown;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_at(position: u64) -> Answer {
        Ok(p::CaptureReply {
            position,
            ..Default::default()
        })
    }

    fn replayed_at(position: u64) -> Answer {
        Ok(p::CaptureReply {
            position,
            replayed: true,
            ..Default::default()
        })
    }

    /// A CSV import voids what it recorded when a later row is refused,
    /// and never what an earlier run recorded: a row whose first stream
    /// broke, answered "already recorded" on the next, is its own only
    /// when the log placed it after something this import recorded.
    #[test]
    fn a_row_answered_already_recorded_after_a_broken_stream_is_voided_only_when_provably_this_imports() {
        let refused = Err(p::CommandRefused::default());
        let answers = vec![
            (replayed_at(3), false), // an earlier run's, answered on a whole stream
            (replayed_at(5), true),  // broken stream, before anything this import recorded
            (new_at(40), false),     // this import's
            (replayed_at(41), true), // broken stream, after this import's first record
            (new_at(44), true),      // sent again after a broken stream, recorded then
            (refused.clone(), true),
        ];
        assert_eq!(
            fates(&answers, None),
            vec![
                Fate::Earlier,
                Fate::Unknown,
                Fate::Recorded,
                Fate::Recorded,
                Fate::Recorded,
                Fate::Refused
            ]
        );
        // Where the log ended before the import settles the second row.
        assert_eq!(fates(&answers, Some(4))[..2], [Fate::Earlier, Fate::Recorded]);
        assert_eq!(fates(&answers, Some(5))[..2], [Fate::Earlier, Fate::Earlier]);
        // Nothing recorded as new: only where the log ended can tell.
        let answers = vec![(replayed_at(7), true), (replayed_at(8), false), (refused, false)];
        assert_eq!(fates(&answers, None), vec![Fate::Unknown, Fate::Earlier, Fate::Refused]);
        assert_eq!(
            fates(&answers, Some(6)),
            vec![Fate::Recorded, Fate::Earlier, Fate::Refused]
        );
    }

    /// A status the server sent carries no error behind it; one made on
    /// this side from a broken connection does (tonic's client turns
    /// transport errors into statuses with `Status::from_error`, which
    /// keeps the error). `capture_all` tells the two apart by that alone.
    #[test]
    fn a_broken_connection_is_told_apart_from_a_status_the_server_sent() {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by peer");
        assert!(broken_connection(&tonic::Status::from_error(Box::new(reset))));
        // A server's status as it travels: in headers, read back.
        for sent in [
            tonic::Status::unavailable("no log answered"),
            tonic::Status::resource_exhausted("slow down"),
        ] {
            let mut headers = http::HeaderMap::new();
            sent.add_header(&mut headers).expect("the status as headers");
            let read = tonic::Status::from_header_map(&headers).expect("a status in the headers");
            assert_eq!(read.code(), sent.code());
            assert!(!broken_connection(&read), "{read:?}");
        }
    }
}
