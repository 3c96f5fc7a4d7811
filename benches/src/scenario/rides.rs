//! Ride-hailing: drivers update every 4 s; a rider is matched with the nearest free
//! driver; the trip moves through its states by compare-and-set, one in ten racing the
//! rider's cancel; dispatchers read surge counts per H3 cell.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use hashbrown::HashMap;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::fleet::{self, Dispatch, Fleet, OnRedis, RedisFleet, TesseraFleet, DRIVERS};
use super::load::{finish, paced, timed, Recorder, Tails};
use super::{bump, Check, Context, Outcome, Pool, Side, Store};
use crate::driver::BoxError;

/// Drivers online, at scale 1.
const DRIVER_COUNT: f64 = 20_000.0;
/// Seconds between one driver's GPS fixes (as in the seed).
const GPS_PERIOD_S: f64 = 4.0;
/// Ride requests per second, at scale 1.
const RIDES_PER_SECOND: f64 = 80.0;
/// Surge reads per second, at scale 1.
const SURGE_PER_SECOND: f64 = 10.0;
/// The surge grid's H3 resolution (cells of about 5 km²).
const SURGE_RESOLUTION: u8 = 7;
/// Radius a surge read covers.
const SURGE_RADIUS_M: u32 = 3_000;
/// Share of offers a driver accepts.
const ACCEPT: f64 = 0.9;
/// Share of trips whose rider cancels just as the driver arrives.
const RACE: f64 = 0.1;

/// Trip records: a value and a version moved by compare-and-set.
trait Trips: Fleet {
    /// Writes `state` if the trip is still at `version` (0: it must not exist): the new
    /// version, or `None` if another write came first.
    async fn advance(&self, trip: &str, state: &str, version: u64)
        -> Result<Option<u64>, BoxError>;
    /// The trip's state and version.
    async fn read(&self, trip: &str) -> Result<Option<(String, u64)>, BoxError>;
    /// Drivers per H3 cell within the surge radius of a point.
    async fn surge(&self, lat: f64, lng: f64) -> Result<Vec<(String, u64)>, BoxError>;
}

impl Trips for TesseraFleet {
    async fn advance(
        &self,
        trip: &str,
        state: &str,
        version: u64,
    ) -> Result<Option<u64>, BoxError> {
        let cas = self
            .0
            .vset(trip.to_string(), state.to_string(), Some(version), None)
            .await?;
        Ok(cas.written.then_some(cas.version))
    }

    async fn read(&self, trip: &str) -> Result<Option<(String, u64)>, BoxError> {
        Ok(self
            .0
            .vget(trip.to_string())
            .await?
            .map(|(value, version)| (String::from_utf8_lossy(&value).into_owned(), version)))
    }

    async fn surge(&self, lat: f64, lng: f64) -> Result<Vec<(String, u64)>, BoxError> {
        let index = self.0.geo(DRIVERS);
        Ok(index
            .cells(lat, lng, SURGE_RADIUS_M, SURGE_RESOLUTION, None)
            .await?)
    }
}

/// Compare-and-set over a hash holding the state and its version.
const REDIS_ADVANCE: &str = r#"
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'version', version + 1)
return version + 1
"#;

struct RedisTrips {
    fleet: RedisFleet,
    advance: Rc<redis::Script>,
}

impl OnRedis for RedisTrips {
    fn fleet(&self) -> &RedisFleet {
        &self.fleet
    }
}

impl Trips for RedisTrips {
    async fn advance(
        &self,
        trip: &str,
        state: &str,
        version: u64,
    ) -> Result<Option<u64>, BoxError> {
        let written: u64 = self
            .advance
            .key(trip)
            .arg(state)
            .arg(version)
            .invoke_async(&mut self.fleet.connection.clone())
            .await?;
        Ok((written > 0).then_some(written))
    }

    async fn read(&self, trip: &str) -> Result<Option<(String, u64)>, BoxError> {
        let (state, version): (Option<String>, Option<u64>) = redis::cmd("HMGET")
            .arg(trip)
            .arg("state")
            .arg("version")
            .query_async(&mut self.fleet.connection.clone())
            .await?;
        Ok(state.zip(version))
    }

    /// What teams do on Redis: every driver within the radius, then the cells counted in
    /// the application.
    async fn surge(&self, lat: f64, lng: f64) -> Result<Vec<(String, u64)>, BoxError> {
        let hits: Vec<(String, (f64, f64))> = redis::cmd("GEOSEARCH")
            .arg(DRIVERS)
            .arg("FROMLONLAT")
            .arg(lng)
            .arg(lat)
            .arg("BYRADIUS")
            .arg(SURGE_RADIUS_M)
            .arg("m")
            .arg("WITHCOORD")
            .query_async(&mut self.fleet.connection.clone())
            .await?;
        let resolution = h3o::Resolution::try_from(SURGE_RESOLUTION)?;
        let mut cells: HashMap<String, u64> = HashMap::new();
        for (_, (lng, lat)) in hits {
            let cell = h3o::LatLng::new(lat, lng)?.to_cell(resolution);
            *cells.entry(cell.to_string()).or_default() += 1;
        }
        Ok(cells.into_iter().collect())
    }
}

/// The city with its drivers online.
pub struct Prepared {
    store: Store<TesseraFleet, RedisTrips>,
    drivers: u64,
}

/// Puts every driver on the map.
///
/// # Errors
/// The server cannot be reached.
pub async fn prepare(context: &Context) -> Result<super::Prepared, BoxError> {
    let drivers = context.scaled(DRIVER_COUNT);
    let store = match context.side {
        Side::Tessera => {
            let pool = Pool(
                context
                    .tessera()
                    .await?
                    .into_iter()
                    .map(|c| Rc::new(TesseraFleet(c)))
                    .collect(),
            );
            fleet::place_all(&*pool.pick(0), drivers).await?;
            Store::Tessera(pool)
        }
        Side::Redis => {
            let (scripts, advance) = (
                RedisFleet::scripts(),
                Rc::new(redis::Script::new(REDIS_ADVANCE)),
            );
            let pool = Pool(
                context
                    .redis()
                    .await?
                    .into_iter()
                    .map(|connection| {
                        Rc::new(RedisTrips {
                            fleet: RedisFleet::new(connection, scripts.clone()),
                            advance: advance.clone(),
                        })
                    })
                    .collect(),
            );
            fleet::place_all(&*pool.pick(0), drivers).await?;
            Store::Redis(pool)
        }
    };
    Ok(super::Prepared::Rides(Prepared { store, drivers }))
}

/// What riders and drivers were told.
#[derive(Default)]
struct Ledger {
    dispatch: Dispatch,
    /// Each trip's last acknowledged state and version.
    trips: RefCell<HashMap<u64, (String, u64)>>,
    requests: Cell<u64>,
    no_driver: Cell<u64>,
    completed: Cell<u64>,
    cancelled: Cell<u64>,
    races: Cell<u64>,
    /// Races both sides won, or neither did.
    bad_races: Cell<u64>,
    surge_cells: Cell<u64>,
    /// Trips that hit a link error or an unexpected answer after matching.
    failed: Cell<u64>,
}

fn trip_key(trip: u64) -> String {
    format!("trip:{trip}")
}

impl Prepared {
    /// Runs the city, then checks it.
    ///
    /// # Errors
    /// The server cannot be reached for the check.
    pub async fn run(self, context: &Context) -> Result<Outcome, BoxError> {
        match &self.store {
            Store::Tessera(pool) => self.city(context, pool).await,
            Store::Redis(pool) => self.city(context, pool).await,
        }
    }

    async fn city<T: Trips + 'static>(
        &self,
        context: &Context,
        pool: &Pool<Rc<T>>,
    ) -> Result<Outcome, BoxError> {
        let ledger = Rc::new(Ledger::default());
        let tails = Tails::default();
        let drivers = self.drivers;
        let shared = Rc::new(Pool(pool.0.clone()));
        let mut tasks = fleet::gps(context, shared.clone(), drivers, GPS_PERIOD_S);
        let ride_rate = context.scaled(RIDES_PER_SECOND) as f64;
        tasks.extend({
            let (shared, recorder, ledger, tails) = (
                shared.clone(),
                context.recorder.clone(),
                ledger.clone(),
                tails.clone(),
            );
            let workers = (ride_rate as usize).clamp(16, 2_000);
            paced(
                context.window,
                workers,
                move |_| ride_rate,
                move |seq, start| {
                    // The rider's app and the driver's come in over different connections.
                    let (trips, rider) = (shared.pick(seq), shared.pick(seq + 1));
                    let (recorder, ledger, tails) =
                        (recorder.clone(), ledger.clone(), tails.clone());
                    async move {
                        let matched =
                            request_ride(&trips, &rider, &recorder, &ledger, &tails, seq).await;
                        recorder.flow("ride request", start, matched.is_ok());
                    }
                },
            )
        });
        let surge_rate = context.scaled(SURGE_PER_SECOND) as f64;
        tasks.extend({
            let (recorder, ledger) = (context.recorder.clone(), ledger.clone());
            paced(
                context.window,
                4,
                move |_| surge_rate,
                move |seq, start| {
                    let trips = shared.pick(seq);
                    let (recorder, ledger) = (recorder.clone(), ledger.clone());
                    async move {
                        let (lat, lng) = crate::geo_point(&mut SmallRng::seed_from_u64(seq ^ 0x5e));
                        let cells = trips.surge(lat, lng).await;
                        recorder.step("surge cells", start, cells.is_ok());
                        if let Ok(cells) = cells {
                            ledger
                                .surge_cells
                                .set(ledger.surge_cells.get() + cells.len() as u64);
                        }
                    }
                },
            )
        });
        finish(tasks, context.window, Duration::from_secs(30)).await;
        tails.finish(context.window, Duration::from_secs(30)).await;
        context.loaded();
        let mut outcome = Outcome {
            figures: vec![
                ("ride requests", ledger.requests.get() as f64),
                ("no driver near", ledger.no_driver.get() as f64),
                ("trips completed", ledger.completed.get() as f64),
                ("trips cancelled", ledger.cancelled.get() as f64),
                ("cancel races", ledger.races.get() as f64),
                ("surge cells read", ledger.surge_cells.get() as f64),
                ("trips failed after matching", ledger.failed.get() as f64),
            ],
            checks: Vec::new(),
            plotted: vec![
                "ride request",
                "gps",
                "match driver",
                "trip transition",
                "surge cells",
            ],
        };
        if context.check() {
            outcome.checks = self.check(&*pool.pick(0), &ledger).await?;
        }
        Ok(outcome)
    }

    async fn check<T: Trips>(&self, trips: &T, ledger: &Ledger) -> Result<Vec<Check>, BoxError> {
        let expected: Vec<(u64, (String, u64))> = ledger
            .trips
            .borrow()
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let mut wrong = Vec::new();
        for chunk in expected.chunks(500) {
            let reading = chunk.iter().map(|(trip, want)| async move {
                (trip, want, trips.read(&trip_key(*trip)).await)
            });
            for (trip, want, found) in futures_util::future::join_all(reading).await {
                let found = found?;
                if found.as_ref() != Some(want) {
                    wrong.push(format!(
                        "{}: {found:?}, acknowledged {want:?}",
                        trip_key(*trip)
                    ));
                }
            }
        }
        let engaged = trips.engaged().await?;
        Ok(vec![
            ledger.dispatch.check(),
            Check::none_of(
                "each trip holds its last acknowledged state and version",
                &wrong,
                "trips disagree",
                format!("{} trips agree", expected.len()),
            ),
            Check::new(
                "exactly one of a cancel and an arrival racing wins",
                ledger.bad_races.get() == 0,
                format!(
                    "{} races, {} with no single winner",
                    ledger.races.get(),
                    ledger.bad_races.get()
                ),
            ),
            Check::new(
                "every driver free once the trips are done",
                engaged == 0,
                format!("{engaged} drivers still busy or holding an offer"),
            ),
        ])
    }
}

/// Writes one transition and records it in the ledger if it was acknowledged.
async fn advance<T: Trips>(
    trips: &T,
    recorder: &Recorder,
    ledger: &Ledger,
    trip: u64,
    state: &str,
    version: u64,
) -> Result<Option<u64>, BoxError> {
    let written = timed(
        recorder,
        "trip transition",
        trips.advance(&trip_key(trip), state, version),
    )
    .await?;
    if let Some(version) = written {
        ledger
            .trips
            .borrow_mut()
            .insert(trip, (state.to_string(), version));
    }
    Ok(written)
}

/// A rider asks for a ride: the trip is recorded, the nearest free driver is offered it
/// (again on a decline); the trip itself runs on in the background.
async fn request_ride<T: Trips + 'static>(
    trips: &Rc<T>,
    rider: &Rc<T>,
    recorder: &Rc<Recorder>,
    ledger: &Rc<Ledger>,
    tails: &Tails,
    seq: u64,
) -> Result<(), BoxError> {
    let mut rng = SmallRng::seed_from_u64(seq ^ 0x71);
    bump(&ledger.requests);
    let (lat, lng) = crate::geo_point(&mut rng);
    let Some(version) = advance(&**trips, recorder, ledger, seq, "requested", 0).await? else {
        return Err("a new trip already existed".into());
    };
    let start = std::time::Instant::now();
    let mut driver = None;
    for _ in 0..3 {
        let Some(offered) = trips.offer(lat, lng, seq).await? else {
            break;
        };
        if rng.random_bool(ACCEPT) && trips.accept(&offered, seq).await? {
            ledger.dispatch.accepted(&offered, seq);
            driver = Some(offered);
            break;
        }
        trips.free(&offered, seq).await?;
    }
    recorder.step("match driver", start, true);
    let Some(driver) = driver else {
        bump(&ledger.no_driver);
        advance(&**trips, recorder, ledger, seq, "unmatched", version).await?;
        return Ok(());
    };
    let Some(version) = advance(
        &**trips,
        recorder,
        ledger,
        seq,
        &format!("matched:{driver}"),
        version,
    )
    .await?
    else {
        return Err("a matched trip changed under its driver".into());
    };
    let racing = rng.random_bool(RACE);
    let pause = Duration::from_millis(rng.random_range(200..800));
    let (trips, rider, recorder, ledger) = (
        trips.clone(),
        rider.clone(),
        recorder.clone(),
        ledger.clone(),
    );
    tails.spawn(async move {
        let matched = Matched {
            trip: seq,
            version,
            racing,
            pause,
        };
        let finished = ride((&*trips, &*rider), &recorder, &ledger, matched).await;
        ledger.dispatch.freeing(&driver);
        let freed = timed(&recorder, "driver freed", trips.free(&driver, seq)).await;
        if finished.is_err() || freed.is_err() {
            bump(&ledger.failed);
        }
    });
    Ok(())
}

/// The trip after matching: arrival (raced by a cancel on some trips), pick-up, drop-off.
/// A matched trip as it sets off.
struct Matched {
    trip: u64,
    version: u64,
    /// Whether the rider cancels just as the driver arrives.
    racing: bool,
    /// Time between the trip's steps.
    pause: Duration,
}

async fn ride<T: Trips>(
    (trips, rider): (&T, &T),
    recorder: &Recorder,
    ledger: &Ledger,
    matched: Matched,
) -> Result<(), BoxError> {
    let Matched {
        trip,
        version,
        racing,
        pause,
    } = matched;
    tokio::time::sleep(pause).await;
    let arrived = if racing {
        bump(&ledger.races);
        let (arrival, cancel) = futures_util::future::join(
            advance(trips, recorder, ledger, trip, "arrived", version),
            advance(rider, recorder, ledger, trip, "cancelled", version),
        )
        .await;
        let (arrival, cancel) = (arrival?, cancel?);
        if arrival.is_some() == cancel.is_some() {
            bump(&ledger.bad_races);
        }
        if cancel.is_some() {
            bump(&ledger.cancelled);
            return Ok(());
        }
        arrival
    } else {
        advance(trips, recorder, ledger, trip, "arrived", version).await?
    };
    let mut version = arrived.ok_or("an arrival lost to a write nobody made")?;
    for state in ["picked_up", "completed"] {
        tokio::time::sleep(pause).await;
        version = advance(trips, recorder, ledger, trip, state, version)
            .await?
            .ok_or("a trip changed under its driver")?;
    }
    bump(&ledger.completed);
    Ok(())
}
