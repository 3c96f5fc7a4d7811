//! One ACL user: whether it is on, its passwords, the commands and keys it may use, and the
//! Redis rule syntax that changes them.

use sha2::{Digest, Sha256};
use tessera_protocol::commands::access::{commands_in, in_category};
use tessera_protocol::commands::spec_by_name;
use tessera_protocol::{CommandSpec, COMMANDS};

use crate::data::glob;

/// A password as stored: its SHA-256, as Redis keeps it.
pub type PasswordHash = [u8; 32];

/// Hashes a password for storing or comparing.
pub fn hash_password(password: &[u8]) -> PasswordHash {
    Sha256::digest(password).into()
}

/// Which commands a user may run: one bit per row of `COMMANDS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct CommandSet([u64; 4]);

impl CommandSet {
    fn set(&mut self, index: usize, allowed: bool) {
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        if allowed {
            self.0[word] |= bit;
        } else {
            self.0[word] &= !bit;
        }
    }

    fn contains(&self, index: usize) -> bool {
        self.0[index / 64] & (1 << (index % 64)) != 0
    }
}

/// One key pattern and what it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyPattern {
    glob: Vec<u8>,
    read: bool,
    write: bool,
}

/// A user and everything its rules grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The name it authenticates with.
    pub name: String,
    /// Whether it may authenticate at all.
    pub enabled: bool,
    /// Whether any password (or none) authenticates it.
    pub nopass: bool,
    passwords: Vec<PasswordHash>,
    commands: CommandSet,
    /// The command rules as given, normalised, so ACL.LIST can show them.
    command_rules: Vec<String>,
    keys: Vec<KeyPattern>,
    /// Whether every command is allowed, so checking one costs nothing.
    all_commands: bool,
    /// Whether every key may be read and written.
    all_keys: bool,
}

impl User {
    /// A new user as Redis makes one: off, no passwords, no commands, no keys.
    pub fn new(name: &str) -> User {
        User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            passwords: Vec::new(),
            commands: CommandSet::default(),
            command_rules: vec!["-@all".into()],
            keys: Vec::new(),
            all_commands: false,
            all_keys: false,
        }
    }

    /// Applies rules in order; on a bad rule nothing is changed and the error names it.
    ///
    /// # Errors
    /// The first rule that is not valid ACL syntax, or names an unknown command or
    /// category.
    pub fn apply<S: AsRef<[u8]>>(&mut self, rules: &[S]) -> Result<(), String> {
        let mut changed = self.clone();
        for rule in rules {
            let rule = std::str::from_utf8(rule.as_ref())
                .map_err(|_| "an ACL rule must be UTF-8".to_string())?;
            changed.apply_one(rule)?;
        }
        changed.all_commands = COMMANDS
            .iter()
            .enumerate()
            .all(|(index, _)| changed.commands.contains(index));
        changed.all_keys = changed
            .keys
            .iter()
            .any(|p| p.glob == b"*" && p.read && p.write);
        *self = changed;
        Ok(())
    }

    fn apply_one(&mut self, rule: &str) -> Result<(), String> {
        let bad = || format!("invalid ACL rule '{rule}'");
        match rule.to_ascii_lowercase().as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "allkeys" => self.add_keys("*", true, true),
            "resetkeys" => self.keys.clear(),
            "allcommands" => self.set_category("all", true),
            "nocommands" => self.set_category("all", false),
            "reset" => {
                *self = User::new(&self.name);
            }
            _ => {
                let (head, rest) = rule.split_at(1);
                match head {
                    ">" => {
                        let hash = hash_password(rest.as_bytes());
                        if !self.passwords.contains(&hash) {
                            self.passwords.push(hash);
                        }
                        self.nopass = false;
                    }
                    "<" => {
                        let hash = hash_password(rest.as_bytes());
                        self.passwords.retain(|h| *h != hash);
                    }
                    "#" => {
                        let hash = parse_hash(rest).ok_or_else(bad)?;
                        if !self.passwords.contains(&hash) {
                            self.passwords.push(hash);
                        }
                        self.nopass = false;
                    }
                    "!" => {
                        let hash = parse_hash(rest).ok_or_else(bad)?;
                        self.passwords.retain(|h| *h != hash);
                    }
                    "~" => self.add_keys(rest, true, true),
                    "%" => {
                        let (grants, pattern) = rest.split_once('~').ok_or_else(bad)?;
                        let grants = grants.to_ascii_uppercase();
                        let (read, write) = (grants.contains('R'), grants.contains('W'));
                        if grants.is_empty() || grants.chars().any(|c| c != 'R' && c != 'W') {
                            return Err(bad());
                        }
                        self.add_keys(pattern, read, write);
                    }
                    "+" | "-" => {
                        let allow = head == "+";
                        match rest.strip_prefix('@') {
                            Some(category) => {
                                let category = category.to_ascii_lowercase();
                                if in_category(&COMMANDS[0], &category).is_none() {
                                    return Err(format!(
                                        "unknown ACL category '{category}' in '{rule}'"
                                    ));
                                }
                                self.set_category(&category, allow);
                            }
                            None => {
                                let spec = spec_by_name(rest).ok_or_else(|| {
                                    format!("unknown command '{rest}' in '{rule}'")
                                })?;
                                self.set_command(spec, allow);
                            }
                        }
                    }
                    _ => return Err(bad()),
                }
            }
        }
        Ok(())
    }

    fn add_keys(&mut self, pattern: &str, read: bool, write: bool) {
        let glob = pattern.as_bytes().to_vec();
        match self.keys.iter_mut().find(|p| p.glob == glob) {
            Some(existing) => {
                existing.read |= read;
                existing.write |= write;
            }
            None => self.keys.push(KeyPattern { glob, read, write }),
        }
    }

    fn set_category(&mut self, category: &str, allow: bool) {
        let rule = format!("{}@{category}", if allow { '+' } else { '-' });
        if category == "all" {
            // Everything before it is overridden: the rules shown start afresh.
            self.command_rules.clear();
        }
        self.command_rules.push(rule);
        for spec in commands_in(category).unwrap_or_default() {
            let index = row(spec);
            self.commands.set(index, allow);
        }
    }

    fn set_command(&mut self, spec: &CommandSpec, allow: bool) {
        let sign = if allow { '+' } else { '-' };
        self.command_rules
            .push(format!("{sign}{}", spec.name.to_ascii_lowercase()));
        self.commands.set(row(spec), allow);
    }

    /// Whether `password` authenticates this user (an enabled one).
    pub fn accepts(&self, password: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let offered = hash_password(password);
        // Every stored hash is compared, each in full, so the time says nothing about
        // which one (or how much of one) matched.
        self.passwords.iter().fold(false, |found, stored| {
            found | constant_time_eq(stored, &offered)
        })
    }

    /// Whether any connection may use this user without a password.
    pub fn is_open(&self) -> bool {
        self.enabled && self.nopass
    }

    /// Whether the user may run the command at `COMMANDS[index]`.
    pub fn may_run(&self, index: usize) -> bool {
        self.all_commands || self.commands.contains(index)
    }

    /// Whether the user may run every command on every key, so nothing needs checking.
    pub fn is_unrestricted(&self) -> bool {
        self.all_commands && self.all_keys
    }

    /// Whether every key is open to this user, so its keys need no checking.
    pub fn has_all_keys(&self) -> bool {
        self.all_keys
    }

    /// Whether the user may read (or, with `write`, write) `key`.
    pub fn may_touch(&self, key: &[u8], write: bool) -> bool {
        self.keys
            .iter()
            .filter(|p| if write { p.write } else { p.read })
            .any(|p| glob::matches(&p.glob, key))
    }

    /// The rules that would recreate this user, as ACL.LIST shows them.
    pub fn describe(&self) -> String {
        let mut words = vec![
            "user".to_string(),
            self.name.clone(),
            if self.enabled { "on" } else { "off" }.to_string(),
        ];
        if self.nopass {
            words.push("nopass".into());
        }
        for hash in &self.passwords {
            words.push(format!("#{}", to_hex(hash)));
        }
        if self.keys.is_empty() {
            words.push("resetkeys".into());
        }
        for pattern in &self.keys {
            let glob = String::from_utf8_lossy(&pattern.glob);
            words.push(match (pattern.read, pattern.write) {
                (true, true) => format!("~{glob}"),
                (true, false) => format!("%R~{glob}"),
                _ => format!("%W~{glob}"),
            });
        }
        words.extend(self.command_rules.iter().cloned());
        words.join(" ")
    }
}

fn row(spec: &CommandSpec) -> usize {
    COMMANDS
        .iter()
        .position(|s| s.opcode == spec.opcode)
        .unwrap_or(0)
}

fn constant_time_eq(a: &PasswordHash, b: &PasswordHash) -> bool {
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hash(hex: &str) -> Option<PasswordHash> {
    if hex.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &str) -> User {
        let mut user = User::new("u");
        let rules: Vec<&str> = rules.split(' ').collect();
        user.apply(&rules).unwrap();
        user
    }

    fn index(name: &str) -> usize {
        row(spec_by_name(name).unwrap())
    }

    #[test]
    fn rules_apply_in_order_as_in_redis() {
        let reader = user("on >pw %R~cache:* +@read -mget");
        assert!(reader.accepts(b"pw") && !reader.accepts(b"other"));
        assert!(reader.may_run(index("GET")) && !reader.may_run(index("SET")));
        assert!(
            !reader.may_run(index("MGET")),
            "a later -command removes one"
        );
        assert!(reader.may_touch(b"cache:1", false) && !reader.may_touch(b"cache:1", true));
        assert!(!reader.may_touch(b"user:1", false));
        let admin = user("on nopass allkeys allcommands -@dangerous");
        assert!(admin.accepts(b"anything"));
        assert!(admin.has_all_keys());
        assert!(!admin.may_run(index("FLUSHALL")) && admin.may_run(index("DEL")));
        let split = user("on >a %R~r:* %W~w:*");
        assert!(split.may_touch(b"r:1", false) && !split.may_touch(b"r:1", true));
        assert!(split.may_touch(b"w:1", true) && !split.may_touch(b"w:1", false));
        assert!(
            !user("off >pw").accepts(b"pw"),
            "a disabled user never authenticates"
        );
        assert!(!user("on >pw reset").accepts(b"pw"));
    }

    #[test]
    fn a_bad_rule_changes_nothing() {
        let mut u = user("on >pw +@read");
        let before = u.clone();
        assert!(u.apply(&["-@read", "+nosuchcommand"]).is_err());
        assert!(u.apply(&["+@nosuchcategory"]).is_err());
        assert!(u.apply(&["%X~k"]).is_err());
        assert!(u.apply(&["#abc"]).is_err());
        assert_eq!(u, before);
    }

    #[test]
    fn described_rules_recreate_the_user() {
        for rules in [
            "on >pw ~cache:* %R~ro:* +@read -mget",
            "off nopass allkeys allcommands -@dangerous",
            "on #5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 -@all +get",
        ] {
            let original = user(rules);
            let described = original.describe();
            let words: Vec<&str> = described.split(' ').skip(2).collect();
            let mut again = User::new("u");
            again.apply(&words).unwrap();
            assert_eq!(again, original, "{described}");
        }
        assert!(user("on >password").accepts(b"password"));
    }
}
