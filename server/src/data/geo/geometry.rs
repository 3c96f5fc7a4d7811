//! Geometry for the driver index: positions ready for haversine, cell shapes and the
//! ring walk a search takes outward from its origin cell.

use h3o::{CellIndex, LatLng, Resolution};
use hashbrown::HashMap;
use tessera_protocol::geo::GeoPoint;

/// Mean Earth radius used by H3, in metres.
pub const EARTH_RADIUS_M: f64 = h3o::EARTH_RADIUS_KM * 1000.0;
/// Most rings a search walks: bounds one request's work when members are sparse. A
/// radius that could need more is refused up front (see `max_radius_m`).
pub const MAX_RINGS: u32 = 120;
/// Rings kept per origin cell; a sparse search walking further computes the rest.
pub(super) const CACHED_RINGS: usize = 6;
/// Cell shapes cached in all, across origins, before the caches start over.
pub(super) const MAX_CACHED_SHAPES: usize = 1 << 20;

/// A position in radians with its latitude's cosine, ready for haversine.
#[derive(Debug, Clone, Copy)]
pub struct Spot {
    pub(super) lat: f64,
    pub(super) lng: f64,
    pub(super) cos_lat: f64,
}

impl Spot {
    /// The spot of a stored position.
    pub fn of(point: GeoPoint) -> Spot {
        Spot::radians(point.lat().to_radians(), point.lng().to_radians())
    }

    pub(super) fn radians(lat: f64, lng: f64) -> Spot {
        Spot {
            lat,
            lng,
            cos_lat: lat.cos(),
        }
    }

    pub(super) fn of_latlng(position: LatLng) -> Spot {
        Spot::radians(position.lat_radians(), position.lng_radians())
    }

    /// Great-circle (haversine) distance in metres.
    pub fn distance_m(&self, other: &Spot) -> f64 {
        hav_to_m(self.hav(other))
    }

    /// The haversine of the angle between two spots: grows with distance, so searches
    /// compare it and convert only their answers to metres.
    pub(super) fn hav(&self, other: &Spot) -> f64 {
        let half_dlat = (other.lat - self.lat) * 0.5;
        let half_dlng = (other.lng - self.lng) * 0.5;
        half_dlat.sin().powi(2) + self.cos_lat * other.cos_lat * half_dlng.sin().powi(2)
    }

    /// The point as a unit vector.
    pub(super) fn unit(&self) -> [f64; 3] {
        [
            self.cos_lat * self.lng.cos(),
            self.cos_lat * self.lng.sin(),
            self.lat.sin(),
        ]
    }
}

/// Metres for a haversine value.
pub(super) fn hav_to_m(h: f64) -> f64 {
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// The haversine value of a distance in metres (the inverse of `hav_to_m`).
pub(super) fn m_to_hav(metres: f64) -> f64 {
    let half_angle = (metres / (2.0 * EARTH_RADIUS_M)).min(std::f64::consts::FRAC_PI_2);
    half_angle.sin().powi(2)
}

/// A query point, with its unit vector for cheap bounds against cell centres.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub(super) spot: Spot,
    pub(super) unit: [f64; 3],
}

impl Probe {
    /// The probe at a position.
    pub fn of(point: GeoPoint) -> Probe {
        let spot = Spot::of(point);
        Probe {
            spot,
            unit: spot.unit(),
        }
    }

    /// A lower bound on the great-circle distance to a unit vector, in metres: the
    /// chord, which is never longer than the arc (and at city scale equal to it to a
    /// part in 10^8).
    pub(super) fn chord_m(&self, other: &[f64; 3]) -> f64 {
        chord_m(&self.unit, other)
    }
}

/// The chord between two unit vectors, in metres on the Earth's surface.
pub(super) fn chord_m(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    let d = [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    EARTH_RADIUS_M * (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt()
}

/// The H3 cell of a position at `resolution`.
pub fn cell_of(point: GeoPoint, resolution: Resolution) -> CellIndex {
    // GeoPoint is validated, so the coordinates always form a LatLng.
    LatLng::new(point.lat(), point.lng())
        .map(|position| position.to_cell(resolution))
        .unwrap_or_else(|_| LatLng::new(0.0, 0.0).expect("origin").to_cell(resolution))
}

/// A cell's centre (as a unit vector) and radius: the farthest boundary vertex from the
/// centre, so nothing inside the cell is nearer than the centre's distance minus it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    pub(super) cell: u64,
    pub(super) center: [f64; 3],
    pub(super) radius: f64,
}

impl Shape {
    pub(super) fn of(cell: CellIndex) -> Shape {
        let center = Spot::of_latlng(LatLng::from(cell));
        let radius = cell
            .boundary()
            .iter()
            .map(|vertex| center.distance_m(&Spot::of_latlng(*vertex)))
            .fold(0.0, f64::max);
        Shape {
            cell: u64::from(cell),
            center: center.unit(),
            // A margin for rounding in the trigonometry: a bound may only ever be too low.
            radius: radius * (1.0 + 1e-6) + 0.01,
        }
    }

    /// A lower bound on the distance from `from` to any point of the cell.
    pub(super) fn lower_bound(&self, from: &Probe) -> f64 {
        (from.chord_m(&self.center) - self.radius).max(0.0)
    }
}

/// The rings around one cell, built as searches first need them.
pub(super) struct Disk {
    /// `rings[k]`: the cells at grid distance k, with their shapes.
    pub(super) rings: Vec<Box<[Shape]>>,
    /// `inner[k]`: nothing outside rings 0..=k is nearer the centre than this (metres).
    pub(super) inner: Vec<f64>,
    /// Shapes held, all rings together.
    pub(super) shapes: usize,
}

impl Disk {
    pub(super) fn new(origin: CellIndex) -> Disk {
        Disk {
            rings: vec![Box::new([Shape::of(origin)])],
            inner: Vec::new(),
            shapes: 1,
        }
    }

    /// Builds ring `k` (and the bound just inside it) if missing.
    pub(super) fn reach(&mut self, origin: CellIndex, k: usize) {
        while self.rings.len() <= k {
            let ring: Box<[Shape]> = origin
                .grid_ring::<Vec<_>>(self.rings.len() as u32)
                .into_iter()
                .map(Shape::of)
                .collect();
            let center = self.rings[0][0].center;
            // By the triangle inequality through the cell's centre (a chord is never
            // longer than its arc).
            let inner = ring
                .iter()
                .map(|shape| chord_m(&center, &shape.center) - shape.radius)
                .fold(f64::INFINITY, f64::min);
            self.inner.push(inner);
            self.shapes += ring.len();
            self.rings.push(ring);
        }
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.rings
            .iter()
            .map(|r| r.len() * std::mem::size_of::<Shape>())
            .sum::<usize>()
            + self.inner.capacity() * 8
    }
}

/// The rings around cells that searches started from, cached: a search from a cell seen
/// before costs no H3 grid arithmetic and no trigonometry for the cells around it.
#[derive(Default)]
pub struct Shapes {
    pub(super) disks: HashMap<u64, Disk>,
    /// Shapes held by `disks`, to bound the cache.
    pub(super) cached: usize,
    /// Shapes of cells beyond `CACHED_RINGS`, for sparse searches.
    pub(super) far: HashMap<u64, Shape>,
    /// A walk's ring, sorted by bound; kept to spare an allocation per search.
    pub(super) scratch: Vec<(f64, u64)>,
}

impl Shapes {
    /// Ring `k` around `origin` for a walk beyond the cached rings.
    pub(super) fn far_ring(&mut self, origin: CellIndex, k: u32) -> Vec<Shape> {
        if self.far.len() >= MAX_CACHED_SHAPES {
            self.far.clear();
        }
        origin
            .grid_ring::<Vec<_>>(k)
            .into_iter()
            .map(|cell| {
                *self
                    .far
                    .entry(u64::from(cell))
                    .or_insert_with(|| Shape::of(cell))
            })
            .collect()
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        self.disks.capacity() * (std::mem::size_of::<(u64, Disk)>() + 1)
            + self.disks.values().map(Disk::heap_bytes).sum::<usize>()
            + self.far.capacity() * (std::mem::size_of::<(u64, Shape)>() + 1)
    }
}

/// The largest radius a search at `resolution` accepts: what `MAX_RINGS` rings of cells
/// cover on average, at most `MAX_RADIUS_M`.
pub fn max_radius_m(resolution: Resolution) -> f64 {
    let ring_spacing = 3f64.sqrt() * resolution.edge_length_km() * 1000.0;
    (f64::from(MAX_RINGS) * ring_spacing * 0.8).min(f64::from(tessera_protocol::geo::MAX_RADIUS_M))
}

/// The search covered more rings than `MAX_RINGS` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooFar;

/// Visits cells ring by ring outward from `origin` (the cell holding `from`), each ring's
/// cells nearest first, skipping cells that cannot hold a point within `limit`. `visit`
/// gets the cell, its lower bound and the limit, and returns the new limit (it shrinks
/// once K candidates are known).
///
/// Exact because grid distance changes by at most one between neighbouring cells: the
/// great-circle path from `from` to any point outside rings 0..=k crosses a cell of ring
/// k+1, so that point is at least the smallest lower bound over ring k+1 away. The walk
/// stops once that bound exceeds the limit. A cheaper bound is tried first: nothing
/// outside rings 0..=k is nearer the origin's centre than `inner[k]`, and `from` is
/// within the origin's radius of that centre.
pub fn walk(
    shapes: &mut Shapes,
    from: &Probe,
    origin: CellIndex,
    limit: f64,
    visit: impl FnMut(CellIndex, f64, f64) -> f64,
) -> Result<(), TooFar> {
    // The origin's rings leave the cache for the walk and go back after it.
    let key = u64::from(origin);
    let mut disk = match shapes.disks.remove(&key) {
        Some(disk) => disk,
        None => {
            shapes.cached += 1;
            Disk::new(origin)
        }
    };
    let cached_before = disk.shapes;
    let mut bounded = std::mem::take(&mut shapes.scratch);
    let walked = walk_rings(shapes, &mut disk, &mut bounded, from, origin, limit, visit);
    shapes.scratch = bounded;
    if shapes.cached >= MAX_CACHED_SHAPES {
        shapes.disks.clear();
        shapes.cached = 0;
    }
    shapes.cached += disk.shapes - cached_before;
    shapes.disks.insert(key, disk);
    walked
}

pub(super) fn walk_rings(
    shapes: &mut Shapes,
    disk: &mut Disk,
    bounded: &mut Vec<(f64, u64)>,
    from: &Probe,
    origin: CellIndex,
    mut limit: f64,
    mut visit: impl FnMut(CellIndex, f64, f64) -> f64,
) -> Result<(), TooFar> {
    let origin_radius = disk.rings[0][0].radius;
    let mut far: Vec<Shape> = Vec::new();
    let mut k = 0;
    loop {
        bounded.clear();
        let ring: &[Shape] = if k <= CACHED_RINGS {
            &disk.rings[k]
        } else {
            &far
        };
        bounded.extend(ring.iter().map(|s| (s.lower_bound(from), s.cell)));
        bounded.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        for &(bound, cell) in bounded.iter() {
            if bound > limit {
                break;
            }
            let cell = CellIndex::try_from(cell).expect("cached cells are valid");
            limit = visit(cell, bound, limit);
        }
        if k + 1 > MAX_RINGS as usize {
            return Err(TooFar);
        }
        let next: &[Shape] = if k < CACHED_RINGS {
            disk.reach(origin, k + 1);
            if disk.inner[k] - origin_radius > limit {
                return Ok(());
            }
            &disk.rings[k + 1]
        } else {
            far = shapes.far_ring(origin, k as u32 + 1);
            &far
        };
        let nearest = next
            .iter()
            .map(|s| s.lower_bound(from))
            .fold(f64::INFINITY, f64::min);
        if next.is_empty() || nearest > limit {
            return Ok(());
        }
        k += 1;
    }
}
