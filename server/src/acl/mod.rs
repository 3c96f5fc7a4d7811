//! Access control: the node's users, and each connection's session checked against them.
//!
//! Users live in one registry the shards share; a change bumps a generation counter, and
//! each connection, which holds its user's rules, looks at the counter (one atomic load)
//! before each request and fetches its user again when it moved.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tessera_protocol::commands::access::is_connection;
use tessera_protocol::wire::Payload;
use tessera_protocol::{AdminCommand, Command, ErrorCode, Value};

pub mod fuzzing;

pub mod user;

pub use user::User;

/// The user every connection starts as, when it needs no password.
pub const DEFAULT_USER: &str = "default";

/// The first delay after a failed authentication; each further failure doubles it.
const FIRST_FAILURE_DELAY: Duration = Duration::from_millis(50);
/// The longest delay after failed authentications.
const MAX_FAILURE_DELAY: Duration = Duration::from_secs(2);

/// The node's users.
#[derive(Debug)]
pub struct Acl {
    users: Mutex<BTreeMap<String, Arc<User>>>,
    /// Bumped on every change, so sessions know to look their user up again.
    generation: AtomicU64,
    /// Whether the default user needs no password: new connections start as it.
    default_open: AtomicBool,
}

impl Acl {
    /// The registry from the settings: the default user (with `requirepass`, if given,
    /// as its password), then each `user` line (`name rule...`, as in redis.conf).
    ///
    /// # Errors
    /// A line with no name, or a rule that is not valid.
    pub fn from_settings(requirepass: Option<&str>, lines: &[String]) -> Result<Acl, String> {
        let mut default = User::new(DEFAULT_USER);
        let open = ["on", "nopass", "allkeys", "allcommands"];
        default.apply(&open)?;
        if let Some(password) = requirepass.filter(|p| !p.is_empty()) {
            default.apply(&["resetpass".to_string(), format!(">{password}")])?;
        }
        let acl = Acl {
            users: Mutex::new(BTreeMap::from([(
                DEFAULT_USER.to_string(),
                Arc::new(default),
            )])),
            generation: AtomicU64::new(0),
            default_open: AtomicBool::new(false),
        };
        for line in lines {
            let mut words = line.split_whitespace();
            let name = match words.next() {
                Some("user") => words.next(),
                other => other,
            }
            .ok_or_else(|| format!("user line '{line}' names no user"))?;
            let rules: Vec<&str> = words.collect();
            acl.set_user(name, &rules)
                .map_err(|error| format!("user {name}: {error}"))?;
        }
        acl.refresh_default();
        Ok(acl)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Arc<User>>> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn refresh_default(&self) {
        let open = self.lock().get(DEFAULT_USER).is_some_and(|u| u.is_open());
        self.default_open.store(open, Ordering::Release);
    }

    /// The generation now: it moves on every change.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether a connection needs no password (the default user is on, with `nopass`):
    /// protected mode then keeps non-loopback clients out.
    pub fn default_is_open(&self) -> bool {
        self.default_open.load(Ordering::Acquire)
    }

    /// The user called `name`, as it is now.
    pub fn user(&self, name: &str) -> Option<Arc<User>> {
        self.lock().get(name).cloned()
    }

    /// The user `name` if `password` authenticates it.
    pub fn authenticate(&self, name: &[u8], password: &[u8]) -> Option<Arc<User>> {
        let name = std::str::from_utf8(name).ok()?;
        self.user(name).filter(|user| user.accepts(password))
    }

    /// Creates `name` (off, with nothing allowed) if missing, then applies `rules`.
    ///
    /// # Errors
    /// A bad name or rule; nothing changes then.
    pub fn set_user<S: AsRef<[u8]>>(&self, name: &str, rules: &[S]) -> Result<(), String> {
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("invalid username '{name}'"));
        }
        {
            let mut users = self.lock();
            let mut user = users
                .get(name)
                .map_or_else(|| User::new(name), |u| (**u).clone());
            user.apply(rules)?;
            users.insert(name.to_string(), Arc::new(user));
        }
        self.changed();
        Ok(())
    }

    /// Deletes users; the count of those that existed.
    ///
    /// # Errors
    /// Naming the default user, which cannot be deleted; nothing changes then.
    pub fn delete_users<S: AsRef<[u8]>>(&self, names: &[S]) -> Result<usize, String> {
        if names.iter().any(|n| n.as_ref() == DEFAULT_USER.as_bytes()) {
            return Err("the 'default' user cannot be deleted".into());
        }
        let removed = {
            let mut users = self.lock();
            names
                .iter()
                .filter_map(|n| std::str::from_utf8(n.as_ref()).ok())
                .filter(|n| users.remove(*n).is_some())
                .count()
        };
        self.changed();
        Ok(removed)
    }

    /// Every user's rule line, by name.
    pub fn describe_all(&self) -> Vec<String> {
        self.lock().values().map(|user| user.describe()).collect()
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.refresh_default();
    }
}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not authenticated yet.
    NoAuth,
    /// The user may not run this command or touch one of its keys.
    NoPerm(String),
    /// The user was deleted or disabled: the connection closes.
    UserGone,
}

impl Refusal {
    /// The error reply.
    pub fn to_value(&self) -> Value {
        match self {
            Refusal::NoAuth => Value::error(
                ErrorCode::NoAuth,
                "authentication required: send AUTH, or HELLO with AUTH",
            ),
            Refusal::NoPerm(message) => Value::error(ErrorCode::NoPerm, message.clone()),
            Refusal::UserGone => Value::error(
                ErrorCode::NoAuth,
                "this connection's user was deleted or disabled",
            ),
        }
    }
}

/// One connection's standing: who it is, and how it has failed.
#[derive(Debug, Clone)]
pub struct Session {
    user: Option<Arc<User>>,
    /// The registry generation `user` was read at.
    seen: u64,
    /// Failed authentications in a row.
    failures: u32,
}

impl Session {
    /// A new connection's session: the default user if it needs no password, else none.
    pub fn start(acl: &Acl) -> Session {
        let seen = acl.generation();
        let user = if acl.default_is_open() {
            acl.user(DEFAULT_USER).filter(|u| u.is_open())
        } else {
            None
        };
        Session {
            user,
            seen,
            failures: 0,
        }
    }

    /// The user's name, if authenticated.
    pub fn username(&self) -> Option<&str> {
        self.user.as_deref().map(|u| u.name.as_str())
    }

    /// Tries `password` for `username` (the default user if `None`): on success the
    /// session is that user; on failure, the delay before the connection's next request.
    pub fn authenticate(
        &mut self,
        acl: &Acl,
        username: Option<&[u8]>,
        password: &[u8],
    ) -> Result<(), Duration> {
        let name = username.unwrap_or(DEFAULT_USER.as_bytes());
        match acl.authenticate(name, password) {
            Some(user) => {
                self.seen = acl.generation();
                self.user = Some(user);
                self.failures = 0;
                Ok(())
            }
            None => {
                self.failures = self.failures.saturating_add(1);
                let doubled = FIRST_FAILURE_DELAY.saturating_mul(1 << (self.failures - 1).min(16));
                Err(doubled.min(MAX_FAILURE_DELAY))
            }
        }
    }

    /// Whether the session may run `command`. The handshake commands are always allowed
    /// once authenticated; HELLO and AUTH are answered by the caller before this.
    pub fn check<P: Payload>(&mut self, acl: &Acl, command: &Command<P>) -> Result<(), Refusal> {
        let user = self.current(acl)?;
        if user.is_unrestricted() {
            return Ok(());
        }
        let spec = command.spec();
        if is_connection(spec) {
            return Ok(());
        }
        if !user.may_run(command.table_index()) {
            return Err(Refusal::NoPerm(format!(
                "user '{}' has no permission to run '{}'",
                user.name, spec.name
            )));
        }
        if user.has_all_keys() {
            return Ok(());
        }
        let mut denied = None;
        command.for_each_key(&mut |key| {
            if denied.is_none() && !user.may_touch(key, spec.writes) {
                denied = Some(String::from_utf8_lossy(key).into_owned());
            }
        });
        match denied {
            None => Ok(()),
            Some(key) => Err(Refusal::NoPerm(format!(
                "user '{}' has no permission to {} key '{key}'",
                user.name,
                if spec.writes { "write" } else { "read" }
            ))),
        }
    }
}

impl Session {
    /// The session's user as the registry has it now (its rules may have changed since
    /// it authenticated); `UserGone` once it was deleted or disabled.
    fn current(&mut self, acl: &Acl) -> Result<&Arc<User>, Refusal> {
        let generation = acl.generation();
        if self.seen != generation {
            self.seen = generation;
            if let Some(name) = self.username() {
                match acl.user(name).filter(|u| u.enabled) {
                    Some(user) => self.user = Some(user),
                    None => {
                        self.user = None;
                        return Err(Refusal::UserGone);
                    }
                }
            }
        }
        self.user.as_ref().ok_or(Refusal::NoAuth)
    }

    /// Whether the session may run a node-wide command the RESP port answers itself
    /// (CONFIG, CLIENT LIST/KILL/UNBLOCK), named `what` in the refusal: only a user who may
    /// run every `@admin` command may, as those commands are `@admin` in Redis.
    pub fn check_admin(&mut self, acl: &Acl, what: &str) -> Result<(), Refusal> {
        let user = self.current(acl)?;
        let admin = tessera_protocol::commands::access::commands_in("admin").unwrap_or_default();
        if admin.iter().all(|spec| user.may_run(spec_index(spec))) {
            return Ok(());
        }
        Err(Refusal::NoPerm(format!(
            "user '{}' has no permission to run '{what}'",
            user.name
        )))
    }
}

/// A row's index in `COMMANDS`.
fn spec_index(spec: &tessera_protocol::CommandSpec) -> usize {
    tessera_protocol::COMMANDS
        .iter()
        .position(|row| row.opcode == spec.opcode)
        .unwrap_or(usize::MAX)
}

/// Whether `command` is one the connection answers from its session and the registry
/// (AUTH and the ACL commands) rather than one a shard runs.
pub fn is_session_command<P>(command: &Command<P>) -> bool {
    matches!(
        command,
        Command::Admin(
            AdminCommand::Auth { .. }
                | AdminCommand::AclWhoami
                | AdminCommand::AclSetUser { .. }
                | AdminCommand::AclDelUser(_)
                | AdminCommand::AclList
                | AdminCommand::AclCat(_)
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn command(line: &str) -> Command {
        let words: Vec<Bytes> = line
            .split(' ')
            .map(|w| Bytes::from(w.to_string()))
            .collect();
        Command::parse_words(&words).unwrap()
    }

    #[test]
    fn requirepass_makes_connections_authenticate() {
        let acl = Acl::from_settings(Some("s3cret"), &[]).unwrap();
        assert!(!acl.default_is_open());
        let mut session = Session::start(&acl);
        assert_eq!(session.check(&acl, &command("GET k")), Err(Refusal::NoAuth));
        assert!(session.authenticate(&acl, None, b"wrong").is_err());
        assert!(session.authenticate(&acl, None, b"s3cret").is_ok());
        assert_eq!(session.check(&acl, &command("GET k")), Ok(()));
        let open = Acl::from_settings(None, &[]).unwrap();
        assert!(open.default_is_open());
        assert_eq!(
            Session::start(&open).check(&open, &command("FLUSHALL")),
            Ok(())
        );
    }

    #[test]
    fn each_failure_doubles_the_delay_up_to_a_bound() {
        let acl = Acl::from_settings(Some("pw"), &[]).unwrap();
        let mut session = Session::start(&acl);
        let delays: Vec<Duration> = (0..8)
            .map(|_| session.authenticate(&acl, None, b"no").unwrap_err())
            .collect();
        assert_eq!(delays[0], FIRST_FAILURE_DELAY);
        assert_eq!(delays[1], FIRST_FAILURE_DELAY * 2);
        assert_eq!(*delays.last().unwrap(), MAX_FAILURE_DELAY);
        session.authenticate(&acl, None, b"pw").unwrap();
        assert_eq!(
            session.authenticate(&acl, None, b"no").unwrap_err(),
            FIRST_FAILURE_DELAY
        );
    }

    #[test]
    fn rules_and_keys_are_enforced_and_changes_reach_sessions() {
        let lines = ["user reader on >r ~cache:* +@read".to_string()];
        let acl = Acl::from_settings(Some("admin"), &lines).unwrap();
        let mut session = Session::start(&acl);
        session.authenticate(&acl, Some(b"reader"), b"r").unwrap();
        assert_eq!(session.check(&acl, &command("GET cache:1")), Ok(()));
        assert_eq!(session.check(&acl, &command("PING")), Ok(()));
        assert!(matches!(
            session.check(&acl, &command("SET cache:1 v")),
            Err(Refusal::NoPerm(_))
        ));
        assert!(matches!(
            session.check(&acl, &command("MGET cache:1 user:1")),
            Err(Refusal::NoPerm(_))
        ));
        assert!(matches!(
            session.check(&acl, &command("FLUSHALL")),
            Err(Refusal::NoPerm(_))
        ));
        acl.set_user("reader", &["+set"]).unwrap();
        assert_eq!(session.check(&acl, &command("SET cache:1 v")), Ok(()));
        acl.set_user("reader", &["off"]).unwrap();
        assert_eq!(
            session.check(&acl, &command("GET cache:1")),
            Err(Refusal::UserGone)
        );
        assert_eq!(
            session.check(&acl, &command("GET cache:1")),
            Err(Refusal::NoAuth)
        );
        assert!(acl.delete_users(&["default"]).is_err());
        assert_eq!(acl.delete_users(&["reader", "nobody"]), Ok(1));
        assert_eq!(acl.describe_all().len(), 1);
    }
}
