//! Flash sale: 1,000 hot SKUs with little stock, 10,000 shoppers reserving carts, a
//! share of carts abandoned (their holds lapse); checked for oversell at the end.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use redis::aio::MultiplexedConnection;
use tessera_client::{Cart, Client};

use super::load::{finish, paced, Recorder, Tails};
use super::{agrees, bump, found, skewed, Check, Context, Outcome, Pool, Side, Store};
use crate::driver::BoxError;

/// SKUs on sale.
const SKUS: u64 = 1_000;
/// Carts opened per second, at scale 1: 10,000 shoppers each opening one every 12.5 s.
const CARTS_PER_SECOND: f64 = 800.0;
/// Units of each SKU, at scale 1: the hot ones sell out within seconds.
const STOCK: f64 = 25.0;
/// How long a cart holds its units.
const HOLD: Duration = Duration::from_secs(2);
/// Share of carts abandoned: their holds lapse.
const ABANDON: f64 = 0.3;

fn sku(i: u64) -> String {
    format!("sku:{i}")
}

/// Reserving and confirming carts, as each server does it.
trait Shop {
    /// Holds every line or none: the handles, or `None` if a line was short.
    async fn reserve(&self, cart: &[(u64, u64)], id: u64) -> Result<Option<Vec<Bytes>>, BoxError>;
    /// Turns one held line into a sale; `false` if the hold had lapsed.
    async fn confirm(&self, line: u64, handle: &Bytes) -> Result<bool, BoxError>;
    /// On hand and reserved units of a SKU, after returning lapsed holds.
    async fn stock(&self, sku: u64) -> Result<(i64, i64), BoxError>;
}

struct Tessera(Client);

impl Shop for Tessera {
    async fn reserve(&self, cart: &[(u64, u64)], _id: u64) -> Result<Option<Vec<Bytes>>, BoxError> {
        let lines = cart.iter().map(|&(i, qty)| (sku(i), qty));
        Ok(match self.0.inv_reserve_cart(HOLD, lines).await? {
            Cart::Held(handles) => Some(handles),
            Cart::Short(_) => None,
        })
    }

    async fn confirm(&self, _line: u64, handle: &Bytes) -> Result<bool, BoxError> {
        found(self.0.inv_confirm(handle).await)
    }

    async fn stock(&self, i: u64) -> Result<(i64, i64), BoxError> {
        let stock = self
            .0
            .inv_get(sku(i))
            .await?
            .ok_or("a stocked SKU is missing")?;
        Ok((stock.on_hand, stock.reserved))
    }
}

/// Lapsed holds go back first (Redis has no deadline of its own for them), then every
/// line is checked before any is held.
const REDIS_RESERVE: &str = r#"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local ttl, id = tonumber(ARGV[1]), ARGV[2]
for _, sku in ipairs(KEYS) do
  for _, hold in ipairs(redis.call('ZRANGEBYSCORE', sku .. ':holds', 0, now)) do
    local qty = redis.call('HGET', sku .. ':held', hold)
    if qty then
      redis.call('HINCRBY', sku, 'reserved', -tonumber(qty))
      redis.call('HDEL', sku .. ':held', hold)
    end
  end
  redis.call('ZREMRANGEBYSCORE', sku .. ':holds', 0, now)
end
for i, sku in ipairs(KEYS) do
  local f = redis.call('HMGET', sku, 'on_hand', 'reserved')
  if tonumber(f[1]) - tonumber(f[2]) < tonumber(ARGV[2 + i]) then return 0 end
end
for i, sku in ipairs(KEYS) do
  redis.call('HINCRBY', sku, 'reserved', ARGV[2 + i])
  redis.call('HSET', sku .. ':held', id, ARGV[2 + i])
  redis.call('ZADD', sku .. ':holds', now + ttl, id)
end
return 1
"#;

/// A hold still within its deadline becomes a sale.
const REDIS_CONFIRM: &str = r#"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local sku, id = KEYS[1], ARGV[1]
local qty = redis.call('HGET', sku .. ':held', id)
local deadline = redis.call('ZSCORE', sku .. ':holds', id)
if not qty or not deadline or tonumber(deadline) <= now then return 0 end
redis.call('HINCRBY', sku, 'reserved', -tonumber(qty))
redis.call('HINCRBY', sku, 'on_hand', -tonumber(qty))
redis.call('HDEL', sku .. ':held', id)
redis.call('ZREM', sku .. ':holds', id)
return 1
"#;

/// The sweeper teams run from a timer: lapsed holds of one SKU go back.
const REDIS_RECLAIM: &str = r#"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local sku = KEYS[1]
for _, hold in ipairs(redis.call('ZRANGEBYSCORE', sku .. ':holds', 0, now)) do
  local qty = redis.call('HGET', sku .. ':held', hold)
  if qty then
    redis.call('HINCRBY', sku, 'reserved', -tonumber(qty))
    redis.call('HDEL', sku .. ':held', hold)
  end
end
redis.call('ZREMRANGEBYSCORE', sku .. ':holds', 0, now)
return redis.call('HMGET', sku, 'on_hand', 'reserved')
"#;

struct Redis {
    connection: MultiplexedConnection,
    scripts: Rc<[redis::Script; 3]>,
}

impl Shop for Redis {
    async fn reserve(&self, cart: &[(u64, u64)], id: u64) -> Result<Option<Vec<Bytes>>, BoxError> {
        let mut invocation = self.scripts[0].prepare_invoke();
        invocation.arg(HOLD.as_millis() as u64).arg(id);
        for &(i, qty) in cart {
            invocation.key(sku(i)).arg(qty);
        }
        let held: i64 = invocation
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok((held == 1).then(|| vec![Bytes::from(id.to_string()); cart.len()]))
    }

    async fn confirm(&self, line: u64, handle: &Bytes) -> Result<bool, BoxError> {
        let done: i64 = self.scripts[1]
            .key(sku(line))
            .arg(handle.as_ref())
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(done == 1)
    }

    async fn stock(&self, i: u64) -> Result<(i64, i64), BoxError> {
        let (on_hand, reserved): (i64, i64) = self.scripts[2]
            .key(sku(i))
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok((on_hand, reserved))
    }
}

/// The sale, stocked and ready.
pub struct Prepared {
    store: Store<Tessera, Redis>,
    stock: i64,
}

/// Stocks every SKU.
///
/// # Errors
/// The server cannot be reached.
pub async fn prepare(context: &Context) -> Result<super::Prepared, BoxError> {
    let stock = context.scaled(STOCK) as i64;
    let store = match context.side {
        Side::Tessera => {
            let clients = context.tessera().await?;
            for i in 0..SKUS {
                clients[0].inv_set(sku(i), stock, None).await?;
            }
            Store::Tessera(Pool(
                clients.into_iter().map(|c| Rc::new(Tessera(c))).collect(),
            ))
        }
        Side::Redis => {
            let connections = context.redis().await?;
            let mut pipe = redis::pipe();
            for i in 0..SKUS {
                pipe.hset_multiple(sku(i), &[("on_hand", stock), ("reserved", 0)])
                    .ignore();
            }
            pipe.query_async::<()>(&mut connections[0].clone()).await?;
            let scripts = Rc::new([
                redis::Script::new(REDIS_RESERVE),
                redis::Script::new(REDIS_CONFIRM),
                redis::Script::new(REDIS_RECLAIM),
            ]);
            Store::Redis(Pool(
                connections
                    .into_iter()
                    .map(|connection| {
                        Rc::new(Redis {
                            connection,
                            scripts: scripts.clone(),
                        })
                    })
                    .collect(),
            ))
        }
    };
    Ok(super::Prepared::Flash(Prepared { store, stock }))
}

/// What the shoppers were told, per SKU.
struct Ledger {
    /// Units whose confirmation was acknowledged.
    sold: Vec<Cell<u64>>,
    /// Units whose confirmation failed on the link: sold or not, nobody knows.
    unknown: Vec<Cell<u64>>,
    carts: Cell<u64>,
    short: Cell<u64>,
    abandoned: Cell<u64>,
    late: Cell<u64>,
}

impl Prepared {
    /// Runs the sale, then checks it.
    ///
    /// # Errors
    /// The server cannot be reached for the check.
    pub async fn run(self, context: &Context) -> Result<Outcome, BoxError> {
        match &self.store {
            Store::Tessera(shops) => self.sale(context, shops).await,
            Store::Redis(shops) => self.sale(context, shops).await,
        }
    }

    async fn sale<S: Shop + 'static>(
        &self,
        context: &Context,
        shops: &Pool<Rc<S>>,
    ) -> Result<Outcome, BoxError> {
        let ledger = Rc::new(Ledger {
            sold: (0..SKUS).map(|_| Cell::new(0)).collect(),
            unknown: (0..SKUS).map(|_| Cell::new(0)).collect(),
            carts: Cell::new(0),
            short: Cell::new(0),
            abandoned: Cell::new(0),
            late: Cell::new(0),
        });
        let rate = context.scaled(CARTS_PER_SECOND) as f64;
        let recorder = context.recorder.clone();
        let pool = Rc::new(Pool(shops.0.clone()));
        let workers = (rate as usize / 4).clamp(16, 2_000);
        let tails = Tails::default();
        let flows = {
            let (ledger, tails) = (ledger.clone(), tails.clone());
            paced(
                context.window,
                workers,
                move |_| rate,
                move |seq, start| {
                    let (shop, recorder, ledger) =
                        (pool.pick(seq), recorder.clone(), ledger.clone());
                    let tails = tails.clone();
                    async move {
                        let mut rng = SmallRng::seed_from_u64(seq);
                        let lines = rng.random_range(1..=3u64);
                        let mut cart: Vec<(u64, u64)> = Vec::new();
                        while (cart.len() as u64) < lines {
                            let pick = skewed(&mut rng, SKUS);
                            if !cart.iter().any(|&(i, _)| i == pick) {
                                cart.push((pick, 1));
                            }
                        }
                        bump(&ledger.carts);
                        let held = shop.reserve(&cart, seq).await;
                        recorder.step("reserve cart", start, held.is_ok());
                        let Ok(Some(handles)) = held else {
                            if matches!(held, Ok(None)) {
                                bump(&ledger.short);
                            }
                            return;
                        };
                        if rng.random_bool(ABANDON) {
                            bump(&ledger.abandoned);
                            return;
                        }
                        let think = Duration::from_millis(rng.random_range(200..1_500));
                        tails.spawn(async move {
                            tokio::time::sleep(think).await;
                            checkout(&*shop, &recorder, &ledger, &cart, &handles).await;
                        });
                    }
                },
            )
        };
        finish(flows, context.window, Duration::from_secs(30)).await;
        tails.finish(context.window, Duration::from_secs(30)).await;
        context.loaded();
        let sold: u64 = ledger.sold.iter().map(Cell::get).sum();
        let mut outcome = Outcome {
            figures: vec![
                ("carts", ledger.carts.get() as f64),
                ("carts refused (short)", ledger.short.get() as f64),
                ("carts abandoned", ledger.abandoned.get() as f64),
                ("lines confirmed too late", ledger.late.get() as f64),
                ("units sold", sold as f64),
                ("units in stock at start", (self.stock as u64 * SKUS) as f64),
            ],
            checks: Vec::new(),
            plotted: Vec::new(),
        };
        if context.check() {
            // Abandoned holds lapse first: every unit is then on hand or sold.
            tokio::time::sleep(HOLD + Duration::from_millis(500)).await;
            outcome.checks = self.check(&*shops.pick(0), &ledger).await?;
        }
        Ok(outcome)
    }

    async fn check<S: Shop>(&self, shop: &S, ledger: &Ledger) -> Result<Vec<Check>, BoxError> {
        let mut oversold = Vec::new();
        let mut mismatched = Vec::new();
        let mut still_held = Vec::new();
        for i in 0..SKUS {
            let (on_hand, reserved) = shop.stock(i).await?;
            let sold = ledger.sold[i as usize].get() as i64;
            let unknown = ledger.unknown[i as usize].get() as i64;
            if on_hand < 0 || sold > self.stock {
                oversold.push(format!("{} (on hand {on_hand}, sold {sold})", sku(i)));
            }
            let expected = self.stock - sold;
            if !agrees(on_hand, expected, unknown) {
                mismatched.push(format!(
                    "{}: on hand {on_hand}, expected {expected}",
                    sku(i)
                ));
            }
            if reserved != 0 {
                still_held.push(format!("{}: {reserved} held", sku(i)));
            }
        }
        Ok(vec![
            Check::none_of(
                "no SKU sold more than its stock",
                &oversold,
                "SKUs oversold",
                format!("{SKUS} SKUs, each sold at most {} units", self.stock),
            ),
            Check::none_of(
                "on hand = stock - acknowledged sales",
                &mismatched,
                "SKUs disagree",
                format!("{SKUS} SKUs agree with the shoppers' confirmations"),
            ),
            Check::none_of(
                "abandoned carts gave their units back",
                &still_held,
                "SKUs still hold units",
                "nothing held 500 ms after the last hold lapsed".to_string(),
            ),
        ])
    }
}

/// Confirms every line of a held cart, as one checkout.
async fn checkout<S: Shop>(
    shop: &S,
    recorder: &Recorder,
    ledger: &Ledger,
    cart: &[(u64, u64)],
    handles: &[Bytes],
) {
    let start = Instant::now();
    let confirms = cart
        .iter()
        .zip(handles)
        .map(|(&(i, _), handle)| async move { (i, shop.confirm(i, handle).await) });
    let mut all_ok = true;
    for (i, outcome) in futures_util::future::join_all(confirms).await {
        let slot = i as usize;
        match outcome {
            Ok(true) => bump(&ledger.sold[slot]),
            Ok(false) => bump(&ledger.late),
            Err(_) => {
                all_ok = false;
                bump(&ledger.unknown[slot]);
            }
        }
    }
    recorder.step("checkout", start, all_ok);
}
