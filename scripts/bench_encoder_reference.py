"""Measures sentence-transformers (PyTorch, CPU) on the same texts and in the
same way as the encoder's bench example: batch 1 sequential, batch 32 over the
whole list, and 64 concurrent callers each encoding one text at a time.

Usage: python bench_encoder_reference.py MODEL_DIR [TEXTS_FILE] [--threads 2]
"""

import argparse
import json
import os
import pathlib
import threading
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

BATCH_ONE_TEXTS = 1000
CALLERS = 64
CLINC = pathlib.Path(__file__).resolve().parents[2] / "shared/data/clinc150/data_full.json"
BUILTIN = [
    "how do I reset my password",
    "I want a refund for my last order",
    "where is my parcel",
    "can I change the delivery address after ordering",
    "my card was charged twice for the same purchase",
    "talk to a human please",
    "what are your opening hours on weekends",
    "the app keeps crashing when I open my account page",
    "我想退款",
    "我的订单什么时候发货？",
]


def load_texts(path):
    if path:
        lines = pathlib.Path(path).read_text(encoding="utf-8").splitlines()
        return [line for line in lines if line.strip()], path
    if CLINC.is_file():
        data = json.loads(CLINC.read_text(encoding="utf-8"))
        return [pair[0] for pair in data["test"]], "CLINC150 test"
    return [BUILTIN[i % len(BUILTIN)] for i in range(500)], "built-in list"


def quantile_ms(latencies, q):
    return latencies[round((len(latencies) - 1) * q)] * 1000.0


def report(name, count, elapsed, latencies=None):
    rate = count / elapsed
    if not latencies:
        print(f"{name:<28} {rate:>9.1f} sentences/s   ({count} texts in {elapsed:.2f} s)")
        return
    latencies = sorted(latencies)
    print(
        f"{name:<28} {rate:>9.1f} sentences/s   p50 {quantile_ms(latencies, 0.5):>7.2f} ms"
        f"   p99 {quantile_ms(latencies, 0.99):>7.2f} ms   ({count} texts)"
    )


def bench_batch_one(model, texts):
    texts = texts[:BATCH_ONE_TEXTS]
    latencies = []
    started = time.perf_counter()
    for text in texts:
        call = time.perf_counter()
        model.encode([text], batch_size=1, normalize_embeddings=True)
        latencies.append(time.perf_counter() - call)
    report("batch 1 (sequential)", len(texts), time.perf_counter() - started, latencies)


def bench_batched(model, texts, batch_size):
    model.encode(texts[:batch_size], batch_size=batch_size, normalize_embeddings=True)
    started = time.perf_counter()
    model.encode(texts, batch_size=batch_size, normalize_embeddings=True)
    report(f"batch {batch_size} (whole list)", len(texts), time.perf_counter() - started)


def bench_concurrent(model, texts):
    latencies = []
    lock = threading.Lock()

    def caller(index):
        own = []
        for text in texts[index::CALLERS]:
            call = time.perf_counter()
            model.encode([text], batch_size=1, normalize_embeddings=True)
            own.append(time.perf_counter() - call)
        with lock:
            latencies.extend(own)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(CALLERS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report(f"{CALLERS} callers, no batcher", len(texts), time.perf_counter() - started, latencies)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("texts", nargs="?")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    texts, source = load_texts(args.texts)
    started = time.perf_counter()
    model = SentenceTransformer(args.model, device="cpu")
    print(
        f"sentence-transformers on cpu, torch {torch.__version__}, {len(texts)} texts from {source}, "
        f"{args.threads} threads, loaded in {(time.perf_counter() - started) * 1000:.0f} ms"
    )

    model.encode(texts[:8], normalize_embeddings=True)
    with torch.inference_mode():
        bench_batch_one(model, texts)
        bench_batched(model, texts, 32)
        bench_concurrent(model, texts)


if __name__ == "__main__":
    main()
