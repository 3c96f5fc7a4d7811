//! What access control needs to know about a command: its categories and its keys.
//!
//! Categories follow Redis's ACL: `@read` and `@write` by whether the command changes
//! data, `@admin` for node operations, `@dangerous` for those and for commands that
//! reveal or destroy the whole node's state, `@connection` for the handshake, one per
//! family (`@keys`, `@geo`, `@sorted_sets` ...), and Redis's data-type categories
//! (`@string`, `@keyspace`, `@hash`, `@list`, `@set`, `@sortedset`, `@bitmap`,
//! `@transaction`; `@geo` takes in Redis's GEO commands beside ours) so rules written for
//! Redis mean the same here.

use super::admin::opcode as admin_op;
use super::{
    family_of, Command, CommandSpec, DedupCommand, GeoCommand, InventoryCommand, KeyCommand,
    PresenceCommand, TimelineCommand, COMMANDS, FAMILY_NAMES,
};
use crate::wire::Payload;

/// Categories that are not family names.
pub const CATEGORIES: &[&str] = &[
    "all",
    "read",
    "write",
    "admin",
    "dangerous",
    "connection",
    "string",
    "keyspace",
    "hash",
    "list",
    "set",
    "sortedset",
    "bitmap",
    "transaction",
];

/// Commands of the keys family that Redis files under `@keyspace` rather than `@string`.
const KEYSPACE_COMMANDS: &[&str] = &[
    "DEL",
    "EXISTS",
    "EXPIRE",
    "PEXPIRE",
    "EXPIREAT",
    "PEXPIREAT",
    "EXPIRETIME",
    "PEXPIRETIME",
    "TTL",
    "PTTL",
    "PERSIST",
];

/// Redis's data-type categories, by the families (and names) that hold their commands.
fn in_redis_category(spec: &CommandSpec, name: &str) -> Option<bool> {
    let family = family_of(spec);
    let blocking_z = family == "blocking" && spec.name.contains('Z');
    Some(match name {
        "string" => {
            matches!(family, "keys" | "strings")
                && !KEYSPACE_COMMANDS.contains(&spec.name)
                && !matches!(spec.name, "SETBIT" | "GETBIT")
        }
        "keyspace" => family == "keyspace" || KEYSPACE_COMMANDS.contains(&spec.name),
        "bitmap" => matches!(spec.name, "SETBIT" | "GETBIT"),
        "hash" => family == "hashes",
        "list" => family == "lists" || (family == "blocking" && !blocking_z),
        "set" => family == "sets",
        "sortedset" => matches!(family, "sorted_sets" | "sorted_set_algebra") || blocking_z,
        "geo" => matches!(family, "geo" | "geo_sets"),
        "transaction" => family == "transactions",
        _ => return None,
    })
}

/// Commands every authenticated connection may run, whatever its user's rules: the
/// handshake, asking who it is, and choosing how its own requests meet replicas.
pub fn is_connection(spec: &CommandSpec) -> bool {
    matches!(
        spec.opcode,
        admin_op::PING
            | admin_op::HELLO
            | admin_op::AUTH
            | admin_op::ACL_WHOAMI
            | admin_op::ACL_CAT
            | super::cluster::opcode::WAIT
            | super::cluster::opcode::READONLY
            | super::cluster::opcode::READWRITE
    )
}

/// Node operations: snapshots, user management and cluster changes.
fn is_admin(spec: &CommandSpec) -> bool {
    matches!(
        spec.opcode,
        super::cluster::opcode::CLUSTER_CREATE
            | super::cluster::opcode::CLUSTER_JOIN
            | super::cluster::opcode::CLUSTER_MIGRATE
            | super::cluster::opcode::CLUSTER_IMPORT
            | super::cluster::opcode::CLUSTER_DROP
            | super::cluster::opcode::CLUSTER_FORGET
            | super::cluster::opcode::CLUSTER_REPLICATE
            | super::cluster::opcode::CLUSTER_SYNC
            | super::cluster::opcode::CLUSTER_PULL
            | super::cluster::opcode::CLUSTER_FAILOVER
            | admin_op::SNAPSHOT
            | admin_op::LASTSAVE
            | admin_op::ACL_SETUSER
            | admin_op::ACL_DELUSER
            | admin_op::ACL_LIST
    ) || family_of(spec) == "diagnostics"
}

/// Whether `spec` is in category `name` (without the `@`); `None` for a name that is no
/// category.
pub fn in_category(spec: &CommandSpec, name: &str) -> Option<bool> {
    Some(match name {
        "all" => true,
        "connection" => is_connection(spec),
        "admin" => is_admin(spec),
        "dangerous" => is_admin(spec) || matches!(spec.opcode, admin_op::FLUSHALL | admin_op::INFO),
        "write" => spec.writes,
        "read" => !spec.writes && !is_connection(spec) && !is_admin(spec),
        redis if in_redis_category(spec, redis).is_some() => in_redis_category(spec, redis)?,
        family if FAMILY_NAMES.contains(&family) => family_of(spec) == family,
        _ => return None,
    })
}

/// Every category name, the general ones first, then one per family.
pub fn category_names() -> impl Iterator<Item = &'static str> {
    CATEGORIES.iter().chain(FAMILY_NAMES).copied()
}

/// The commands in category `name`, in table order; `None` for an unknown category.
pub fn commands_in(name: &str) -> Option<Vec<&'static CommandSpec>> {
    in_category(&COMMANDS[0], name)?;
    Some(
        COMMANDS
            .iter()
            .filter(|spec| in_category(spec, name) == Some(true))
            .collect(),
    )
}

impl<P: Payload> Command<P> {
    /// Calls `visit` with every key the command names, for key-pattern rules. A geo
    /// command's key is its index; a reservation handle's is its SKU.
    pub fn for_each_key(&self, visit: &mut dyn FnMut(&[u8])) {
        let many = |keys: &[P], visit: &mut dyn FnMut(&[u8])| {
            keys.iter().for_each(|key| visit(key.as_ref()));
        };
        match self {
            Command::Keys(
                KeyCommand::Del(keys) | KeyCommand::Exists(keys) | KeyCommand::MGet(keys),
            ) => many(keys, visit),
            Command::Keys(KeyCommand::MSet(pairs)) => {
                pairs.iter().for_each(|(key, _)| visit(key.as_ref()))
            }
            Command::Dedup(DedupCommand::CheckMany { keys, .. }) => many(keys, visit),
            Command::Inventory(InventoryCommand::ReserveMulti { items, .. }) => {
                items.iter().for_each(|(sku, _)| visit(sku.as_ref()))
            }
            Command::Presence(
                PresenceCommand::Get(users)
                | PresenceCommand::Watch(users)
                | PresenceCommand::Unwatch(users),
            ) => many(users, visit),
            Command::Timelines(
                TimelineCommand::Fanout { keys, .. } | TimelineCommand::Merge { keys, .. },
            ) => many(keys, visit),
            Command::Geo(geo) => visit(GeoCommand::index(geo).as_ref()),
            Command::Sets(sets) => sets.for_each_key(visit),
            Command::Strings(strings) => strings.for_each_key(visit),
            Command::Transactions(tx) => tx.for_each_key(visit),
            Command::Blocking(blocking) => blocking.for_each_key(visit),
            Command::SortedSetAlgebra(algebra) => algebra.for_each_key(visit),
            Command::GeoSets(geo) => geo.for_each_key(visit),
            Command::Keyspace(keyspace) => {
                if let Some(key) = keyspace.single_key() {
                    visit(key.as_ref());
                }
                if let Some(key) = keyspace.second_key() {
                    visit(key.as_ref());
                }
            }
            Command::Lists(lists) => {
                if let Some(key) = lists.single_key() {
                    visit(key.as_ref());
                }
                if let Some(key) = lists.second_key() {
                    visit(key.as_ref());
                }
            }
            other => {
                if let Some(key) = other.single_key() {
                    visit(key.as_ref());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::spec_by_name;
    use bytes::Bytes;

    fn spec(name: &str) -> &'static CommandSpec {
        spec_by_name(name).unwrap()
    }

    #[test]
    fn categories_sort_commands_as_redis_does() {
        assert_eq!(in_category(spec("GET"), "read"), Some(true));
        assert_eq!(in_category(spec("GET"), "write"), Some(false));
        assert_eq!(in_category(spec("SET"), "write"), Some(true));
        assert_eq!(in_category(spec("FLUSHALL"), "dangerous"), Some(true));
        assert_eq!(in_category(spec("FLUSHALL"), "admin"), Some(false));
        assert_eq!(in_category(spec("SNAPSHOT"), "admin"), Some(true));
        assert_eq!(in_category(spec("ACL.SETUSER"), "dangerous"), Some(true));
        assert_eq!(in_category(spec("INFO"), "read"), Some(true));
        assert_eq!(in_category(spec("PING"), "read"), Some(false));
        assert_eq!(in_category(spec("GEO.NEAR"), "geo"), Some(true));
        assert_eq!(in_category(spec("GEO.NEAR"), "keys"), Some(false));
        assert_eq!(in_category(spec("ZADD"), "sorted_sets"), Some(true));
        assert_eq!(in_category(spec("GET"), "nonsense"), None);
        let names: Vec<&str> = category_names().collect();
        assert!(names.contains(&"hashes") && names.contains(&"dangerous"));
        let admin = commands_in("admin").unwrap();
        assert!(admin
            .iter()
            .all(|spec| ["admin", "cluster", "diagnostics"].contains(&family_of(spec))));
        // Redis's data-type categories mean what they mean there.
        assert_eq!(in_category(spec("GET"), "string"), Some(true));
        assert_eq!(in_category(spec("DEL"), "string"), Some(false));
        assert_eq!(in_category(spec("DEL"), "keyspace"), Some(true));
        assert_eq!(in_category(spec("HSET"), "hash"), Some(true));
        assert_eq!(in_category(spec("BLPOP"), "list"), Some(true));
        assert_eq!(in_category(spec("BZPOPMIN"), "sortedset"), Some(true));
        assert_eq!(in_category(spec("ZUNIONSTORE"), "sortedset"), Some(true));
        assert_eq!(in_category(spec("GEOADD"), "geo"), Some(true));
        assert_eq!(in_category(spec("SLOWLOG.RESET"), "dangerous"), Some(true));
        assert_eq!(in_category(spec("CLUSTER.CREATE"), "admin"), Some(true));
        assert_eq!(in_category(spec("CLUSTER.SLOTS"), "read"), Some(true));
    }

    #[test]
    fn every_key_of_a_command_is_visited() {
        let words = |line: &str| -> Vec<Bytes> {
            line.split(' ')
                .map(|w| Bytes::from(w.to_string()))
                .collect()
        };
        let keys = |line: &str| {
            let mut seen = Vec::new();
            Command::parse_words(&words(line))
                .unwrap()
                .for_each_key(&mut |key| seen.push(String::from_utf8_lossy(key).into_owned()));
            seen
        };
        assert_eq!(keys("GET a"), ["a"]);
        assert_eq!(keys("MSET a 1 b 2"), ["a", "b"]);
        assert_eq!(keys("DEL a b c"), ["a", "b", "c"]);
        assert_eq!(keys("TL.MERGE LIMIT 10 t1 t2"), ["t1", "t2"]);
        assert_eq!(keys("GEO.GET fleet d1"), ["fleet"]);
        assert!(keys("PING").is_empty());
    }
}
