//! Redis's geohash, bit for bit: a position as a 52-bit sorted-set score and back, the
//! cells (score ranges) a search must scan, and distances on Redis's sphere.
//!
//! Every formula follows Redis 7.0's `geohash.c` and `geohash_helper.c` to the operation,
//! so scores, decoded positions, distances and which points a search finds are the ones a
//! Redis user has stored and tested against.

use tessera_protocol::commands::geo_sets::{LAT_MAX, LAT_MIN, LON_MAX, LON_MIN};

/// Bits per coordinate in a stored score.
pub const STEP_MAX: u8 = 26;
/// Redis's Earth radius, metres (the quadratic mean radius of WGS-84).
const EARTH_RADIUS_M: f64 = 6_372_797.560_856;
/// Half the Web Mercator world's width, metres.
const MERCATOR_MAX: f64 = 20_037_726.37;
const DEG_TO_RAD: f64 = std::f64::consts::PI / 180.0;

fn rad(degrees: f64) -> f64 {
    degrees * DEG_TO_RAD
}

fn deg(radians: f64) -> f64 {
    radians / DEG_TO_RAD
}

/// A geohash cell: `step` bits per coordinate, latitude in the even bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    bits: u64,
    step: u8,
}

/// A cell's extent in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Area {
    lon: (f64, f64),
    lat: (f64, f64),
}

/// Spreads `x`'s bits over the even positions and `y`'s over the odd ones.
fn interleave(x: u32, y: u32) -> u64 {
    fn spread(v: u32) -> u64 {
        let mut v = u64::from(v);
        v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF;
        v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF;
        v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
        v = (v | (v << 2)) & 0x3333_3333_3333_3333;
        (v | (v << 1)) & 0x5555_5555_5555_5555
    }
    spread(x) | (spread(y) << 1)
}

/// The even bits and the odd bits of `v`, gathered back.
fn deinterleave(v: u64) -> (u32, u32) {
    fn gather(v: u64) -> u32 {
        let mut v = v & 0x5555_5555_5555_5555;
        v = (v | (v >> 1)) & 0x3333_3333_3333_3333;
        v = (v | (v >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
        v = (v | (v >> 4)) & 0x00FF_00FF_00FF_00FF;
        v = (v | (v >> 8)) & 0x0000_FFFF_0000_FFFF;
        v = (v | (v >> 16)) & 0x0000_0000_FFFF_FFFF;
        v as u32
    }
    (gather(v), gather(v >> 1))
}

/// The cell of `step` bits holding a position, within the given ranges.
fn encode_in(lon_range: (f64, f64), lat_range: (f64, f64), lon: f64, lat: f64, step: u8) -> Cell {
    let lat_offset = (lat - lat_range.0) / (lat_range.1 - lat_range.0);
    let lon_offset = (lon - lon_range.0) / (lon_range.1 - lon_range.0);
    let scale = (1u64 << step) as f64;
    Cell {
        // Truncating as Redis's conversion to uint32_t does.
        bits: interleave((lat_offset * scale) as u32, (lon_offset * scale) as u32),
        step,
    }
}

fn encode(lon: f64, lat: f64, step: u8) -> Cell {
    encode_in((LON_MIN, LON_MAX), (LAT_MIN, LAT_MAX), lon, lat, step)
}

fn decode(cell: Cell) -> Area {
    let (lat_bits, lon_bits) = deinterleave(cell.bits);
    let cells = (1u64 << cell.step) as f64;
    let (lat_scale, lon_scale) = (LAT_MAX - LAT_MIN, LON_MAX - LON_MIN);
    let at = |bits: u32, min: f64, scale: f64| {
        (
            min + (f64::from(bits) / cells) * scale,
            min + ((f64::from(bits) + 1.0) / cells) * scale,
        )
    };
    Area {
        lat: at(lat_bits, LAT_MIN, lat_scale),
        lon: at(lon_bits, LON_MIN, lon_scale),
    }
}

/// The sorted-set score of a position.
pub fn score_of(lon: f64, lat: f64) -> f64 {
    encode(lon, lat, STEP_MAX).bits as f64
}

/// The position a score stands for: its cell's centre, `(longitude, latitude)`.
pub fn position_of(score: f64) -> (f64, f64) {
    let area = decode(Cell {
        // Saturating, where Redis's conversion of a negative score is undefined.
        bits: score as u64,
        step: STEP_MAX,
    });
    let lon = ((area.lon.0 + area.lon.1) / 2.0).clamp(LON_MIN, LON_MAX);
    let lat = ((area.lat.0 + area.lat.1) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// A score's position as the standard 11-character geohash (latitude over ±90).
pub fn geohash_text(score: f64) -> [u8; 11] {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = position_of(score);
    let bits = encode_in((-180.0, 180.0), (-90.0, 90.0), lon, lat, STEP_MAX).bits;
    let mut text = [b'0'; 11];
    // 52 bits make ten characters; the eleventh, as in Redis, is always '0'.
    for (i, c) in text.iter_mut().take(10).enumerate() {
        *c = ALPHABET[((bits >> (52 - (i + 1) * 5)) & 0x1f) as usize];
    }
    text
}

fn moved_x(cell: Cell, east: bool) -> Cell {
    let x = cell.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = cell.bits & 0x5555_5555_5555_5555;
    let zz = 0x5555_5555_5555_5555u64 >> (64 - u32::from(cell.step) * 2);
    let x = if east {
        x.wrapping_add(zz + 1)
    } else {
        (x | zz).wrapping_sub(zz + 1)
    };
    Cell {
        bits: (x & (0xaaaa_aaaa_aaaa_aaaa >> (64 - u32::from(cell.step) * 2))) | y,
        step: cell.step,
    }
}

fn moved_y(cell: Cell, north: bool) -> Cell {
    let x = cell.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = cell.bits & 0x5555_5555_5555_5555;
    let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> (64 - u32::from(cell.step) * 2);
    let y = if north {
        y.wrapping_add(zz + 1)
    } else {
        (y | zz).wrapping_sub(zz + 1)
    };
    Cell {
        bits: x | (y & (0x5555_5555_5555_5555 >> (64 - u32::from(cell.step) * 2))),
        step: cell.step,
    }
}

/// A cell's eight neighbours, wrapping around the world as Redis's do:
/// north, south, east, west, north-east, north-west, south-east, south-west.
fn neighbours(cell: Cell) -> [Cell; 8] {
    let (n, s) = (moved_y(cell, true), moved_y(cell, false));
    [
        n,
        s,
        moved_x(cell, true),
        moved_x(cell, false),
        moved_x(n, true),
        moved_x(n, false),
        moved_x(s, true),
        moved_x(s, false),
    ]
}

/// Great-circle distance in metres between two positions.
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let v = ((rad(lon2) - rad(lon1)) / 2.0).sin();
    if v == 0.0 {
        return latitude_distance(lat1, lat2);
    }
    let (lat1, lat2) = (rad(lat1), rad(lat2));
    let u = ((lat2 - lat1) / 2.0).sin();
    let a = u * u + lat1.cos() * lat2.cos() * v * v;
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

fn latitude_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_M * (rad(lat2) - rad(lat1)).abs()
}

/// What a search covers, in metres, around a centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    /// The centre's longitude.
    pub lon: f64,
    /// The centre's latitude.
    pub lat: f64,
    /// Metres per unit of the extents below.
    pub unit: f64,
    /// A circle's radius or a box's sides, in the query's unit.
    pub extent: Extent,
}

/// A circle or a box, in the query's unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Extent {
    /// A radius.
    Radius(f64),
    /// A box's width (east-west) and height (north-south).
    Box(f64, f64),
}

impl Shape {
    /// The distance in metres from the centre to a position inside the shape, or `None`
    /// for a position outside it.
    pub fn reach(&self, lon: f64, lat: f64) -> Option<f64> {
        match self.extent {
            Extent::Radius(radius) => {
                let d = distance(self.lon, self.lat, lon, lat);
                (d <= radius * self.unit).then_some(d)
            }
            Extent::Box(width, height) => {
                let (width_m, height_m) = (width * self.unit, height * self.unit);
                if latitude_distance(lat, self.lat) > height_m / 2.0 {
                    return None;
                }
                if distance(lon, lat, self.lon, lat) > width_m / 2.0 {
                    return None;
                }
                Some(distance(self.lon, self.lat, lon, lat))
            }
        }
    }

    /// `[west, south, east, north]` in degrees: the box around the shape.
    fn bounds(&self) -> [f64; 4] {
        let (height, width) = match self.extent {
            Extent::Radius(r) => (self.unit * r, self.unit * r),
            Extent::Box(w, h) => (self.unit * (h / 2.0), self.unit * (w / 2.0)),
        };
        let lat_delta = deg(height / EARTH_RADIUS_M);
        let top = deg(width / EARTH_RADIUS_M / rad(self.lat + lat_delta).cos());
        let bottom = deg(width / EARTH_RADIUS_M / rad(self.lat - lat_delta).cos());
        // The wider edge is the one nearer the equator.
        let lon_delta = if self.lat < 0.0 { bottom } else { top };
        [
            self.lon - lon_delta,
            self.lat - lat_delta,
            self.lon + lon_delta,
            self.lat + lat_delta,
        ]
    }

    fn radius_m(&self) -> f64 {
        let r = match self.extent {
            Extent::Radius(r) => r,
            Extent::Box(w, h) => ((w / 2.0) * (w / 2.0) + (h / 2.0) * (h / 2.0)).sqrt(),
        };
        r * self.unit
    }

    /// The score ranges (`min..max`) to scan for every point the shape may hold, in the
    /// order Redis scans them: the centre's cell, then N, S, E, W, NE, NW, SE, SW.
    pub fn ranges(&self) -> Vec<(f64, f64)> {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounds();
        let mut step = steps_for(self.radius_m(), self.lat);
        let mut centre = encode(self.lon, self.lat, step);
        let mut around = neighbours(centre);
        // A cell too large for the area's edges: one level coarser covers it.
        let [n, s, e, w] = [0, 1, 2, 3].map(|i| decode(around[i]));
        let short =
            n.lat.1 < max_lat || s.lat.0 > min_lat || e.lon.1 < max_lon || w.lon.0 > min_lon;
        if step > 1 && short {
            step -= 1;
            centre = encode(self.lon, self.lat, step);
            around = neighbours(centre);
        }
        let area = decode(centre);
        let mut skip = [false; 8];
        if step >= 2 {
            // Neighbours beyond the area's edges hold nothing it covers.
            let mut drop = |cells: [usize; 3]| cells.iter().for_each(|&c| skip[c] = true);
            if area.lat.0 < min_lat {
                drop([1, 6, 7]);
            }
            if area.lat.1 > max_lat {
                drop([0, 4, 5]);
            }
            if area.lon.0 < min_lon {
                drop([3, 7, 5]);
            }
            if area.lon.1 > max_lon {
                drop([2, 6, 4]);
            }
        }
        let cells = std::iter::once(centre).chain(
            around
                .into_iter()
                .zip(skip)
                .filter(|(_, skipped)| !skipped)
                .map(|(cell, _)| cell),
        );
        let mut ranges: Vec<(f64, f64)> = Vec::with_capacity(9);
        for cell in cells {
            let shift = 52 - 2 * u32::from(cell.step);
            let range = (
                (cell.bits << shift) as f64,
                ((cell.bits + 1) << shift) as f64,
            );
            // Near the poles or for huge areas neighbours coincide.
            if !ranges.contains(&range) {
                ranges.push(range);
            }
        }
        ranges
    }
}

/// How many bits per coordinate a cell needs for its 3×3 block to cover `radius_m`.
fn steps_for(radius_m: f64, lat: f64) -> u8 {
    if radius_m == 0.0 {
        return STEP_MAX;
    }
    let (mut range, mut step) = (radius_m, 1i32);
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    // Meridians converge towards the poles.
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, i32::from(STEP_MAX)) as u8
}

/// A distance as Redis writes one: rounded half to even at 4 decimals.
pub fn distance_text(d: f64) -> String {
    let scaled = (d * 10_000.0).round_ties_even() as i64;
    let sign = if scaled < 0 { "-" } else { "" };
    let v = scaled.unsigned_abs();
    format!("{sign}{}.{:04}", v / 10_000, v % 10_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_redis_scores() {
        // From Redis's own tests: GEOADD nyc ... then ZRANGE WITHSCORES.
        assert_eq!(score_of(-74.0131604, 40.7126674), 1791873972053020.0);
        assert_eq!(score_of(-73.9903085, 40.7362513), 1791875485187452.0);
        assert_eq!(score_of(-73.7858139, 40.6428986), 1791895905559723.0);
    }

    #[test]
    fn a_score_decodes_to_within_a_cell_of_its_position() {
        for (lon, lat) in [(10.0, 20.0), (-179.9, -85.0), (179.99, 85.05), (0.0, 0.0)] {
            let (x, y) = position_of(score_of(lon, lat));
            assert!(
                (x - lon).abs() < 1e-5 && (y - lat).abs() < 1e-5,
                "{lon},{lat}: {x},{y}"
            );
        }
    }

    #[test]
    fn interleaving_round_trips() {
        for (x, y) in [
            (0, 0),
            (1, 0),
            (0, 1),
            (0x3ff_ffff, 0x155_5555),
            (u32::MAX, 7),
        ] {
            assert_eq!(deinterleave(interleave(x, y)), (x, y));
        }
    }

    #[test]
    fn geohash_text_is_the_standard_one() {
        // Wikipedia's example, as Redis's tests check it.
        assert_eq!(&geohash_text(score_of(-5.6, 42.6)), b"ezs42e44yx0");
    }

    #[test]
    fn distances_match_redis() {
        let palermo = position_of(score_of(13.361389, 38.115556));
        let catania = position_of(score_of(15.087269, 37.502669));
        let d = distance(palermo.0, palermo.1, catania.0, catania.1);
        assert!(d > 166274.0 && d < 166275.0, "{d}");
        assert_eq!(distance_text(0.0), "0.0000");
        assert_eq!(distance_text(0.775_04), "0.7750");
        assert_eq!(distance_text(1.234_56), "1.2346");
        assert_eq!(distance_text(166_274.123_4), "166274.1234");
        assert_eq!(distance_text(-1.5), "-1.5000");
    }

    #[test]
    fn a_huge_radius_scans_each_cell_once() {
        let shape = Shape {
            lon: 0.0,
            lat: 0.0,
            unit: 1000.0,
            extent: Extent::Radius(50_000.0),
        };
        let ranges = shape.ranges();
        for (i, a) in ranges.iter().enumerate() {
            assert!(ranges[i + 1..].iter().all(|b| b != a));
        }
    }

    #[test]
    fn the_ranges_cover_every_point_the_shape_holds() {
        // Points on a grid around several centres: each one the shape reaches must lie in
        // a scanned range.
        for (lon, lat, extent) in [
            (15.0, 37.0, Extent::Radius(200.0)),
            (179.0, 37.0, Extent::Box(400.0, 400.0)),
            (-122.4, 37.79, Extent::Radius(30.0)),
            (45.0, 65.0, Extent::Radius(5009.431)),
            (0.0, 84.9, Extent::Box(1000.0, 50.0)),
        ] {
            let shape = Shape {
                lon,
                lat,
                unit: 1000.0,
                extent,
            };
            let ranges = shape.ranges();
            for i in -60..=60 {
                for j in -60..=60 {
                    let x = (lon + f64::from(i) * 0.25 + 540.0) % 360.0 - 180.0;
                    // The northern limit itself hashes past the top row, in Redis too.
                    let y = (lat + f64::from(j) * 0.1).clamp(LAT_MIN, LAT_MAX - 1e-6);
                    let score = score_of(x, y);
                    let (px, py) = position_of(score);
                    if shape.reach(px, py).is_some() {
                        assert!(
                            ranges
                                .iter()
                                .any(|(min, max)| (*min..*max).contains(&score)),
                            "{x},{y} around {lon},{lat} {extent:?}"
                        );
                    }
                }
            }
        }
    }
}
