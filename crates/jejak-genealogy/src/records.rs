//! The stored form of the projection: one protobuf record per lot and per
//! event, and master data as the proto event that registered it. Encodings
//! depend only on the state, never on how events were batched, so a rebuilt
//! store is byte-for-byte the live one.

use std::sync::Arc;

use jejak_domain::state::{Mark, MarkKind};
use jejak_domain::{Decimal, Time};

use crate::graph::{
    Edge, EventRef, Genealogy, InspectionRec, Ix, LotDetail, LotNode, Made, PackageRec, ShipmentRec, NO_SUPPLIER,
};
use crate::master::{
    status_code, status_of, token_issued_from_record, token_issued_to_record, unit_code, unit_of, verdict_code,
    verdict_of, MeasurementRecord, PointRecord, TokenIssuedRecord,
};
use crate::GenealogyError;

/// Where a received lot comes from, as stored. The projection's own type,
/// so that a change to the API's `Origin` cannot change what is on disk;
/// its tags are those the store has always written.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct OriginRecord {
    #[prost(string, tag = "1")]
    place: String,
    #[prost(string, tag = "2")]
    plot_id: String,
    #[prost(message, optional, tag = "3")]
    plot: Option<PointRecord>,
    /// GeoJSON geometry text.
    #[prost(string, tag = "4")]
    geometry: String,
    #[prost(string, tag = "5")]
    producer_country: String,
    #[prost(string, tag = "6")]
    area_ha: String,
}

/// A document of a receipt, as stored (the hash in lowercase hex).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct DocumentRecord {
    #[prost(string, tag = "1")]
    kind: String,
    #[prost(string, tag = "2")]
    reference: String,
    #[prost(string, tag = "3")]
    blake3: String,
    #[prost(string, tag = "4")]
    issuer: String,
    #[prost(int64, optional, tag = "5")]
    valid_from: Option<i64>,
    #[prost(int64, optional, tag = "6")]
    valid_until: Option<i64>,
}

#[cfg(test)]
fn origin_record(o: &jejak_domain::Origin) -> Option<OriginRecord> {
    if *o == jejak_domain::Origin::default() {
        return None;
    }
    Some(OriginRecord {
        place: o.place.clone(),
        plot_id: o.plot_id.clone(),
        plot: o.plot.map(|pt| PointRecord {
            latitude: pt.latitude,
            longitude: pt.longitude,
        }),
        geometry: o.geometry.as_ref().map(|g| g.to_geojson()).unwrap_or_default(),
        producer_country: o.producer_country.clone(),
        area_ha: o.area_ha.map(|a| a.to_string()).unwrap_or_default(),
    })
}

fn document_record(d: &jejak_domain::Document) -> DocumentRecord {
    DocumentRecord {
        kind: d.kind.clone(),
        reference: d.reference.clone(),
        blake3: d.blake3.iter().map(|b| format!("{b:02x}")).collect(),
        issuer: d.issuer.clone(),
        valid_from: d.valid_from.map(|t| t.0),
        valid_until: d.valid_until.map(|t| t.0),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct EdgeRecord {
    #[prost(string, tag = "1")]
    pub(crate) lot: String,
    #[prost(string, tag = "2")]
    pub(crate) quantity: String,
    #[prost(uint64, tag = "3")]
    pub(crate) position: u64,
    #[prost(string, tag = "4")]
    pub(crate) step: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct MarkRecord {
    #[prost(string, tag = "1")]
    event_id: String,
    /// Set for inspections (a `jejak.v1.Verdict`).
    #[prost(int32, tag = "2")]
    verdict: i32,
    /// Set for status changes (a `jejak.v1.LotStatus`).
    #[prost(int32, tag = "3")]
    status: i32,
    #[prost(bool, tag = "4")]
    voided: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct InspectionRecord {
    #[prost(string, tag = "1")]
    event_id: String,
    #[prost(string, tag = "2")]
    standard: String,
    #[prost(int32, tag = "3")]
    verdict: i32,
    #[prost(message, repeated, tag = "4")]
    measurements: Vec<MeasurementRecord>,
    #[prost(string, repeated, tag = "5")]
    findings: Vec<String>,
    #[prost(int64, tag = "6")]
    at: i64,
    #[prost(bool, tag = "7")]
    voided: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PackageRecord {
    #[prost(string, tag = "1")]
    serial: String,
    #[prost(string, tag = "2")]
    gtin: String,
    #[prost(string, tag = "3")]
    quantity: String,
    #[prost(string, tag = "4")]
    event_id: String,
    #[prost(bool, tag = "5")]
    shipped: bool,
    #[prost(bool, tag = "6")]
    voided: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ShipmentRecord {
    #[prost(string, tag = "1")]
    event_id: String,
    #[prost(string, tag = "2")]
    consignee: String,
    #[prost(string, tag = "3")]
    quantity: String,
    #[prost(string, repeated, tag = "4")]
    serials: Vec<String>,
    #[prost(string, tag = "5")]
    document: String,
    #[prost(int64, tag = "6")]
    at: i64,
    #[prost(bool, tag = "7")]
    voided: bool,
    #[prost(string, tag = "8")]
    dds_reference: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct LotRecord {
    #[prost(string, tag = "1")]
    pub(crate) id: String,
    #[prost(string, tag = "2")]
    product: String,
    #[prost(string, tag = "3")]
    facility: String,
    #[prost(string, tag = "4")]
    owner: String,
    #[prost(string, tag = "5")]
    supplier: String,
    #[prost(int32, tag = "6")]
    unit: i32,
    #[prost(string, tag = "7")]
    quantity: String,
    #[prost(string, tag = "8")]
    balance: String,
    #[prost(string, tag = "9")]
    in_transit: String,
    #[prost(string, tag = "10")]
    created_by: String,
    #[prost(string, tag = "11")]
    created_as: String,
    #[prost(int64, tag = "12")]
    created_at: i64,
    #[prost(string, tag = "13")]
    source_lot: String,
    #[prost(bool, tag = "14")]
    voided: bool,
    #[prost(message, repeated, tag = "15")]
    pub(crate) parents: Vec<EdgeRecord>,
    #[prost(uint64, repeated, tag = "16")]
    history: Vec<u64>,
    #[prost(message, optional, tag = "17")]
    origin: Option<OriginRecord>,
    #[prost(message, repeated, tag = "18")]
    documents: Vec<DocumentRecord>,
    #[prost(message, repeated, tag = "19")]
    marks: Vec<MarkRecord>,
    #[prost(message, repeated, tag = "20")]
    inspections: Vec<InspectionRecord>,
    #[prost(message, repeated, tag = "21")]
    packages: Vec<PackageRecord>,
    #[prost(message, repeated, tag = "22")]
    shipments: Vec<ShipmentRecord>,
    /// How the lot came to be: 1 received, 2 a process step (named in
    /// `created_as`). 0 in records written before this field, where
    /// `created_as` "received" meant received.
    #[prost(uint32, tag = "23")]
    made_by: u32,
}

const MADE_RECEIVED: u32 = 1;
const MADE_BY_STEP: u32 = 2;

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct EventRecord {
    #[prost(uint64, tag = "1")]
    pub(crate) position: u64,
    #[prost(string, repeated, tag = "2")]
    pub(crate) lots: Vec<String>,
    #[prost(string, tag = "3")]
    pub(crate) voided_by: String,
    #[prost(string, tag = "4")]
    pub(crate) void_reason: String,
    #[prost(string, tag = "5")]
    pub(crate) id: String,
    #[prost(uint32, tag = "6")]
    pub(crate) kind: u32,
    #[prost(string, tag = "7")]
    pub(crate) chain: String,
}

fn corrupt(key: &str, reason: impl Into<String>) -> GenealogyError {
    GenealogyError::Corrupt {
        key: key.to_string(),
        reason: reason.into(),
    }
}

fn dec(key: &str, s: &str) -> Result<Decimal, GenealogyError> {
    if s.is_empty() {
        return Ok(Decimal::ZERO);
    }
    s.parse().map_err(|_| corrupt(key, format!("{s:?} is not a decimal")))
}

/// A lot's record as prost's types hold it: what `LotWriter` writes
/// without building it, and the check of that.
#[cfg(test)]
pub(crate) fn lot_to_record(g: &Genealogy, n: &LotNode) -> LotRecord {
    let name = |i: u32| g.names.get(i).to_string();
    let d = n.detail();
    LotRecord {
        id: n.id.to_string(),
        product: name(n.product),
        facility: name(n.facility),
        owner: name(n.owner),
        supplier: if n.supplier == NO_SUPPLIER {
            String::new()
        } else {
            name(n.supplier)
        },
        unit: unit_code(n.unit),
        quantity: n.quantity.to_string(),
        balance: n.balance.normalize().to_string(),
        in_transit: n.in_transit.normalize().to_string(),
        created_by: n.created_by.to_string(),
        created_as: match n.made {
            Made::Received => String::new(),
            Made::Step(step) => name(step),
        },
        made_by: match n.made {
            Made::Received => MADE_RECEIVED,
            Made::Step(_) => MADE_BY_STEP,
        },
        created_at: n.created_at.0,
        source_lot: n.source_lot.map(|s| g.node(s).id.to_string()).unwrap_or_default(),
        voided: n.voided,
        parents: n
            .parents
            .iter()
            .map(|e| EdgeRecord {
                lot: g.node(e.lot).id.to_string(),
                quantity: e.quantity.to_string(),
                position: e.position,
                step: name(e.step),
            })
            .collect(),
        history: n.history.clone(),
        origin: origin_record(&d.origin),
        documents: d.documents.iter().map(document_record).collect(),
        marks: d.marks.iter().map(mark_record).collect(),
        inspections: d.inspections.iter().map(|i| inspection_record(g, i)).collect(),
        packages: d.packages.iter().map(|pk| package_record(g, pk)).collect(),
        shipments: d.shipments.iter().map(|s| shipment_record(g, s)).collect(),
    }
}

fn mark_record(m: &Mark) -> MarkRecord {
    MarkRecord {
        event_id: m.event_id.to_string(),
        verdict: match m.kind {
            MarkKind::Inspected(v) => verdict_code(v),
            MarkKind::Status(_) => 0,
        },
        status: match m.kind {
            MarkKind::Status(s) => status_code(s),
            MarkKind::Inspected(_) => 0,
        },
        voided: m.voided,
    }
}

fn inspection_record(g: &Genealogy, i: &InspectionRec) -> InspectionRecord {
    InspectionRecord {
        event_id: i.event_id.to_string(),
        standard: g.names.get(i.standard).to_string(),
        verdict: verdict_code(i.verdict),
        measurements: i
            .measurements
            .iter()
            .map(|m| MeasurementRecord {
                parameter: m.parameter.clone(),
                value: m.value.to_string(),
                unit: m.unit.clone(),
            })
            .collect(),
        findings: i.findings.clone(),
        at: i.at.0,
        voided: i.voided,
    }
}

fn package_record(g: &Genealogy, pk: &PackageRec) -> PackageRecord {
    PackageRecord {
        serial: pk.serial.to_string(),
        gtin: g.names.get(pk.gtin).to_string(),
        quantity: pk.quantity.to_string(),
        event_id: pk.event_id.to_string(),
        shipped: pk.shipped,
        voided: pk.voided,
    }
}

fn shipment_record(g: &Genealogy, s: &ShipmentRec) -> ShipmentRecord {
    ShipmentRecord {
        event_id: s.event_id.to_string(),
        consignee: g.names.get(s.consignee).to_string(),
        quantity: s.quantity.map(|q| q.to_string()).unwrap_or_default(),
        serials: s.serials.iter().map(|x| x.to_string()).collect(),
        document: s.document.clone(),
        at: s.at.0,
        voided: s.voided,
        dds_reference: s.dds_reference.clone(),
    }
}

/// Writes lot records as `lot_to_record(g, n).encode_length_delimited`
/// does, byte for byte, without building the owned record: what a
/// projection's persist spends most of its time on is re-writing the lots of
/// every chunk it touched, and most of a record is names, ids and decimals
/// the genealogy already holds. The detail lists (documents, marks,
/// inspections, packages, shipments), which few lots have, go through
/// their records. Its buffers are kept from one lot to the next.
#[derive(Default)]
pub(crate) struct LotWriter {
    record: Vec<u8>,
    nested: Vec<u8>,
    text: String,
}

mod wire {
    use prost::encoding::{encode_key, encode_varint, WireType};

    pub(super) fn string(buf: &mut Vec<u8>, tag: u32, value: &str) {
        if !value.is_empty() {
            encode_key(tag, WireType::LengthDelimited, buf);
            encode_varint(value.len() as u64, buf);
            buf.extend_from_slice(value.as_bytes());
        }
    }

    pub(super) fn varint(buf: &mut Vec<u8>, tag: u32, value: u64) {
        if value != 0 {
            encode_key(tag, WireType::Varint, buf);
            encode_varint(value, buf);
        }
    }

    /// A nested message (written even when empty, as prost writes one present).
    pub(super) fn message(buf: &mut Vec<u8>, tag: u32, encoded: &[u8]) {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(encoded.len() as u64, buf);
        buf.extend_from_slice(encoded);
    }

    /// Packed, as prost writes a repeated scalar; nothing when empty.
    pub(super) fn packed(buf: &mut Vec<u8>, tag: u32, values: &[u64]) {
        if !values.is_empty() {
            encode_key(tag, WireType::LengthDelimited, buf);
            let len: usize = values.iter().map(|v| prost::encoding::encoded_len_varint(*v)).sum();
            encode_varint(len as u64, buf);
            for v in values {
                encode_varint(*v, buf);
            }
        }
    }
}

impl LotWriter {
    /// Appends the lot's record, length-delimited, to `out`.
    pub(crate) fn write(&mut self, g: &Genealogy, n: &LotNode, out: &mut Vec<u8>) {
        use prost::encoding::message;
        let name = |i: u32| g.names.get(i);
        let LotWriter { record, nested, text } = self;
        let decimal = |buf: &mut Vec<u8>, tag: u32, d: Decimal, text: &mut String| {
            text.clear();
            jejak_domain::quantity::push_decimal(text, d);
            wire::string(buf, tag, text);
        };
        record.clear();
        wire::string(record, 1, &n.id);
        wire::string(record, 2, name(n.product));
        wire::string(record, 3, name(n.facility));
        wire::string(record, 4, name(n.owner));
        if n.supplier != NO_SUPPLIER {
            wire::string(record, 5, name(n.supplier));
        }
        // int32, as prost writes one (a negative code would sign-extend).
        wire::varint(record, 6, unit_code(n.unit) as i64 as u64);
        decimal(record, 7, n.quantity, text);
        decimal(record, 8, n.balance.normalize(), text);
        decimal(record, 9, n.in_transit.normalize(), text);
        wire::string(record, 10, &n.created_by);
        if let Made::Step(step) = n.made {
            wire::string(record, 11, name(step));
        }
        wire::varint(record, 12, n.created_at.0 as u64);
        if let Some(s) = n.source_lot {
            wire::string(record, 13, &g.node(s).id);
        }
        wire::varint(record, 14, u64::from(n.voided));
        for e in &n.parents {
            nested.clear();
            wire::string(nested, 1, &g.node(e.lot).id);
            decimal(nested, 2, e.quantity, text);
            wire::varint(nested, 3, e.position);
            wire::string(nested, 4, name(e.step));
            wire::message(record, 15, nested);
        }
        wire::packed(record, 16, &n.history);
        let d = n.detail();
        let o = &d.origin;
        if *o != jejak_domain::Origin::default() {
            nested.clear();
            wire::string(nested, 1, &o.place);
            wire::string(nested, 2, &o.plot_id);
            if let Some(pt) = o.plot {
                let point = PointRecord {
                    latitude: pt.latitude,
                    longitude: pt.longitude,
                };
                message::encode(3, &point, nested);
            }
            if let Some(geometry) = &o.geometry {
                text.clear();
                geometry.write_geojson(text);
                wire::string(nested, 4, text);
            }
            wire::string(nested, 5, &o.producer_country);
            if let Some(a) = o.area_ha {
                decimal(nested, 6, a, text);
            }
            wire::message(record, 17, nested);
        }
        for doc in &d.documents {
            message::encode(18, &document_record(doc), record);
        }
        for m in &d.marks {
            message::encode(19, &mark_record(m), record);
        }
        for i in &d.inspections {
            message::encode(20, &inspection_record(g, i), record);
        }
        for pk in &d.packages {
            message::encode(21, &package_record(g, pk), record);
        }
        for s in &d.shipments {
            message::encode(22, &shipment_record(g, s), record);
        }
        wire::varint(
            record,
            23,
            u64::from(match n.made {
                Made::Received => MADE_RECEIVED,
                Made::Step(_) => MADE_BY_STEP,
            }),
        );
        prost::encoding::encode_varint(record.len() as u64, out);
        out.extend_from_slice(record);
    }
}

/// A node from its record; parents are resolved later, once every lot is loaded.
pub(crate) fn record_to_node(
    g: &mut Genealogy,
    r: LotRecord,
) -> Result<(LotNode, Vec<EdgeRecord>, String), GenealogyError> {
    let key = format!("lot {}", r.id);
    let key = key.as_str();
    let LotRecord {
        id,
        product,
        facility,
        owner,
        supplier,
        unit,
        quantity,
        balance,
        in_transit,
        created_by,
        created_as,
        created_at,
        source_lot,
        voided,
        parents,
        history,
        origin,
        documents,
        marks,
        inspections,
        packages,
        made_by,
        shipments,
    } = r;
    let mut ms = Vec::with_capacity(marks.len());
    for m in marks {
        let kind = if m.verdict != 0 {
            MarkKind::Inspected(verdict_of(key, m.verdict)?)
        } else {
            MarkKind::Status(status_of(key, m.status)?)
        };
        ms.push(Mark {
            event_id: Arc::from(m.event_id.as_str()),
            kind,
            voided: m.voided,
        });
    }
    let mut ins = Vec::with_capacity(inspections.len());
    for i in inspections {
        let mut measurements = Vec::with_capacity(i.measurements.len());
        for m in i.measurements {
            measurements.push(jejak_domain::Measurement {
                value: dec(key, &m.value)?,
                parameter: m.parameter,
                unit: m.unit,
            });
        }
        ins.push(InspectionRec {
            event_id: i.event_id.into(),
            standard: g.names.intern(&i.standard),
            verdict: verdict_of(key, i.verdict)?,
            measurements,
            findings: i.findings,
            at: Time(i.at),
            voided: i.voided,
        });
    }
    let mut pks = Vec::with_capacity(packages.len());
    for pk in packages {
        pks.push(PackageRec {
            serial: pk.serial.into(),
            gtin: g.names.intern(&pk.gtin),
            quantity: dec(key, &pk.quantity)?,
            event_id: pk.event_id.into(),
            shipped: pk.shipped,
            voided: pk.voided,
        });
    }
    let mut shs = Vec::with_capacity(shipments.len());
    for s in shipments {
        shs.push(ShipmentRec {
            event_id: s.event_id.into(),
            consignee: g.names.intern(&s.consignee),
            quantity: if s.quantity.is_empty() {
                None
            } else {
                Some(dec(key, &s.quantity)?)
            },
            serials: s.serials.into_iter().map(Into::into).collect(),
            document: s.document,
            dds_reference: s.dds_reference,
            at: Time(s.at),
            voided: s.voided,
        });
    }
    let mut docs = Vec::with_capacity(documents.len());
    for d in documents {
        let mut hash = [0u8; 32];
        for (j, b) in hash.iter_mut().enumerate() {
            *b = d
                .blake3
                .get(j * 2..j * 2 + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| corrupt(key, "document hash is not hex"))?;
        }
        docs.push(jejak_domain::Document {
            kind: d.kind,
            reference: d.reference,
            blake3: hash,
            issuer: d.issuer,
            valid_from: d.valid_from.map(Time),
            valid_until: d.valid_until.map(Time),
        });
    }
    let origin = match origin {
        None => jejak_domain::Origin::default(),
        Some(o) => jejak_domain::Origin {
            place: o.place,
            plot_id: o.plot_id,
            plot: o.plot.map(|pt| jejak_domain::GeoPoint {
                latitude: pt.latitude,
                longitude: pt.longitude,
            }),
            geometry: match o.geometry.as_str() {
                "" => None,
                text => Some(
                    jejak_proto::json::geometry(text, "origin.geometry")
                        .map_err(|e| corrupt(key, format!("stored plot geometry: {e}")))?,
                ),
            },
            producer_country: o.producer_country,
            area_ha: match o.area_ha.as_str() {
                "" => None,
                a => Some(dec(key, a)?),
            },
        },
    };
    let standing = jejak_domain::state::standing(&ms);
    let node = LotNode {
        id: id.into(),
        product: g.names.intern(&product),
        facility: g.names.intern(&facility),
        owner: g.names.intern(&owner),
        supplier: if supplier.is_empty() {
            NO_SUPPLIER
        } else {
            g.names.intern(&supplier)
        },
        unit: unit_of(key, unit)?,
        quantity: dec(key, &quantity)?,
        balance: dec(key, &balance)?,
        in_transit: dec(key, &in_transit)?,
        created_by: created_by.into(),
        made: match made_by {
            MADE_RECEIVED => Made::Received,
            MADE_BY_STEP => Made::Step(g.names.intern(&created_as)),
            0 if created_as == "received" => Made::Received,
            0 => Made::Step(g.names.intern(&created_as)),
            other => {
                return Err(corrupt(
                    key,
                    format!("made_by {other} is neither received (1) nor a step (2)"),
                ))
            }
        },
        created_at: Time(created_at),
        source_lot: None,
        voided,
        standing,
        parents: Vec::new(),
        children: Vec::new(),
        history,
        detail: None,
    };
    let detail = LotDetail {
        origin,
        documents: docs,
        marks: ms,
        inspections: ins,
        packages: pks,
        shipments: shs,
    };
    let empty = detail.origin == jejak_domain::Origin::default()
        && detail.documents.is_empty()
        && detail.marks.is_empty()
        && detail.inspections.is_empty()
        && detail.packages.is_empty()
        && detail.shipments.is_empty();
    let mut node = node;
    if !empty {
        node.detail = Some(Box::new(detail));
    }
    Ok((node, parents, source_lot))
}

/// Resolves a node's stored parents once every lot is loaded.
pub(crate) fn resolve_parents(
    g: &mut Genealogy,
    ix: Ix,
    parents: Vec<EdgeRecord>,
    source_lot: &str,
) -> Result<(), GenealogyError> {
    let key = format!("lot {}", g.node(ix).id);
    let mut edges = Vec::with_capacity(parents.len());
    for e in parents {
        let lot = g
            .lot_ix(&e.lot)
            .ok_or_else(|| corrupt(&key, format!("input lot {:?} is missing", e.lot)))?;
        edges.push(Edge {
            lot,
            quantity: dec(&key, &e.quantity)?,
            position: e.position,
            step: g.names.intern(&e.step),
        });
    }
    let source = if source_lot.is_empty() {
        None
    } else {
        g.lot_ix(source_lot)
    };
    let n = &mut g.lots[ix as usize];
    n.parents = edges;
    n.source_lot = source;
    Ok(())
}

pub(crate) fn event_to_record(g: &Genealogy, id: &str, e: &EventRef) -> EventRecord {
    EventRecord {
        id: id.to_string(),
        kind: e.kind as u32,
        chain: g.names.get(e.chain).to_string(),
        position: e.position,
        lots: e.lots.iter().map(|ix| g.node(*ix).id.to_string()).collect(),
        voided_by: e.voided_by.as_deref().map(|(id, _)| id.to_string()).unwrap_or_default(),
        void_reason: e.voided_by.as_deref().map(|(_, r)| r.clone()).unwrap_or_default(),
    }
}

pub(crate) fn record_to_event(g: &mut Genealogy, key: &str, r: EventRecord) -> Result<EventRef, GenealogyError> {
    let mut lots = Vec::with_capacity(r.lots.len());
    for l in &r.lots {
        lots.push(
            g.lot_ix(l)
                .ok_or_else(|| corrupt(key, format!("lot {l:?} is missing")))?,
        );
    }
    let kind = crate::graph::EventKind::from_code(r.kind)
        .ok_or_else(|| corrupt(key, format!("unknown event kind {}", r.kind)))?;
    Ok(EventRef {
        position: r.position,
        lots,
        voided_by: if r.voided_by.is_empty() {
            None
        } else {
            Some(Box::new((r.voided_by.into(), r.void_reason)))
        },
        kind,
        chain: g.names.intern(&r.chain),
    })
}

/// A token as the projection stores it: the issuing event's fields plus
/// when it was issued and whether it was revoked.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TokenRecordProto {
    #[prost(message, optional, tag = "1")]
    issued: Option<TokenIssuedRecord>,
    #[prost(string, tag = "2")]
    event_id: String,
    #[prost(int64, tag = "3")]
    issued_at: i64,
    #[prost(bool, tag = "4")]
    revoked: bool,
    #[prost(int64, tag = "5")]
    revoked_at: i64,
    #[prost(string, tag = "6")]
    revoke_reason: String,
}

pub(crate) fn token_to_record(t: &jejak_domain::TokenRecord) -> TokenRecordProto {
    TokenRecordProto {
        issued: Some(token_issued_to_record(&t.issued)),
        event_id: t.event_id.clone(),
        issued_at: t.issued_at.0,
        revoked: t.revoked.is_some(),
        revoked_at: t.revoked.as_ref().map(|r| r.0 .0).unwrap_or_default(),
        revoke_reason: t.revoked.as_ref().map(|r| r.1.clone()).unwrap_or_default(),
    }
}

pub(crate) fn token_from_record(key: &str, r: TokenRecordProto) -> Result<jejak_domain::TokenRecord, GenealogyError> {
    let issued = r.issued.ok_or_else(|| corrupt(key, "token record without its issue"))?;
    Ok(jejak_domain::TokenRecord {
        issued: token_issued_from_record(key, issued)?,
        event_id: r.event_id,
        issued_at: Time(r.issued_at),
        revoked: r.revoked.then_some((Time(r.revoked_at), r.revoke_reason)),
    })
}
