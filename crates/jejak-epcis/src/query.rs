//! The EPCIS 2.0 REST query parameters of `GET /epcis/events` (a subset of
//! the SimpleEventQuery): parsed and checked, then matched against events
//! as the caller receives them (a filter never looks at what the caller
//! may not see).

use jejak_domain::Time;
use serde_json::Value;

/// The event types jejak exports.
pub const EVENT_TYPES: [&str; 5] = [
    "ObjectEvent",
    "AggregationEvent",
    "TransformationEvent",
    "AssociationEvent",
    "TransactionEvent",
];

/// Results per page when the caller names none, and the most it may ask.
pub const DEFAULT_PER_PAGE: usize = 30;
pub const MAX_PER_PAGE: usize = 1000;

/// A query, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    pub event_types: Vec<String>,
    pub ge_event_time: Option<Time>,
    pub lt_event_time: Option<Time>,
    pub ge_record_time: Option<Time>,
    pub lt_record_time: Option<Time>,
    pub biz_steps: Vec<String>,
    pub dispositions: Vec<String>,
    /// Instance ids in `epcList`/`childEPCs`/`inputEPCList`/`outputEPCList`
    /// (`MATCH_epc` looks at `epcList` and `childEPCs` only).
    pub match_epc: Vec<String>,
    pub match_any_epc: Vec<String>,
    pub match_epc_class: Vec<String>,
    pub biz_locations: Vec<String>,
    /// jejak lot ids whose events to read (exports; not a query parameter).
    pub lots: Vec<String>,
    pub per_page: usize,
    /// Where the next page starts: the log position after the last event
    /// of the page before.
    pub after: u64,
}

/// A parameter that cannot be used; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parameter}: {reason}")]
pub struct QueryError {
    pub parameter: String,
    pub reason: String,
}

fn bad(parameter: &str, reason: impl Into<String>) -> QueryError {
    QueryError {
        parameter: parameter.to_string(),
        reason: reason.into(),
    }
}

/// Parses an `xsd:dateTime` with its offset (`2026-03-01T08:00:00+07:00`,
/// `…Z`, fractions of a second allowed).
///
/// A `+` sent unencoded in a query string arrives as a space
/// (`…T08:00:00 07:00`): a space before the offset is read as `+`. A time
/// beyond what an event can hold (before 1677 or after 2262, as in
/// `LT_eventTime=9999-12-31T23:59:59Z` for "no upper bound") is taken as
/// the first or last time there is, which compares the same with every
/// event.
pub fn parse_time(parameter: &str, text: &str) -> Result<Time, QueryError> {
    let plus = match text.rsplit_once(' ') {
        Some((at, offset)) if offset.len() == 5 && offset.as_bytes().get(2) == Some(&b':') => {
            Some(format!("{at}+{offset}"))
        }
        _ => None,
    };
    let at = time::OffsetDateTime::parse(
        plus.as_deref().unwrap_or(text),
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|e| {
        bad(
            parameter,
            format!("{text:?} is not a date and time with an offset, like 2026-03-01T08:00:00+07:00 ({e})"),
        )
    })?;
    let nanos = at.unix_timestamp_nanos();
    Ok(Time(i64::try_from(nanos).unwrap_or(match nanos < 0 {
        true => i64::MIN,
        false => i64::MAX,
    })))
}

/// A time bound as a next page's link carries it: to the nanosecond, so
/// that every page asks what the first asked.
fn bound(t: Time) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.0))
        .ok()
        .and_then(|at| at.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| crate::export::time(t))
}

fn list(value: &str) -> Vec<String> {
    value
        .split('|')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The bare CBV word of a bizStep or disposition given as a word or as its
/// URI (`https://ref.gs1.org/cbv/BizStep-receiving`, `urn:epcglobal:cbv:bizstep:receiving`).
pub fn cbv_word(value: &str) -> &str {
    for prefix in [
        "https://ref.gs1.org/cbv/BizStep-",
        "https://ref.gs1.org/cbv/Disp-",
        "urn:epcglobal:cbv:bizstep:",
        "urn:epcglobal:cbv:disp:",
        "https://gs1.org/voc/BizStep-",
        "https://gs1.org/voc/Disp-",
    ] {
        if let Some(word) = value.strip_prefix(prefix) {
            return word;
        }
    }
    value
}

impl Query {
    /// Checks the query string's pairs. Unknown parameters are refused
    /// (a misspelt filter must not silently return everything).
    pub fn parse(pairs: &[(String, String)]) -> Result<Query, QueryError> {
        let mut q = Query {
            per_page: DEFAULT_PER_PAGE,
            ..Query::default()
        };
        for (name, value) in pairs {
            match name.as_str() {
                "eventType" => {
                    for t in list(value) {
                        if !EVENT_TYPES.contains(&t.as_str()) {
                            return Err(bad(name, format!("{t:?} is not an EPCIS event type ({})", EVENT_TYPES.join(", "))));
                        }
                        q.event_types.push(t);
                    }
                }
                "GE_eventTime" => q.ge_event_time = Some(parse_time(name, value)?),
                "LT_eventTime" => q.lt_event_time = Some(parse_time(name, value)?),
                "GE_recordTime" => q.ge_record_time = Some(parse_time(name, value)?),
                "LT_recordTime" => q.lt_record_time = Some(parse_time(name, value)?),
                "EQ_bizStep" => q.biz_steps.extend(list(value).iter().map(|s| cbv_word(s).to_string())),
                "EQ_disposition" => q.dispositions.extend(list(value).iter().map(|s| cbv_word(s).to_string())),
                "MATCH_epc" => q.match_epc.extend(list(value).iter().map(|p| canonical_pattern(p))),
                "MATCH_anyEPC" => q.match_any_epc.extend(list(value).iter().map(|p| canonical_pattern(p))),
                "MATCH_epcClass" => q.match_epc_class.extend(list(value).iter().map(|p| canonical_pattern(p))),
                "EQ_bizLocation" => q.biz_locations.extend(list(value).iter().map(|p| canonical_pattern(p))),
                "perPage" => {
                    q.per_page = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_PER_PAGE).contains(n))
                        .ok_or_else(|| bad(name, format!("{value:?} is not a number from 1 to {MAX_PER_PAGE}")))?;
                }
                "nextPageToken" => {
                    q.after = value
                        .parse::<u64>()
                        .map_err(|_| bad(name, format!("{value:?} is not a page token this server gave")))?;
                }
                _ => {
                    return Err(bad(
                        name,
                        "is not a query parameter this server knows (eventType, GE_eventTime, LT_eventTime, GE_recordTime, LT_recordTime, EQ_bizStep, EQ_disposition, MATCH_epc, MATCH_anyEPC, MATCH_epcClass, EQ_bizLocation, perPage, nextPageToken)",
                    ))
                }
            }
        }
        Ok(q)
    }

    /// The query string of this query's filters (for the next page's link).
    pub fn filters(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut put = |name: &'static str, values: &[String]| {
            if !values.is_empty() {
                out.push((name, values.join("|")));
            }
        };
        put("eventType", &self.event_types);
        put("EQ_bizStep", &self.biz_steps);
        put("EQ_disposition", &self.dispositions);
        put("MATCH_epc", &self.match_epc);
        put("MATCH_anyEPC", &self.match_any_epc);
        put("MATCH_epcClass", &self.match_epc_class);
        put("EQ_bizLocation", &self.biz_locations);
        for (name, t) in [
            ("GE_eventTime", self.ge_event_time),
            ("LT_eventTime", self.lt_event_time),
            ("GE_recordTime", self.ge_record_time),
            ("LT_recordTime", self.lt_record_time),
        ] {
            if let Some(t) = t {
                out.push((name, bound(t)));
            }
        }
        out.push(("perPage", self.per_page.to_string()));
        out
    }

    /// The ids the query names (instances and classes): where to look
    /// first, when the store can answer by id.
    pub fn named_ids(&self) -> Vec<&str> {
        self.match_epc
            .iter()
            .chain(&self.match_any_epc)
            .chain(&self.match_epc_class)
            .map(String::as_str)
            .collect()
    }

    /// Whether an event (as the caller receives it) matches every filter.
    pub fn matches(&self, event: &Value) -> bool {
        let text = |key: &str| event.get(key).and_then(Value::as_str);
        if !self.event_types.is_empty() && !text("type").is_some_and(|t| self.event_types.iter().any(|x| x == t)) {
            return false;
        }
        let time_of = |key: &str| text(key).and_then(|t| parse_time(key, t).ok());
        let event_time = time_of("eventTime");
        let record_time = time_of("recordTime");
        if self.ge_event_time.is_some_and(|g| event_time.is_none_or(|t| t < g))
            || self.lt_event_time.is_some_and(|l| event_time.is_none_or(|t| t >= l))
            || self.ge_record_time.is_some_and(|g| record_time.is_none_or(|t| t < g))
            || self.lt_record_time.is_some_and(|l| record_time.is_none_or(|t| t >= l))
        {
            return false;
        }
        let word_in = |key: &str, words: &[String]| {
            words.is_empty() || text(key).is_some_and(|v| words.iter().any(|w| w == cbv_word(v)))
        };
        if !word_in("bizStep", &self.biz_steps) || !word_in("disposition", &self.dispositions) {
            return false;
        }
        if !self.biz_locations.is_empty() {
            let location = event.pointer("/bizLocation/id").and_then(Value::as_str);
            if !location.is_some_and(|l| self.biz_locations.iter().any(|x| x == l)) {
                return false;
            }
        }
        let ids_in = |keys: &[&str]| -> Vec<&str> {
            let mut out = Vec::new();
            for key in keys {
                match event.get(*key) {
                    Some(Value::Array(items)) => out.extend(items.iter().filter_map(Value::as_str)),
                    Some(Value::String(s)) => out.push(s.as_str()),
                    _ => {}
                }
            }
            out
        };
        let matches_any = |patterns: &[String], ids: &[&str]| {
            patterns.is_empty() || ids.iter().any(|id| patterns.iter().any(|p| pattern_matches(p, id)))
        };
        if !matches_any(&self.match_epc, &ids_in(&["epcList", "childEPCs"])) {
            return false;
        }
        if !matches_any(
            &self.match_any_epc,
            &ids_in(&["epcList", "childEPCs", "parentID", "inputEPCList", "outputEPCList"]),
        ) {
            return false;
        }
        if !self.match_epc_class.is_empty() {
            let mut classes = Vec::new();
            for key in [
                "quantityList",
                "childQuantityList",
                "inputQuantityList",
                "outputQuantityList",
            ] {
                if let Some(Value::Array(items)) = event.get(key) {
                    classes.extend(items.iter().filter_map(|q| q.get("epcClass").and_then(Value::as_str)));
                }
            }
            // A lot class is also the parent of its packing.
            classes.extend(ids_in(&["parentID"]));
            if !matches_any(&self.match_epc_class, &classes) {
                return false;
            }
        }
        true
    }
}

/// An identifier or pattern of a query in the form events carry: a GS1 key
/// as an EPC URI (`urn:epc:id:sgtin:0614141.107346.2017`,
/// `urn:epc:class:lgtin:…`, `urn:epc:id:sgln:…`, as systems of EPCIS 1.x
/// send them) or a Digital Link on another domain becomes its canonical
/// Digital Link (`https://id.gs1.org/01/…`); an SGTIN pattern of one GTIN
/// (`urn:epc:idpat:sgtin:0614141.107346.*`) the prefix of its serials.
/// Anything else is kept as it is.
fn canonical_pattern(pattern: &str) -> String {
    if let Some(prefix) = pattern
        .strip_prefix("urn:epc:idpat:sgtin:")
        .and_then(|p| p.strip_suffix(".*"))
    {
        // Any serial, to learn the GTIN's Digital Link.
        let any = crate::hash::canonical_uri(&format!("urn:epc:id:sgtin:{prefix}.0"));
        if let Some((head, _)) = any.as_deref().and_then(|c| c.rsplit_once("/21/")) {
            return format!("{head}/21/*");
        }
    }
    if pattern.ends_with('*') {
        return pattern.to_string();
    }
    crate::hash::canonical_uri(pattern).unwrap_or_else(|| pattern.to_string())
}

/// EPCIS pattern matching: an exact id, or a prefix ending in `*`.
fn pattern_matches(pattern: &str, id: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => id.starts_with(prefix),
        None => pattern == id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn parameters_are_checked_and_named_when_wrong() {
        let q = Query::parse(&pairs(&[
            ("eventType", "ObjectEvent|TransformationEvent"),
            ("GE_eventTime", "2026-03-01T08:00:00+07:00"),
            ("EQ_bizStep", "https://ref.gs1.org/cbv/BizStep-receiving"),
            ("perPage", "5"),
            ("nextPageToken", "42"),
        ]))
        .expect("a good query");
        assert_eq!(q.event_types, ["ObjectEvent", "TransformationEvent"]);
        assert_eq!(q.ge_event_time, Some(Time(1_772_326_800 * Time::NANOS_PER_SEC)));
        assert_eq!(q.biz_steps, ["receiving"]);
        assert_eq!((q.per_page, q.after), (5, 42));

        for (name, value, says) in [
            ("eventType", "ThingEvent", "not an EPCIS event type"),
            ("GE_eventTime", "yesterday", "not a date and time"),
            ("perPage", "0", "from 1 to 1000"),
            ("perPage", "5000", "from 1 to 1000"),
            ("nextPageToken", "abc", "page token"),
            ("EQ_bizstep", "receiving", "not a query parameter"),
        ] {
            let err = Query::parse(&pairs(&[(name, value)])).expect_err(name);
            assert_eq!(err.parameter, name);
            assert!(err.reason.contains(says), "{name}={value}: {err}");
        }
    }

    #[test]
    fn filters_look_at_types_times_steps_places_and_ids() {
        let event = json!({
            "type": "ObjectEvent",
            "eventTime": "2026-03-01T02:00:00.000Z",
            "recordTime": "2026-03-01T02:00:01.000Z",
            "bizStep": "receiving",
            "disposition": "in_progress",
            "bizLocation": { "id": "https://id.example/loc/fac-demak" },
            "epcList": ["https://id.gs1.org/01/09506000134352/21/7"],
            "quantityList": [{ "epcClass": "https://id.example/lot/gabah/L1", "quantity": 5, "uom": "KGM" }],
        });
        let q = |list: &[(&str, &str)]| Query::parse(&pairs(list)).expect("query");
        assert!(q(&[]).matches(&event));
        assert!(q(&[("eventType", "ObjectEvent")]).matches(&event));
        assert!(!q(&[("eventType", "AggregationEvent")]).matches(&event));
        assert!(q(&[("GE_eventTime", "2026-03-01T09:00:00+07:00")]).matches(&event));
        assert!(!q(&[("GE_eventTime", "2026-03-01T09:00:00.001+07:00")]).matches(&event));
        assert!(!q(&[("LT_eventTime", "2026-03-01T02:00:00Z")]).matches(&event));
        assert!(q(&[("LT_recordTime", "2026-03-01T02:00:02Z")]).matches(&event));
        assert!(q(&[("EQ_bizStep", "shipping|receiving")]).matches(&event));
        assert!(!q(&[("EQ_disposition", "in_transit")]).matches(&event));
        assert!(q(&[("EQ_bizLocation", "https://id.example/loc/fac-demak")]).matches(&event));
        assert!(!q(&[("EQ_bizLocation", "https://id.example/loc/fac-tegal")]).matches(&event));
        assert!(q(&[("MATCH_epc", "https://id.gs1.org/01/09506000134352/21/*")]).matches(&event));
        assert!(!q(&[("MATCH_epc", "https://id.gs1.org/01/09506000134352/21/8")]).matches(&event));
        assert!(q(&[("MATCH_anyEPC", "https://id.gs1.org/01/09506000134352/21/7")]).matches(&event));
        assert!(q(&[("MATCH_epcClass", "https://id.example/lot/gabah/L1")]).matches(&event));
        assert!(!q(&[("MATCH_epcClass", "https://id.example/lot/gabah/L2")]).matches(&event));
    }

    #[test]
    fn a_plus_sent_unencoded_far_bounds_and_fractions_of_a_millisecond_are_kept() {
        let at = |v: &str| parse_time("GE_eventTime", v).expect(v);
        assert_eq!(at("2026-03-01T08:00:00 07:00"), at("2026-03-01T08:00:00+07:00"));
        assert_eq!(at("9999-12-31T23:59:59Z"), Time(i64::MAX));
        assert_eq!(at("0001-01-01T00:00:00Z"), Time(i64::MIN));
        assert!(parse_time("GE_eventTime", "2026-03-01 08:00:00").is_err());
        let q = Query::parse(&pairs(&[("GE_eventTime", "2026-03-01T02:00:00.0005Z")])).expect("a good query");
        let link = q.filters();
        let carried = link
            .iter()
            .find(|(n, _)| *n == "GE_eventTime")
            .expect("carried")
            .1
            .clone();
        assert_eq!(at(&carried), at("2026-03-01T02:00:00.0005Z"), "{carried}");
    }

    #[test]
    fn epc_uris_and_digital_links_on_other_domains_name_what_events_carry() {
        let q = Query::parse(&pairs(&[
            (
                "MATCH_epc",
                "urn:epc:id:sgtin:0614141.107346.2017|urn:epc:idpat:sgtin:0614141.107346.*",
            ),
            ("MATCH_epcClass", "urn:epc:class:lgtin:4012345.012345.998877"),
            ("EQ_bizLocation", "https://id.koperasi.example/414/0614141073467"),
        ]))
        .expect("a good query");
        assert_eq!(
            q.match_epc,
            [
                "https://id.gs1.org/01/10614141073464/21/2017",
                "https://id.gs1.org/01/10614141073464/21/*"
            ]
        );
        assert_eq!(q.match_epc_class, ["https://id.gs1.org/01/04012345123456/10/998877"]);
        assert_eq!(q.biz_locations, ["https://id.gs1.org/414/0614141073467"]);
        let event = json!({
            "type": "ObjectEvent",
            "epcList": ["https://id.gs1.org/01/10614141073464/21/2017"],
            "bizLocation": {"id": "https://id.gs1.org/414/0614141073467"},
            "quantityList": [{"epcClass": "https://id.gs1.org/01/04012345123456/10/998877"}],
        });
        assert!(q.matches(&event));
    }
}
