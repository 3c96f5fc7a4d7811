//! Chat: presence heartbeats every 30 s, contact lists read, messages appended to
//! conversation timelines and routed to the recipient's gateway server by pub/sub, and
//! history paged back by cursor while new messages arrive.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use hashbrown::HashMap;
use rand::rngs::SmallRng;
use rand::SeedableRng;

mod stores;

use super::load::{finish, paced, timed, Recorder, Tails};
use super::{bump, skewed, Check, Context, Outcome, Pool, Side, Store};
use crate::driver::BoxError;
use stores::{Changes, Chat, Received, Redis, Tessera};

/// Users connected, at scale 1.
const USERS: f64 = 20_000.0;
/// Seconds between one user's heartbeats (as in the seed).
const BEAT_PERIOD_S: f64 = 30.0;
/// How long a heartbeat keeps a user online.
const BEAT_TTL: Duration = Duration::from_secs(90);
/// Gateway servers holding the users' sockets; each subscribes to its own channel.
const GATEWAYS: u64 = 4;
/// Conversations, at scale 1; a few are much busier than the rest.
const CONVERSATIONS: f64 = 2_000.0;
/// Messages per second, at scale 1.
const MESSAGES_PER_SECOND: f64 = 800.0;
/// Watched users closing the app per second, at scale 1; each comes back after `AWAY`.
const AWAY_PER_SECOND: f64 = 20.0;
/// How long a user who closed the app stays away.
const AWAY: Duration = Duration::from_secs(1);
/// Contact-list reads per second, at scale 1.
const CONTACT_READS_PER_SECOND: f64 = 150.0;
/// Contacts on one list.
const CONTACTS: u64 = 20;
/// History reads per second, at scale 1.
const HISTORY_READS_PER_SECOND: f64 = 150.0;
/// Messages per history page.
const PAGE: u32 = 20;
/// Pages one history read turns.
const PAGES: usize = 3;
/// Messages a conversation keeps.
const KEEP: u32 = 500;

fn conversation(c: u64) -> String {
    format!("conv:{c}")
}

fn gateway(g: u64) -> String {
    format!("gateway:{g}")
}

/// The chat service with every user online.
pub struct Prepared {
    store: Store<Tessera, Redis>,
    users: u64,
}

/// Connects and brings every user online with a first heartbeat.
///
/// # Errors
/// The server cannot be reached.
pub async fn prepare(context: &Context) -> Result<super::Prepared, BoxError> {
    let users = context.scaled(USERS);
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
            beat_all(&*pool.pick(0), users).await?;
            Store::Tessera(pool)
        }
        Side::Redis => {
            let client = context.redis_client()?;
            let pool = Pool(
                context
                    .redis()
                    .await?
                    .into_iter()
                    .map(|connection| {
                        Rc::new(Redis {
                            connection,
                            client: client.clone(),
                        })
                    })
                    .collect(),
            );
            beat_all(&*pool.pick(0), users).await?;
            Store::Redis(pool)
        }
    };
    Ok(super::Prepared::Chat(Prepared { store, users }))
}

/// How many users (the first ones by number) have contacts watching them.
fn watched_users(users: u64) -> u64 {
    (users / 40).max(GATEWAYS)
}

async fn beat_all(chat: &impl Chat, users: u64) -> Result<(), BoxError> {
    let all: Vec<u64> = (0..users).collect();
    for chunk in all.chunks(500) {
        for beat in futures_util::future::join_all(chunk.iter().map(|&u| chat.beat(u))).await {
            beat?;
        }
    }
    Ok(())
}

/// What the users were told.
#[derive(Default)]
struct Ledger {
    /// Acknowledged messages per conversation.
    sent: RefCell<HashMap<u64, BTreeSet<u64>>>,
    /// Messages routed to a gateway that had a subscriber.
    routed: RefCell<Vec<u64>>,
    received: Rc<Received>,
    page_reads: Cell<u64>,
    /// History reads that showed a message twice or out of order.
    repeated: Cell<u64>,
    /// History reads that left out a message acknowledged before the read began.
    skipped: Cell<u64>,
    first_bad_read: RefCell<Option<String>>,
    offline_contacts: Cell<u64>,
    /// Watched users' acknowledged changes: (came online, went offline).
    acknowledged: RefCell<HashMap<u64, (u32, u32)>>,
    changes: Rc<Changes>,
    away: Cell<u64>,
}

impl Ledger {
    /// Records a watched user's acknowledged change.
    fn changed(&self, user: u64, online: bool) {
        let mut acknowledged = self.acknowledged.borrow_mut();
        let entry = acknowledged.entry(user).or_default();
        if online {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }
}

impl Prepared {
    /// Runs the chat service, then checks it.
    ///
    /// # Errors
    /// The server cannot be reached.
    pub async fn run(self, context: &Context) -> Result<Outcome, BoxError> {
        match &self.store {
            Store::Tessera(pool) => self.serve(context, pool).await,
            Store::Redis(pool) => self.serve(context, pool).await,
        }
    }

    async fn serve<C: Chat + 'static>(
        &self,
        context: &Context,
        pool: &Pool<Rc<C>>,
    ) -> Result<Outcome, BoxError> {
        let ledger = Rc::new(Ledger::default());
        let mut listeners = Vec::new();
        for g in 0..GATEWAYS {
            listeners.push(
                pool.pick(g)
                    .listen(gateway(g), ledger.received.clone())
                    .await?,
            );
        }
        let users = self.users;
        let watched = watched_users(users);
        for g in 0..GATEWAYS {
            let mine: Vec<u64> = (0..watched).filter(|u| u % GATEWAYS == g).collect();
            listeners.push(pool.pick(g).watch(mine, ledger.changes.clone()).await?);
        }
        let conversations = context.scaled(CONVERSATIONS);
        let shared = Rc::new(Pool(pool.0.clone()));
        let tails = Tails::default();
        let mut tasks = presence(context, &shared, &ledger, (users, watched), &tails);
        tasks.extend(messaging(context, shared, &ledger, users, conversations));
        finish(tasks, context.window, Duration::from_secs(30)).await;
        tails.finish(context.window, Duration::from_secs(30)).await;
        // Pushes still on their way to the gateways arrive before the count.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for listener in listeners {
            listener.abort();
        }
        context.loaded();
        let sent: usize = ledger.sent.borrow().values().map(BTreeSet::len).sum();
        let mut outcome = Outcome {
            figures: vec![
                ("messages sent", sent as f64),
                ("history reads", ledger.page_reads.get() as f64),
                (
                    "reads that repeated a message",
                    ledger.repeated.get() as f64,
                ),
                ("reads that skipped a message", ledger.skipped.get() as f64),
                (
                    "contacts seen offline",
                    ledger.offline_contacts.get() as f64,
                ),
                ("watched users gone away", ledger.away.get() as f64),
            ],
            checks: Vec::new(),
            plotted: vec![
                "send message",
                "page history",
                "heartbeat",
                "contacts online",
            ],
        };
        if context.check() {
            outcome.checks = self.check(&*pool.pick(0), &ledger).await?;
        }
        Ok(outcome)
    }

    async fn check<C: Chat>(&self, chat: &C, ledger: &Ledger) -> Result<Vec<Check>, BoxError> {
        let (routed, lost, doubled) = {
            let received = ledger.received.0.borrow();
            let routed = ledger.routed.borrow();
            let lost = routed
                .iter()
                .filter(|id| !received.contains_key(*id))
                .count();
            let doubled = received.values().filter(|count| **count > 1).count();
            (routed.len(), lost, doubled)
        };
        let mut wrong = Vec::new();
        let sent: Vec<(u64, Vec<u64>)> = ledger
            .sent
            .borrow()
            .iter()
            .map(|(c, ids)| (*c, ids.iter().rev().take(KEEP as usize).copied().collect()))
            .collect();
        for (c, expected) in &sent {
            let kept: BTreeSet<u64> = chat.history(&conversation(*c)).await?.into_iter().collect();
            if kept != expected.iter().copied().collect::<BTreeSet<u64>>() {
                wrong.push(format!(
                    "{}: {} kept, {} expected",
                    conversation(*c),
                    kept.len(),
                    expected.len()
                ));
            }
        }
        let users: Vec<u64> = (0..self.users).collect();
        let mut offline = 0;
        for chunk in users.chunks(100) {
            offline += chat.online(chunk).await?.iter().filter(|on| !**on).count();
        }
        let bad_read = ledger.first_bad_read.borrow().clone().unwrap_or_default();
        let (missed, stale) = {
            let received = ledger.changes.0.borrow();
            let acknowledged = ledger.acknowledged.borrow();
            let missed: Vec<String> = acknowledged
                .iter()
                .filter(|(user, (up, down))| {
                    received.get(*user).map(|(u, d, _)| (*u, *d)) != Some((*up, *down))
                })
                .map(|(user, want)| {
                    let got = received.get(user);
                    format!("u:{user} acknowledged {want:?}, watched {got:?}")
                })
                .collect();
            let stale = received.values().filter(|(_, _, online)| !online).count();
            (missed, stale)
        };
        Ok(vec![
            Check::new(
                "history pages never skip or repeat a message",
                ledger.repeated.get() == 0 && ledger.skipped.get() == 0,
                match ledger.repeated.get() + ledger.skipped.get() {
                    0 => format!("{} reads of up to {PAGES} pages", ledger.page_reads.get()),
                    _ => format!(
                        "{} reads repeated, {} skipped, first {bad_read}",
                        ledger.repeated.get(),
                        ledger.skipped.get()
                    ),
                },
            ),
            Check::new(
                "every routed message reached its gateway once",
                lost == 0 && doubled == 0,
                format!("{routed} routed, {lost} lost, {doubled} delivered twice"),
            ),
            Check::none_of(
                "each conversation keeps its newest acknowledged messages",
                &wrong,
                "disagree",
                format!("{} conversations agree", sent.len()),
            ),
            Check::new(
                "every watched change reached the watching gateway, last one last",
                missed.is_empty() && stale == 0,
                match missed.first() {
                    None if stale == 0 => format!(
                        "{} users' changes arrived, each ending online",
                        ledger.acknowledged.borrow().len()
                    ),
                    None => format!("{stale} users last seen offline by their watchers"),
                    Some(first) => format!("{} users' changes differ, first {first}", missed.len()),
                },
            ),
            Check::new(
                "users who kept beating are online",
                offline == 0,
                format!("{} users, {offline} offline", self.users),
            ),
        ])
    }
}

/// The presence activities: heartbeats, watched users leaving and coming back, contact
/// lists read.
fn presence<C: Chat + 'static>(
    context: &Context,
    shared: &Rc<Pool<Rc<C>>>,
    ledger: &Rc<Ledger>,
    (users, watched): (u64, u64),
    tails: &Tails,
) -> Vec<tokio::task::JoinHandle<()>> {
    let recorder = &context.recorder;
    let beat_rate = users as f64 / BEAT_PERIOD_S;
    let mut tasks = {
        let (shared, recorder, ledger) = (shared.clone(), recorder.clone(), ledger.clone());
        paced(
            context.window,
            16,
            move |_| beat_rate,
            move |seq, start| {
                let (chat, recorder, ledger) = (shared.pick(seq), recorder.clone(), ledger.clone());
                async move {
                    let user = seq % users;
                    let beat = chat.beat(user).await;
                    recorder.step("heartbeat", start, beat.is_ok());
                    if matches!(beat, Ok(true)) && user < watched {
                        ledger.changed(user, true);
                    }
                }
            },
        )
    };
    let away_rate = context.scaled(AWAY_PER_SECOND) as f64;
    tasks.extend({
        let (shared, recorder, ledger) = (shared.clone(), recorder.clone(), ledger.clone());
        let tails = tails.clone();
        paced(
            context.window,
            8,
            move |_| away_rate,
            move |seq, start| {
                let (chat, recorder, ledger) = (shared.pick(seq), recorder.clone(), ledger.clone());
                let tails = tails.clone();
                async move {
                    let user = seq % watched;
                    let left = chat.leave(user).await;
                    recorder.step("leave", start, left.is_ok());
                    if matches!(left, Ok(true)) {
                        ledger.changed(user, false);
                        bump(&ledger.away);
                    }
                    tails.spawn(async move {
                        tokio::time::sleep(AWAY).await;
                        let start = std::time::Instant::now();
                        let back = chat.beat(user).await;
                        recorder.step("heartbeat", start, back.is_ok());
                        if matches!(back, Ok(true)) {
                            ledger.changed(user, true);
                        }
                    });
                }
            },
        )
    });
    let contacts_rate = context.scaled(CONTACT_READS_PER_SECOND) as f64;
    tasks.extend({
        let (shared, recorder, ledger) = (shared.clone(), recorder.clone(), ledger.clone());
        paced(
            context.window,
            16,
            move |_| contacts_rate,
            move |seq, start| {
                let (chat, recorder, ledger) = (shared.pick(seq), recorder.clone(), ledger.clone());
                async move {
                    let user = seq % users;
                    let contacts: Vec<u64> =
                        (1..=CONTACTS).map(|k| (user + k * 7_919) % users).collect();
                    let online = chat.online(&contacts).await;
                    recorder.step("contacts online", start, online.is_ok());
                    let offline = online
                        .map(|o| o.iter().filter(|on| !**on).count())
                        .unwrap_or(0);
                    ledger
                        .offline_contacts
                        .set(ledger.offline_contacts.get() + offline as u64);
                }
            },
        )
    });
    tasks
}

/// The messaging activities: messages sent and routed, history paged back.
fn messaging<C: Chat + 'static>(
    context: &Context,
    shared: Rc<Pool<Rc<C>>>,
    ledger: &Rc<Ledger>,
    users: u64,
    conversations: u64,
) -> Vec<tokio::task::JoinHandle<()>> {
    let recorder = &context.recorder;
    let mut tasks = Vec::new();
    let message_rate = context.scaled(MESSAGES_PER_SECOND) as f64;
    tasks.extend({
        let (shared, recorder, ledger) = (shared.clone(), recorder.clone(), ledger.clone());
        paced(
            context.window,
            64,
            move |_| message_rate,
            move |seq, start| {
                let (chat, recorder, ledger) = (shared.pick(seq), recorder.clone(), ledger.clone());
                async move {
                    let sent = send(&*chat, &recorder, &ledger, seq, conversations, users).await;
                    recorder.flow("send message", start, sent.is_ok());
                }
            },
        )
    });
    let history_rate = context.scaled(HISTORY_READS_PER_SECOND) as f64;
    tasks.extend({
        let (recorder, ledger) = (recorder.clone(), ledger.clone());
        paced(
            context.window,
            32,
            move |_| history_rate,
            move |seq, start| {
                let (chat, recorder, ledger) = (shared.pick(seq), recorder.clone(), ledger.clone());
                async move {
                    let read = read_history(&*chat, &ledger, seq, conversations).await;
                    recorder.flow("page history", start, read.is_ok());
                }
            },
        )
    });
    tasks
}

/// A message: appended to its conversation, then routed to the recipient's gateway.
async fn send<C: Chat>(
    chat: &C,
    recorder: &Recorder,
    ledger: &Ledger,
    seq: u64,
    conversations: u64,
    users: u64,
) -> Result<(), BoxError> {
    let mut rng = SmallRng::seed_from_u64(seq ^ 0xc4);
    let c = skewed(&mut rng, conversations);
    let id = seq + 1;
    timed(recorder, "append", chat.append(&conversation(c), id)).await?;
    ledger.sent.borrow_mut().entry(c).or_default().insert(id);
    let recipient = (c * 2 + 1) % users;
    let receivers = timed(
        recorder,
        "route",
        chat.route(&gateway(recipient % GATEWAYS), id),
    )
    .await?;
    if receivers > 0 {
        ledger.routed.borrow_mut().push(id);
    }
    Ok(())
}

/// Pages back through a conversation while messages keep arriving, and checks the pages
/// against the messages acknowledged before the read began.
async fn read_history<C: Chat>(
    chat: &C,
    ledger: &Ledger,
    seq: u64,
    conversations: u64,
) -> Result<(), BoxError> {
    let c = skewed(&mut SmallRng::seed_from_u64(seq ^ 0x4e), conversations);
    let key = conversation(c);
    let before: BTreeSet<u64> = ledger.sent.borrow().get(&c).cloned().unwrap_or_default();
    let mut seen: Vec<u64> = Vec::new();
    let mut cursor = None;
    for number in 0..PAGES {
        let (ids, next, more) = chat.page(&key, number, cursor).await?;
        seen.extend(ids);
        cursor = next;
        if !more {
            break;
        }
    }
    bump(&ledger.page_reads);
    let shown: BTreeSet<u64> = seen.iter().copied().collect();
    let note = |what: &str| {
        ledger
            .first_bad_read
            .borrow_mut()
            .get_or_insert_with(|| format!("{key} {what}: {seen:?}"));
    };
    if shown.len() < seen.len() {
        bump(&ledger.repeated);
        note("repeated");
    } else if let (Some(&newest), Some(&oldest)) = (shown.last(), shown.first()) {
        if before.range(oldest..=newest).any(|id| !shown.contains(id)) {
            bump(&ledger.skipped);
            note("skipped");
        }
    }
    Ok(())
}
