//! Plot geolocation for the EU deforestation regulation (EUDR): the point or
//! polygon of land a receipt's commodity was produced on, as the EU
//! information system takes it (GeoJSON geometry, WGS 84, longitude first).
//!
//! [`Geometry::validate`] refuses what the EU system would refuse: a
//! longitude outside −180..180 or a latitude outside −90..90; a polygon
//! without rings; a ring of fewer than 4 positions, not closed (last position
//! repeats the first), of fewer than 3 distinct positions, with all positions
//! on one line, or crossing, touching or doubling back on itself; a hole
//! whose position lies outside its exterior ring; a MultiPolygon without
//! polygons; more than [`MAX_RING_POSITIONS`] positions in a ring or
//! [`MAX_POSITIONS`] in a geometry. Repeated consecutive positions are
//! allowed. The crossing tests treat lon/lat as planar and are exact: each
//! coordinate is taken as an integer count of 10⁻¹⁶ degree (digits beyond
//! the 16th decimal, under a nanometre, are rounded) and orientations are
//! computed in `i128`, whose range these bounded values cannot exceed. How
//! many decimals a caller must keep is not checked here.
//!
//! [`Geometry::check_polygons_apart`], a rule for new captures only,
//! refuses a MultiPolygon two of whose polygons overlap (their land would
//! count twice; touching along an edge or at a corner, or one lying in the
//! other's hole, is allowed), and one too large to check within a bounded
//! number of steps.
//!
//! [`Geometry::area_m2`] is the spherical-excess ring area of Chamberlain &
//! Duquette (2007), "Some algorithms for polygons on a sphere", on a sphere
//! of the mean Earth radius [`EARTH_RADIUS_M`] — the formula and radius of
//! turf.js `@turf/area` (v7) and OpenLayers `getArea`, which it matches up
//! to float rounding: exterior rings minus holes, summed over polygons.
//! Against the WGS 84 ellipsoid it overstates by about 0.4% at Java's
//! latitude (7° S), well under 1%.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::error::DomainError;

/// 4 hectares: a plot larger than this must be given as a polygon, not a
/// point (EUDR art. 2(28) and 9(1)(d)).
pub const POINT_LIMIT_HA: Decimal = Decimal::from_parts(4, 0, 0, false, 0);
/// Radius of the sphere areas are computed on: the mean Earth radius (IUGG),
/// as turf.js and OpenLayers use.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;
/// Most positions one ring may have.
pub const MAX_RING_POSITIONS: usize = 10_000;
/// Most positions one geometry may have.
pub const MAX_POSITIONS: usize = 100_000;

const LON_LIMIT: Decimal = Decimal::from_parts(180, 0, 0, false, 0);
const LAT_LIMIT: Decimal = Decimal::from_parts(90, 0, 0, false, 0);
/// Decimal places of a degree the exact planar tests work in.
const FIXED_SCALE: u32 = 16;
/// Most steps (about one orientation test each) the overlap test of a
/// MultiPolygon's polygons may take: two polygons of 1,000 positions each
/// whose bounding boxes meet take about 5,000,000.
const MAX_OVERLAP_WORK: usize = 20_000_000;
/// Positions of a hole tried, in order, for one that is not on the exterior.
const HOLE_PROBES: usize = 16;

/// A WGS 84 position, longitude first as in GeoJSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub lon: Decimal,
    pub lat: Decimal,
}

/// A plot's geometry, as GeoJSON's geometry types of the same names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Geometry {
    Point(Position),
    /// Rings: the first is the exterior, the rest are holes.
    Polygon(Vec<Vec<Position>>),
    MultiPolygon(Vec<Vec<Vec<Position>>>),
}

/// GeoJSON `coordinates` as read by any JSON library: numbers (as their
/// text) and arrays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coords {
    Number(String),
    List(Vec<Coords>),
    /// Anything else JSON has (a string, an object, ...), named for errors.
    Other(&'static str),
}

fn list<'a>(c: &'a Coords, field: &str) -> Result<&'a [Coords], DomainError> {
    match c {
        Coords::List(v) => Ok(v),
        Coords::Number(_) => bad(field, "is a number where an array is expected"),
        Coords::Other(what) => bad(field, format!("is {what} where an array is expected")),
    }
}

fn position(c: &Coords, field: &str) -> Result<Position, DomainError> {
    let v = list(c, field)?;
    if v.len() != 2 && v.len() != 3 {
        return bad(
            field,
            format!(
                "a position is [longitude, latitude] (an altitude may follow); it has {} numbers",
                v.len()
            ),
        );
    }
    let number = |i: usize| -> Result<Decimal, DomainError> {
        let at = format!("{field}[{i}]");
        match &v[i] {
            Coords::Number(text) => Decimal::from_str_exact(text)
                .or_else(|_| Decimal::from_scientific(text))
                .or_else(|_| bad(&at, format!("{text} is not a coordinate in degrees"))),
            _ => bad(&at, "is not a number"),
        }
    };
    Ok(Position {
        lon: number(0)?,
        lat: number(1)?,
    })
}

fn rings(c: &Coords, field: &str) -> Result<Vec<Vec<Position>>, DomainError> {
    list(c, field)?
        .iter()
        .enumerate()
        .map(|(r, ring)| {
            let at = format!("{field}[{r}]");
            list(ring, &at)?
                .iter()
                .enumerate()
                .map(|(j, p)| position(p, &format!("{at}[{j}]")))
                .collect()
        })
        .collect()
}

impl Position {
    /// Why the position is off the globe, if it is.
    fn range_error(&self) -> Option<String> {
        if self.lon.abs() > LON_LIMIT {
            return Some(format!(
                "longitude {} is outside -180..180; GeoJSON writes longitude first, then latitude",
                self.lon
            ));
        }
        if self.lat.abs() > LAT_LIMIT {
            return Some(format!(
                "latitude {} is outside -90..90; GeoJSON writes longitude first, then latitude \
                 (were they swapped?)",
                self.lat
            ));
        }
        None
    }
}

impl Geometry {
    /// Checks as EUDR's information system requires; `field` names the
    /// geometry in errors (e.g. "origin.geometry"), whose field is the exact
    /// place: "origin.geometry.coordinates[0][3]" is ring 0, position 3 of a
    /// Polygon, "origin.geometry.coordinates[1][0]" ring 0 of polygon 1 of a
    /// MultiPolygon.
    pub fn validate(&self, field: &str) -> Result<(), DomainError> {
        let base = format!("{field}.coordinates");
        let count = self.position_count();
        if count > MAX_POSITIONS {
            return bad(
                base,
                format!("has {count} positions; at most {MAX_POSITIONS} are accepted"),
            );
        }
        match self {
            Geometry::Point(p) => p.range_error().map_or(Ok(()), |reason| bad(base, reason)),
            Geometry::Polygon(rings) => check_polygon(rings, &base).map(drop),
            Geometry::MultiPolygon(polygons) if polygons.is_empty() => {
                bad(base, "a MultiPolygon needs at least one polygon")
            }
            Geometry::MultiPolygon(polygons) => polygons
                .iter()
                .enumerate()
                .try_for_each(|(i, rings)| check_polygon(rings, &format!("{base}[{i}]")).map(drop)),
        }
    }

    /// Checks that no two polygons of a MultiPolygon overlap (their shared
    /// land would count twice in the plot's area); they may touch along an
    /// edge or at a corner, and one may lie in another's hole. A rule for
    /// new captures (checked as a command enters an engine), not part of
    /// [`Geometry::validate`]: a geometry stored before it was made must
    /// still be read.
    pub fn check_polygons_apart(&self, field: &str) -> Result<(), DomainError> {
        let Geometry::MultiPolygon(polygons) = self else {
            return Ok(());
        };
        let base = format!("{field}.coordinates");
        let members = polygons
            .iter()
            .enumerate()
            .map(|(i, rings)| check_polygon(rings, &format!("{base}[{i}]")).map(Member::new))
            .collect::<Result<Vec<_>, _>>()?;
        // Pairs whose boxes meet, found by a sweep over the boxes' least x;
        // every step of the test spends from one budget, so that no
        // geometry ties up a thread.
        let mut order: Vec<usize> = (0..members.len()).collect();
        order.sort_by_key(|&i| members[i].bounds.0);
        let mut budget = Budget(MAX_OVERLAP_WORK);
        for (k, &a) in order.iter().enumerate() {
            for &b in &order[k + 1..] {
                let (i, j) = (a.min(b), a.max(b));
                if members[b].bounds.0 > members[a].bounds.2 {
                    break;
                }
                let overlapping = budget
                    .spend(1)
                    .and_then(|()| members[i].overlaps(&members[j], &mut budget));
                match overlapping {
                    Ok(false) => {}
                    Ok(true) => {
                        return bad(
                            format!("{base}[{j}]"),
                            format!(
                                "polygon {j} overlaps polygon {i}, so the land they share would be counted \
                                 twice; the polygons of a MultiPolygon may touch but not overlap: merge the \
                                 two into one polygon, or cut the shared land out of one of them"
                            ),
                        )
                    }
                    Err(OverBudget) => {
                        return bad(
                            format!("{base}[{j}]"),
                            format!(
                                "the polygons lie across each other with too many positions to check that none \
                                 overlap (the test stopped at polygons {i} and {j}, after {MAX_OVERLAP_WORK} \
                                 steps): give fewer positions, or the plots one by one"
                            ),
                        )
                    }
                }
            }
        }
        Ok(())
    }

    /// Geodesic area in square metres (0 for a point): exterior rings minus
    /// holes, summed over a MultiPolygon's polygons.
    pub fn area_m2(&self) -> f64 {
        match self {
            Geometry::Point(_) => 0.0,
            Geometry::Polygon(rings) => polygon_area(rings),
            Geometry::MultiPolygon(polygons) => polygons.iter().map(|rings| polygon_area(rings.as_slice())).sum(),
        }
    }

    /// Area in hectares rounded to 4 decimal places (1 m²).
    pub fn area_ha(&self) -> Decimal {
        // 0.0001 ha is 1 m²; no plot on Earth comes near i64's range.
        Decimal::new(self.area_m2().round() as i64, 4)
    }

    /// Compact GeoJSON geometry text, numbers written with exactly the digits
    /// they were given: `{"type":"Point","coordinates":[110.1234560,-7.654321]}`.
    pub fn to_geojson(&self) -> String {
        let mut out = String::with_capacity(40 + 26 * self.position_count());
        self.write_geojson(&mut out);
        out
    }

    /// Appends [`Geometry::to_geojson`]'s text to `out`.
    pub fn write_geojson(&self, out: &mut String) {
        out.push_str("{\"type\":\"");
        out.push_str(self.kind());
        out.push_str("\",\"coordinates\":");
        match self {
            Geometry::Point(p) => push_position(out, p),
            Geometry::Polygon(rings) => push_polygon(out, rings),
            Geometry::MultiPolygon(polygons) => {
                push_list(out, polygons, |out, rings| push_polygon(out, rings.as_slice()))
            }
        }
        out.push('}');
    }

    /// A geometry from GeoJSON's `type` and `coordinates` as any JSON
    /// reader gives them, checked with [`Geometry::validate`].
    pub fn from_geojson(kind: &str, coordinates: &Coords, field: &str) -> Result<Geometry, DomainError> {
        let base = format!("{field}.coordinates");
        let geometry = match kind {
            "Point" => Geometry::Point(position(coordinates, &base)?),
            "Polygon" => Geometry::Polygon(rings(coordinates, &base)?),
            "MultiPolygon" => Geometry::MultiPolygon(
                list(coordinates, &base)?
                    .iter()
                    .enumerate()
                    .map(|(i, c)| rings(c, &format!("{base}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            other => {
                return bad(
                    format!("{field}.type"),
                    format!(
                        "{} is not a plot geometry: Point, Polygon or MultiPolygon",
                        crate::error::quote(other)
                    ),
                )
            }
        };
        geometry.validate(field)?;
        Ok(geometry)
    }

    /// The GeoJSON type name: "Point", "Polygon" or "MultiPolygon".
    pub fn kind(&self) -> &'static str {
        match self {
            Geometry::Point(_) => "Point",
            Geometry::Polygon(_) => "Polygon",
            Geometry::MultiPolygon(_) => "MultiPolygon",
        }
    }

    fn position_count(&self) -> usize {
        match self {
            Geometry::Point(_) => 1,
            Geometry::Polygon(rings) => rings.iter().map(Vec::len).sum(),
            Geometry::MultiPolygon(polygons) => polygons.iter().flatten().map(Vec::len).sum(),
        }
    }
}

/// A position in integer units of 10⁻¹⁶ degree (x longitude, y latitude),
/// each at most 180·10¹⁶ in magnitude: differences stay under 3.6·10¹⁸ and
/// the sum of two products of differences under 2.6·10³⁷, so the `i128`
/// arithmetic below cannot overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pt {
    x: i128,
    y: i128,
}

/// A ring's corner and the index of the position it came from.
#[derive(Debug, Clone, Copy)]
struct Vertex {
    p: Pt,
    at: usize,
}

fn bad<T>(field: impl Into<String>, reason: impl Into<String>) -> Result<T, DomainError> {
    Err(DomainError::invalid(field, reason))
}

/// The value in units of 10⁻¹⁶ degree; `None` beyond ±180 degrees.
fn fixed(d: Decimal) -> Option<i128> {
    let d = d.round_dp(FIXED_SCALE);
    let v = d
        .mantissa()
        .checked_mul(10_i128.checked_pow(FIXED_SCALE.checked_sub(d.scale())?)?)?;
    (v.checked_abs()? <= 180 * 10_i128.pow(FIXED_SCALE)).then_some(v)
}

/// Sign of the cross product (b − a) × (c − a): 1 if c is left of a→b.
fn orient(a: Pt, b: Pt, c: Pt) -> i8 {
    let (l, r) = ((b.x - a.x) * (c.y - a.y), (b.y - a.y) * (c.x - a.x));
    i8::from(l > r) - i8::from(l < r)
}

/// Whether p, known to be on the line through a and b, is on the segment.
fn within(a: Pt, b: Pt, p: Pt) -> bool {
    (a.x.min(b.x)..=a.x.max(b.x)).contains(&p.x) && (a.y.min(b.y)..=a.y.max(b.y)).contains(&p.y)
}

/// Whether segments a–b and c–d have any point in common.
fn segments_meet(a: Pt, b: Pt, c: Pt, d: Pt) -> bool {
    let (o1, o2, o3, o4) = (orient(a, b, c), orient(a, b, d), orient(c, d, a), orient(c, d, b));
    (o1 * o2 < 0 && o3 * o4 < 0)
        || (o1 == 0 && within(a, b, c))
        || (o2 == 0 && within(a, b, d))
        || (o3 == 0 && within(c, d, a))
        || (o4 == 0 && within(c, d, b))
}

/// Whether p lies inside a ring (crossings of a ray towards +x); `None` if
/// it lies on the ring's edge.
fn is_inside(p: Pt, ring: &[Vertex]) -> Option<bool> {
    let mut inside = false;
    for (i, v) in ring.iter().enumerate() {
        let (a, b) = (v.p, ring[(i + 1) % ring.len()].p);
        let o = orient(a, b, p);
        if o == 0 && within(a, b, p) {
            return None;
        }
        // The edge crosses the ray upwards with p on its left, or downwards
        // with p on its right (p on the edge was answered above).
        if (a.y <= p.y) != (b.y <= p.y) && (o > 0) == (b.y > a.y) {
            inside = !inside;
        }
    }
    Some(inside)
}

/// One polygon of a MultiPolygon, for the test that no two overlap: its
/// rings' corners at twice their coordinates (so that the midpoint of two
/// corners is a point of the same grid; the largest products of
/// differences, under 5.2·10³⁷, still fit `i128`), each ring with the side
/// its polygon's interior lies on (1: left of each edge, −1: right).
struct Member {
    rings: Vec<(Vec<Vertex>, i8)>,
    /// Bounding box: least x, least y, greatest x, greatest y.
    bounds: (i128, i128, i128, i128),
    corners: usize,
}

impl Member {
    fn new(rings: Vec<Vec<Vertex>>) -> Member {
        let rings: Vec<(Vec<Vertex>, i8)> = rings
            .into_iter()
            .enumerate()
            .map(|(r, ring)| {
                let doubled: Vec<Vertex> = ring
                    .iter()
                    .map(|v| Vertex {
                        p: Pt {
                            x: 2 * v.p.x,
                            y: 2 * v.p.y,
                        },
                        at: v.at,
                    })
                    .collect();
                // The exterior's interior is inside it; a hole's, outside.
                let side = turn(&doubled) * if r == 0 { 1 } else { -1 };
                (doubled, side)
            })
            .collect();
        let all = || rings.iter().flat_map(|(vs, _)| vs.iter().map(|v| v.p));
        let bounds = (
            all().map(|p| p.x).min().unwrap_or(0),
            all().map(|p| p.y).min().unwrap_or(0),
            all().map(|p| p.x).max().unwrap_or(0),
            all().map(|p| p.y).max().unwrap_or(0),
        );
        Member {
            corners: all().count(),
            rings,
            bounds,
        }
    }

    fn edges(&self) -> impl Iterator<Item = (Pt, Pt, i8)> + '_ {
        self.rings.iter().flat_map(|(vs, side)| {
            vs.iter()
                .enumerate()
                .map(move |(i, v)| (v.p, vs[(i + 1) % vs.len()].p, *side))
        })
    }

    fn meets_box_of(&self, other: &Member) -> bool {
        let (a, b) = (self.bounds, other.bounds);
        a.0 <= b.2 && b.0 <= a.2 && a.1 <= b.3 && b.1 <= a.3
    }

    /// Whether p is in the interior (`Some(true)`), outside (`Some(false)`)
    /// or on a ring (`None`).
    fn contains(&self, p: Pt) -> Option<bool> {
        let (x0, y0, x1, y1) = self.bounds;
        if p.x < x0 || p.x > x1 || p.y < y0 || p.y > y1 {
            return Some(false);
        }
        let mut inside = false;
        for (r, (ring, _)) in self.rings.iter().enumerate() {
            let within_ring = is_inside(p, ring)?;
            match r {
                0 if !within_ring => return Some(false),
                0 => inside = true,
                _ if within_ring => inside = false,
                _ => {}
            }
        }
        Some(inside)
    }

    /// Whether the interiors of the two polygons have a point in common.
    /// Exact: two edges that cross at a point inside both overlap them;
    /// otherwise each edge of one, cut where corners of the other lie on
    /// it, is in pieces each wholly inside the other, outside it, or along
    /// an edge of it; an overlap has a piece inside, or a piece along an
    /// edge of the other with both interiors on the same side.
    fn overlaps(&self, other: &Member, budget: &mut Budget) -> Result<bool, OverBudget> {
        if !self.meets_box_of(other) {
            return Ok(false);
        }
        budget.spend(self.corners.saturating_mul(other.corners))?;
        let crossing = self.edges().any(|(p, q, _)| {
            other
                .edges()
                .any(|(r, s, _)| orient(p, q, r) * orient(p, q, s) < 0 && orient(r, s, p) * orient(r, s, q) < 0)
        });
        Ok(crossing || self.has_piece_within(other, budget)? || other.has_piece_within(self, budget)?)
    }

    fn has_piece_within(&self, other: &Member, budget: &mut Budget) -> Result<bool, OverBudget> {
        for (p, q, side) in self.edges() {
            // Each corner of the other tried as a cut, each piece placed.
            budget.spend(other.corners)?;
            let along = |v: &Pt| (v.x - p.x) * (q.x - p.x) + (v.y - p.y) * (q.y - p.y);
            let mut cuts: Vec<Pt> = other
                .rings
                .iter()
                .flat_map(|(vs, _)| vs.iter().map(|v| v.p))
                .filter(|&v| v != p && v != q && orient(p, q, v) == 0 && within(p, q, v))
                .collect();
            cuts.sort_by_key(along);
            cuts.dedup();
            let ends: Vec<Pt> = std::iter::once(p).chain(cuts).chain(std::iter::once(q)).collect();
            for w in ends.windows(2) {
                budget.spend(other.corners)?;
                let mid = Pt {
                    x: (w[0].x + w[1].x) / 2,
                    y: (w[0].y + w[1].y) / 2,
                };
                let within_other = match other.contains(mid) {
                    Some(inside) => inside,
                    // Along an edge of the other (a crossing there was
                    // found above, a corner there is a cut): the interiors
                    // are on the same side when the sides given relative
                    // to each edge's direction agree as the directions do.
                    None => other.edges().any(|(r, s, other_side)| {
                        orient(r, s, mid) == 0 && within(r, s, mid) && {
                            let same_way = (q.x - p.x) * (s.x - r.x) + (q.y - p.y) * (s.y - r.y) > 0;
                            (side == other_side) == same_way
                        }
                    }),
                };
                if within_other {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

/// What the overlap test of a MultiPolygon may still spend, in steps of
/// about one orientation test each.
struct Budget(usize);

/// The overlap test ran out of its budget.
struct OverBudget;

impl Budget {
    fn spend(&mut self, steps: usize) -> Result<(), OverBudget> {
        self.0 = self.0.checked_sub(steps).ok_or(OverBudget)?;
        Ok(())
    }
}

/// A ring's turn: 1 counter-clockwise, −1 clockwise (exact: the turn at its
/// least corner, which lies on its convex hull; a checked ring does not
/// turn back there, so the turn is not 0).
fn turn(vs: &[Vertex]) -> i8 {
    let Some(k) = (0..vs.len()).min_by_key(|&i| (vs[i].p.x, vs[i].p.y)) else {
        return 1;
    };
    let n = vs.len();
    orient(vs[(k + n - 1) % n].p, vs[k].p, vs[(k + 1) % n].p)
}

fn check_polygon(rings: &[Vec<Position>], base: &str) -> Result<Vec<Vec<Vertex>>, DomainError> {
    let Some((exterior, holes)) = rings.split_first() else {
        return bad(base, "a polygon needs at least one ring: its exterior outline");
    };
    let outline = check_ring(exterior, &format!("{base}[0]"))?;
    let mut checked = Vec::with_capacity(rings.len());
    for (i, hole) in holes.iter().enumerate() {
        let path = format!("{base}[{}]", i + 1);
        let corners = check_ring(hole, &path)?;
        // The first corner not on the exterior's edge tells where the hole is.
        let probe = corners
            .iter()
            .take(HOLE_PROBES)
            .find_map(|v| Some((v.at, is_inside(v.p, &outline)?)));
        let what = match probe {
            Some((_, true)) => {
                checked.push(corners);
                continue;
            }
            Some((at, false)) => format!("its position {at} is outside it"),
            None => "its positions lie on the exterior's edge".to_owned(),
        };
        return bad(
            path,
            format!(
                "a hole (ring {}) must lie inside the exterior ring (ring 0); {what}",
                i + 1
            ),
        );
    }
    checked.insert(0, outline);
    Ok(checked)
}

/// Checks one ring; returns its corners without the closing position and
/// without repeats of the previous corner.
fn check_ring(ring: &[Position], path: &str) -> Result<Vec<Vertex>, DomainError> {
    let n = ring.len();
    if n > MAX_RING_POSITIONS {
        return bad(
            path,
            format!("ring has {n} positions; at most {MAX_RING_POSITIONS} are accepted"),
        );
    }
    if let Some((i, reason)) = ring.iter().enumerate().find_map(|(i, p)| Some((i, p.range_error()?))) {
        return bad(format!("{path}[{i}]"), reason);
    }
    if n < 4 {
        return bad(
            path,
            format!("ring has {n} positions; it needs at least 4 (the first repeated at the end)"),
        );
    }
    let (first, last) = (ring[0], ring[n - 1]);
    if first != last {
        return bad(
            format!("{path}[{}]", n - 1),
            format!(
                "ring is not closed: its last position [{}, {}] must repeat its first [{}, {}]",
                last.lon, last.lat, first.lon, first.lat
            ),
        );
    }
    let mut vs: Vec<Vertex> = Vec::with_capacity(n - 1);
    for (at, pos) in ring[..n - 1].iter().enumerate() {
        let (Some(x), Some(y)) = (fixed(pos.lon), fixed(pos.lat)) else {
            return bad(format!("{path}[{at}]"), "position is off the globe");
        };
        let p = Pt { x, y };
        let repeat = vs.last().is_some_and(|v| v.p == p);
        if !repeat {
            vs.push(Vertex { p, at });
        }
    }
    while vs.len() > 1 && vs[vs.len() - 1].p == vs[0].p {
        vs.pop();
    }
    let m = vs.len();
    if m < 3 {
        return bad(path, "ring has fewer than 3 distinct positions, so it encloses no area");
    }
    if vs[2..].iter().all(|v| orient(vs[0].p, vs[1].p, v.p) == 0) {
        return bad(
            path,
            "all positions of the ring lie on one straight line, so it encloses no area",
        );
    }
    for (i, v) in vs.iter().enumerate() {
        let (a, c) = (vs[(i + m - 1) % m].p, vs[(i + 1) % m].p);
        let dot = (a.x - v.p.x) * (c.x - v.p.x) + (a.y - v.p.y) * (c.y - v.p.y);
        if orient(a, v.p, c) == 0 && dot > 0 {
            return bad(
                format!("{path}[{}]", v.at),
                "the ring turns back on itself here: the edges before and after this position overlap",
            );
        }
    }
    // Edges sorted by least longitude; each is tested against the later
    // edges whose longitude range overlaps its own.
    let edge = |i: usize| (vs[i].p, vs[(i + 1) % m].p);
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by_key(|&i| {
        let (p, q) = edge(i);
        p.x.min(q.x)
    });
    for (k, &i) in order.iter().enumerate() {
        let (p, q) = edge(i);
        for &j in &order[k + 1..] {
            let (r, s) = edge(j);
            if r.x.min(s.x) > p.x.max(q.x) {
                break;
            }
            let adjacent = j == (i + 1) % m || i == (j + 1) % m;
            let apart = p.y.max(q.y) < r.y.min(s.y) || r.y.max(s.y) < p.y.min(q.y);
            if adjacent || apart || !segments_meet(p, q, r, s) {
                continue;
            }
            let (lo, hi) = (i.min(j), i.max(j));
            let end = |e: usize| if e + 1 < m { vs[e + 1].at } else { n - 1 };
            return bad(
                format!("{path}[{}]", vs[hi].at),
                format!(
                    "the ring crosses or touches itself: the edge from position {} to {} meets the edge from \
                     position {} to {}; draw the outline without crossings, or make it a MultiPolygon",
                    vs[hi].at,
                    end(hi),
                    vs[lo].at,
                    end(lo)
                ),
            );
        }
    }
    Ok(vs)
}

fn radians(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0).to_radians()
}

/// Chamberlain & Duquette's ring area in m², as turf.js computes it.
fn ring_area(ring: &[Position]) -> f64 {
    if ring.len() < 4 {
        return 0.0;
    }
    let len = ring.len() - 1; // the closing position repeats the first
    let mut total = 0.0;
    for (i, lower) in ring[..len].iter().enumerate() {
        let middle = ring[(i + 1) % len];
        let upper = ring[(i + 2) % len];
        total += (radians(upper.lon) - radians(lower.lon)) * radians(middle.lat).sin();
    }
    (total * EARTH_RADIUS_M * EARTH_RADIUS_M / 2.0).abs()
}

fn polygon_area(rings: &[Vec<Position>]) -> f64 {
    let Some((exterior, holes)) = rings.split_first() else {
        return 0.0;
    };
    let holes: f64 = holes.iter().map(|ring| ring_area(ring.as_slice())).sum();
    (ring_area(exterior) - holes).max(0.0)
}

fn push_list<T>(out: &mut String, items: &[T], mut each: impl FnMut(&mut String, &T)) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(out, item);
    }
    out.push(']');
}

fn push_position(out: &mut String, p: &Position) {
    out.push('[');
    crate::quantity::push_decimal(out, p.lon);
    out.push(',');
    crate::quantity::push_decimal(out, p.lat);
    out.push(']');
}

fn push_polygon(out: &mut String, rings: &[Vec<Position>]) {
    push_list(out, rings, |out, ring| push_list(out, ring.as_slice(), push_position));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(x: &str) -> Coords {
        Coords::Number(x.into())
    }

    fn l(v: Vec<Coords>) -> Coords {
        Coords::List(v)
    }

    #[test]
    fn geometries_are_read_from_geojson_parts_naming_the_bad_place() {
        let p = Geometry::from_geojson("Point", &l(vec![n("110.6123450"), n("-7.7")]), "origin.geometry").unwrap();
        assert_eq!(p.to_geojson(), r#"{"type":"Point","coordinates":[110.6123450,-7.7]}"#);
        let ring = |pts: &[(&str, &str)]| l(pts.iter().map(|(a, b)| l(vec![n(a), n(b)])).collect());
        let square = ring(&[
            ("110.6", "-7.7"),
            ("110.601", "-7.7"),
            ("110.601", "-7.701"),
            ("110.6", "-7.701"),
            ("110.6", "-7.7"),
        ]);
        let poly = Geometry::from_geojson("Polygon", &l(vec![square.clone()]), "g").unwrap();
        assert!(poly.area_ha() > Decimal::ONE, "{}", poly.area_ha());
        let multi = Geometry::from_geojson("MultiPolygon", &l(vec![l(vec![square])]), "g").unwrap();
        assert_eq!(multi.area_ha(), poly.area_ha());
        let err = |kind: &str, c: Coords| match Geometry::from_geojson(kind, &c, "g") {
            Err(DomainError::Invalid { field, reason }) => (field, reason),
            other => panic!("{other:?}"),
        };
        assert_eq!(err("LineString", l(vec![])).0, "g.type");
        assert_eq!(err("Point", l(vec![n("1")])).0, "g.coordinates");
        assert_eq!(
            err("Point", l(vec![n("1"), Coords::Other("a string")])).0,
            "g.coordinates[1]"
        );
        let (field, reason) = err("Polygon", l(vec![l(vec![l(vec![n("1"), n("2")]), n("3")])]));
        assert_eq!(field, "g.coordinates[0][1]");
        assert!(reason.contains("array"), "{reason}");
        assert_eq!(err("Point", l(vec![n("1e400"), n("2")])).0, "g.coordinates[0]");
    }
    use std::str::FromStr;

    const FIELD: &str = "origin.geometry";

    fn pos(lon: &str, lat: &str) -> Position {
        let d = |s: &str| Decimal::from_str(s).expect("decimal");
        Position {
            lon: d(lon),
            lat: d(lat),
        }
    }

    /// A ring from f64 degrees, each kept to 7 decimals.
    fn ring(points: &[(f64, f64)]) -> Vec<Position> {
        points
            .iter()
            .map(|(lon, lat)| pos(&format!("{lon:.7}"), &format!("{lat:.7}")))
            .collect()
    }

    fn rectangle(lon: f64, lat: f64, width: f64, height: f64) -> Vec<Position> {
        let (east, north) = (lon + width, lat + height);
        ring(&[(lon, lat), (east, lat), (east, north), (lon, north), (lon, lat)])
    }

    fn square(lon: f64, lat: f64, side: f64) -> Vec<Position> {
        rectangle(lon, lat, side, side)
    }

    /// Asserts `g` is refused at `origin.geometry.coordinates{at}` for a
    /// reason containing `part` (as a capture checks it).
    fn assert_refused(g: Geometry, at: &str, part: &str) {
        match g.validate(FIELD).and_then(|()| g.check_polygons_apart(FIELD)) {
            Err(DomainError::Invalid { field, reason }) => {
                assert_eq!(field, format!("{FIELD}.coordinates{at}"), "{reason}");
                assert!(reason.contains(part), "{reason:?} lacks {part:?}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_200_m_square_near_klaten_is_4_hectares() {
        let (lon, lat) = (110.6_f64, -7.7_f64);
        let dlat = 200.0 / 111_320.0;
        let dlon = 200.0 / (111_320.0 * lat.to_radians().cos());
        let g = Geometry::Polygon(vec![rectangle(lon, lat, dlon, dlat)]);
        assert_eq!(g.validate(FIELD), Ok(()));
        let ha = g.area_ha();
        assert!((ha - POINT_LIMIT_HA).abs() < Decimal::new(4, 2), "{ha}");
        assert_eq!(ha.scale(), 4);
    }

    #[test]
    fn area_matches_turf() {
        // The @turf/area (v7) docs' polygon; a 6,378,137 m sphere would give 7,766,240,997,209 m².
        let mut pts = vec![
            (125., -15.),
            (113., -22.),
            (117., -37.),
            (130., -33.),
            (148., -39.),
            (154., -27.),
            (144., -15.),
        ];
        pts.push(pts[0]);
        let g = Geometry::Polygon(vec![ring(&pts)]);
        assert_eq!(g.validate(FIELD), Ok(()));
        let turf = 7_748_891_609_977.0;
        assert!(((g.area_m2() - turf) / turf).abs() < 1e-4, "{}", g.area_m2());
        assert!(Geometry::Point(pos("110", "-7")).area_m2().abs() < f64::EPSILON);
    }

    #[test]
    fn a_hole_is_subtracted_and_multipolygons_add_up() {
        let (exterior, hole, other) = (
            square(110.0, -8.0, 0.01),
            square(110.004, -7.996, 0.002),
            square(111.0, -8.0, 0.002),
        );
        let with_hole = Geometry::Polygon(vec![exterior.clone(), hole.clone()]);
        assert_eq!(with_hole.validate(FIELD), Ok(()));
        let area = |ring: &Vec<Position>| Geometry::Polygon(vec![ring.clone()]).area_m2();
        let (outer, inner, second) = (area(&exterior), area(&hole), area(&other));
        assert!(((inner / outer) - 0.04).abs() < 0.0004, "{inner} / {outer}");
        assert!((with_hole.area_m2() - (outer - inner)).abs() < 1e-6);
        let multi = Geometry::MultiPolygon(vec![vec![exterior], vec![other]]);
        assert_eq!(multi.validate(FIELD), Ok(()));
        assert!((multi.area_m2() - (outer + second)).abs() < 1e-6);
        assert_eq!(multi.kind(), "MultiPolygon");
    }

    #[test]
    fn broken_rings_are_refused_at_their_place() {
        let polygon = |pts: &[(f64, f64)]| Geometry::Polygon(vec![ring(pts)]);
        let unclosed = polygon(&[(0., 0.), (1., 0.), (1., 1.), (0., 1.)]);
        assert_refused(unclosed, "[0][3]", "not closed");
        let short = polygon(&[(0., 0.), (1., 0.), (0., 0.)]);
        assert_refused(short, "[0]", "at least 4");
        let bow_tie = polygon(&[
            (110., -7.),
            (110.001, -7.001),
            (110.001, -7.),
            (110., -7.001),
            (110., -7.),
        ]);
        assert_refused(
            bow_tie,
            "[0][2]",
            "from position 2 to 3 meets the edge from position 0 to 1",
        );
        let collinear = polygon(&[(0., 0.), (1., 1.), (2., 2.), (0., 0.)]);
        assert_refused(collinear, "[0]", "one straight line");
        let spike = polygon(&[(0., 0.), (2., 0.), (1., 0.), (1., 1.), (0., 0.)]);
        assert_refused(spike, "[0][1]", "turns back");
    }

    #[test]
    fn positions_off_the_globe_are_refused() {
        assert_refused(Geometry::Point(pos("200", "-7")), "", "longitude 200 is outside");
        assert_refused(Geometry::Point(pos("-7", "110")), "", "longitude first");
        let mut far = square(110.0, -8.0, 0.01);
        far[2].lon = Decimal::from(200);
        assert_refused(Geometry::Polygon(vec![far]), "[0][2]", "longitude 200");
        let mut south = square(110.0, -8.0, 0.01);
        south[3].lat = Decimal::from(-95);
        let multi = Geometry::MultiPolygon(vec![vec![square(111.0, -8.0, 0.01)], vec![south]]);
        assert_refused(multi, "[1][0][3]", "latitude -95 is outside");
    }

    #[test]
    fn holes_must_lie_inside_and_collections_must_not_be_empty() {
        let outside = Geometry::Polygon(vec![square(0.0, 0.0, 10.0), square(20.0, 20.0, 1.0)]);
        assert_refused(outside, "[1]", "inside the exterior");
        assert_refused(Geometry::Polygon(vec![]), "", "at least one ring");
        assert_refused(Geometry::MultiPolygon(vec![]), "", "at least one polygon");
        assert_refused(Geometry::MultiPolygon(vec![vec![]]), "[0]", "at least one ring");
    }

    #[test]
    fn the_polygons_of_a_multipolygon_may_touch_but_not_overlap() {
        let multi = |members: Vec<Vec<Vec<Position>>>| Geometry::MultiPolygon(members);
        let a = square(110.0, -8.0, 0.01);
        // Overlapping: the same square twice, one across another's edge,
        // one wholly inside another, one inside sharing two of its edges.
        assert_refused(
            multi(vec![vec![a.clone()], vec![a.clone()]]),
            "[1]",
            "overlaps polygon 0",
        );
        // A rule of capture only: such a geometry stored before it is read.
        assert_eq!(multi(vec![vec![a.clone()], vec![a.clone()]]).validate(FIELD), Ok(()));
        let across = multi(vec![vec![a.clone()], vec![square(110.005, -7.995, 0.01)]]);
        assert_refused(across, "[1]", "overlaps polygon 0");
        let far = square(112.0, -8.0, 0.01);
        let inside = multi(vec![
            vec![far.clone()],
            vec![a.clone()],
            vec![square(110.002, -7.998, 0.002)],
        ]);
        assert_refused(inside, "[2]", "polygon 2 overlaps polygon 1");
        let in_corner = multi(vec![vec![a.clone()], vec![square(110.0, -8.0, 0.002)]]);
        assert_refused(in_corner, "[1]", "overlaps polygon 0");
        // The same square drawn the other way round still overlaps.
        let mut reversed = a.clone();
        reversed.reverse();
        assert_refused(multi(vec![vec![a.clone()], vec![reversed]]), "[1]", "overlaps");

        // Touching: along a shared edge (whole or part of it), at a corner;
        // an island in the other's hole, or filling the hole exactly.
        let accepted = |g: Geometry| {
            assert_eq!(g.validate(FIELD), Ok(()), "{g:?}");
            assert_eq!(g.check_polygons_apart(FIELD), Ok(()), "{g:?}");
        };
        accepted(multi(vec![vec![a.clone()], vec![square(110.01, -8.0, 0.01)]]));
        accepted(multi(vec![
            vec![a.clone()],
            vec![rectangle(110.01, -7.995, 0.01, 0.01)],
        ]));
        accepted(multi(vec![vec![a.clone()], vec![square(110.01, -7.99, 0.01)]]));
        let mut beside_reversed = square(110.01, -8.0, 0.01);
        beside_reversed.reverse();
        accepted(multi(vec![vec![a.clone()], vec![beside_reversed]]));
        let hole = square(110.004, -7.996, 0.002);
        let island = square(110.0045, -7.9955, 0.001);
        let lake = vec![a.clone(), hole.clone()];
        accepted(multi(vec![lake.clone(), vec![island]]));
        accepted(multi(vec![lake.clone(), vec![hole.clone()]]));
        // An island touching the hole's edge from inside.
        accepted(multi(vec![lake.clone(), vec![square(110.004, -7.996, 0.001)]]));
        // ... but not an island larger than the hole.
        let spilling = square(110.003, -7.997, 0.004);
        assert_refused(multi(vec![lake, vec![spilling]]), "[1]", "overlaps polygon 0");
    }

    #[test]
    fn an_overlap_test_too_costly_to_run_is_refused() {
        let circle_at = |lon: f64, lat: f64, n: usize| {
            let mut pts: Vec<(f64, f64)> = (0..n)
                .map(|i| {
                    let t = i as f64 / n as f64 * std::f64::consts::TAU;
                    (lon + 0.01 * t.cos(), lat + 0.01 * t.sin())
                })
                .collect();
            pts.push(pts[0]);
            ring(&pts)
        };
        // Circles of radius 0.01° whose centres are 0.015° apart on both
        // axes: their boxes meet, the circles do not.
        let apart = |n: usize| {
            Geometry::MultiPolygon(vec![
                vec![circle_at(110.0, -8.0, n)],
                vec![circle_at(110.015, -7.985, n)],
            ])
        };
        // Of 4,000 positions each: more than the test may spend.
        assert_refused(apart(4000), "[1]", "too many positions to check");
        // Of 400 each: checked, and accepted.
        assert_eq!(apart(400).validate(FIELD), Ok(()));
        assert_eq!(apart(400).check_polygons_apart(FIELD), Ok(()));
        let close = Geometry::MultiPolygon(vec![
            vec![circle_at(110.0, -8.0, 400)],
            vec![circle_at(110.01, -7.99, 400)],
        ]);
        assert_refused(close, "[1]", "overlaps polygon 0");
        // Many polygons side by side, their boxes apart: the sweep pairs
        // none of them.
        let row: Vec<Vec<Vec<Position>>> = (0..2000)
            .map(|i| vec![square(100.0 + 0.002 * f64::from(i), -8.0, 0.001)])
            .collect();
        assert_eq!(Geometry::MultiPolygon(row).check_polygons_apart(FIELD), Ok(()));
    }

    #[test]
    fn geojson_keeps_the_digits_given() {
        let point = Geometry::Point(pos("110.1234560", "-7.654321"));
        assert_eq!(
            point.to_geojson(),
            r#"{"type":"Point","coordinates":[110.1234560,-7.654321]}"#
        );
        let a = pos("110.1234560", "-7.654321");
        let polygon = Geometry::Polygon(vec![vec![a, pos("110.124", "-7.654321"), pos("110.124", "-7.653"), a]]);
        assert_eq!(polygon.validate(FIELD), Ok(()));
        assert_eq!(
            polygon.to_geojson(),
            r#"{"type":"Polygon","coordinates":[[[110.1234560,-7.654321],[110.124,-7.654321],[110.124,-7.653],[110.1234560,-7.654321]]]}"#
        );
    }
}
