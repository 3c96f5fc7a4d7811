"""/metrics scraped every 100 ms while four redis-py clients pipeline INCRs, each scrape
parsed by prometheus_client's OpenMetrics parser: the per-command counters move by
exactly what the clients were acknowledged."""

import sys
import threading
import time
import urllib.request

import redis
from prometheus_client.openmetrics.parser import text_string_to_metric_families

resp_port, metrics_port = int(sys.argv[1]), int(sys.argv[2])


def scrape():
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        content_type = response.headers["Content-Type"]
        text = response.read().decode()
    assert content_type.startswith("application/openmetrics-text"), content_type
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0)


before = scrape()
stop = threading.Event()
acknowledged = [0] * 4


def load(client_index):
    client = redis.Redis(host="127.0.0.1", port=resp_port)
    while not stop.is_set():
        pipe = client.pipeline(transaction=False)
        for _ in range(16):
            pipe.incr(f"load:{client_index}")
        acknowledged[client_index] += len(pipe.execute())


threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
for thread in threads:
    thread.start()
scrapes = 0
deadline = time.monotonic() + 2.0
while time.monotonic() < deadline:
    scrape()
    scrapes += 1
    time.sleep(0.1)
main = redis.Redis(host="127.0.0.1", port=resp_port)
for n in range(500):
    main.hset("profile", f"field:{n}", n)
stop.set()
for thread in threads:
    thread.join()
after = scrape()

moved = lambda name, **labels: value(after, name, **labels) - value(before, name, **labels)
assert moved("tessera_commands_total", cmd="hset") == 500, moved("tessera_commands_total", cmd="hset")
# INCR runs as our INCRBY.
assert moved("tessera_commands_total", cmd="incrby") == sum(acknowledged), (
    moved("tessera_commands_total", cmd="incrby"),
    sum(acknowledged),
)
assert value(after, "tessera_commands_latency_seconds_count", cmd="incrby") == value(
    after, "tessera_commands_total", cmd="incrby"
)
assert value(after, "tessera_commands_latency_seconds_bucket", cmd="incrby", le="+Inf") == value(
    after, "tessera_commands_total", cmd="incrby"
)
for client_index in range(4):
    assert int(main.get(f"load:{client_index}")) == acknowledged[client_index]
print(
    f"ok   prometheus_client parsed {scrapes + 2} scrapes under load; "
    f"hset +500 and incrby +{sum(acknowledged)} exactly"
)
