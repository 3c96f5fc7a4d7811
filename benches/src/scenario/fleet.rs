//! Drivers on a map, as both delivery and ride-hailing run them: GPS fixes, the nearest
//! free driver offered a job, accept or decline, freed when done; and the ledger that
//! catches a driver handed two jobs at once.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use hashbrown::HashMap;
use redis::aio::MultiplexedConnection;
use tessera_client::Client;

use crate::driver::BoxError;

/// The drivers' index (Tessera) or key (Redis).
pub const DRIVERS: &str = "fleet";
/// How long an offer waits for the driver's answer before it lapses.
pub const OFFER: Duration = Duration::from_secs(10);
/// Radius a job looks for drivers in.
pub const RADIUS_M: u32 = 3_000;

/// Driver `i`'s member name.
pub fn driver(i: u64) -> String {
    format!("d:{i}")
}

/// What dispatch asks of the drivers' store.
pub trait Fleet {
    /// A driver's GPS fix (keeps its status); the first one adds it, available.
    async fn place(&self, driver: &str, lat: f64, lng: f64) -> Result<(), BoxError>;
    /// Offers `job` to the nearest free driver within `RADIUS_M`: the driver now holds the
    /// offer for `OFFER`, or `None` if no free driver is near.
    async fn offer(&self, lat: f64, lng: f64, job: u64) -> Result<Option<String>, BoxError>;
    /// The driver accepts the offer: `false` if it had lapsed.
    async fn accept(&self, driver: &str, job: u64) -> Result<bool, BoxError>;
    /// The driver declines, or finishes the job: free again.
    async fn free(&self, driver: &str, job: u64) -> Result<(), BoxError>;
    /// Drivers not free at the end (busy or holding an offer).
    async fn engaged(&self) -> Result<u64, BoxError>;
}

/// Tessera's geo index: GEO.NEAR ... CLAIM offers atomically.
pub struct TesseraFleet(pub Client);

impl Fleet for TesseraFleet {
    async fn place(&self, driver: &str, lat: f64, lng: f64) -> Result<(), BoxError> {
        self.0
            .geo(DRIVERS)
            .upsert(driver.to_string(), lat, lng)
            .await?;
        Ok(())
    }

    async fn offer(&self, lat: f64, lng: f64, _job: u64) -> Result<Option<String>, BoxError> {
        let near = self.0.geo(DRIVERS).near(lat, lng).k(1).radius(RADIUS_M);
        Ok(near
            .claim(OFFER)
            .await?
            .map(|hit| String::from_utf8_lossy(&hit.member).into_owned()))
    }

    async fn accept(&self, driver: &str, _job: u64) -> Result<bool, BoxError> {
        Ok(self.0.geo(DRIVERS).confirm(driver.to_string()).await?)
    }

    async fn free(&self, driver: &str, _job: u64) -> Result<(), BoxError> {
        self.0.geo(DRIVERS).release(driver.to_string()).await?;
        Ok(())
    }

    async fn engaged(&self) -> Result<u64, BoxError> {
        let index = self.0.geo(DRIVERS);
        Ok(index.count(Some("busy")).await? + index.count(Some("offered")).await?)
    }
}

/// Accepting is only for the order the driver holds the offer of.
const REDIS_ACCEPT: &str = r#"
if redis.call('GET', KEYS[1]) ~= 'offered:' .. ARGV[1] then return 0 end
redis.call('SET', KEYS[1], 'busy:' .. ARGV[1])
return 1
"#;

/// Only the job's own offer or assignment is freed.
const REDIS_FREE: &str = r#"
local state = redis.call('GET', KEYS[1])
if state == 'offered:' .. ARGV[1] or state == 'busy:' .. ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 1
"#;

/// Redis as teams run it: a GEO key for positions, a state key per driver (absent =
/// free), GEOSEARCH for candidates and SET NX PX to claim the first free one.
pub struct RedisFleet {
    /// The connection.
    pub connection: MultiplexedConnection,
    /// Accept and free, loaded once.
    pub scripts: std::rc::Rc<[redis::Script; 2]>,
}

impl RedisFleet {
    /// A fleet on `connection`.
    pub fn new(
        connection: MultiplexedConnection,
        scripts: std::rc::Rc<[redis::Script; 2]>,
    ) -> Self {
        RedisFleet {
            connection,
            scripts,
        }
    }

    /// The accept and free scripts.
    pub fn scripts() -> std::rc::Rc<[redis::Script; 2]> {
        std::rc::Rc::new([
            redis::Script::new(REDIS_ACCEPT),
            redis::Script::new(REDIS_FREE),
        ])
    }
}

fn state_key(driver: &str) -> String {
    format!("{driver}:state")
}

/// A Redis-backed store that keeps its drivers in a `RedisFleet`.
pub trait OnRedis {
    /// The drivers' half of the store.
    fn fleet(&self) -> &RedisFleet;
}

impl<T: OnRedis> Fleet for T {
    async fn place(&self, driver: &str, lat: f64, lng: f64) -> Result<(), BoxError> {
        redis::cmd("GEOADD")
            .arg(DRIVERS)
            .arg(lng)
            .arg(lat)
            .arg(driver)
            .query_async::<()>(&mut self.fleet().connection.clone())
            .await?;
        Ok(())
    }

    async fn offer(&self, lat: f64, lng: f64, job: u64) -> Result<Option<String>, BoxError> {
        let mut connection = self.fleet().connection.clone();
        let candidates: Vec<String> = redis::cmd("GEOSEARCH")
            .arg(DRIVERS)
            .arg("FROMLONLAT")
            .arg(lng)
            .arg(lat)
            .arg("BYRADIUS")
            .arg(RADIUS_M)
            .arg("m")
            .arg("ASC")
            .arg("COUNT")
            .arg(10)
            .query_async(&mut connection)
            .await?;
        for candidate in candidates {
            let claimed: Option<String> = redis::cmd("SET")
                .arg(state_key(&candidate))
                .arg(format!("offered:{job}"))
                .arg("NX")
                .arg("PX")
                .arg(OFFER.as_millis() as u64)
                .query_async(&mut connection)
                .await?;
            if claimed.is_some() {
                return Ok(Some(candidate));
            }
        }
        Ok(None)
    }

    async fn accept(&self, driver: &str, job: u64) -> Result<bool, BoxError> {
        let accepted: i64 = self.fleet().scripts[0]
            .key(state_key(driver))
            .arg(job)
            .invoke_async(&mut self.fleet().connection.clone())
            .await?;
        Ok(accepted == 1)
    }

    async fn free(&self, driver: &str, job: u64) -> Result<(), BoxError> {
        self.fleet().scripts[1]
            .key(state_key(driver))
            .arg(job)
            .invoke_async::<i64>(&mut self.fleet().connection.clone())
            .await?;
        Ok(())
    }

    async fn engaged(&self) -> Result<u64, BoxError> {
        let mut connection = self.fleet().connection.clone();
        let mut cursor = 0u64;
        let mut engaged = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg("d:*:state")
                .arg("COUNT")
                .arg(1_000)
                .query_async(&mut connection)
                .await?;
            engaged += keys.len() as u64;
            if next == 0 {
                return Ok(engaged);
            }
            cursor = next;
        }
    }
}

/// Which job each driver was acknowledged as working on.
#[derive(Default)]
pub struct Dispatch {
    working: RefCell<HashMap<String, u64>>,
    /// Accepts acknowledged for a driver still on another job.
    pub doubled: Cell<u64>,
    /// The first such driver, for the report.
    pub first_doubled: RefCell<Option<String>>,
    /// Jobs a driver was acknowledged for.
    pub assigned: Cell<u64>,
}

impl Dispatch {
    /// Records an acknowledged accept.
    pub fn accepted(&self, driver: &str, job: u64) {
        super::bump(&self.assigned);
        if let Some(other) = self.working.borrow_mut().insert(driver.to_string(), job) {
            super::bump(&self.doubled);
            self.first_doubled
                .borrow_mut()
                .get_or_insert_with(|| format!("{driver} on jobs {other} and {job}"));
        }
    }

    /// Records that the driver is about to be freed (before the request, so an offer
    /// the server then hands out is legitimate).
    pub fn freeing(&self, driver: &str) {
        self.working.borrow_mut().remove(driver);
    }

    /// The check: no driver on two jobs at once.
    pub fn check(&self) -> super::Check {
        super::Check::new(
            "no driver on two jobs at once",
            self.doubled.get() == 0,
            match self.first_doubled.borrow().as_ref() {
                None => format!("{} assignments, none overlapping", self.assigned.get()),
                Some(first) => format!("{} overlapping, first {first}", self.doubled.get()),
            },
        )
    }
}

/// Adds every driver at its base position, 500 requests in flight at a time.
///
/// # Errors
/// A request fails.
pub async fn place_all<F: Fleet>(fleet: &F, drivers: u64) -> Result<(), BoxError> {
    let ids: Vec<u64> = (0..drivers).collect();
    for chunk in ids.chunks(500) {
        let placing = chunk.iter().map(|&i| {
            let (lat, lng) = crate::geo_base(i);
            let name = driver(i);
            async move { fleet.place(&name, lat, lng).await }
        });
        for placed in futures_util::future::join_all(placing).await {
            placed?;
        }
    }
    Ok(())
}

/// The drivers' GPS fixes: each of `drivers` every `period_s` seconds, near where it works.
pub fn gps<F: Fleet + 'static>(
    context: &super::Context,
    pool: std::rc::Rc<super::Pool<std::rc::Rc<F>>>,
    drivers: u64,
    period_s: f64,
) -> Vec<tokio::task::JoinHandle<()>> {
    use rand::SeedableRng;
    let rate = drivers as f64 / period_s;
    let recorder = context.recorder.clone();
    let workers = (rate as usize / 50).clamp(8, 1_000);
    super::load::paced(
        context.window,
        workers,
        move |_| rate,
        move |seq, start| {
            let (fleet, recorder) = (pool.pick(seq), recorder.clone());
            async move {
                let i = seq % drivers;
                let (lat, lng) = crate::geo_fix(i, &mut rand::rngs::SmallRng::seed_from_u64(seq));
                let placed = fleet.place(&driver(i), lat, lng).await;
                recorder.step("gps", start, placed.is_ok());
            }
        },
    )
}
