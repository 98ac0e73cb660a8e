"""The Python clustering a practitioner would write, as the peer of `facepipe cluster`:
a kNN graph from pip hnswlib (cosine space, multi-threaded add and query), then Chinese Whispers
over the edges whose cosine reaches --threshold. Faces below --min-magnitude are left out (-1).

Usage: peer_cluster.py --embeddings X.npy --out labels.npy [--k 16 --M 16 --ef-construction 64
       --ef 64 --threads 2 --threshold 0.5 --min-magnitude 40 --seed 1]
Prints {"graphSeconds", "whispersSeconds", "clusters"} as JSON on stdout.
"""

import argparse
import json
import random
import time

import hnswlib
import numpy as np


def chinese_whispers(nbr, sim, threshold, seed, iterations=20):
    n = nbr.shape[0]
    labels = list(range(n))
    adj = []
    for i in range(n):
        row = [(int(j), float(s)) for j, s in zip(nbr[i], sim[i]) if j >= 0 and j != i and s >= threshold]
        adj.append(row)
    # symmetric edges: a kNN edge counts for both ends
    for i in range(n):
        for j, s in list(adj[i]):
            if not any(x == i for x, _ in adj[j]):
                adj[j].append((i, s))
    order = list(range(n))
    rnd = random.Random(seed)
    for _ in range(iterations):
        rnd.shuffle(order)
        changed = 0
        for i in order:
            if not adj[i]:
                continue
            weight = {}
            for j, s in adj[i]:
                weight[labels[j]] = weight.get(labels[j], 0.0) + s
            best = max(weight.items(), key=lambda kv: (kv[1], -kv[0]))[0]
            if best != labels[i]:
                labels[i] = best
                changed += 1
        if changed == 0:
            break
    return labels


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--embeddings", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=64)
    ap.add_argument("--ef", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--min-magnitude", type=float, default=40)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    x = np.load(args.embeddings).astype(np.float32)
    kept = np.nonzero(np.linalg.norm(x, axis=1) >= args.min_magnitude)[0]
    t0 = time.monotonic()
    index = hnswlib.Index(space="cosine", dim=x.shape[1])
    index.init_index(max_elements=len(kept), M=args.M, ef_construction=args.ef_construction, random_seed=args.seed)
    index.set_num_threads(args.threads)
    index.add_items(x[kept], np.arange(len(kept)))
    index.set_ef(max(args.ef, 2 * args.k))
    nbr, dist = index.knn_query(x[kept], k=min(args.k + 1, len(kept)))
    t1 = time.monotonic()
    local = chinese_whispers(nbr, 1 - dist, args.threshold, args.seed)
    t2 = time.monotonic()
    labels = np.full(x.shape[0], -1, np.int64)
    ids = {}
    for i, l in zip(kept, local):
        labels[i] = ids.setdefault(l, len(ids))
    np.save(args.out, labels)
    print(json.dumps({"graphSeconds": t1 - t0, "whispersSeconds": t2 - t1, "clusters": len(ids)}))


if __name__ == "__main__":
    main()
