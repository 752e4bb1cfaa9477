//! Master data and tokens as the projection stores them: its own record
//! types, wire-compatible with what earlier versions wrote (the proto
//! encoding of the registering event), so that a change to the API can no
//! longer change what is on disk. The stored codes of enums are listed
//! here, once, for every record of the store.

use jejak_domain::gs1::Gtin;
use jejak_domain::{self as d, Decimal, Time};

use crate::GenealogyError;

fn corrupt(key: &str, reason: impl Into<String>) -> GenealogyError {
    GenealogyError::Corrupt {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// The stored code of each value of a domain enum, both ways.
macro_rules! codes {
    ($what:literal, $code:ident, $of:ident, $ty:ty { $($variant:ident = $n:literal),+ $(,)? }) => {
        pub(crate) fn $code(v: $ty) -> i32 {
            match v {
                $(<$ty>::$variant => $n,)+
            }
        }

        pub(crate) fn $of(key: &str, v: i32) -> Result<$ty, GenealogyError> {
            match v {
                $($n => Ok(<$ty>::$variant),)+
                other => Err(corrupt(key, format!("{} code {other} is unknown", $what))),
            }
        }
    };
}

codes!("unit", unit_code, unit_of, d::Unit { Kg = 1, G = 2, T = 3, Pcs = 4, M = 5, M2 = 6, M3 = 7, L = 8 });
codes!("sector", sector_code, sector_of, d::Sector { Rice = 1, Metal = 2, Garment = 3, Furniture = 4 });
codes!("party role", party_role_code, party_role_of, d::PartyRole { Ukm = 1, Supplier = 2, Customer = 3, Operator = 4 });
codes!("product kind", product_kind_code, product_kind_of, d::ProductKind { Raw = 1, Intermediate = 2, Finished = 3 });
codes!("access role", role_code, role_of, d::Role { Admin = 1, Operator = 2, Member = 3, Regulator = 4 });
codes!("verdict", verdict_code, verdict_of, d::Verdict { Conformant = 1, NonConformant = 2, Hold = 3 });
codes!("lot status", status_code, status_of, d::LotStatus { Active = 1, OnHold = 2, Released = 3, Recalled = 4, Disposed = 5 });

/// A measurement of an inspection, as stored.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct MeasurementRecord {
    #[prost(string, tag = "1")]
    pub(crate) parameter: String,
    #[prost(string, tag = "2")]
    pub(crate) value: String,
    #[prost(string, tag = "3")]
    pub(crate) unit: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PointRecord {
    #[prost(double, tag = "1")]
    pub(crate) latitude: f64,
    #[prost(double, tag = "2")]
    pub(crate) longitude: f64,
}

/// One piece of master data, under the tag of its kind.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct MasterRecord {
    #[prost(message, optional, tag = "1")]
    party: Option<PartyEnvelope>,
    #[prost(message, optional, tag = "2")]
    facility: Option<FacilityEnvelope>,
    #[prost(message, optional, tag = "3")]
    product: Option<ProductEnvelope>,
    #[prost(message, optional, tag = "4")]
    standard: Option<StandardEnvelope>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PartyEnvelope {
    #[prost(message, optional, tag = "1")]
    party: Option<PartyRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct FacilityEnvelope {
    #[prost(message, optional, tag = "1")]
    facility: Option<FacilityRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProductEnvelope {
    #[prost(message, optional, tag = "1")]
    product: Option<ProductRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StandardEnvelope {
    #[prost(message, optional, tag = "1")]
    standard: Option<StandardRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PartyRecord {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(int32, repeated, tag = "3")]
    roles: Vec<i32>,
    #[prost(string, tag = "4")]
    district: String,
    #[prost(string, tag = "5")]
    contact: String,
    #[prost(string, tag = "6")]
    gln: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct FacilityRecord {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(int32, tag = "3")]
    sector: i32,
    #[prost(string, tag = "4")]
    district: String,
    #[prost(string, tag = "5")]
    operator_id: String,
    #[prost(message, optional, tag = "6")]
    location: Option<PointRecord>,
    #[prost(string, tag = "7")]
    gln: String,
    #[prost(bool, tag = "8")]
    requires_legality: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProductRecord {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(int32, tag = "3")]
    sector: i32,
    #[prost(int32, tag = "4")]
    kind: i32,
    #[prost(int32, tag = "5")]
    unit: i32,
    #[prost(string, tag = "6")]
    gtin: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StandardRecord {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(string, tag = "3")]
    reference: String,
    #[prost(message, repeated, tag = "4")]
    parameters: Vec<ParameterRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ParameterRecord {
    #[prost(string, tag = "1")]
    code: String,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(string, tag = "3")]
    unit: String,
    #[prost(string, tag = "4")]
    min: String,
    #[prost(string, tag = "5")]
    max: String,
    #[prost(bool, tag = "6")]
    required: bool,
}

/// A piece of master data, as the genealogy holds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Master {
    Party(d::Party),
    Facility(d::Facility),
    Product(d::Product),
    Standard(d::QualityStandard),
}

fn point(p: Option<d::GeoPoint>) -> Option<PointRecord> {
    p.map(|p| PointRecord {
        latitude: p.latitude,
        longitude: p.longitude,
    })
}

fn decimal_text(v: Option<Decimal>) -> String {
    v.map(|d| d.to_string()).unwrap_or_default()
}

fn decimal_of(key: &str, s: &str) -> Result<Option<Decimal>, GenealogyError> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| corrupt(key, format!("{} is not a decimal", jejak_domain::quote(s))))
}

fn gln_text(g: &Option<jejak_domain::gs1::Gln>) -> String {
    g.as_ref().map(|g| g.to_string()).unwrap_or_default()
}

fn gln_of(key: &str, s: &str) -> Result<Option<jejak_domain::gs1::Gln>, GenealogyError> {
    match s {
        "" => Ok(None),
        g => jejak_domain::gs1::Gln::parse(g).map(Some).map_err(|e| corrupt(key, e)),
    }
}

pub(crate) fn master_to_record(m: &Master) -> MasterRecord {
    let mut r = MasterRecord::default();
    match m {
        Master::Party(p) => {
            r.party = Some(PartyEnvelope {
                party: Some(PartyRecord {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    roles: p.roles.iter().map(|r| party_role_code(*r)).collect(),
                    district: p.district.clone(),
                    contact: p.contact.clone(),
                    gln: gln_text(&p.gln),
                }),
            });
        }
        Master::Facility(f) => {
            r.facility = Some(FacilityEnvelope {
                facility: Some(FacilityRecord {
                    id: f.id.clone(),
                    name: f.name.clone(),
                    sector: sector_code(f.sector),
                    district: f.district.clone(),
                    operator_id: f.operator_id.clone(),
                    location: point(f.location),
                    gln: gln_text(&f.gln),
                    requires_legality: f.requires_legality,
                }),
            });
        }
        Master::Product(p) => {
            r.product = Some(ProductEnvelope {
                product: Some(ProductRecord {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    sector: sector_code(p.sector),
                    kind: product_kind_code(p.kind),
                    unit: unit_code(p.unit),
                    gtin: p.gtin.as_ref().map(|g| g.as_str().to_string()).unwrap_or_default(),
                }),
            });
        }
        Master::Standard(s) => {
            r.standard = Some(StandardEnvelope {
                standard: Some(StandardRecord {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    reference: s.reference.clone(),
                    parameters: s
                        .parameters
                        .iter()
                        .map(|p| ParameterRecord {
                            code: p.code.clone(),
                            name: p.name.clone(),
                            unit: p.unit.clone(),
                            min: decimal_text(p.min),
                            max: decimal_text(p.max),
                            required: p.required,
                        })
                        .collect(),
                }),
            });
        }
    }
    r
}

pub(crate) fn master_from_record(key: &str, r: MasterRecord) -> Result<Master, GenealogyError> {
    let MasterRecord {
        party,
        facility,
        product,
        standard,
    } = r;
    let point_of = |p: Option<PointRecord>| {
        p.map(|p| d::GeoPoint {
            latitude: p.latitude,
            longitude: p.longitude,
        })
    };
    match (party, facility, product, standard) {
        (Some(PartyEnvelope { party: Some(p) }), None, None, None) => Ok(Master::Party(d::Party {
            roles: p
                .roles
                .iter()
                .map(|r| party_role_of(key, *r))
                .collect::<Result<_, _>>()?,
            gln: gln_of(key, &p.gln)?,
            id: p.id,
            name: p.name,
            district: p.district,
            contact: p.contact,
        })),
        (None, Some(FacilityEnvelope { facility: Some(f) }), None, None) => Ok(Master::Facility(d::Facility {
            sector: sector_of(key, f.sector)?,
            location: point_of(f.location),
            gln: gln_of(key, &f.gln)?,
            id: f.id,
            name: f.name,
            district: f.district,
            operator_id: f.operator_id,
            requires_legality: f.requires_legality,
        })),
        (None, None, Some(ProductEnvelope { product: Some(p) }), None) => Ok(Master::Product(d::Product {
            sector: sector_of(key, p.sector)?,
            kind: product_kind_of(key, p.kind)?,
            unit: unit_of(key, p.unit)?,
            gtin: match p.gtin.as_str() {
                "" => None,
                g => Some(Gtin::parse(g).map_err(|e| corrupt(key, e.to_string()))?),
            },
            id: p.id,
            name: p.name,
        })),
        (None, None, None, Some(StandardEnvelope { standard: Some(s) })) => {
            let mut parameters = Vec::with_capacity(s.parameters.len());
            for p in s.parameters {
                parameters.push(d::Parameter {
                    min: decimal_of(key, &p.min)?,
                    max: decimal_of(key, &p.max)?,
                    code: p.code,
                    name: p.name,
                    unit: p.unit,
                    required: p.required,
                });
            }
            Ok(Master::Standard(d::QualityStandard {
                id: s.id,
                name: s.name,
                reference: s.reference,
                parameters,
            }))
        }
        _ => Err(corrupt(key, "not one piece of master data")),
    }
}

/// A token's issue, as stored inside its token record.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TokenIssuedRecord {
    #[prost(string, tag = "1")]
    token_id: String,
    #[prost(bytes = "vec", tag = "2")]
    secret_hash: Vec<u8>,
    #[prost(int32, tag = "3")]
    role: i32,
    #[prost(string, repeated, tag = "4")]
    facility_ids: Vec<String>,
    #[prost(string, tag = "5")]
    party_id: String,
    #[prost(message, optional, tag = "6")]
    expires_at: Option<TimeRecord>,
    #[prost(string, tag = "7")]
    label: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TimeRecord {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

pub(crate) fn token_issued_to_record(t: &d::TokenIssued) -> TokenIssuedRecord {
    TokenIssuedRecord {
        token_id: t.token_id.clone(),
        secret_hash: t.secret_hash.to_vec(),
        role: role_code(t.role),
        facility_ids: t.facility_ids.clone(),
        party_id: t.party_id.clone().unwrap_or_default(),
        expires_at: Some(TimeRecord {
            seconds: t.expires_at.seconds(),
            nanos: t.expires_at.subsec_nanos(),
        }),
        label: t.label.clone(),
    }
}

pub(crate) fn token_issued_from_record(key: &str, r: TokenIssuedRecord) -> Result<d::TokenIssued, GenealogyError> {
    let expires = r.expires_at.ok_or_else(|| corrupt(key, "a token without its expiry"))?;
    Ok(d::TokenIssued {
        secret_hash: r
            .secret_hash
            .as_slice()
            .try_into()
            .map_err(|_| corrupt(key, "a token hash is not 32 bytes"))?,
        role: role_of(key, r.role)?,
        expires_at: Time::from_unix(expires.seconds, expires.nanos)
            .ok_or_else(|| corrupt(key, "a token expiry out of range"))?,
        party_id: (!r.party_id.is_empty()).then_some(r.party_id),
        token_id: r.token_id,
        facility_ids: r.facility_ids,
        label: r.label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// What this store reads is what earlier versions wrote: the proto
    /// encoding of the registering event.
    #[test]
    fn master_records_read_what_the_registering_events_encoded() {
        let scenario = jejak_domain::scenario::rice_mill();
        let mut seen = 0;
        for (id, event) in &scenario.events {
            let master = match event.clone() {
                d::Event::PartyRegistered(p) => Master::Party(p),
                d::Event::FacilityRegistered(f) => Master::Facility(f),
                d::Event::ProductRegistered(p) => Master::Product(p),
                d::Event::StandardRegistered(s) => Master::Standard(s),
                _ => continue,
            };
            seen += 1;
            let as_event = jejak_proto::event_to_proto(event).encode_to_vec();
            let as_record = master_to_record(&master).encode_to_vec();
            assert_eq!(as_record, as_event, "{id}: the stored bytes changed");
            let back = master_from_record(id, MasterRecord::decode(as_event.as_slice()).expect("decodes"))
                .expect("reads back");
            assert_eq!(back, master, "{id}");
        }
        assert!(
            seen >= 10,
            "the scenario registers parties, facilities, products and a standard"
        );
    }

    #[test]
    fn a_token_issue_reads_what_the_event_encoded() {
        let t = d::TokenIssued {
            token_id: "tk0123456789abcdef".into(),
            secret_hash: [7; 32],
            role: d::Role::Operator,
            facility_ids: vec!["fac-demak".into()],
            party_id: None,
            expires_at: Time::from_unix(1_800_000_000, 5).expect("in range"),
            label: "tablet 3".into(),
        };
        let event = jejak_proto::event_to_proto(&d::Event::TokenIssued(t.clone()));
        let Some(jejak_proto::v1::event::Kind::TokenIssued(issued)) = event.kind else {
            panic!("a token issue")
        };
        let bytes = issued.encode_to_vec();
        assert_eq!(token_issued_to_record(&t).encode_to_vec(), bytes);
        let back = token_issued_from_record("t", TokenIssuedRecord::decode(bytes.as_slice()).expect("decodes"));
        assert_eq!(back.expect("reads back"), t);
    }
}
