//! Ad exchange: per-user frequency caps and per-publisher limits, campaign budgets and
//! impression dedup with network retries, inside a 10 ms budget per ad request.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use redis::aio::MultiplexedConnection;
use tessera_client::Client;

use super::load::{finish, paced, timed};
use super::{add, agrees, bump, skewed, Check, Context, Outcome, Pool, Side, Store};
use crate::driver::BoxError;

/// Ad requests per second, at scale 1.
const REQUESTS_PER_SECOND: f64 = 2_500.0;
/// Users, at scale 1: few enough that busy users reach their cap within the run.
const USERS: f64 = 4_000.0;
/// Ads one user may be shown per cap window.
const USER_CAP: u64 = 10;
/// The cap's window: longer than any run, so the check can count exactly.
const USER_WINDOW: Duration = Duration::from_secs(3_600);
/// Publishers; the busiest are throttled.
const PUBLISHERS: u64 = 50;
/// Ad requests one publisher may send per second.
const PUBLISHER_LIMIT: u64 = 150;
/// Campaigns bidding; the most popular run out of budget.
const CAMPAIGNS: u64 = 100;
/// How long an impression id is remembered.
const IMPRESSION_TTL: Duration = Duration::from_secs(3_600);
/// Share of impressions whose log call is sent twice (a network retry).
const RETRY: f64 = 0.1;
/// The exchange's budget for one ad request.
const SLA: Duration = Duration::from_millis(10);

/// Campaign `c`'s budget in price units, at scale 1.
fn budget(c: u64, scale: f64) -> i64 {
    ((1_500 + 300 * c) as f64 * scale).round() as i64
}

/// The four decisions an ad request needs, as each server makes them.
trait Exchange {
    /// Whether the limit on `key` admits one more request.
    async fn admit(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
        id: u64,
    ) -> Result<bool, BoxError>;
    /// Takes `price` from a budget unless that would leave it below zero.
    async fn spend(&self, key: &str, price: u64) -> Result<bool, BoxError>;
    /// Whether `id` is a first sighting (it is then remembered).
    async fn first(&self, id: &str) -> Result<bool, BoxError>;
    /// Sets a budget.
    async fn fund(&self, key: &str, amount: i64) -> Result<(), BoxError>;
    /// A budget's remainder.
    async fn remaining(&self, key: &str) -> Result<i64, BoxError>;
}

struct Tessera(Client);

impl Exchange for Tessera {
    async fn admit(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
        _id: u64,
    ) -> Result<bool, BoxError> {
        let decision = self
            .0
            .rate_limit(key.to_string())
            .limit(limit, window)
            .check()
            .await?;
        Ok(decision.allowed)
    }

    async fn spend(&self, key: &str, price: u64) -> Result<bool, BoxError> {
        Ok(self.0.counter_take(key.to_string(), price, 0).await?.taken)
    }

    async fn first(&self, id: &str) -> Result<bool, BoxError> {
        Ok(self.0.dedup(id.to_string(), IMPRESSION_TTL).await?)
    }

    async fn fund(&self, key: &str, amount: i64) -> Result<(), BoxError> {
        self.0.counter_put(key.to_string(), amount as u64).await?;
        Ok(())
    }

    async fn remaining(&self, key: &str) -> Result<i64, BoxError> {
        let value = self.0.get(key.to_string()).await?.unwrap_or_default();
        Ok(std::str::from_utf8(&value)?.parse().unwrap_or(0))
    }
}

/// A budget is spent only if it stays at or above zero.
const REDIS_SPEND: &str = r#"
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
local price = tonumber(ARGV[1])
if left - price < 0 then return 0 end
redis.call('DECRBY', KEYS[1], price)
return 1
"#;

struct Redis {
    connection: MultiplexedConnection,
    sliding_log: Rc<redis::Script>,
    spend: Rc<redis::Script>,
}

impl Exchange for Redis {
    async fn admit(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
        id: u64,
    ) -> Result<bool, BoxError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
        let (allowed, _left): (i64, i64) = self
            .sliding_log
            .key(key)
            .arg(now)
            .arg(window.as_millis() as u64)
            .arg(limit)
            .arg(id)
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(allowed == 1)
    }

    async fn spend(&self, key: &str, price: u64) -> Result<bool, BoxError> {
        let taken: i64 = self
            .spend
            .key(key)
            .arg(price)
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(taken == 1)
    }

    async fn first(&self, id: &str) -> Result<bool, BoxError> {
        let set: Option<String> = redis::cmd("SET")
            .arg(id)
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(IMPRESSION_TTL.as_millis() as u64)
            .query_async(&mut self.connection.clone())
            .await?;
        Ok(set.is_some())
    }

    async fn fund(&self, key: &str, amount: i64) -> Result<(), BoxError> {
        redis::cmd("SET")
            .arg(key)
            .arg(amount)
            .query_async::<()>(&mut self.connection.clone())
            .await?;
        Ok(())
    }

    async fn remaining(&self, key: &str) -> Result<i64, BoxError> {
        let left: Option<i64> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.connection.clone())
            .await?;
        Ok(left.unwrap_or(0))
    }
}

/// The exchange, its budgets funded.
pub struct Prepared {
    store: Store<Tessera, Redis>,
    scale: f64,
}

/// Connects and funds every campaign.
///
/// # Errors
/// The server cannot be reached.
pub async fn prepare(context: &Context) -> Result<super::Prepared, BoxError> {
    let scale = context.scale();
    let store = match context.side {
        Side::Tessera => {
            let pool = Pool(
                context
                    .tessera()
                    .await?
                    .into_iter()
                    .map(|c| Rc::new(Tessera(c)))
                    .collect(),
            );
            fund(&*pool.pick(0), context.scale()).await?;
            Store::Tessera(pool)
        }
        Side::Redis => {
            let sliding_log = Rc::new(redis::Script::new(crate::redis_driver::SLIDING_LOG));
            let spend = Rc::new(redis::Script::new(REDIS_SPEND));
            let pool = Pool(
                context
                    .redis()
                    .await?
                    .into_iter()
                    .map(|connection| {
                        Rc::new(Redis {
                            connection,
                            sliding_log: sliding_log.clone(),
                            spend: spend.clone(),
                        })
                    })
                    .collect(),
            );
            fund(&*pool.pick(0), context.scale()).await?;
            Store::Redis(pool)
        }
    };
    Ok(super::Prepared::Ads(Prepared { store, scale }))
}

async fn fund(exchange: &impl Exchange, scale: f64) -> Result<(), BoxError> {
    for c in 0..CAMPAIGNS {
        exchange
            .fund(&format!("budget:{c}"), budget(c, scale))
            .await?;
    }
    Ok(())
}

/// What the exchange was told.
struct Ledger {
    /// Units each campaign was acknowledged as spending.
    spent: Vec<Cell<u64>>,
    /// Units whose spend failed on the link.
    unknown: Vec<Cell<u64>>,
    /// Ads each user was admitted for.
    admitted: Vec<Cell<u64>>,
    requests: Cell<u64>,
    capped: Cell<u64>,
    throttled: Cell<u64>,
    out_of_budget: Cell<u64>,
    billed: Cell<u64>,
    /// First sightings answered "seen" and retries answered "new".
    wrong_dedup: Cell<u64>,
    retries: Cell<u64>,
    over_sla: Cell<u64>,
}

impl Prepared {
    /// Serves ad requests for the window, then checks.
    ///
    /// # Errors
    /// The server cannot be reached for the check.
    pub async fn run(self, context: &Context) -> Result<Outcome, BoxError> {
        match &self.store {
            Store::Tessera(pool) => self.serve(context, pool).await,
            Store::Redis(pool) => self.serve(context, pool).await,
        }
    }

    async fn serve<E: Exchange + 'static>(
        &self,
        context: &Context,
        pool: &Pool<Rc<E>>,
    ) -> Result<Outcome, BoxError> {
        let users = context.scaled(USERS);
        let counters = |n: u64| (0..n).map(|_| Cell::new(0)).collect::<Vec<_>>();
        let ledger = Rc::new(Ledger {
            spent: counters(CAMPAIGNS),
            unknown: counters(CAMPAIGNS),
            admitted: counters(users),
            requests: Cell::new(0),
            capped: Cell::new(0),
            throttled: Cell::new(0),
            out_of_budget: Cell::new(0),
            billed: Cell::new(0),
            wrong_dedup: Cell::new(0),
            retries: Cell::new(0),
            over_sla: Cell::new(0),
        });
        let rate = context.scaled(REQUESTS_PER_SECOND) as f64;
        let workers = (rate as usize / 10).clamp(16, 2_000);
        let checker = pool.pick(0);
        let pool = Rc::new(Pool(pool.0.clone()));
        let recorder = context.recorder.clone();
        let flows = {
            let ledger = ledger.clone();
            paced(
                context.window,
                workers,
                move |_| rate,
                move |seq, start| {
                    let (exchange, recorder, ledger) =
                        (pool.pick(seq), recorder.clone(), ledger.clone());
                    async move {
                        let served = ad_request(&*exchange, &recorder, &ledger, seq, users).await;
                        recorder.flow("ad request", start, served.is_ok());
                        if start.elapsed() > SLA {
                            bump(&ledger.over_sla);
                        }
                    }
                },
            )
        };
        finish(flows, context.window, Duration::from_secs(30)).await;
        context.loaded();
        let requests = ledger.requests.get().max(1) as f64;
        let mut outcome = Outcome {
            figures: vec![
                ("ad requests", ledger.requests.get() as f64),
                ("capped (user frequency)", ledger.capped.get() as f64),
                ("throttled (publisher)", ledger.throttled.get() as f64),
                ("no budget left", ledger.out_of_budget.get() as f64),
                ("impressions billed", ledger.billed.get() as f64),
                ("impression retries", ledger.retries.get() as f64),
                (
                    "% of requests over 10 ms",
                    100.0 * ledger.over_sla.get() as f64 / requests,
                ),
            ],
            checks: Vec::new(),
            plotted: vec!["ad request", "budget", "impression"],
        };
        if context.check() {
            outcome.checks = self.check(&*checker, &ledger).await?;
        }
        Ok(outcome)
    }
}

/// One ad request: the user's cap, the publisher's limit, the campaign's budget, then the
/// impression log (sometimes sent twice).
async fn ad_request<E: Exchange>(
    exchange: &E,
    recorder: &super::load::Recorder,
    ledger: &Ledger,
    seq: u64,
    users: u64,
) -> Result<(), BoxError> {
    let mut rng = SmallRng::seed_from_u64(seq ^ 0xad);
    let user = skewed(&mut rng, users);
    let publisher = skewed(&mut rng, PUBLISHERS);
    let campaign = skewed(&mut rng, CAMPAIGNS);
    let price = rng.random_range(1..=5u64);
    bump(&ledger.requests);
    let user_key = format!("freq:{user}");
    if !timed(
        recorder,
        "user cap",
        exchange.admit(&user_key, USER_CAP, USER_WINDOW, seq),
    )
    .await?
    {
        bump(&ledger.capped);
        return Ok(());
    }
    bump(&ledger.admitted[user as usize]);
    let publisher_key = format!("pub:{publisher}");
    let window = Duration::from_secs(1);
    if !timed(
        recorder,
        "publisher limit",
        exchange.admit(&publisher_key, PUBLISHER_LIMIT, window, seq),
    )
    .await?
    {
        bump(&ledger.throttled);
        return Ok(());
    }
    let budget_key = format!("budget:{campaign}");
    match timed(recorder, "budget", exchange.spend(&budget_key, price)).await {
        Ok(true) => add(&ledger.spent[campaign as usize], price),
        Ok(false) => {
            bump(&ledger.out_of_budget);
            return Ok(());
        }
        Err(error) => {
            add(&ledger.unknown[campaign as usize], price);
            return Err(error);
        }
    }
    let impression = format!("imp:{seq}:{campaign}");
    let first = timed(recorder, "impression", exchange.first(&impression)).await?;
    if first {
        bump(&ledger.billed);
    } else {
        bump(&ledger.wrong_dedup);
    }
    if rng.random_bool(RETRY) {
        bump(&ledger.retries);
        if timed(recorder, "impression retry", exchange.first(&impression)).await? {
            bump(&ledger.wrong_dedup);
        }
    }
    Ok(())
}

impl Prepared {
    async fn check<E: Exchange>(
        &self,
        exchange: &E,
        ledger: &Ledger,
    ) -> Result<Vec<Check>, BoxError> {
        let mut wrong_budget = Vec::new();
        let mut below_zero = Vec::new();
        for c in 0..CAMPAIGNS {
            let left = exchange.remaining(&format!("budget:{c}")).await?;
            let spent = ledger.spent[c as usize].get() as i64;
            let unknown = ledger.unknown[c as usize].get() as i64;
            let expected = budget(c, self.scale) - spent;
            if left < 0 {
                below_zero.push(format!("budget:{c} = {left}"));
            }
            if !agrees(left, expected, unknown) {
                wrong_budget.push(format!("budget:{c} = {left}, expected {expected}"));
            }
        }
        let over_cap: Vec<_> = ledger
            .admitted
            .iter()
            .enumerate()
            .filter(|(_, admitted)| admitted.get() > USER_CAP)
            .map(|(user, admitted)| format!("freq:{user} admitted {}", admitted.get()))
            .collect();
        Ok(vec![
            Check::new(
                "each impression billed once",
                ledger.wrong_dedup.get() == 0,
                format!(
                    "{} impressions, {} retries, {} answered wrongly",
                    ledger.billed.get(),
                    ledger.retries.get(),
                    ledger.wrong_dedup.get()
                ),
            ),
            Check::none_of(
                "budgets never below zero",
                &below_zero,
                "below zero",
                format!("{CAMPAIGNS} campaigns at or above zero"),
            ),
            Check::none_of(
                "budget left = budget - acknowledged spend",
                &wrong_budget,
                "disagree",
                format!("{CAMPAIGNS} campaigns agree with the acknowledged spends"),
            ),
            Check::none_of(
                "no user shown more than the cap",
                &over_cap,
                "users over",
                format!(
                    "{} users, none admitted more than {USER_CAP}",
                    ledger.admitted.len()
                ),
            ),
        ])
    }
}
