//! proto ↔ domain conversions. Incoming messages are validated here, once:
//! every error names the field, so a person can fix the request. Proto structs
//! are destructured exhaustively, so a new field breaks the build until it is
//! handled.

use jejak_domain as d;
use jejak_domain::gs1::Gtin;
use jejak_domain::{quantity, validate, DomainError};

use crate::v1 as p;

type Result<T> = std::result::Result<T, DomainError>;

fn field(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn required<T>(v: Option<T>, field: &str) -> Result<T> {
    v.ok_or_else(|| DomainError::invalid(field, "is required"))
}

fn unit(v: i32, f: &str) -> Result<d::Unit> {
    Ok(match p::Unit::try_from(v) {
        Ok(p::Unit::Kg) => d::Unit::Kg,
        Ok(p::Unit::G) => d::Unit::G,
        Ok(p::Unit::T) => d::Unit::T,
        Ok(p::Unit::Pcs) => d::Unit::Pcs,
        Ok(p::Unit::M) => d::Unit::M,
        Ok(p::Unit::M2) => d::Unit::M2,
        Ok(p::Unit::M3) => d::Unit::M3,
        Ok(p::Unit::L) => d::Unit::L,
        Ok(p::Unit::Unspecified) => return Err(DomainError::invalid(f, "is required (kg, g, t, pcs, m, m2, m3 or l)")),
        Err(_) => return Err(DomainError::invalid(f, format!("{v} is not a known unit"))),
    })
}

pub fn unit_to_proto(u: d::Unit) -> p::Unit {
    match u {
        d::Unit::Kg => p::Unit::Kg,
        d::Unit::G => p::Unit::G,
        d::Unit::T => p::Unit::T,
        d::Unit::Pcs => p::Unit::Pcs,
        d::Unit::M => p::Unit::M,
        d::Unit::M2 => p::Unit::M2,
        d::Unit::M3 => p::Unit::M3,
        d::Unit::L => p::Unit::L,
    }
}

fn quantity(q: Option<p::Quantity>, f: &str) -> Result<d::Quantity> {
    let p::Quantity { value, unit: u } = required(q, f)?;
    let u = unit(u, "unit").map_err(|e| e.under(f))?;
    d::Quantity::parse("value", &value, u).map_err(|e| e.under(f))
}

pub fn quantity_to_proto(q: &d::Quantity) -> p::Quantity {
    p::Quantity {
        value: q.value().to_string(),
        unit: unit_to_proto(q.unit()) as i32,
    }
}

fn time(t: Option<prost_types::Timestamp>, f: &str) -> Result<Option<d::Time>> {
    let Some(prost_types::Timestamp { seconds, nanos }) = t else {
        return Ok(None);
    };
    if !(0..1_000_000_000).contains(&nanos) {
        return Err(DomainError::invalid(f, "nanos must be within 0..1e9"));
    }
    d::Time::from_unix(seconds, nanos)
        .map(Some)
        .ok_or_else(|| DomainError::invalid(f, "is out of range"))
}

/// A time from the wire, `field` named when it is out of range.
pub fn time_from_proto(t: Option<prost_types::Timestamp>, field: &str) -> Result<Option<d::Time>> {
    time(t, field)
}

pub fn time_to_proto(t: d::Time) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.seconds(),
        nanos: t.subsec_nanos(),
    }
}

fn opt_time_to_proto(t: Option<d::Time>) -> Option<prost_types::Timestamp> {
    t.map(time_to_proto)
}

fn id(v: String, f: &str) -> Result<String> {
    validate::id(f, &v)?;
    Ok(v)
}

fn lot_id(v: String, f: &str) -> Result<String> {
    validate::lot_id(f, &v)?;
    Ok(v)
}

fn text(v: String, f: &str) -> Result<String> {
    validate::text(f, &v)?;
    Ok(v)
}

fn name(v: String, f: &str) -> Result<String> {
    validate::required_text(f, &v)?;
    Ok(v)
}

/// An EPCIS observation, checked like the other events' fields (the
/// document itself is checked by EPCIS capture).
fn epcis_observed(
    facility_id: String,
    event_type: String,
    event_json: String,
    lot_ids: Vec<String>,
    occurred_at: Option<prost_types::Timestamp>,
) -> Result<d::EpcisObserved> {
    let facility_id = match facility_id.is_empty() {
        true => facility_id,
        false => id(facility_id, "facility_id")?,
    };
    Ok(d::EpcisObserved {
        facility_id,
        event_type: text(event_type, "event_type")?,
        event_json,
        lot_ids: lot_ids
            .into_iter()
            .enumerate()
            .map(|(i, l)| lot_id(l, &format!("lot_ids[{i}]")))
            .collect::<Result<_>>()?,
        occurred_at: time(occurred_at, "occurred_at")?,
    })
}

fn opt_id(v: String, f: &str) -> Result<Option<String>> {
    if v.is_empty() {
        Ok(None)
    } else {
        id(v, f).map(Some)
    }
}

fn sector(v: i32, f: &str) -> Result<d::Sector> {
    Ok(match p::Sector::try_from(v) {
        Ok(p::Sector::Rice) => d::Sector::Rice,
        Ok(p::Sector::Metal) => d::Sector::Metal,
        Ok(p::Sector::Garment) => d::Sector::Garment,
        Ok(p::Sector::Furniture) => d::Sector::Furniture,
        Ok(p::Sector::Unspecified) => {
            return Err(DomainError::invalid(
                f,
                "is required (rice, metal, garment or furniture)",
            ))
        }
        Err(_) => return Err(DomainError::invalid(f, format!("{v} is not a known sector"))),
    })
}

fn sector_to_proto(s: d::Sector) -> p::Sector {
    match s {
        d::Sector::Rice => p::Sector::Rice,
        d::Sector::Metal => p::Sector::Metal,
        d::Sector::Garment => p::Sector::Garment,
        d::Sector::Furniture => p::Sector::Furniture,
    }
}

fn role(v: i32, f: &str) -> Result<d::PartyRole> {
    Ok(match p::PartyRole::try_from(v) {
        Ok(p::PartyRole::Ukm) => d::PartyRole::Ukm,
        Ok(p::PartyRole::Supplier) => d::PartyRole::Supplier,
        Ok(p::PartyRole::Customer) => d::PartyRole::Customer,
        Ok(p::PartyRole::Operator) => d::PartyRole::Operator,
        Ok(p::PartyRole::Unspecified) | Err(_) => {
            return Err(DomainError::invalid(f, format!("{v} is not a known party role")))
        }
    })
}

fn role_to_proto(r: d::PartyRole) -> p::PartyRole {
    match r {
        d::PartyRole::Ukm => p::PartyRole::Ukm,
        d::PartyRole::Supplier => p::PartyRole::Supplier,
        d::PartyRole::Customer => p::PartyRole::Customer,
        d::PartyRole::Operator => p::PartyRole::Operator,
    }
}

fn product_kind(v: i32, f: &str) -> Result<d::ProductKind> {
    Ok(match p::ProductKind::try_from(v) {
        Ok(p::ProductKind::Raw) => d::ProductKind::Raw,
        Ok(p::ProductKind::Intermediate) => d::ProductKind::Intermediate,
        Ok(p::ProductKind::Finished) => d::ProductKind::Finished,
        Ok(p::ProductKind::Unspecified) => {
            return Err(DomainError::invalid(f, "is required (raw, intermediate or finished)"))
        }
        Err(_) => return Err(DomainError::invalid(f, format!("{v} is not a known product kind"))),
    })
}

fn product_kind_to_proto(k: d::ProductKind) -> p::ProductKind {
    match k {
        d::ProductKind::Raw => p::ProductKind::Raw,
        d::ProductKind::Intermediate => p::ProductKind::Intermediate,
        d::ProductKind::Finished => p::ProductKind::Finished,
    }
}

fn verdict(v: i32, f: &str) -> Result<d::Verdict> {
    Ok(match p::Verdict::try_from(v) {
        Ok(p::Verdict::Conformant) => d::Verdict::Conformant,
        Ok(p::Verdict::NonConformant) => d::Verdict::NonConformant,
        Ok(p::Verdict::Hold) => d::Verdict::Hold,
        Ok(p::Verdict::Unspecified) | Err(_) => {
            return Err(DomainError::invalid(f, format!("{v} is not a known verdict")))
        }
    })
}

pub fn verdict_to_proto(v: d::Verdict) -> p::Verdict {
    match v {
        d::Verdict::Conformant => p::Verdict::Conformant,
        d::Verdict::NonConformant => p::Verdict::NonConformant,
        d::Verdict::Hold => p::Verdict::Hold,
    }
}

fn status(v: i32, f: &str) -> Result<d::LotStatus> {
    Ok(match p::LotStatus::try_from(v) {
        Ok(p::LotStatus::Active) => d::LotStatus::Active,
        Ok(p::LotStatus::OnHold) => d::LotStatus::OnHold,
        Ok(p::LotStatus::Released) => d::LotStatus::Released,
        Ok(p::LotStatus::Recalled) => d::LotStatus::Recalled,
        Ok(p::LotStatus::Disposed) => d::LotStatus::Disposed,
        Ok(p::LotStatus::Unspecified) => {
            return Err(DomainError::invalid(
                f,
                "is required (on hold, released, recalled or disposed)",
            ))
        }
        Err(_) => return Err(DomainError::invalid(f, format!("{v} is not a known lot status"))),
    })
}

pub fn status_to_proto(s: d::LotStatus) -> p::LotStatus {
    match s {
        d::LotStatus::Active => p::LotStatus::Active,
        d::LotStatus::OnHold => p::LotStatus::OnHold,
        d::LotStatus::Released => p::LotStatus::Released,
        d::LotStatus::Recalled => p::LotStatus::Recalled,
        d::LotStatus::Disposed => p::LotStatus::Disposed,
    }
}

fn geo(g: Option<p::GeoPoint>, f: &str) -> Result<Option<d::GeoPoint>> {
    let Some(p::GeoPoint { latitude, longitude }) = g else {
        return Ok(None);
    };
    if !latitude.is_finite() || !longitude.is_finite() {
        return Err(DomainError::invalid(f, "coordinates must be finite numbers"));
    }
    d::GeoPoint::new(f, latitude, longitude).map(Some)
}

fn geo_to_proto(g: Option<d::GeoPoint>) -> Option<p::GeoPoint> {
    g.map(|g| p::GeoPoint {
        latitude: g.latitude,
        longitude: g.longitude,
    })
}

fn party(m: Option<p::Party>, f: &str) -> Result<d::Party> {
    let p::Party {
        id: pid,
        name: n,
        roles,
        district,
        contact,
        gln,
    } = required(m, f)?;
    if roles.is_empty() {
        return Err(DomainError::invalid(
            field(f, "roles"),
            "give at least one role (UKM, supplier, customer, operator)",
        ));
    }
    let mut rs = Vec::with_capacity(roles.len());
    for (i, r) in roles.into_iter().enumerate() {
        let r = role(r, &format!("{f}.roles[{i}]"))?;
        if !rs.contains(&r) {
            rs.push(r);
        }
    }
    Ok(d::Party {
        id: id(pid, &field(f, "id"))?,
        name: name(n, &field(f, "name"))?,
        roles: rs,
        district: text(district, &field(f, "district"))?,
        contact: text(contact, &field(f, "contact"))?,
        gln: opt_gln(gln, &field(f, "gln"))?,
    })
}

/// A GLN, or none when empty.
fn opt_gln(v: String, f: &str) -> Result<Option<jejak_domain::gs1::Gln>> {
    if v.is_empty() {
        return Ok(None);
    }
    jejak_domain::gs1::Gln::parse(&v)
        .map(Some)
        .map_err(|reason| DomainError::invalid(f, reason))
}

fn party_to_proto(x: &d::Party) -> p::Party {
    p::Party {
        id: x.id.clone(),
        name: x.name.clone(),
        roles: x.roles.iter().map(|r| role_to_proto(*r) as i32).collect(),
        district: x.district.clone(),
        contact: x.contact.clone(),
        gln: x.gln.as_ref().map(|g| g.to_string()).unwrap_or_default(),
    }
}

fn facility(m: Option<p::Facility>, f: &str) -> Result<d::Facility> {
    let p::Facility {
        id: fid,
        name: n,
        sector: s,
        district,
        operator_id,
        location,
        gln,
        requires_timber_legality,
    } = required(m, f)?;
    Ok(d::Facility {
        id: id(fid, &field(f, "id"))?,
        name: name(n, &field(f, "name"))?,
        sector: sector(s, &field(f, "sector"))?,
        district: text(district, &field(f, "district"))?,
        operator_id: id(operator_id, &field(f, "operator_id"))?,
        location: geo(location, &field(f, "location"))?,
        gln: opt_gln(gln, &field(f, "gln"))?,
        requires_legality: requires_timber_legality,
    })
}

fn facility_to_proto(x: &d::Facility) -> p::Facility {
    p::Facility {
        id: x.id.clone(),
        name: x.name.clone(),
        sector: sector_to_proto(x.sector) as i32,
        district: x.district.clone(),
        operator_id: x.operator_id.clone(),
        location: geo_to_proto(x.location),
        gln: x.gln.as_ref().map(|g| g.to_string()).unwrap_or_default(),
        requires_timber_legality: x.requires_legality,
    }
}

fn gtin(v: &str, f: &str) -> Result<Gtin> {
    Gtin::parse(v).map_err(|e| DomainError::invalid(f, e.to_string()))
}

fn product(m: Option<p::Product>, f: &str) -> Result<d::Product> {
    let p::Product {
        id: pid,
        name: n,
        sector: s,
        kind,
        unit: u,
        gtin: g,
    } = required(m, f)?;
    Ok(d::Product {
        id: id(pid, &field(f, "id"))?,
        name: name(n, &field(f, "name"))?,
        sector: sector(s, &field(f, "sector"))?,
        kind: product_kind(kind, &field(f, "kind"))?,
        unit: unit(u, &field(f, "unit"))?,
        gtin: if g.is_empty() {
            None
        } else {
            Some(gtin(&g, &field(f, "gtin"))?)
        },
    })
}

fn product_to_proto(x: &d::Product) -> p::Product {
    p::Product {
        id: x.id.clone(),
        name: x.name.clone(),
        sector: sector_to_proto(x.sector) as i32,
        kind: product_kind_to_proto(x.kind) as i32,
        unit: unit_to_proto(x.unit) as i32,
        gtin: x.gtin.as_ref().map(|g| g.as_str().to_string()).unwrap_or_default(),
    }
}

fn opt_decimal(v: &str, f: &str) -> Result<Option<d::Decimal>> {
    if v.is_empty() {
        Ok(None)
    } else {
        quantity::parse_decimal(f, v).map(Some)
    }
}

fn standard(m: Option<p::QualityStandard>, f: &str) -> Result<d::QualityStandard> {
    let p::QualityStandard {
        id: sid,
        name: n,
        reference,
        parameters,
    } = required(m, f)?;
    let mut params = Vec::with_capacity(parameters.len());
    for (i, prm) in parameters.into_iter().enumerate() {
        let pf = format!("{f}.parameters[{i}]");
        let p::Parameter {
            code,
            name: pn,
            unit: u,
            min,
            max,
            required: req,
        } = prm;
        params.push(d::Parameter {
            code: id(code, &field(&pf, "code"))?,
            name: name(pn, &field(&pf, "name"))?,
            unit: text(u, &field(&pf, "unit"))?,
            min: opt_decimal(&min, &field(&pf, "min"))?,
            max: opt_decimal(&max, &field(&pf, "max"))?,
            required: req,
        });
    }
    Ok(d::QualityStandard {
        id: id(sid, &field(f, "id"))?,
        name: name(n, &field(f, "name"))?,
        reference: text(reference, &field(f, "reference"))?,
        parameters: params,
    })
}

fn decimal_to_string(d: Option<d::Decimal>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

fn standard_to_proto(x: &d::QualityStandard) -> p::QualityStandard {
    p::QualityStandard {
        id: x.id.clone(),
        name: x.name.clone(),
        reference: x.reference.clone(),
        parameters: x
            .parameters
            .iter()
            .map(|prm| p::Parameter {
                code: prm.code.clone(),
                name: prm.name.clone(),
                unit: prm.unit.clone(),
                min: decimal_to_string(prm.min),
                max: decimal_to_string(prm.max),
                required: prm.required,
            })
            .collect(),
    }
}

fn measurements(ms: Vec<p::Measurement>, f: &str) -> Result<Vec<d::Measurement>> {
    ms.into_iter()
        .enumerate()
        .map(|(i, m)| {
            let mf = format!("{f}[{i}]");
            let p::Measurement {
                parameter,
                value,
                unit: u,
            } = m;
            Ok(d::Measurement {
                parameter: id(parameter, &field(&mf, "parameter"))?,
                value: quantity::parse_decimal(&field(&mf, "value"), &value)?,
                unit: text(u, &field(&mf, "unit"))?,
            })
        })
        .collect()
}

pub fn measurements_to_proto(ms: &[d::Measurement]) -> Vec<p::Measurement> {
    ms.iter()
        .map(|m| p::Measurement {
            parameter: m.parameter.clone(),
            value: m.value.to_string(),
            unit: m.unit.clone(),
        })
        .collect()
}

fn documents(ds: Vec<p::Document>, f: &str) -> Result<Vec<d::Document>> {
    ds.into_iter()
        .enumerate()
        .map(|(i, doc)| {
            let df = format!("{f}[{i}]");
            let p::Document {
                kind,
                reference,
                blake3,
                issuer,
                valid_from,
                valid_until,
            } = doc;
            let mut hash = [0u8; 32];
            let bytes = blake3.as_bytes();
            if bytes.len() != 64 || !bytes.iter().all(u8::is_ascii_hexdigit) {
                return Err(DomainError::invalid(
                    field(&df, "blake3"),
                    "must be 64 hex digits (the blake3 hash of the document)",
                ));
            }
            for (j, chunk) in bytes.chunks(2).enumerate() {
                let s = std::str::from_utf8(chunk)
                    .map_err(|_| DomainError::invalid(field(&df, "blake3"), "must be hex"))?;
                hash[j] =
                    u8::from_str_radix(s, 16).map_err(|_| DomainError::invalid(field(&df, "blake3"), "must be hex"))?;
            }
            let doc = d::Document {
                kind: name(kind, &field(&df, "kind"))?,
                reference: text(reference, &field(&df, "reference"))?,
                blake3: hash,
                issuer: text(issuer, &field(&df, "issuer"))?,
                valid_from: time(valid_from, &field(&df, "valid_from"))?,
                valid_until: time(valid_until, &field(&df, "valid_until"))?,
            };
            validate::document(&doc, &df)?;
            Ok(doc)
        })
        .collect()
}

pub fn documents_to_proto(ds: &[d::Document]) -> Vec<p::Document> {
    ds.iter()
        .map(|doc| p::Document {
            kind: doc.kind.clone(),
            reference: doc.reference.clone(),
            blake3: doc.blake3.iter().map(|b| format!("{b:02x}")).collect(),
            issuer: doc.issuer.clone(),
            valid_from: opt_time_to_proto(doc.valid_from),
            valid_until: opt_time_to_proto(doc.valid_until),
        })
        .collect()
}

fn origin(o: Option<p::Origin>, f: &str) -> Result<d::Origin> {
    let Some(p::Origin {
        place,
        plot_id,
        plot,
        geometry,
        producer_country,
        area_ha,
    }) = o
    else {
        return Ok(d::Origin::default());
    };
    let origin = d::Origin {
        place: text(place, "place").map_err(|e| e.under(f))?,
        plot_id: text(plot_id, "plot_id").map_err(|e| e.under(f))?,
        plot: geo(plot, "plot").map_err(|e| e.under(f))?,
        geometry: match geometry.trim() {
            "" => None,
            text => Some(crate::json::geometry(text, &field(f, "geometry"))?),
        },
        producer_country: producer_country.trim().to_string(),
        area_ha: match area_ha.trim() {
            "" => None,
            a => Some(a.parse::<d::Decimal>().map_err(|_| {
                DomainError::invalid(
                    field(f, "area_ha"),
                    format!("{} is not a number of hectares", d::quote(a)),
                )
            })?),
        },
    };
    validate::origin(&origin, f)?;
    Ok(origin)
}

pub fn origin_to_proto(o: &d::Origin) -> Option<p::Origin> {
    if o == &d::Origin::default() {
        return None;
    }
    Some(p::Origin {
        place: o.place.clone(),
        plot_id: o.plot_id.clone(),
        plot: geo_to_proto(o.plot),
        geometry: o.geometry.as_ref().map(|g| g.to_geojson()).unwrap_or_default(),
        producer_country: o.producer_country.clone(),
        area_ha: o.area_ha.map(|a| a.to_string()).unwrap_or_default(),
    })
}

fn inputs(v: Vec<p::LotInput>) -> Result<Vec<d::LotInput>> {
    v.into_iter()
        .enumerate()
        .map(|(i, x)| {
            let p::LotInput { lot_id: l, quantity: q } = x;
            let input = || -> Result<d::LotInput> {
                Ok(d::LotInput {
                    lot_id: lot_id(l, "lot_id")?,
                    quantity: quantity(q, "quantity")?,
                })
            };
            input().map_err(|e| e.under(&format!("inputs[{i}]")))
        })
        .collect()
}

fn outputs(v: Vec<p::LotOutput>) -> Result<Vec<d::LotOutput>> {
    v.into_iter()
        .enumerate()
        .map(|(i, x)| {
            let p::LotOutput {
                lot_id: l,
                product_id,
                quantity: q,
                owner_id,
            } = x;
            let output = || -> Result<d::LotOutput> {
                Ok(d::LotOutput {
                    lot_id: lot_id(l, "lot_id")?,
                    product_id: id(product_id, "product_id")?,
                    quantity: quantity(q, "quantity")?,
                    owner_id: if owner_id.is_empty() {
                        owner_id
                    } else {
                        id(owner_id, "owner_id")?
                    },
                })
            };
            output().map_err(|e| e.under(&format!("outputs[{i}]")))
        })
        .collect()
}

fn packages(v: Vec<p::Package>) -> Result<Vec<d::Package>> {
    v.into_iter()
        .enumerate()
        .map(|(i, x)| {
            let p::Package { serial, quantity: q } = x;
            let package = || -> Result<d::Package> {
                Ok(d::Package {
                    serial: lot_id(serial, "serial")?,
                    quantity: quantity(q, "quantity")?,
                })
            };
            package().map_err(|e| e.under(&format!("packages[{i}]")))
        })
        .collect()
}

fn serials(v: Vec<String>) -> Result<Vec<String>> {
    v.into_iter()
        .enumerate()
        .map(|(i, s)| lot_id(s, &format!("package_serials[{i}]")))
        .collect()
}

/// `v`, once the list `len` measures is within `max`: checked before its
/// items, so an oversized command is refused for its size.
fn counted<T>(v: T, len: impl FnOnce(&T) -> usize, f: &str, max: usize) -> Result<T> {
    validate::count(f, len(&v), max)?;
    Ok(v)
}

fn opt_quantity(q: Option<p::Quantity>, f: &str) -> Result<Option<d::Quantity>> {
    match q {
        None => Ok(None),
        Some(q) => quantity(Some(q), f).map(Some),
    }
}

/// A capture command from its proto form: (command id, command). Every field
/// is checked for shape here; the rules that need state are checked by `decide`.
pub fn command_from_proto(c: p::command::Kind) -> Result<(String, d::Command)> {
    use p::command::Kind;
    Ok(match c {
        Kind::RegisterParty(p::RegisterPartyRequest { command_id, party: x }) => (
            id(command_id, "command_id")?,
            d::Command::RegisterParty(party(x, "party")?),
        ),
        Kind::RegisterFacility(p::RegisterFacilityRequest {
            command_id,
            facility: x,
        }) => (
            id(command_id, "command_id")?,
            d::Command::RegisterFacility(facility(x, "facility")?),
        ),
        Kind::RegisterProduct(p::RegisterProductRequest { command_id, product: x }) => (
            id(command_id, "command_id")?,
            d::Command::RegisterProduct(product(x, "product")?),
        ),
        Kind::RegisterQualityStandard(p::RegisterQualityStandardRequest {
            command_id,
            standard: x,
        }) => (
            id(command_id, "command_id")?,
            d::Command::RegisterStandard(standard(
                counted(
                    x,
                    |s| s.as_ref().map_or(0, |s| s.parameters.len()),
                    "standard.parameters",
                    validate::MAX_PARAMETERS,
                )?,
                "standard",
            )?),
        ),
        Kind::ReceiveMaterial(p::ReceiveMaterialRequest {
            command_id,
            facility_id,
            lot_id: l,
            product_id,
            quantity: q,
            owner_id,
            supplier_id,
            origin: o,
            documents: docs,
            source_lot_id,
            occurred_at,
        }) => (
            id(command_id, "command_id")?,
            d::Command::ReceiveMaterial(d::MaterialReceived {
                lot_id: lot_id(l, "lot_id")?,
                facility_id: id(facility_id, "facility_id")?,
                product_id: id(product_id, "product_id")?,
                quantity: quantity(q, "quantity")?,
                owner_id: id(owner_id, "owner_id")?,
                supplier_id: id(supplier_id, "supplier_id")?,
                origin: origin(o, "origin")?,
                documents: documents(
                    counted(docs, Vec::len, "documents", validate::MAX_DOCUMENTS)?,
                    "documents",
                )?,
                source_lot_id: if source_lot_id.is_empty() {
                    None
                } else {
                    Some(lot_id(source_lot_id, "source_lot_id")?)
                },
                occurred_at: time(occurred_at, "occurred_at")?,
            }),
        ),
        Kind::InspectLot(p::InspectLotRequest {
            command_id,
            facility_id,
            lot_id: l,
            standard_id,
            measurements: ms,
            inspector,
            occurred_at,
        }) => (
            id(command_id, "command_id")?,
            d::Command::InspectLot(d::InspectLot {
                lot_id: lot_id(l, "lot_id")?,
                facility_id: id(facility_id, "facility_id")?,
                standard_id: id(standard_id, "standard_id")?,
                measurements: measurements(
                    counted(ms, Vec::len, "measurements", validate::MAX_MEASUREMENTS)?,
                    "measurements",
                )?,
                inspector: text(inspector, "inspector")?,
                occurred_at: time(occurred_at, "occurred_at")?,
            }),
        ),
        Kind::ProcessLots(p::ProcessLotsRequest {
            command_id,
            facility_id,
            process_step,
            line,
            inputs: ins,
            outputs: outs,
            occurred_at,
        }) => (
            id(command_id, "command_id")?,
            d::Command::ProcessLots(d::LotProcessed {
                facility_id: id(facility_id, "facility_id")?,
                process_step: name(process_step, "process_step")?,
                line: text(line, "line")?,
                inputs: inputs(counted(ins, Vec::len, "inputs", validate::MAX_INPUTS)?)?,
                outputs: outputs(counted(outs, Vec::len, "outputs", validate::MAX_OUTPUTS)?)?,
                occurred_at: time(occurred_at, "occurred_at")?,
            }),
        ),
        Kind::PackLot(p::PackLotRequest {
            command_id,
            facility_id,
            lot_id: l,
            gtin: g,
            packages: ps,
            occurred_at,
        }) => (
            id(command_id, "command_id")?,
            d::Command::PackLot(d::LotPacked {
                facility_id: id(facility_id, "facility_id")?,
                lot_id: lot_id(l, "lot_id")?,
                gtin: gtin(&g, "gtin")?,
                packages: packages(counted(ps, Vec::len, "packages", validate::MAX_PACKAGES)?)?,
                occurred_at: time(occurred_at, "occurred_at")?,
            }),
        ),
        Kind::ShipLot(p::ShipLotRequest {
            command_id,
            facility_id,
            lot_id: l,
            quantity: q,
            package_serials,
            consignee_id,
            document,
            occurred_at,
            dds_reference,
        }) => (
            id(command_id, "command_id")?,
            d::Command::ShipLot(d::LotShipped {
                facility_id: id(facility_id, "facility_id")?,
                lot_id: lot_id(l, "lot_id")?,
                quantity: opt_quantity(q, "quantity")?,
                package_serials: serials(counted(
                    package_serials,
                    Vec::len,
                    "package_serials",
                    validate::MAX_SHIPPED_SERIALS,
                )?)?,
                consignee_id: id(consignee_id, "consignee_id")?,
                document: text(document, "document")?,
                dds_reference: validate::dds_reference(dds_reference, "dds_reference")?,
                occurred_at: time(occurred_at, "occurred_at")?,
            }),
        ),
        Kind::ChangeLotStatus(p::ChangeLotStatusRequest {
            command_id,
            facility_id,
            lot_id: l,
            status: s,
            reason,
            occurred_at,
        }) => (
            id(command_id, "command_id")?,
            d::Command::ChangeLotStatus(d::LotStatusChanged {
                facility_id: id(facility_id, "facility_id")?,
                lot_id: lot_id(l, "lot_id")?,
                status: status(s, "status")?,
                reason: text(reason, "reason")?,
                occurred_at: time(occurred_at, "occurred_at")?,
            }),
        ),
        Kind::VoidEvent(p::VoidEventRequest {
            command_id,
            facility_id,
            event_id,
            reason,
            replacement_event_id,
            occurred_at,
        }) => (
            id(command_id, "command_id")?,
            d::Command::VoidEvent(d::EventVoided {
                facility_id: id(facility_id, "facility_id")?,
                voided_event_id: id(event_id, "event_id")?,
                reason: text(reason, "reason")?,
                replacement_event_id: opt_id(replacement_event_id, "replacement_event_id")?,
                occurred_at: time(occurred_at, "occurred_at")?,
            }),
        ),
        Kind::ObserveEpcis(p::ObserveEpcisCommand {
            command_id,
            facility_id,
            event_type,
            event_json,
            lot_ids,
            occurred_at,
        }) => (
            id(command_id, "command_id")?,
            d::Command::ObserveEpcis(epcis_observed(
                facility_id,
                event_type,
                event_json,
                lot_ids,
                occurred_at,
            )?),
        ),
        Kind::IssueToken(p::IssueTokenCommand {
            command_id,
            token_id,
            secret_hash,
            role: r,
            facility_ids,
            party_id,
            expires_at,
            label,
        }) => (
            id(command_id, "command_id")?,
            d::Command::IssueToken(token_issued(
                token_id,
                secret_hash,
                r,
                facility_ids,
                party_id,
                expires_at,
                label,
            )?),
        ),
        Kind::RevokeToken(p::RevokeTokenRequest {
            command_id,
            token_id,
            reason,
        }) => (
            id(command_id, "command_id")?,
            d::Command::RevokeToken(d::TokenRevoked {
                token_id: id(token_id, "token_id")?,
                reason: text(reason, "reason")?,
            }),
        ),
    })
}

pub fn access_role(v: i32, f: &str) -> Result<d::Role> {
    Ok(match p::AccessRole::try_from(v) {
        Ok(p::AccessRole::Admin) => d::Role::Admin,
        Ok(p::AccessRole::Operator) => d::Role::Operator,
        Ok(p::AccessRole::Member) => d::Role::Member,
        Ok(p::AccessRole::Regulator) => d::Role::Regulator,
        Ok(p::AccessRole::Unspecified) => {
            return Err(DomainError::invalid(
                f,
                "is required (admin, operator, member or regulator)",
            ))
        }
        Err(_) => return Err(DomainError::invalid(f, format!("{v} is not a known role"))),
    })
}

pub fn access_role_to_proto(r: d::Role) -> p::AccessRole {
    match r {
        d::Role::Admin => p::AccessRole::Admin,
        d::Role::Operator => p::AccessRole::Operator,
        d::Role::Member => p::AccessRole::Member,
        d::Role::Regulator => p::AccessRole::Regulator,
    }
}

/// A token issue from its proto fields, checked for shape.
#[allow(clippy::too_many_arguments)]
fn token_issued(
    token_id: String,
    secret_hash: Vec<u8>,
    r: i32,
    facility_ids: Vec<String>,
    party_id: String,
    expires_at: Option<prost_types::Timestamp>,
    label: String,
) -> Result<d::TokenIssued> {
    Ok(d::TokenIssued {
        token_id: id(token_id, "token_id")?,
        secret_hash: secret_hash
            .try_into()
            .map_err(|_| DomainError::invalid("secret_hash", "must be 32 bytes (blake3)"))?,
        role: access_role(r, "role")?,
        facility_ids: facility_ids
            .into_iter()
            .enumerate()
            .map(|(i, f)| id(f, &format!("facility_ids[{i}]")))
            .collect::<Result<_>>()?,
        party_id: opt_id(party_id, "party_id")?,
        expires_at: required(time(expires_at, "expires_at")?, "expires_at")?,
        label: text(label, "label")?,
    })
}

fn token_issued_to_proto(t: &d::TokenIssued) -> p::TokenIssued {
    p::TokenIssued {
        token_id: t.token_id.clone(),
        secret_hash: t.secret_hash.to_vec(),
        role: access_role_to_proto(t.role) as i32,
        facility_ids: t.facility_ids.clone(),
        party_id: t.party_id.clone().unwrap_or_default(),
        expires_at: Some(time_to_proto(t.expires_at)),
        label: t.label.clone(),
    }
}

fn material_received_to_proto(x: &d::MaterialReceived) -> p::MaterialReceived {
    p::MaterialReceived {
        lot_id: x.lot_id.clone(),
        facility_id: x.facility_id.clone(),
        product_id: x.product_id.clone(),
        quantity: Some(quantity_to_proto(&x.quantity)),
        owner_id: x.owner_id.clone(),
        supplier_id: x.supplier_id.clone(),
        origin: origin_to_proto(&x.origin),
        documents: documents_to_proto(&x.documents),
        source_lot_id: x.source_lot_id.clone().unwrap_or_default(),
        occurred_at: opt_time_to_proto(x.occurred_at),
    }
}

fn lot_processed_to_proto(x: &d::LotProcessed) -> p::LotProcessed {
    p::LotProcessed {
        facility_id: x.facility_id.clone(),
        process_step: x.process_step.clone(),
        line: x.line.clone(),
        inputs: x
            .inputs
            .iter()
            .map(|i| p::LotInput {
                lot_id: i.lot_id.clone(),
                quantity: Some(quantity_to_proto(&i.quantity)),
            })
            .collect(),
        outputs: x
            .outputs
            .iter()
            .map(|o| p::LotOutput {
                lot_id: o.lot_id.clone(),
                product_id: o.product_id.clone(),
                quantity: Some(quantity_to_proto(&o.quantity)),
                owner_id: o.owner_id.clone(),
            })
            .collect(),
        occurred_at: opt_time_to_proto(x.occurred_at),
    }
}

fn lot_packed_to_proto(x: &d::LotPacked) -> p::LotPacked {
    p::LotPacked {
        facility_id: x.facility_id.clone(),
        lot_id: x.lot_id.clone(),
        gtin: x.gtin.as_str().to_string(),
        packages: x
            .packages
            .iter()
            .map(|pk| p::Package {
                serial: pk.serial.clone(),
                quantity: Some(quantity_to_proto(&pk.quantity)),
            })
            .collect(),
        occurred_at: opt_time_to_proto(x.occurred_at),
    }
}

fn lot_shipped_to_proto(x: &d::LotShipped) -> p::LotShipped {
    p::LotShipped {
        facility_id: x.facility_id.clone(),
        lot_id: x.lot_id.clone(),
        quantity: x.quantity.as_ref().map(quantity_to_proto),
        package_serials: x.package_serials.clone(),
        consignee_id: x.consignee_id.clone(),
        document: x.document.clone(),
        occurred_at: opt_time_to_proto(x.occurred_at),
        dds_reference: x.dds_reference.clone(),
    }
}

/// The proto form of a domain event, as stored in envelopes.
pub fn event_to_proto(e: &d::Event) -> p::Event {
    use p::event::Kind;
    let kind = match e {
        d::Event::PartyRegistered(x) => Kind::PartyRegistered(p::PartyRegistered {
            party: Some(party_to_proto(x)),
        }),
        d::Event::FacilityRegistered(x) => Kind::FacilityRegistered(p::FacilityRegistered {
            facility: Some(facility_to_proto(x)),
        }),
        d::Event::ProductRegistered(x) => Kind::ProductRegistered(p::ProductRegistered {
            product: Some(product_to_proto(x)),
        }),
        d::Event::StandardRegistered(x) => Kind::QualityStandardRegistered(p::QualityStandardRegistered {
            standard: Some(standard_to_proto(x)),
        }),
        d::Event::MaterialReceived(x) => Kind::MaterialReceived(material_received_to_proto(x)),
        d::Event::LotInspected(x) => Kind::LotInspected(p::LotInspected {
            lot_id: x.lot_id.clone(),
            facility_id: x.facility_id.clone(),
            standard_id: x.standard_id.clone(),
            measurements: measurements_to_proto(&x.measurements),
            verdict: verdict_to_proto(x.verdict) as i32,
            findings: x.findings.clone(),
            inspector: x.inspector.clone(),
            occurred_at: opt_time_to_proto(x.occurred_at),
        }),
        d::Event::LotProcessed(x) => Kind::LotProcessed(lot_processed_to_proto(x)),
        d::Event::LotPacked(x) => Kind::LotPacked(lot_packed_to_proto(x)),
        d::Event::LotShipped(x) => Kind::LotShipped(lot_shipped_to_proto(x)),
        d::Event::LotStatusChanged(x) => Kind::LotStatusChanged(p::LotStatusChanged {
            facility_id: x.facility_id.clone(),
            lot_id: x.lot_id.clone(),
            status: status_to_proto(x.status) as i32,
            reason: x.reason.clone(),
            occurred_at: opt_time_to_proto(x.occurred_at),
        }),
        d::Event::EventVoided(x) => Kind::EventVoided(p::EventVoided {
            facility_id: x.facility_id.clone(),
            voided_event_id: x.voided_event_id.clone(),
            reason: x.reason.clone(),
            replacement_event_id: x.replacement_event_id.clone().unwrap_or_default(),
            occurred_at: opt_time_to_proto(x.occurred_at),
        }),
        d::Event::TokenIssued(t) => Kind::TokenIssued(token_issued_to_proto(t)),
        d::Event::TokenRevoked(r) => Kind::TokenRevoked(p::TokenRevoked {
            token_id: r.token_id.clone(),
            reason: r.reason.clone(),
        }),
        d::Event::EpcisObserved(x) => Kind::EpcisObserved(p::EpcisObserved {
            facility_id: x.facility_id.clone(),
            event_type: x.event_type.clone(),
            event_json: x.event_json.clone(),
            lot_ids: x.lot_ids.clone(),
            occurred_at: opt_time_to_proto(x.occurred_at),
        }),
    };
    p::Event { kind: Some(kind) }
}

/// A domain event from its stored proto form, validated like a command.
pub fn decode_event(e: p::Event) -> Result<d::Event> {
    use p::event::Kind;
    let kind = required(e.kind, "event")?;
    Ok(match kind {
        Kind::PartyRegistered(p::PartyRegistered { party: x }) => d::Event::PartyRegistered(party(x, "party")?),
        Kind::FacilityRegistered(p::FacilityRegistered { facility: x }) => {
            d::Event::FacilityRegistered(facility(x, "facility")?)
        }
        Kind::ProductRegistered(p::ProductRegistered { product: x }) => {
            d::Event::ProductRegistered(product(x, "product")?)
        }
        Kind::QualityStandardRegistered(p::QualityStandardRegistered { standard: x }) => {
            d::Event::StandardRegistered(standard(x, "standard")?)
        }
        Kind::MaterialReceived(x) => {
            let p::MaterialReceived {
                lot_id: l,
                facility_id,
                product_id,
                quantity: q,
                owner_id,
                supplier_id,
                origin: o,
                documents: docs,
                source_lot_id,
                occurred_at,
            } = x;
            d::Event::MaterialReceived(d::MaterialReceived {
                lot_id: lot_id(l, "lot_id")?,
                facility_id: id(facility_id, "facility_id")?,
                product_id: id(product_id, "product_id")?,
                quantity: quantity(q, "quantity")?,
                owner_id: id(owner_id, "owner_id")?,
                supplier_id: id(supplier_id, "supplier_id")?,
                origin: origin(o, "origin")?,
                documents: documents(docs, "documents")?,
                source_lot_id: if source_lot_id.is_empty() {
                    None
                } else {
                    Some(lot_id(source_lot_id, "source_lot_id")?)
                },
                occurred_at: time(occurred_at, "occurred_at")?,
            })
        }
        Kind::LotInspected(x) => {
            let p::LotInspected {
                lot_id: l,
                facility_id,
                standard_id,
                measurements: ms,
                verdict: v,
                findings,
                inspector,
                occurred_at,
            } = x;
            d::Event::LotInspected(d::LotInspected {
                lot_id: lot_id(l, "lot_id")?,
                facility_id: id(facility_id, "facility_id")?,
                standard_id: id(standard_id, "standard_id")?,
                measurements: measurements(ms, "measurements")?,
                verdict: verdict(v, "verdict")?,
                findings,
                inspector,
                occurred_at: time(occurred_at, "occurred_at")?,
            })
        }
        Kind::LotProcessed(x) => {
            let p::LotProcessed {
                facility_id,
                process_step,
                line,
                inputs: ins,
                outputs: outs,
                occurred_at,
            } = x;
            d::Event::LotProcessed(d::LotProcessed {
                facility_id: id(facility_id, "facility_id")?,
                process_step,
                line,
                inputs: inputs(ins)?,
                outputs: outputs(outs)?,
                occurred_at: time(occurred_at, "occurred_at")?,
            })
        }
        Kind::LotPacked(x) => {
            let p::LotPacked {
                facility_id,
                lot_id: l,
                gtin: g,
                packages: ps,
                occurred_at,
            } = x;
            d::Event::LotPacked(d::LotPacked {
                facility_id: id(facility_id, "facility_id")?,
                lot_id: lot_id(l, "lot_id")?,
                gtin: gtin(&g, "gtin")?,
                packages: packages(ps)?,
                occurred_at: time(occurred_at, "occurred_at")?,
            })
        }
        Kind::LotShipped(x) => {
            let p::LotShipped {
                facility_id,
                lot_id: l,
                quantity: q,
                package_serials,
                consignee_id,
                document,
                occurred_at,
                dds_reference,
            } = x;
            d::Event::LotShipped(d::LotShipped {
                facility_id: id(facility_id, "facility_id")?,
                lot_id: lot_id(l, "lot_id")?,
                quantity: opt_quantity(q, "quantity")?,
                package_serials: serials(package_serials)?,
                consignee_id: id(consignee_id, "consignee_id")?,
                document,
                dds_reference,
                occurred_at: time(occurred_at, "occurred_at")?,
            })
        }
        Kind::LotStatusChanged(x) => {
            let p::LotStatusChanged {
                facility_id,
                lot_id: l,
                status: s,
                reason,
                occurred_at,
            } = x;
            d::Event::LotStatusChanged(d::LotStatusChanged {
                facility_id: id(facility_id, "facility_id")?,
                lot_id: lot_id(l, "lot_id")?,
                status: status(s, "status")?,
                reason,
                occurred_at: time(occurred_at, "occurred_at")?,
            })
        }
        Kind::EventVoided(x) => {
            let p::EventVoided {
                facility_id,
                voided_event_id,
                reason,
                replacement_event_id,
                occurred_at,
            } = x;
            d::Event::EventVoided(d::EventVoided {
                facility_id: id(facility_id, "facility_id")?,
                voided_event_id: id(voided_event_id, "voided_event_id")?,
                reason,
                replacement_event_id: opt_id(replacement_event_id, "replacement_event_id")?,
                occurred_at: time(occurred_at, "occurred_at")?,
            })
        }
        Kind::EpcisObserved(p::EpcisObserved {
            facility_id,
            event_type,
            event_json,
            lot_ids,
            occurred_at,
        }) => d::Event::EpcisObserved(epcis_observed(
            facility_id,
            event_type,
            event_json,
            lot_ids,
            occurred_at,
        )?),
        Kind::TokenIssued(p::TokenIssued {
            token_id,
            secret_hash,
            role: r,
            facility_ids,
            party_id,
            expires_at,
            label,
        }) => d::Event::TokenIssued(token_issued(
            token_id,
            secret_hash,
            r,
            facility_ids,
            party_id,
            expires_at,
            label,
        )?),
        Kind::TokenRevoked(p::TokenRevoked { token_id, reason }) => d::Event::TokenRevoked(d::TokenRevoked {
            token_id: id(token_id, "token_id")?,
            reason,
        }),
    })
}

// Queries: each request becomes its domain query once, here.

fn target(t: Option<p::Target>, f: &str) -> Result<d::Target> {
    let missing = || DomainError::invalid(f, "give a lot id, a package serial or a label");
    let p::Target { kind } = t.ok_or_else(missing)?;
    match kind.ok_or_else(missing)? {
        p::target::Kind::LotId(v) => Ok(d::Target::Lot(lot_id(v, &field(f, "lot_id"))?)),
        p::target::Kind::Serial(v) => Ok(d::Target::Serial(lot_id(v, &field(f, "serial"))?)),
        p::target::Kind::Label(v) => Ok(d::Target::Label(label(&v, &field(f, "label"))?)),
    }
}

fn label(uri: &str, f: &str) -> Result<d::gs1::DigitalLink> {
    d::gs1::DigitalLink::parse(uri).map_err(|e| DomainError::invalid(f, e.to_string()))
}

pub fn target_to_proto(t: &d::Target) -> p::Target {
    let kind = match t {
        d::Target::Lot(id) => p::target::Kind::LotId(id.clone()),
        d::Target::Serial(s) => p::target::Kind::Serial(s.clone()),
        d::Target::Label(l) => p::target::Kind::Label(l.path()),
    };
    p::Target { kind: Some(kind) }
}

impl TryFrom<p::TraceRequest> for d::TraceQuery {
    type Error = DomainError;

    fn try_from(r: p::TraceRequest) -> Result<d::TraceQuery> {
        let p::TraceRequest {
            target: t,
            max_depth,
            max_nodes,
        } = r;
        Ok(d::TraceQuery {
            target: target(t, "target")?,
            max_depth,
            max_nodes,
        })
    }
}

impl From<&d::TraceQuery> for p::TraceRequest {
    fn from(q: &d::TraceQuery) -> p::TraceRequest {
        p::TraceRequest {
            target: Some(target_to_proto(&q.target)),
            max_depth: q.max_depth,
            max_nodes: q.max_nodes,
        }
    }
}

impl TryFrom<p::OriginSharesRequest> for d::Target {
    type Error = DomainError;

    fn try_from(r: p::OriginSharesRequest) -> Result<d::Target> {
        let p::OriginSharesRequest { target: t } = r;
        target(t, "target")
    }
}

impl TryFrom<p::LotHistoryRequest> for d::HistoryQuery {
    type Error = DomainError;

    fn try_from(r: p::LotHistoryRequest) -> Result<d::HistoryQuery> {
        let p::LotHistoryRequest { lot_id: l, as_of } = r;
        Ok(d::HistoryQuery {
            lot_id: lot_id(l, "lot_id")?,
            as_of: time(as_of, "as_of")?,
        })
    }
}

impl From<&d::HistoryQuery> for p::LotHistoryRequest {
    fn from(q: &d::HistoryQuery) -> p::LotHistoryRequest {
        p::LotHistoryRequest {
            lot_id: q.lot_id.clone(),
            as_of: opt_time_to_proto(q.as_of),
        }
    }
}

impl TryFrom<p::GetLotRequest> for d::LotQuery {
    type Error = DomainError;

    fn try_from(r: p::GetLotRequest) -> Result<d::LotQuery> {
        let p::GetLotRequest { lot_id: l } = r;
        Ok(d::LotQuery {
            lot_id: lot_id(l, "lot_id")?,
        })
    }
}

impl TryFrom<p::LookupLabelRequest> for d::LabelQuery {
    type Error = DomainError;

    fn try_from(r: p::LookupLabelRequest) -> Result<d::LabelQuery> {
        let p::LookupLabelRequest { uri } = r;
        Ok(d::LabelQuery {
            link: label(&uri, "uri")?,
        })
    }
}

impl From<p::ExportEventsRequest> for d::ExportQuery {
    fn from(r: p::ExportEventsRequest) -> d::ExportQuery {
        let p::ExportEventsRequest { from_position, limit } = r;
        d::ExportQuery { from_position, limit }
    }
}

/// The request that carries a command, with its id: the inverse of
/// [`command_from_proto`] (for clients that build commands as domain values,
/// and the round-trip tests).
pub fn command_to_proto(command_id: &str, c: &d::Command) -> p::command::Kind {
    use p::command::Kind;
    let command_id = command_id.to_string();
    // The payloads the commands share with their events convert once.
    match c {
        d::Command::RegisterParty(x) => Kind::RegisterParty(p::RegisterPartyRequest {
            command_id,
            party: Some(party_to_proto(x)),
        }),
        d::Command::RegisterFacility(x) => Kind::RegisterFacility(p::RegisterFacilityRequest {
            command_id,
            facility: Some(facility_to_proto(x)),
        }),
        d::Command::RegisterProduct(x) => Kind::RegisterProduct(p::RegisterProductRequest {
            command_id,
            product: Some(product_to_proto(x)),
        }),
        d::Command::RegisterStandard(x) => Kind::RegisterQualityStandard(p::RegisterQualityStandardRequest {
            command_id,
            standard: Some(standard_to_proto(x)),
        }),
        d::Command::ReceiveMaterial(x) => {
            let p::MaterialReceived {
                lot_id,
                facility_id,
                product_id,
                quantity,
                owner_id,
                supplier_id,
                origin,
                documents,
                source_lot_id,
                occurred_at,
            } = material_received_to_proto(x);
            Kind::ReceiveMaterial(p::ReceiveMaterialRequest {
                command_id,
                facility_id,
                lot_id,
                product_id,
                quantity,
                owner_id,
                supplier_id,
                origin,
                documents,
                source_lot_id,
                occurred_at,
            })
        }
        d::Command::InspectLot(x) => Kind::InspectLot(p::InspectLotRequest {
            command_id,
            facility_id: x.facility_id.clone(),
            lot_id: x.lot_id.clone(),
            standard_id: x.standard_id.clone(),
            measurements: measurements_to_proto(&x.measurements),
            inspector: x.inspector.clone(),
            occurred_at: opt_time_to_proto(x.occurred_at),
        }),
        d::Command::ProcessLots(x) => {
            let p::LotProcessed {
                facility_id,
                process_step,
                line,
                inputs,
                outputs,
                occurred_at,
            } = lot_processed_to_proto(x);
            Kind::ProcessLots(p::ProcessLotsRequest {
                command_id,
                facility_id,
                process_step,
                line,
                inputs,
                outputs,
                occurred_at,
            })
        }
        d::Command::PackLot(x) => {
            let p::LotPacked {
                facility_id,
                lot_id,
                gtin,
                packages,
                occurred_at,
            } = lot_packed_to_proto(x);
            Kind::PackLot(p::PackLotRequest {
                command_id,
                facility_id,
                lot_id,
                gtin,
                packages,
                occurred_at,
            })
        }
        d::Command::ShipLot(x) => {
            let p::LotShipped {
                facility_id,
                lot_id,
                quantity,
                package_serials,
                consignee_id,
                document,
                occurred_at,
                dds_reference,
            } = lot_shipped_to_proto(x);
            Kind::ShipLot(p::ShipLotRequest {
                command_id,
                facility_id,
                lot_id,
                quantity,
                package_serials,
                consignee_id,
                document,
                occurred_at,
                dds_reference,
            })
        }
        d::Command::ChangeLotStatus(x) => Kind::ChangeLotStatus(p::ChangeLotStatusRequest {
            command_id,
            facility_id: x.facility_id.clone(),
            lot_id: x.lot_id.clone(),
            status: status_to_proto(x.status) as i32,
            reason: x.reason.clone(),
            occurred_at: opt_time_to_proto(x.occurred_at),
        }),
        d::Command::VoidEvent(x) => Kind::VoidEvent(p::VoidEventRequest {
            command_id,
            facility_id: x.facility_id.clone(),
            event_id: x.voided_event_id.clone(),
            reason: x.reason.clone(),
            replacement_event_id: x.replacement_event_id.clone().unwrap_or_default(),
            occurred_at: opt_time_to_proto(x.occurred_at),
        }),
        d::Command::IssueToken(t) => {
            let p::TokenIssued {
                token_id,
                secret_hash,
                role,
                facility_ids,
                party_id,
                expires_at,
                label,
            } = token_issued_to_proto(t);
            Kind::IssueToken(p::IssueTokenCommand {
                command_id,
                token_id,
                secret_hash,
                role,
                facility_ids,
                party_id,
                expires_at,
                label,
            })
        }
        d::Command::RevokeToken(r) => Kind::RevokeToken(p::RevokeTokenRequest {
            command_id,
            token_id: r.token_id.clone(),
            reason: r.reason.clone(),
        }),
        d::Command::ObserveEpcis(x) => Kind::ObserveEpcis(p::ObserveEpcisCommand {
            command_id,
            facility_id: x.facility_id.clone(),
            event_type: x.event_type.clone(),
            event_json: x.event_json.clone(),
            lot_ids: x.lot_ids.clone(),
            occurred_at: opt_time_to_proto(x.occurred_at),
        }),
    }
}
