//! Delivery at dinner time: drivers send GPS every 5 s while orders find a store, reserve
//! a cart, take a payment idempotency key and are offered to the nearest free driver
//! (re-offered on a decline); a third of the way in, order volume goes up tenfold.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use redis::aio::MultiplexedConnection;
use tessera_client::{Cart, Client, Idem};

use super::fleet::{self, Dispatch, Fleet, OnRedis, RedisFleet, TesseraFleet};
use super::load::{finish, paced, timed, Recorder, Tails};
use super::{agrees, bump, found, skewed, Check, Context, Outcome, Pool, Side, Store};
use crate::driver::BoxError;

/// Dark stores (as in the seed).
const STORES: u64 = 1_000;
/// SKUs each store stocks.
const SKUS_PER_STORE: u64 = 20;
/// Units of each SKU, at scale 1.
const STOCK: f64 = 40.0;
/// Drivers on shift, at scale 1 (as in the seed).
const DRIVERS: f64 = 20_000.0;
/// Seconds between one driver's GPS fixes.
const GPS_PERIOD_S: f64 = 5.0;
/// Orders per second before the rush, at scale 1; the rush is ten times this.
const ORDERS_PER_SECOND: f64 = 15.0;
/// How long a cart holds its units while the order is placed.
const CART_HOLD: Duration = Duration::from_secs(60);
/// Share of offers a driver accepts.
const ACCEPT: f64 = 0.85;
/// Offers an order makes before it gives up.
const OFFERS: u32 = 3;
/// The stores' index (Tessera) or key (Redis).
const STORE_INDEX: &str = "stores";

fn store_position(s: u64) -> (f64, f64) {
    crate::geo_base(10_000_000 + s)
}

fn sku(store: u64, j: u64) -> String {
    format!("{{s:{store}}}:sku:{j}")
}

/// Everything an order needs besides the drivers.
trait Kitchen: Fleet {
    /// The nearest store within 3 km of a customer.
    async fn nearest_store(&self, lat: f64, lng: f64) -> Result<Option<u64>, BoxError>;
    /// Holds every line of the cart or none.
    async fn reserve(
        &self,
        lines: &[(String, u64)],
        order: u64,
    ) -> Result<Option<Vec<Bytes>>, BoxError>;
    /// Sells (`true`) or gives back (`false`) one held line.
    async fn settle(&self, sku: &str, handle: &Bytes, sell: bool) -> Result<bool, BoxError>;
    /// Takes the payment's idempotency key: `true` if this call charges, `false` if the
    /// key says the charge was already made.
    async fn charge(&self, order: u64) -> Result<bool, BoxError>;
    /// On hand of a SKU.
    async fn on_hand(&self, sku: &str) -> Result<i64, BoxError>;
}

impl Kitchen for TesseraFleet {
    async fn nearest_store(&self, lat: f64, lng: f64) -> Result<Option<u64>, BoxError> {
        let hits = self
            .0
            .geo(STORE_INDEX)
            .near(lat, lng)
            .k(1)
            .radius(3_000)
            .await?;
        Ok(hits.first().and_then(|hit| {
            std::str::from_utf8(&hit.member)
                .ok()?
                .strip_prefix("s:")?
                .parse()
                .ok()
        }))
    }

    async fn reserve(
        &self,
        lines: &[(String, u64)],
        _order: u64,
    ) -> Result<Option<Vec<Bytes>>, BoxError> {
        let lines = lines.iter().map(|(sku, qty)| (sku.clone(), *qty));
        Ok(match self.0.inv_reserve_cart(CART_HOLD, lines).await? {
            Cart::Held(handles) => Some(handles),
            Cart::Short(_) => None,
        })
    }

    async fn settle(&self, _sku: &str, handle: &Bytes, sell: bool) -> Result<bool, BoxError> {
        let settled = match sell {
            true => self.0.inv_confirm(handle).await,
            false => self.0.inv_release(handle).await,
        };
        found(settled)
    }

    async fn charge(&self, order: u64) -> Result<bool, BoxError> {
        let key = format!("pay:{order}");
        let hour = Duration::from_secs(3_600);
        match self
            .0
            .idem_begin(key.clone(), hour, Duration::from_secs(5))
            .await?
        {
            Idem::New { token } => {
                self.0.idem_complete(key, token, "charged").await?;
                Ok(true)
            }
            Idem::Done(result) if result.as_ref() == b"charged" => Ok(false),
            other => Err(format!("payment key {key}: {other:?}").into()),
        }
    }

    async fn on_hand(&self, sku: &str) -> Result<i64, BoxError> {
        let stock = self.0.inv_get(sku.to_string()).await?;
        Ok(stock.ok_or("a stocked SKU is missing")?.on_hand)
    }
}

/// A cart's lines are checked, then held, in one script (the SKU hash and a hold key
/// per line, which lapses with its TTL).
const REDIS_RESERVE: &str = r#"
for i, sku in ipairs(KEYS) do
  local f = redis.call('HMGET', sku, 'on_hand', 'reserved')
  if tonumber(f[1]) - tonumber(f[2]) < tonumber(ARGV[2 + i]) then return 0 end
end
for i, sku in ipairs(KEYS) do
  redis.call('HINCRBY', sku, 'reserved', ARGV[2 + i])
  redis.call('SET', sku .. ':hold:' .. ARGV[1], ARGV[2 + i], 'PX', ARGV[2])
end
return 1
"#;

/// A held line is sold (ARGV[2] = 1) or given back.
const REDIS_SETTLE: &str = r#"
local hold = KEYS[1] .. ':hold:' .. ARGV[1]
local qty = redis.call('GET', hold)
if not qty then return 0 end
redis.call('HINCRBY', KEYS[1], 'reserved', -tonumber(qty))
if ARGV[2] == '1' then redis.call('HINCRBY', KEYS[1], 'on_hand', -tonumber(qty)) end
redis.call('DEL', hold)
return 1
"#;

struct RedisKitchen {
    fleet: RedisFleet,
    scripts: Rc<[redis::Script; 2]>,
}

impl RedisKitchen {
    fn connection(&self) -> MultiplexedConnection {
        self.fleet.connection.clone()
    }
}

impl OnRedis for RedisKitchen {
    fn fleet(&self) -> &RedisFleet {
        &self.fleet
    }
}

impl Kitchen for RedisKitchen {
    async fn nearest_store(&self, lat: f64, lng: f64) -> Result<Option<u64>, BoxError> {
        let hits: Vec<String> = redis::cmd("GEOSEARCH")
            .arg(STORE_INDEX)
            .arg("FROMLONLAT")
            .arg(lng)
            .arg(lat)
            .arg("BYRADIUS")
            .arg(3_000)
            .arg("m")
            .arg("ASC")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.connection())
            .await?;
        Ok(hits
            .first()
            .and_then(|hit| hit.strip_prefix("s:")?.parse().ok()))
    }

    async fn reserve(
        &self,
        lines: &[(String, u64)],
        order: u64,
    ) -> Result<Option<Vec<Bytes>>, BoxError> {
        let mut invocation = self.scripts[0].prepare_invoke();
        invocation.arg(order).arg(CART_HOLD.as_millis() as u64);
        for (sku, qty) in lines {
            invocation.key(sku).arg(*qty);
        }
        let held: i64 = invocation.invoke_async(&mut self.connection()).await?;
        Ok((held == 1).then(|| vec![Bytes::from(order.to_string()); lines.len()]))
    }

    async fn settle(&self, sku: &str, handle: &Bytes, sell: bool) -> Result<bool, BoxError> {
        let settled: i64 = self.scripts[1]
            .key(sku)
            .arg(handle.as_ref())
            .arg(u8::from(sell))
            .invoke_async(&mut self.connection())
            .await?;
        Ok(settled == 1)
    }

    async fn charge(&self, order: u64) -> Result<bool, BoxError> {
        let key = format!("pay:{order}");
        let mut connection = self.connection();
        let first: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg("pending")
            .arg("NX")
            .arg("PX")
            .arg(3_600_000)
            .query_async(&mut connection)
            .await?;
        if first.is_some() {
            redis::cmd("SET")
                .arg(&key)
                .arg("charged")
                .arg("XX")
                .arg("KEEPTTL")
                .query_async::<()>(&mut connection)
                .await?;
            return Ok(true);
        }
        let state: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut connection)
            .await?;
        match state.as_deref() {
            Some("charged") => Ok(false),
            other => Err(format!("payment key {key}: {other:?}").into()),
        }
    }

    async fn on_hand(&self, sku: &str) -> Result<i64, BoxError> {
        let on_hand: Option<i64> = redis::cmd("HGET")
            .arg(sku)
            .arg("on_hand")
            .query_async(&mut self.connection())
            .await?;
        on_hand.ok_or_else(|| "a stocked SKU is missing".into())
    }
}

/// The city at opening time: stores stocked, drivers on the map.
pub struct Prepared {
    store: Store<TesseraFleet, RedisKitchen>,
    stock: i64,
    drivers: u64,
}

/// Places stores and drivers and stocks every SKU.
///
/// # Errors
/// The server cannot be reached.
pub async fn prepare(context: &Context) -> Result<super::Prepared, BoxError> {
    let stock = context.scaled(STOCK) as i64;
    let drivers = context.scaled(DRIVERS);
    let store = match context.side {
        Side::Tessera => {
            let clients = context.tessera().await?;
            let first = &clients[0];
            for s in 0..STORES {
                let (lat, lng) = store_position(s);
                first
                    .geo(STORE_INDEX)
                    .upsert(format!("s:{s}"), lat, lng)
                    .await?;
            }
            stock_tessera(first, stock).await?;
            let pool = Pool(
                clients
                    .into_iter()
                    .map(|c| Rc::new(TesseraFleet(c)))
                    .collect(),
            );
            fleet::place_all(&*pool.pick(0), drivers).await?;
            Store::Tessera(pool)
        }
        Side::Redis => {
            let connections = context.redis().await?;
            let mut pipe = redis::pipe();
            for s in 0..STORES {
                let (lat, lng) = store_position(s);
                pipe.cmd("GEOADD")
                    .arg(STORE_INDEX)
                    .arg(lng)
                    .arg(lat)
                    .arg(format!("s:{s}"))
                    .ignore();
                for j in 0..SKUS_PER_STORE {
                    pipe.hset_multiple(sku(s, j), &[("on_hand", stock), ("reserved", 0)])
                        .ignore();
                }
            }
            pipe.query_async::<()>(&mut connections[0].clone()).await?;
            let (fleet_scripts, scripts) = (
                RedisFleet::scripts(),
                Rc::new([
                    redis::Script::new(REDIS_RESERVE),
                    redis::Script::new(REDIS_SETTLE),
                ]),
            );
            let pool = Pool(
                connections
                    .into_iter()
                    .map(|connection| {
                        Rc::new(RedisKitchen {
                            fleet: RedisFleet::new(connection, fleet_scripts.clone()),
                            scripts: scripts.clone(),
                        })
                    })
                    .collect(),
            );
            fleet::place_all(&*pool.pick(0), drivers).await?;
            Store::Redis(pool)
        }
    };
    Ok(super::Prepared::Dinner(Prepared {
        store,
        stock,
        drivers,
    }))
}

async fn stock_tessera(client: &Client, stock: i64) -> Result<(), BoxError> {
    let skus: Vec<String> = (0..STORES)
        .flat_map(|s| (0..SKUS_PER_STORE).map(move |j| sku(s, j)))
        .collect();
    for chunk in skus.chunks(500) {
        let setting = chunk
            .iter()
            .map(|key| client.inv_set(key.clone(), stock, None));
        for set in futures_util::future::join_all(setting).await {
            set?;
        }
    }
    Ok(())
}

/// What the customers, the payment service and the drivers were told.
#[derive(Default)]
struct Ledger {
    dispatch: Dispatch,
    /// Units of each SKU acknowledged sold.
    sold: hashbrown::HashMap<String, Cell<i64>>,
    /// Units whose sale failed on the link.
    unknown: hashbrown::HashMap<String, Cell<i64>>,
    orders: Cell<u64>,
    no_store: Cell<u64>,
    sold_out: Cell<u64>,
    no_driver: Cell<u64>,
    declined: Cell<u64>,
    delivered: Cell<u64>,
    /// Orders whose first charge call did not charge, or whose retry charged again.
    wrong_charges: Cell<u64>,
}

impl Ledger {
    fn new(skus: impl Iterator<Item = String>) -> Ledger {
        let mut ledger = Ledger::default();
        for key in skus {
            ledger.sold.insert(key.clone(), Cell::new(0));
            ledger.unknown.insert(key, Cell::new(0));
        }
        ledger
    }
}

impl Prepared {
    /// Runs the evening, then checks it.
    ///
    /// # Errors
    /// The server cannot be reached for the check.
    pub async fn run(self, context: &Context) -> Result<Outcome, BoxError> {
        match &self.store {
            Store::Tessera(pool) => self.evening(context, pool).await,
            Store::Redis(pool) => self.evening(context, pool).await,
        }
    }

    async fn evening<K: Kitchen + 'static>(
        &self,
        context: &Context,
        pool: &Pool<Rc<K>>,
    ) -> Result<Outcome, BoxError> {
        let skus = (0..STORES).flat_map(|s| (0..SKUS_PER_STORE).map(move |j| sku(s, j)));
        let ledger = Rc::new(Ledger::new(skus));
        let tails = Tails::default();
        let drivers = self.drivers;
        let rush_at = context.window.seconds() / 3.0;
        let calm = context.scaled(ORDERS_PER_SECOND) as f64;
        let order_rate = move |elapsed: f64| if elapsed < rush_at { calm } else { calm * 10.0 };
        let shared = Rc::new(Pool(pool.0.clone()));
        let mut tasks = fleet::gps(context, shared.clone(), drivers, GPS_PERIOD_S);
        let orders = {
            let (recorder, ledger, tails) =
                (context.recorder.clone(), ledger.clone(), tails.clone());
            let workers = (calm as usize * 10).clamp(16, 2_000);
            paced(context.window, workers, order_rate, move |seq, start| {
                let kitchen = shared.pick(seq);
                let (recorder, ledger, tails) = (recorder.clone(), ledger.clone(), tails.clone());
                async move {
                    let placed = order(&kitchen, &recorder, &ledger, &tails, seq).await;
                    recorder.flow("order", start, placed.is_ok());
                }
            })
        };
        tasks.extend(orders);
        finish(tasks, context.window, Duration::from_secs(30)).await;
        tails.finish(context.window, Duration::from_secs(30)).await;
        context.loaded();
        let sold: i64 = ledger.sold.values().map(Cell::get).sum();
        let mut outcome = Outcome {
            figures: vec![
                ("orders", ledger.orders.get() as f64),
                ("delivered", ledger.delivered.get() as f64),
                ("no store near", ledger.no_store.get() as f64),
                ("cart sold out", ledger.sold_out.get() as f64),
                ("no driver accepted", ledger.no_driver.get() as f64),
                ("offers declined", ledger.declined.get() as f64),
                ("units sold", sold as f64),
                ("rush starts at (s)", rush_at),
            ],
            checks: Vec::new(),
            plotted: vec!["order", "gps", "reserve cart", "offer driver"],
        };
        if context.check() {
            outcome.checks = self.check(&*pool.pick(0), &ledger).await?;
        }
        Ok(outcome)
    }

    async fn check<K: Kitchen>(
        &self,
        kitchen: &K,
        ledger: &Ledger,
    ) -> Result<Vec<Check>, BoxError> {
        let mut wrong = Vec::new();
        let keys: Vec<&String> = ledger.sold.keys().collect();
        for chunk in keys.chunks(500) {
            let reading = chunk
                .iter()
                .map(|key| async move { (*key, kitchen.on_hand(key).await) });
            for (key, on_hand) in futures_util::future::join_all(reading).await {
                let on_hand = on_hand?;
                let sold = ledger.sold[key].get();
                let unknown = ledger.unknown[key].get();
                let expected = self.stock - sold;
                if on_hand < 0 || !agrees(on_hand, expected, unknown) {
                    wrong.push(format!("{key}: on hand {on_hand}, expected {expected}"));
                }
            }
        }
        let engaged = kitchen.engaged().await?;
        Ok(vec![
            Check::none_of(
                "no oversell: on hand = stock - acknowledged sales, never below zero",
                &wrong,
                "SKUs disagree",
                format!("{} SKUs agree", ledger.sold.len()),
            ),
            ledger.dispatch.check(),
            Check::new(
                "each order charged once, its retry answered from the key",
                ledger.wrong_charges.get() == 0,
                format!(
                    "{} orders charged, {} wrong answers",
                    ledger.orders.get() - ledger.no_store.get() - ledger.sold_out.get(),
                    ledger.wrong_charges.get()
                ),
            ),
            Check::new(
                "every driver free once the orders are done",
                engaged == 0,
                format!("{engaged} drivers still busy or holding an offer"),
            ),
        ])
    }
}

/// One order, start to finish: store, cart, payment, driver, sale; the delivery (and the
/// driver's release) finishes in the background.
async fn order<K: Kitchen + 'static>(
    kitchen: &Rc<K>,
    recorder: &Rc<Recorder>,
    ledger: &Rc<Ledger>,
    tails: &Tails,
    seq: u64,
) -> Result<(), BoxError> {
    let mut rng = SmallRng::seed_from_u64(seq ^ 0xd1);
    bump(&ledger.orders);
    let (lat, lng) = crate::geo_point(&mut rng);
    let Some(store) = timed(recorder, "find store", kitchen.nearest_store(lat, lng)).await? else {
        bump(&ledger.no_store);
        return Ok(());
    };
    let mut lines: Vec<(String, u64)> = Vec::new();
    for _ in 0..rng.random_range(1..=4) {
        let key = sku(store, skewed(&mut rng, SKUS_PER_STORE));
        if !lines.iter().any(|(other, _)| *other == key) {
            lines.push((key, rng.random_range(1..=2)));
        }
    }
    let Some(handles) = timed(recorder, "reserve cart", kitchen.reserve(&lines, seq)).await? else {
        bump(&ledger.sold_out);
        return Ok(());
    };
    if !timed(recorder, "payment", kitchen.charge(seq)).await? {
        bump(&ledger.wrong_charges);
    }
    if timed(recorder, "payment retry", kitchen.charge(seq)).await? {
        bump(&ledger.wrong_charges);
    }
    let (store_lat, store_lng) = store_position(store);
    let start = Instant::now();
    let mut driver = None;
    for _ in 0..OFFERS {
        let Some(offered) = kitchen.offer(store_lat, store_lng, seq).await? else {
            break;
        };
        if rng.random_bool(ACCEPT) && kitchen.accept(&offered, seq).await? {
            ledger.dispatch.accepted(&offered, seq);
            driver = Some(offered);
            break;
        }
        bump(&ledger.declined);
        kitchen.free(&offered, seq).await?;
    }
    recorder.step("offer driver", start, true);
    let sell = driver.is_some();
    let start = Instant::now();
    let settles =
        lines
            .iter()
            .zip(&handles)
            .map(|((key, qty), handle)| async move {
                (key, *qty, kitchen.settle(key, handle, sell).await)
            });
    for (key, qty, settled) in futures_util::future::join_all(settles).await {
        match (settled, sell) {
            (Ok(true), true) => ledger.sold[key].set(ledger.sold[key].get() + qty as i64),
            (Err(_), true) => ledger.unknown[key].set(ledger.unknown[key].get() + qty as i64),
            _ => {}
        }
    }
    recorder.step(if sell { "sell cart" } else { "release cart" }, start, true);
    let Some(driver) = driver else {
        bump(&ledger.no_driver);
        return Ok(());
    };
    let delivery = Duration::from_millis(rng.random_range(1_000..3_000));
    let (kitchen, recorder, ledger) = (kitchen.clone(), recorder.clone(), ledger.clone());
    tails.spawn(async move {
        tokio::time::sleep(delivery).await;
        ledger.dispatch.freeing(&driver);
        let freed = timed(&recorder, "driver freed", kitchen.free(&driver, seq)).await;
        if freed.is_ok() {
            bump(&ledger.delivered);
        }
    });
    Ok(())
}
