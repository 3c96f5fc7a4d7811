//! Pipelines: queue many commands, send them together, get every reply in order.

use futures_util::future::join_all;
use tessera_protocol::{Command, Value};

use crate::connection::settle;
use crate::{Client, Result};

/// Commands queued to go out together; replies come back in queue order.
#[must_use = "a pipeline does nothing until executed"]
pub struct Pipeline {
    client: Client,
    commands: Vec<Command>,
}

impl Pipeline {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            commands: Vec::new(),
        }
    }

    /// Queues a command.
    pub fn add(&mut self, command: Command) -> &mut Self {
        self.commands.push(command);
        self
    }

    /// Commands queued.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Puts every command in flight on its shard's connection before awaiting any, then
    /// returns each command's own result in order.
    ///
    /// # Errors
    /// The outer error is a failure to reach a shard; per-command failures are inside.
    pub async fn execute(self) -> Result<Vec<Result<Value>>> {
        let mut answers = Vec::with_capacity(self.commands.len());
        let cluster = self.client.is_cluster();
        let mut sent = Vec::new();
        for command in self.commands {
            let (node, shard) = self.client.route(&command);
            let connection = node.link(shard, &self.client.inner.config).await?;
            if cluster {
                sent.push(command.clone());
            }
            answers.push(connection.start(command));
        }
        let mut results: Vec<Result<Value>> =
            join_all(answers).await.into_iter().map(settle).collect();
        // A redirect in a cluster: that command alone goes again, following the new map.
        for (result, command) in results.iter_mut().zip(sent) {
            if matches!(result, Err(error) if crate::routing::retryable(error)) {
                *result = self.client.call(command).await;
            }
        }
        Ok(results)
    }
}
