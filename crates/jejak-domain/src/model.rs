//! The domain's records and events: master data, lots and what happens to
//! them. These mirror `proto/jejak/v1` but are validated: required fields are
//! present and ids, quantities and GTINs are well-formed.

use rust_decimal::Decimal;

use crate::error::DomainError;
use crate::gs1::Gtin;
use crate::quantity::{Quantity, Unit};

/// Nanoseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub i64);

impl Time {
    pub const NANOS_PER_SEC: i64 = 1_000_000_000;

    pub fn from_unix(seconds: i64, nanos: i32) -> Option<Time> {
        seconds
            .checked_mul(Self::NANOS_PER_SEC)?
            .checked_add(i64::from(nanos))
            .map(Time)
    }

    pub fn seconds(self) -> i64 {
        self.0.div_euclid(Self::NANOS_PER_SEC)
    }

    /// The system clock's time. Rules never call it: `decide` is given
    /// the time, so deciding stays a pure function.
    pub fn now() -> Time {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Time(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }

    pub fn subsec_nanos(self) -> i32 {
        // rem_euclid of a positive modulus is in [0, 1e9), which fits an i32.
        self.0.rem_euclid(Self::NANOS_PER_SEC) as i32
    }
}

/// 2000-01-01T00:00:00Z: nothing jejak records happened before this.
pub const EARLIEST: Time = Time(946_684_800 * Time::NANOS_PER_SEC);
/// How far in the future a floor time may be (clock skew between devices).
pub const MAX_FUTURE_SKEW: i64 = 5 * 60 * Time::NANOS_PER_SEC;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartyRole {
    Ukm,
    Supplier,
    Customer,
    Operator,
}

impl PartyRole {
    pub fn label(self) -> &'static str {
        match self {
            PartyRole::Ukm => "UKM",
            PartyRole::Supplier => "supplier",
            PartyRole::Customer => "customer",
            PartyRole::Operator => "operator",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Party {
    pub id: String,
    pub name: String,
    pub roles: Vec<PartyRole>,
    pub district: String,
    pub contact: String,
    /// The party's GLN (PGLN), when it has one.
    pub gln: Option<crate::gs1::Gln>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sector {
    Rice,
    Metal,
    Garment,
    Furniture,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoPoint {
    pub latitude: f64,
    pub longitude: f64,
}

impl GeoPoint {
    pub fn new(field: &str, latitude: f64, longitude: f64) -> Result<GeoPoint, DomainError> {
        if !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude) {
            return Err(DomainError::invalid(
                field,
                format!("({latitude}, {longitude}) is not a point on earth: latitude must be within ±90 and longitude within ±180"),
            ));
        }
        Ok(GeoPoint { latitude, longitude })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Facility {
    pub id: String,
    pub name: String,
    pub sector: Sector,
    pub district: String,
    pub operator_id: String,
    pub location: Option<GeoPoint>,
    /// The facility's GLN (SGLN), when it has one.
    pub gln: Option<crate::gs1::Gln>,
    /// Timber received here needs valid legality documents (SVLK).
    pub requires_legality: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProductKind {
    Raw,
    Intermediate,
    Finished,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub id: String,
    pub name: String,
    pub sector: Sector,
    pub kind: ProductKind,
    pub unit: Unit,
    pub gtin: Option<Gtin>,
}

impl Product {
    /// Raw timber: a raw material of the furniture sector measured in m³
    /// (logs), as opposed to its glue, fittings and finishes. What timber
    /// legality (SVLK) and the EUDR geolocation apply to.
    pub fn is_timber(&self) -> bool {
        self.sector == Sector::Furniture && self.kind == ProductKind::Raw && self.unit == Unit::M3
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    pub code: String,
    pub name: String,
    pub unit: String,
    pub min: Option<Decimal>,
    pub max: Option<Decimal>,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QualityStandard {
    pub id: String,
    pub name: String,
    pub reference: String,
    pub parameters: Vec<Parameter>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub parameter: String,
    pub value: Decimal,
    pub unit: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Conformant,
    NonConformant,
    Hold,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LotStatus {
    Active,
    OnHold,
    Released,
    Recalled,
    Disposed,
}

impl LotStatus {
    pub fn label(self) -> &'static str {
        match self {
            LotStatus::Active => "active",
            LotStatus::OnHold => "on hold",
            LotStatus::Released => "released",
            LotStatus::Recalled => "recalled",
            LotStatus::Disposed => "disposed",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// What it is; the legality documents of timber have fixed kinds
    /// (`Legality`), others are free text ("delivery-note", "mill-certificate").
    pub kind: String,
    pub reference: String,
    /// blake3 of the document's bytes.
    pub blake3: [u8; 32],
    /// Who issued it (a certification body, the supplier, the forestry office).
    pub issuer: String,
    pub valid_from: Option<Time>,
    pub valid_until: Option<Time>,
}

/// Indonesia's timber legality documents (SVLK, now SILK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legality {
    /// A legality certificate (S-LK / V-Legal) of the supplier's forest or business.
    SvlkCertificate,
    /// The supplier's declaration of conformity (Deklarasi Kesesuaian Pemasok).
    Dkp,
    /// The transport document of state-forest timber (Surat Keterangan Sahnya Hasil Hutan).
    Skshh,
    /// The transport note of private-forest timber.
    NotaAngkutan,
}

impl Legality {
    pub const ALL: [Legality; 4] = [
        Legality::SvlkCertificate,
        Legality::Dkp,
        Legality::Skshh,
        Legality::NotaAngkutan,
    ];

    /// The document kind that names it.
    pub fn kind(self) -> &'static str {
        match self {
            Legality::SvlkCertificate => "svlk-certificate",
            Legality::Dkp => "dkp",
            Legality::Skshh => "skshh",
            Legality::NotaAngkutan => "nota-angkutan",
        }
    }

    pub fn of(kind: &str) -> Option<Legality> {
        Legality::ALL.into_iter().find(|l| l.kind() == kind)
    }

    /// A document of where the timber may come from (not how it travelled).
    pub fn is_source(self) -> bool {
        matches!(self, Legality::SvlkCertificate | Legality::Dkp)
    }
}

impl Document {
    /// The legality document this is, if it is one.
    pub fn legality(&self) -> Option<Legality> {
        Legality::of(&self.kind)
    }

    /// Whether it is valid at `at`.
    pub fn valid_at(&self, at: Time) -> bool {
        self.valid_from.is_none_or(|f| f <= at) && self.valid_until.is_none_or(|u| at <= u)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Origin {
    pub place: String,
    pub plot_id: String,
    pub plot: Option<GeoPoint>,
    /// The plot's geometry, for the EU deforestation regulation (EUDR).
    pub geometry: Option<crate::geo::Geometry>,
    /// The producer's country, ISO 3166-1 alpha-2 ("ID").
    pub producer_country: String,
    /// The plot's area in hectares as declared: a point's (a polygon's is
    /// computed from it).
    pub area_ha: Option<Decimal>,
}

impl Origin {
    /// The plot's area in hectares: computed for a polygon, declared for a point.
    pub fn plot_area_ha(&self) -> Option<Decimal> {
        match &self.geometry {
            Some(crate::geo::Geometry::Point(_)) | None => self.area_ha,
            Some(g) => Some(g.area_ha()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    pub serial: String,
    pub quantity: Quantity,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LotInput {
    pub lot_id: String,
    pub quantity: Quantity,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LotOutput {
    pub lot_id: String,
    pub product_id: String,
    pub quantity: Quantity,
    /// Empty in a command means "the owner of the first input"; always set in events.
    pub owner_id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MaterialReceived {
    pub lot_id: String,
    pub facility_id: String,
    pub product_id: String,
    pub quantity: Quantity,
    pub owner_id: String,
    pub supplier_id: String,
    pub origin: Origin,
    pub documents: Vec<Document>,
    pub source_lot_id: Option<String>,
    pub occurred_at: Option<Time>,
}

/// An inspection as commanded: measurements only, the verdict is computed.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectLot {
    pub lot_id: String,
    pub facility_id: String,
    pub standard_id: String,
    pub measurements: Vec<Measurement>,
    pub inspector: String,
    pub occurred_at: Option<Time>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LotInspected {
    pub lot_id: String,
    pub facility_id: String,
    pub standard_id: String,
    pub measurements: Vec<Measurement>,
    pub verdict: Verdict,
    pub findings: Vec<String>,
    pub inspector: String,
    pub occurred_at: Option<Time>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LotProcessed {
    pub facility_id: String,
    pub process_step: String,
    pub line: String,
    pub inputs: Vec<LotInput>,
    pub outputs: Vec<LotOutput>,
    pub occurred_at: Option<Time>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LotPacked {
    pub facility_id: String,
    pub lot_id: String,
    pub gtin: Gtin,
    pub packages: Vec<Package>,
    pub occurred_at: Option<Time>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LotShipped {
    pub facility_id: String,
    pub lot_id: String,
    pub quantity: Option<Quantity>,
    pub package_serials: Vec<String>,
    pub consignee_id: String,
    pub document: String,
    /// The reference number of the EUDR due diligence statement filed for it.
    pub dds_reference: String,
    pub occurred_at: Option<Time>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LotStatusChanged {
    pub facility_id: String,
    pub lot_id: String,
    pub status: LotStatus,
    pub reason: String,
    pub occurred_at: Option<Time>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventVoided {
    pub facility_id: String,
    pub voided_event_id: String,
    pub reason: String,
    pub replacement_event_id: Option<String>,
    pub occurred_at: Option<Time>,
}

/// An EPCIS 2.0 event captured that does not map onto jejak's own events,
/// kept as received.
#[derive(Debug, Clone, PartialEq)]
pub struct EpcisObserved {
    /// The facility it happened at, when one of jejak's; empty otherwise.
    pub facility_id: String,
    pub event_type: String,
    /// The event as JSON (compact), its eventID its CBV 2.0 hash.
    pub event_json: String,
    /// The lots of this store it names.
    pub lot_ids: Vec<String>,
    pub occurred_at: Option<Time>,
}

/// Something that happened; the payload of an envelope.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    PartyRegistered(Party),
    FacilityRegistered(Facility),
    ProductRegistered(Product),
    StandardRegistered(QualityStandard),
    MaterialReceived(MaterialReceived),
    LotInspected(LotInspected),
    LotProcessed(LotProcessed),
    LotPacked(LotPacked),
    LotShipped(LotShipped),
    LotStatusChanged(LotStatusChanged),
    EventVoided(EventVoided),
    TokenIssued(crate::access::TokenIssued),
    TokenRevoked(crate::access::TokenRevoked),
    EpcisObserved(EpcisObserved),
}

/// The chain that holds master data not bound to one facility.
pub const REGISTRY_CHAIN: &str = "@registry";
/// The chain of EPCIS observations at no facility of jejak's.
pub const EPCIS_CHAIN: &str = "@epcis";

impl Event {
    /// The chain (facility, or the registry) this event is appended to.
    pub fn chain(&self) -> &str {
        match self {
            Event::PartyRegistered(_) | Event::ProductRegistered(_) | Event::StandardRegistered(_) => REGISTRY_CHAIN,
            Event::FacilityRegistered(f) => &f.id,
            Event::MaterialReceived(e) => &e.facility_id,
            Event::LotInspected(e) => &e.facility_id,
            Event::LotProcessed(e) => &e.facility_id,
            Event::LotPacked(e) => &e.facility_id,
            Event::LotShipped(e) => &e.facility_id,
            Event::LotStatusChanged(e) => &e.facility_id,
            Event::EventVoided(e) => &e.facility_id,
            Event::TokenIssued(_) | Event::TokenRevoked(_) => crate::access::ACCESS_CHAIN,
            Event::EpcisObserved(e) if e.facility_id.is_empty() => EPCIS_CHAIN,
            Event::EpcisObserved(e) => &e.facility_id,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Event::PartyRegistered(_) => "PartyRegistered",
            Event::FacilityRegistered(_) => "FacilityRegistered",
            Event::ProductRegistered(_) => "ProductRegistered",
            Event::StandardRegistered(_) => "QualityStandardRegistered",
            Event::MaterialReceived(_) => "MaterialReceived",
            Event::LotInspected(_) => "LotInspected",
            Event::LotProcessed(_) => "LotProcessed",
            Event::LotPacked(_) => "LotPacked",
            Event::LotShipped(_) => "LotShipped",
            Event::LotStatusChanged(_) => "LotStatusChanged",
            Event::EventVoided(_) => "EventVoided",
            Event::TokenIssued(_) => "TokenIssued",
            Event::TokenRevoked(_) => "TokenRevoked",
            Event::EpcisObserved(_) => "EpcisObserved",
        }
    }

    pub fn occurred_at(&self) -> Option<Time> {
        match self {
            Event::MaterialReceived(e) => e.occurred_at,
            Event::LotInspected(e) => e.occurred_at,
            Event::LotProcessed(e) => e.occurred_at,
            Event::LotPacked(e) => e.occurred_at,
            Event::LotShipped(e) => e.occurred_at,
            Event::LotStatusChanged(e) => e.occurred_at,
            Event::EventVoided(e) => e.occurred_at,
            Event::EpcisObserved(e) => e.occurred_at,
            _ => None,
        }
    }

    /// The facility where it happened, for events at a facility.
    pub fn facility_id(&self) -> Option<&str> {
        match self {
            Event::MaterialReceived(e) => Some(&e.facility_id),
            Event::LotInspected(e) => Some(&e.facility_id),
            Event::LotProcessed(e) => Some(&e.facility_id),
            Event::LotPacked(e) => Some(&e.facility_id),
            Event::LotShipped(e) => Some(&e.facility_id),
            Event::LotStatusChanged(e) => Some(&e.facility_id),
            Event::EventVoided(e) => Some(&e.facility_id),
            Event::EpcisObserved(e) if !e.facility_id.is_empty() => Some(&e.facility_id),
            _ => None,
        }
    }

    /// The lots this event touches directly (for lot histories).
    pub fn lots(&self) -> Vec<&str> {
        match self {
            Event::MaterialReceived(e) => {
                let mut v = vec![e.lot_id.as_str()];
                if let Some(src) = &e.source_lot_id {
                    v.push(src);
                }
                v
            }
            Event::LotInspected(e) => vec![&e.lot_id],
            Event::LotProcessed(e) => e
                .inputs
                .iter()
                .map(|i| i.lot_id.as_str())
                .chain(e.outputs.iter().map(|o| o.lot_id.as_str()))
                .collect(),
            Event::LotPacked(e) => vec![&e.lot_id],
            Event::LotShipped(e) => vec![&e.lot_id],
            Event::LotStatusChanged(e) => vec![&e.lot_id],
            Event::EpcisObserved(e) => e.lot_ids.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

/// A command: what a client asks for. All but the inspection carry the event
/// they would become; `decide` fills in defaults and checks the rules.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    RegisterParty(Party),
    RegisterFacility(Facility),
    RegisterProduct(Product),
    RegisterStandard(QualityStandard),
    ReceiveMaterial(MaterialReceived),
    InspectLot(InspectLot),
    ProcessLots(LotProcessed),
    PackLot(LotPacked),
    ShipLot(LotShipped),
    ChangeLotStatus(LotStatusChanged),
    VoidEvent(EventVoided),
    IssueToken(crate::access::TokenIssued),
    RevokeToken(crate::access::TokenRevoked),
    ObserveEpcis(EpcisObserved),
}

impl From<Event> for Command {
    /// The command that records `event` again (an inspection's command
    /// carries the measurements; `decide` computes the verdict).
    fn from(event: Event) -> Command {
        match event {
            Event::PartyRegistered(x) => Command::RegisterParty(x),
            Event::FacilityRegistered(x) => Command::RegisterFacility(x),
            Event::ProductRegistered(x) => Command::RegisterProduct(x),
            Event::StandardRegistered(x) => Command::RegisterStandard(x),
            Event::MaterialReceived(x) => Command::ReceiveMaterial(x),
            Event::LotInspected(x) => Command::InspectLot(InspectLot {
                lot_id: x.lot_id,
                facility_id: x.facility_id,
                standard_id: x.standard_id,
                measurements: x.measurements,
                inspector: x.inspector,
                occurred_at: x.occurred_at,
            }),
            Event::LotProcessed(x) => Command::ProcessLots(x),
            Event::LotPacked(x) => Command::PackLot(x),
            Event::LotShipped(x) => Command::ShipLot(x),
            Event::LotStatusChanged(x) => Command::ChangeLotStatus(x),
            Event::EventVoided(x) => Command::VoidEvent(x),
            Event::TokenIssued(x) => Command::IssueToken(x),
            Event::TokenRevoked(x) => Command::RevokeToken(x),
            Event::EpcisObserved(x) => Command::ObserveEpcis(x),
        }
    }
}

impl Command {
    pub fn occurred_at(&self) -> Option<Time> {
        match self {
            Command::ReceiveMaterial(e) => e.occurred_at,
            Command::InspectLot(e) => e.occurred_at,
            Command::ProcessLots(e) => e.occurred_at,
            Command::PackLot(e) => e.occurred_at,
            Command::ShipLot(e) => e.occurred_at,
            Command::ChangeLotStatus(e) => e.occurred_at,
            Command::VoidEvent(e) => e.occurred_at,
            Command::ObserveEpcis(e) => e.occurred_at,
            _ => None,
        }
    }
}
