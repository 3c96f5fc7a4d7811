//! The HELLO reply: what a client needs to know to route keys to shards.

use crate::value::Value;

/// Routing facts a server announces in its HELLO reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloInfo {
    /// Protocol version the server will speak on this connection.
    pub version: u16,
    /// Identifier of this node in the cluster.
    pub node_id: String,
    /// Number of shards on this node.
    pub shards: u16,
    /// Topology epoch; grows whenever the cluster layout changes.
    pub epoch: u64,
    /// Shard serving this connection.
    pub shard: u16,
    /// Server software version.
    pub server: String,
    /// Whether the node runs in cluster mode: then keys route by the slot map
    /// (CLUSTER.SLOTS), not to this node alone.
    pub cluster: bool,
}

impl HelloInfo {
    /// Encodes as the MAP value HELLO replies with.
    pub fn to_value(&self) -> Value {
        Value::Map(vec![
            (Value::text("version"), Value::Int(i64::from(self.version))),
            (Value::text("node_id"), Value::text(self.node_id.clone())),
            (Value::text("shards"), Value::Int(i64::from(self.shards))),
            (Value::text("epoch"), Value::Int(self.epoch as i64)),
            (Value::text("shard"), Value::Int(i64::from(self.shard))),
            (Value::text("server"), Value::text(self.server.clone())),
            (Value::text("cluster"), Value::Bool(self.cluster)),
        ])
    }

    /// Reads a HELLO reply; `None` if a field is missing or out of range.
    pub fn from_value(value: &Value) -> Option<HelloInfo> {
        let int = |name| value.get(name).and_then(Value::as_int);
        let text = |name| match value.get(name) {
            Some(Value::Text(t)) => Some(t.clone()),
            _ => None,
        };
        Some(HelloInfo {
            version: u16::try_from(int("version")?).ok()?,
            node_id: text("node_id")?,
            shards: u16::try_from(int("shards")?).ok().filter(|n| *n > 0)?,
            epoch: u64::try_from(int("epoch")?).ok()?,
            shard: u16::try_from(int("shard")?).ok()?,
            server: text("server")?,
            cluster: matches!(value.get("cluster"), Some(Value::Bool(true))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_value() {
        let info = HelloInfo {
            version: 1,
            node_id: "n1".into(),
            shards: 4,
            epoch: 9,
            shard: 2,
            server: "0.1.0".into(),
            cluster: true,
        };
        assert_eq!(HelloInfo::from_value(&info.to_value()), Some(info));
        assert_eq!(HelloInfo::from_value(&Value::Nil), None);
    }
}
