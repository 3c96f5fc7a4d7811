"""redis-py against tessera-server's RESP port: the key/value core, a pipeline, a WATCH
transaction, pub/sub, blocking pops and native commands, under RESP2 and RESP3."""

import sys
import threading

import redis

port = int(sys.argv[1])


def check(want, got, what):
    if want != got:
        print(f"FAIL {what}\n  want: {want!r}\n  got:  {got!r}")
        sys.exit(1)
    print(f"ok   {what}")


for protocol in (2, 3):
    r = redis.Redis(port=port, protocol=protocol, decode_responses=True)
    r.flushall()
    tag = f"py{protocol}"
    check(True, r.set(f"{tag}:k", "v", ex=100), f"RESP{protocol} SET EX")
    check("v", r.get(f"{tag}:k"), f"RESP{protocol} GET")
    check(True, 99 <= r.ttl(f"{tag}:k") <= 100, f"RESP{protocol} TTL")
    check(3, r.incrby(f"{tag}:n", 3), f"RESP{protocol} INCRBY")
    check(2, r.hset(f"{tag}:h", mapping={"a": "1", "b": "2"}), f"RESP{protocol} HSET")
    check({"a": "1", "b": "2"}, r.hgetall(f"{tag}:h"), f"RESP{protocol} HGETALL")
    r.zadd(f"{tag}:z", {"x": 1, "y": 2})
    # redis-py answers pairs as tuples under RESP2 and lists under RESP3, as with Redis.
    scored = [tuple(pair) for pair in r.zrange(f"{tag}:z", 0, -1, withscores=True)]
    check([("x", 1.0), ("y", 2.0)], scored, f"RESP{protocol} ZRANGE WITHSCORES")
    check(2, r.sadd(f"{tag}:s", "a", "b", "a"), f"RESP{protocol} SADD")
    check({"a", "b"}, set(r.smembers(f"{tag}:s")), f"RESP{protocol} SMEMBERS")

    pipe = r.pipeline(transaction=False)
    for i in range(100):
        pipe.set(f"{tag}:p:{i}", i)
    pipe.get(f"{tag}:p:99")
    check("99", pipe.execute()[-1], f"RESP{protocol} pipeline of 101 across shards")

    # Optimistic locking, as redis-py users write it.
    counter = "{" + tag + "}counter"
    r.set(counter, 0)

    def bump(pipe):
        value = int(pipe.get(counter))
        pipe.multi()
        pipe.set(counter, value + 1)

    for _ in range(20):
        r.transaction(bump, counter)
    check("20", r.get(counter), f"RESP{protocol} WATCH/MULTI/EXEC transaction")

    # A blocking pop served by a push from another connection.
    queue = f"{tag}:queue"
    got = {}
    waiter = threading.Thread(target=lambda: got.update(job=r.blpop(queue, timeout=5)))
    waiter.start()
    redis.Redis(port=port, protocol=protocol, decode_responses=True).rpush(queue, "job-1")
    waiter.join()
    check([queue, "job-1"], list(got["job"]), f"RESP{protocol} BLPOP")

    sub = redis.Redis(port=port, protocol=protocol, decode_responses=True).pubsub()
    sub.subscribe(f"{tag}:chat")
    check("subscribe", sub.get_message(timeout=2)["type"], f"RESP{protocol} SUBSCRIBE confirmation")
    check(1, r.publish(f"{tag}:chat", "hi"), f"RESP{protocol} PUBLISH")
    message = sub.get_message(timeout=2)
    check(("message", "hi"), (message["type"], message["data"]), f"RESP{protocol} message")
    sub.close()

    # Native commands by name.
    check(True, bool(r.execute_command("DEDUP", f"{tag}:order", 60)), f"RESP{protocol} DEDUP")
    check(False, bool(r.execute_command("DEDUP", f"{tag}:order", 60)), f"RESP{protocol} DEDUP again")
    decision = r.execute_command("RL.CHECK", f"{tag}:rl", "LIMIT", 2, "WINDOW", 1000)
    if protocol == 2:
        decision = dict(zip(decision[::2], decision[1::2]))
    check(True, bool(decision["allowed"]), f"RESP{protocol} RL.CHECK")

    def reserve():
        answer = r.execute_command("INV.RESERVE", f"{tag}:sku", 1, "TTL", 60)
        if protocol == 2:
            answer = dict(zip(answer[::2], answer[1::2]))
        return bool(answer["ok"])

    r.execute_command("INV.SET", f"{tag}:sku", "ON_HAND", 1)
    check((True, False), (reserve(), reserve()), f"RESP{protocol} INV.RESERVE never oversells")

    try:
        r.execute_command("MSET", "{a}x", 1, "{b}y", 2)
        r.execute_command("SINTER", "{a}x", "{b}y")
        check("CROSSSLOT", "answered", f"RESP{protocol} CROSSSLOT")
    except redis.ResponseError as error:
        check(True, "hash to the same slot" in str(error), f"RESP{protocol} CROSSSLOT")
