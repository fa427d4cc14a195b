#!/usr/bin/python3
"""The PyTorch anchor of scripts/bench-train --vs-torch: one training step of
a MiniLM-shaped bert encoder in PyTorch on the CPU, timed on this machine.

The same work as ragtune's step: post-LayerNorm blocks (q, k, v, output
projections, softmax attention at scale 1/sqrt(head size), FFN with GELU),
token and position embeddings with LayerNorm, mean pooling, L2
normalisation, MNRL (cross-entropy over query-document cosine similarities
times 20, the positives on the diagonal), AdamW at lr 1e-4. LoRA: rank-16
factors on q and v at scale alpha/r = 2, A random (std 0.01), B zero, only
they train; full: every weight trains. Random weights and token ids: speed
and memory only. Prints one JSON line.

Needs Debian's python3-torch (apt-get install python3-torch); the test
suite never runs this.
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn.functional as F
from torch import nn

VOCAB, POSITIONS = 8000, 512


class Projection(nn.Module):
    """x W^T + b, plus scale * (x A^T) B^T when it carries a LoRA pair."""

    def __init__(self, d_in, d_out, rank=0, alpha=0.0):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.rank = rank
        if rank:
            self.lora_a = nn.Parameter(0.01 * torch.randn(rank, d_in))
            self.lora_b = nn.Parameter(torch.zeros(d_out, rank))
            self.scale = alpha / rank

    def forward(self, x):
        y = self.linear(x)
        if self.rank:
            y = y + self.scale * ((x @ self.lora_a.t()) @ self.lora_b.t())
        return y


class Block(nn.Module):
    def __init__(self, dim, heads, ff, rank, alpha):
        super().__init__()
        self.heads = heads
        self.q = Projection(dim, dim, rank, alpha)
        self.k = Projection(dim, dim)
        self.v = Projection(dim, dim, rank, alpha)
        self.out = Projection(dim, dim)
        self.attn_norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, ff)
        self.down = nn.Linear(ff, dim)
        self.ffn_norm = nn.LayerNorm(dim)

    def forward(self, x, mask):
        batch, seq, dim = x.shape
        hd = dim // self.heads

        def split(t):  # [batch, seq, dim] -> [batch, heads, seq, hd]
            return t.reshape(batch, seq, self.heads, hd).permute(0, 2, 1, 3)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        weights = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(hd) + mask, dim=-1)
        ctx = (weights @ v).permute(0, 2, 1, 3).reshape(batch, seq, dim)
        h = self.attn_norm(x + self.out(ctx))
        return self.ffn_norm(h + self.down(F.gelu(self.up(h))))


class Encoder(nn.Module):
    def __init__(self, layers, dim, heads, ff, rank, alpha):
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, dim)
        self.positions = nn.Embedding(POSITIONS, dim)
        self.norm = nn.LayerNorm(dim)
        self.blocks = nn.ModuleList(Block(dim, heads, ff, rank, alpha) for _ in range(layers))

    def forward(self, ids):
        batch, seq = ids.shape
        x = self.norm(self.tokens(ids) + self.positions(torch.arange(seq)))
        mask = torch.zeros(batch, 1, 1, seq)  # every token is real: no padding
        for block in self.blocks:
            x = block(x, mask)
        return F.normalize(x.mean(dim=1), dim=-1)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["lora", "full"])
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--ff", type=int, default=1536)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--pairs", type=int, default=32)
    p.add_argument("--steps", type=int, default=3, help="timed steps, after one untimed")
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--alpha", type=float, default=32)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    rank = a.rank if a.mode == "lora" else 0
    model = Encoder(a.layers, a.dim, a.heads, a.ff, rank, a.alpha)
    if a.mode == "lora":
        for name, param in model.named_parameters():
            param.requires_grad = name.endswith("lora_a") or name.endswith("lora_b")
    trainable = [x for x in model.parameters() if x.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4)
    labels = torch.arange(a.pairs)

    def step():
        queries = torch.randint(0, VOCAB, (a.pairs, a.seq))
        docs = torch.randint(0, VOCAB, (a.pairs, a.seq))
        scores = 20 * (model(queries) @ model(docs).t())
        loss = F.cross_entropy(scores, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # first touch of every buffer, kept out of the timing
    start = time.perf_counter()
    for _ in range(a.steps):
        step()
    sec = (time.perf_counter() - start) / a.steps
    print(json.dumps({
        "engine": "torch " + torch.__version__,
        "mode": a.mode,
        "threads": a.threads,
        "s_per_step": sec,
        "pairs_per_s": a.pairs / sec,
        "tokens_per_s": 2 * a.pairs * a.seq / sec,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "trainable_params": sum(x.numel() for x in trainable),
    }))


if __name__ == "__main__":
    main()
