"""redis-py's RedisCluster against a three-node tessera cluster's RESP ports: it reads the
slot map, sends each key to its owner, and every write reads back."""

import sys

from redis.cluster import ClusterNode, RedisCluster

ports = [int(p) for p in sys.argv[1:]]


def check(want, got, what):
    if want != got:
        print(f"FAIL {what}\n  want: {want!r}\n  got:  {got!r}")
        sys.exit(1)
    print(f"ok   {what}")


r = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in ports], decode_responses=True)
check(3, len(r.get_primaries()), "RedisCluster sees three primaries")
for n in range(200):
    r.set(f"py:{n}", n)
    r.hset(f"{{py:{n}}}:h", mapping={"n": n})
check([str(n) for n in range(200)], [r.get(f"py:{n}") for n in range(200)], "RedisCluster SET/GET on every node")
check({"n": "7"}, r.hgetall("{py:7}:h"), "RedisCluster HGETALL")
check(["0", "1", "2"], r.mget_nonatomic("py:0", "py:1", "py:2"), "RedisCluster MGET across slots")
r.geoadd("fleet:rome", (12.4964, 41.9028, "d1"))
check(["d1"], r.geosearch("fleet:rome", longitude=12.5, latitude=41.9, radius=2, unit="km"), "RedisCluster GEOSEARCH")
