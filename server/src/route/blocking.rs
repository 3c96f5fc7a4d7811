//! Blocking pops across shards: one attempt on the lists' owner, then a wait there that a
//! push serves or a timeout ends, and the end of a closing connection's waits.

use std::rc::Rc;

use tessera_protocol::{Command, Value};

use super::coordinator::{await_one, Request};
use crate::families;
use crate::shard::output::ConnOutput;
use crate::shard::Shard;

/// BLPOP, BRPOP, BLMPOP, BLMOVE: one attempt on the lists' owner, and if every list is
/// empty, a wait there until a push serves it or its timeout passes (NIL then). The
/// connection goes on serving its other requests meanwhile; closing it ends the wait.
pub(super) fn block(
    shard: &Rc<Shard>,
    conn: &Rc<ConnOutput>,
    request: Request,
    command: &Command<&[u8]>,
    owner: u16,
) {
    let owned = command.to_owned_bytes();
    let (now, from) = (request.now, conn.id.get());
    conn.blocked.set(true);
    let answer = shard.call_later(owner, move |target: &Rc<Shard>| {
        let target = target.clone();
        async move {
            if let Some(refusal) = target.write_refusal() {
                return refusal;
            }
            if let Some(refusal) = target.make_room(owned.spec(), now) {
                return refusal;
            }
            let first = target
                .with_keyspace(|keyspace| families::apply(keyspace, &owned, now).into_value());
            let Command::Blocking(blocking) = &owned else {
                return first;
            };
            if first != Value::Nil || target.is_stopping() {
                return first;
            }
            let (reply, mut served) = tokio::sync::oneshot::channel();
            let mut body = bytes::BytesMut::new();
            owned.encode(&mut body);
            let waiter = crate::data::blocked::Waiter {
                body: body.freeze(),
                lists: blocking
                    .watched_lists()
                    .into_iter()
                    .map(Box::from)
                    .collect(),
                conn: from,
                reply,
            };
            let id = target.keyspace.borrow_mut().blocked.add(waiter);
            match blocking.block_ms() {
                Some(0) | None => served.await.unwrap_or(Value::Nil),
                Some(ms) => tokio::select! {
                    value = &mut served => value.unwrap_or(Value::Nil),
                    () = tokio::time::sleep(std::time::Duration::from_millis(ms)) => {
                        target.keyspace.borrow_mut().blocked.remove(id);
                        // Served between the timer firing and this step: keep the pop.
                        served.try_recv().unwrap_or(Value::Nil)
                    }
                },
            }
        }
    });
    await_one(shard, conn, request, answer);
}

/// Ends the waits of a closing connection that ever blocked, on every shard.
pub fn unblock_all(shard: &Rc<Shard>, conn: &ConnOutput) {
    if !conn.blocked.get() {
        return;
    }
    let closing = conn.id.get();
    for to in 0..shard.shards() {
        shard.submit(to, move |target: &Rc<Shard>| {
            target
                .keyspace
                .borrow_mut()
                .blocked
                .cancel_connection(closing);
        });
    }
    shard.flush();
}
