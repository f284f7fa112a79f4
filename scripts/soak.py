#!/usr/bin/env python3
"""Soak run of the demo bot on the Redis store; scripts/soak.sh starts it.

Two `lepton serve` processes (A and B) share one redis-server with an AOF
fsynced on every write. Customers send messages at a steady rate, alternating
between A and B, in conversations of several messages spread over minutes.
Every few minutes A gets SIGTERM and is started again, and Redis is killed
(SIGKILL) and started again from its AOF. B runs the whole time, so its memory
over time shows growth. A message that fails (503, 429, a refused connection
or a timeout) is sent again with the same client_message_id until a server
acknowledges it.

At the end every conversation's transcript is read back and compared with the
acknowledgements: a lost turn is an acknowledged message, or a reply the
acknowledgement returned, that the transcript lacks; a duplicate is a customer
message or reply stored twice.

Writes OUT/soak.csv (one row per minute) and OUT/summary.txt.
"""

import argparse
import collections
import concurrent.futures
import csv
import heapq
import http.client
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

# Conversations that the demo bot answers without handing off to a person:
# the order form (found, invalid then found), FAQ questions, small talk, both
# languages. A conversation runs one script, cycling, for LENGTH messages.
SCRIPTS = [
    ["hi", "/order_status", "100001", "thanks a lot"],
    ["where is my order", "12345", "100001", "what are your opening hours", "thank you"],
    ["你们几点开门", "满多少包邮？", "我想退货", "谢谢"],
    ["How long does shipping take?", "Do you offer gift wrapping?", "which payment methods do you accept", "hello", "thanks"],
    ["帮我查下物流", "100002", "谢谢"],
    ["Where is my order 100001?", "do you ship abroad", "how do I return an item", "thanks"],
]
LENGTH = (5, 10)
COUNTS = ["acknowledged messages", "customer messages stored", "lost turns", "duplicated customer messages",
          "duplicated or unacknowledged replies", "acknowledged without a reply", "seq gaps"]
REQUEST_TIMEOUT_S = 30
RETRY_PAUSE_S = 0.2
MAX_ATTEMPTS = 600


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Redis:
    def __init__(self, work):
        self.port = free_port()
        self.dir = os.path.join(work, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.process = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def start(self):
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not listen on port {self.port} within 30 s")

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


class Server:
    def __init__(self, name, args, work):
        self.name = name
        self.port = free_port()
        self.args = args
        self.log = os.path.join(work, f"server-{name}.log")
        self.process = None
        self.starts = 0

    @property
    def host(self):
        return ("127.0.0.1", self.port)

    def start(self):
        args = self.args + ["--port", str(self.port)]
        env = dict(os.environ, LEPTON_LOG="warn", LEPTON_REDIS_KEY_PREFIX="soak")
        log = open(self.log, "a")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.starts += 1
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server {self.name} exited with {self.process.returncode}; see {self.log}")
            try:
                connection = http.client.HTTPConnection(*self.host, timeout=1)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server {self.name} not ready within 60 s; see {self.log}")

    def stop(self):
        """Sends SIGTERM and returns the exit status and the seconds until exit."""
        began = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        return code, time.monotonic() - began


class Conversation:
    counter = itertools.count()

    def __init__(self, prefix):
        self.index = next(Conversation.counter)
        self.id = f"{prefix}-{self.index}"
        self.script = random.choice(SCRIPTS)
        self.length = random.randint(*LENGTH)
        self.sent = 0
        self.acks = []  # (client_message_id, [(seq, kind, text)])


class Stats:
    def __init__(self, started):
        self.started = started
        self.lock = threading.Lock()
        self.minutes = collections.defaultdict(lambda: {
            "acked": 0, "failed_attempts": 0, "status": collections.Counter(), "latency": [], "end_to_end": [],
            "rss_a": 0, "rss_b": 0, "rss_redis": 0, "events": [],
        })

    def minute(self, at=None):
        return int(((at or time.monotonic()) - self.started) // 60)

    def record(self, **fields):
        with self.lock:
            row = self.minutes[self.minute()]
            for key, value in fields.items():
                if key in ("latency", "end_to_end"):
                    row[key].append(value)
                elif key == "status":
                    row["status"][value] += 1
                elif key == "event":
                    row["events"].append(value)
                elif key.startswith("rss_"):
                    row[key] = max(row[key], value or 0)
                else:
                    row[key] += value


def event_summary(event):
    kind = event["kind"]
    return (event["seq"], kind["type"], json.dumps(kind, sort_keys=True, ensure_ascii=False))


def send_once(server, conversation, client_message_id, text):
    body = json.dumps({"text": text, "client_message_id": client_message_id}).encode()
    # Each conversation comes from one of 200 loopback addresses, as customers
    # come from many addresses, so the per-address rate limit sees a customer's
    # own rate rather than the whole run's.
    source = (f"127.0.0.{2 + conversation.index % 200}", 0)
    connection = http.client.HTTPConnection(*server.host, timeout=REQUEST_TIMEOUT_S, source_address=source)
    try:
        connection.request("POST", f"/api/v1/conversations/{conversation.id}/messages", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read(), response.getheader("Retry-After")
    finally:
        connection.close()


def send_until_acknowledged(servers, conversation, stats):
    n = conversation.sent
    text = conversation.script[n % len(conversation.script)]
    client_message_id = f"{conversation.id}-m{n}"
    began = time.monotonic()
    for attempt in range(MAX_ATTEMPTS):
        server = servers[(conversation.index + n + attempt) % len(servers)]
        attempt_began = time.monotonic()
        try:
            status, body, retry_after = send_once(server, conversation, client_message_id, text)
        except (OSError, http.client.HTTPException) as error:
            stats.record(failed_attempts=1, status=type(error).__name__)
            time.sleep(RETRY_PAUSE_S)
            continue
        stats.record(status=str(status))
        if status == 200:
            stats.record(acked=1, latency=(time.monotonic() - attempt_began) * 1000, end_to_end=(time.monotonic() - began) * 1000)
            events = [event_summary(event) for event in json.loads(body)["events"]]
            conversation.acks.append((client_message_id, events))
            conversation.sent += 1
            return
        if status not in (429, 503):
            raise RuntimeError(f"{conversation.id}: {client_message_id} failed with {status}: {body[:300]!r}")
        stats.record(failed_attempts=1)
        pause = float(retry_after) if retry_after and retry_after.isdigit() else RETRY_PAUSE_S
        time.sleep(min(pause, 5))
    raise RuntimeError(f"{conversation.id}: {client_message_id} not acknowledged after {MAX_ATTEMPTS} attempts")


class Traffic:
    """Starts one message per 1/rate seconds, from a conversation whose previous
    message was acknowledged at least `think` seconds ago, or a new one."""

    def __init__(self, servers, stats, rate, think, prefix, workers):
        self.servers = servers
        self.stats = stats
        self.rate = rate
        self.think = think
        self.prefix = prefix
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
        self.lock = threading.Lock()
        self.sleeping = []  # heap of (wake time, index, conversation)
        self.conversations = []
        self.futures = []
        self.errors = []
        self.stopping = threading.Event()

    def next_conversation(self):
        with self.lock:
            if self.sleeping and self.sleeping[0][0] <= time.monotonic():
                return heapq.heappop(self.sleeping)[2]
        conversation = Conversation(self.prefix)
        self.conversations.append(conversation)
        return conversation

    def job(self, conversation):
        try:
            send_until_acknowledged(self.servers, conversation, self.stats)
        except Exception as error:  # reported at the end; the run goes on
            self.errors.append(str(error))
            return
        if conversation.sent < conversation.length:
            wake = time.monotonic() + self.think * random.uniform(0.5, 1.5)
            with self.lock:
                heapq.heappush(self.sleeping, (wake, conversation.index, conversation))

    def run(self, seconds):
        began = time.monotonic()
        for tick in itertools.count():
            due = began + tick / self.rate
            if due - began >= seconds or self.stopping.is_set():
                break
            time.sleep(max(0.0, due - time.monotonic()))
            self.futures.append(self.pool.submit(self.job, self.next_conversation()))
        concurrent.futures.wait(self.futures)
        self.pool.shutdown()


def restarts(server_a, redis, stats, server_every, redis_every, stop):
    """Restarts A every `server_every` seconds and Redis every `redis_every`
    seconds (first Redis restart half an interval in) until `stop` is set."""
    began = time.monotonic()
    next_server = began + server_every
    next_redis = began + redis_every / 2
    while not stop.wait(0.5):
        now = time.monotonic()
        try:
            if now >= next_server:
                next_server += server_every
                code, took = server_a.stop()
                server_a.start()
                stats.record(event=f"A SIGTERM (exit {code} after {took:.1f} s), restarted")
            if now >= next_redis:
                next_redis += redis_every
                redis.kill()
                time.sleep(1)
                redis.start()
                stats.record(event="Redis SIGKILL, restarted from AOF")
        except RuntimeError as error:
            # Traffic goes on through B; the next interval tries again.
            stats.record(event=f"restart failed: {error}")


def sample_memory(server_a, server_b, redis, stats, stop):
    while not stop.wait(5):
        stats.record(rss_a=rss_kb(server_a.process.pid), rss_b=rss_kb(server_b.process.pid), rss_redis=rss_kb(redis.process.pid))


def read_transcript(server, conversation):
    for _ in range(100):
        try:
            connection = http.client.HTTPConnection(*server.host, timeout=REQUEST_TIMEOUT_S)
            connection.request("GET", f"/api/v1/conversations/{conversation}/events?after=0&limit=1000")
            response = connection.getresponse()
            body = response.read()
            if response.status == 200:
                return [event_summary(event) for event in json.loads(body)["events"]]
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(RETRY_PAUSE_S)
    raise RuntimeError(f"cannot read the transcript of {conversation}")


def verify(server, conversations):
    """Compares each transcript with the acknowledgements; returns counts and examples."""
    found = collections.Counter()
    examples = []
    for conversation in conversations:
        if not conversation.acks:
            continue
        transcript = read_transcript(server, conversation.id)
        by_seq = {seq: (kind, text) for seq, kind, text in transcript}
        seqs = [seq for seq, _, _ in transcript]
        if seqs != list(range(1, len(seqs) + 1)):
            found["seq gaps"] += 1
            examples.append(f"{conversation.id}: seqs {seqs}")

        customer_seqs = [seq for seq, kind, _ in transcript if kind == "customer"]
        found["customer messages stored"] += len(customer_seqs)
        acknowledged_seqs = set()
        for client_message_id, events in conversation.acks:
            found["acknowledged messages"] += 1
            replies = [event for event in events if event[1] != "customer"]
            if not replies:
                found["acknowledged without a reply"] += 1
            for seq, kind, text in events:
                acknowledged_seqs.add(seq)
                if by_seq.get(seq) != (kind, text):
                    found["lost turns"] += 1
                    examples.append(f"{conversation.id} {client_message_id}: seq {seq} {kind} {text!r} is {by_seq.get(seq)!r} in the transcript")
                    break
        extra = [event for event in transcript if event[0] not in acknowledged_seqs]
        extra_customer = [event for event in extra if event[1] == "customer"]
        found["duplicated customer messages"] += len(extra_customer)
        found["duplicated or unacknowledged replies"] += len(extra) - len(extra_customer)
        if extra:
            examples.append(f"{conversation.id}: events no acknowledgement returned: {extra[:4]}")
    return found, examples


def percentile(values, fraction):
    if not values:
        return ""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 1)


def write_csv(path, stats):
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["minute", "acknowledged", "failed_attempts", "p50_ms", "p99_ms", "max_ms", "p99_end_to_end_ms",
                         "rss_a_kb", "rss_b_kb", "rss_redis_kb", "statuses", "events"])
        for minute in sorted(stats.minutes):
            row = stats.minutes[minute]
            statuses = " ".join(f"{status}:{count}" for status, count in sorted(row["status"].items()))
            writer.writerow([minute + 1, row["acked"], row["failed_attempts"], percentile(row["latency"], 0.5),
                             percentile(row["latency"], 0.99), percentile(row["latency"], 1.0), percentile(row["end_to_end"], 0.99),
                             row["rss_a"], row["rss_b"], row["rss_redis"], statuses, "; ".join(row["events"])])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True, help="the lepton binary")
    parser.add_argument("--data-dir", required=True, help="a data folder with the demo trained and indexed")
    parser.add_argument("--work", required=True, help="a folder for Redis's AOF and the server logs")
    parser.add_argument("--out", required=True, help="the folder to write soak.csv and summary.txt to")
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=20, help="messages started per second")
    parser.add_argument("--think", type=float, default=30, help="mean seconds between a conversation's messages")
    parser.add_argument("--server-restart", type=float, default=180, help="seconds between restarts of server A")
    parser.add_argument("--redis-restart", type=float, default=300, help="seconds between restarts of Redis")
    options = parser.parse_args()

    random.seed(7)
    os.makedirs(options.out, exist_ok=True)
    redis = Redis(options.work)
    redis.start()
    serve = [options.binary, "serve", "demo", "--demo-orders", "--no-watch", "--data-dir", options.data_dir, "--store", redis.url]
    server_a = Server("a", serve, options.work)
    server_b = Server("b", serve, options.work)
    server_a.start()
    server_b.start()

    stats = Stats(time.monotonic())
    stop = threading.Event()
    background = [
        threading.Thread(target=restarts, args=(server_a, redis, stats, options.server_restart, options.redis_restart, stop), daemon=True),
        threading.Thread(target=sample_memory, args=(server_a, server_b, redis, stats, stop), daemon=True),
    ]
    for thread in background:
        thread.start()
    prefix = f"soak{int(time.time())}"
    traffic = Traffic([server_a, server_b], stats, options.rate, options.think, prefix, workers=128)
    try:
        traffic.run(options.minutes * 60)
    finally:
        stop.set()
        for thread in background:
            thread.join()

    found, examples = verify(server_b, traffic.conversations)
    write_csv(os.path.join(options.out, "soak.csv"), stats)
    for server in (server_a, server_b):
        server.stop()
    redis.process.terminate()
    redis.process.wait()

    all_latency = [value for row in stats.minutes.values() for value in row["latency"]]
    rss_b = [row["rss_b"] for _, row in sorted(stats.minutes.items()) if row["rss_b"]]
    lines = [
        f"minutes: {options.minutes}, rate: {options.rate} messages/s, think: {options.think} s",
        f"conversations: {len(traffic.conversations)}",
        f"server A starts: {server_a.starts}",
        f"client errors: {len(traffic.errors)}",
        *[f"  {error}" for error in traffic.errors[:10]],
        *[f"{name}: {found[name]}" for name in COUNTS],
        f"latency of acknowledged requests: p50 {percentile(all_latency, 0.5)} ms, p99 {percentile(all_latency, 0.99)} ms, max {percentile(all_latency, 1.0)} ms",
        f"server B RSS per minute (KB): first {rss_b[0] if rss_b else ''}, max {max(rss_b) if rss_b else ''}, last {rss_b[-1] if rss_b else ''}",
        *[f"example: {example}" for example in examples[:20]],
    ]
    with open(os.path.join(options.out, "summary.txt"), "w") as out:
        out.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    failed = traffic.errors or found["lost turns"] or found["duplicated customer messages"] or found["duplicated or unacknowledged replies"] or found["seq gaps"]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
