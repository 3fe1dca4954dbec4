"""PyTorch FP16 reference for bench/cuda-batch-e2e.ts (the paper's Table 7 protocol).

A LLaMA of LLaMA-2-7B's shape with RANDOM fp16 weights (speed only), written the way fast PyTorch
decoders are (gpt-fast): q/k/v and gate/up as one matmul each, a static KV cache [B, H, max, D] per
layer, rotary embedding, scaled_dot_product_attention with a position mask, fp16 tied lm_head, and
every decode step (argmax included) one CUDA graph per batch size. Protocol per batch size B: a
prefill of B x P tokens (one forward, not graphed), then O - 1 graphed decode steps, the host reading
the B tokens after each step (as the intscale engine does). Prints one JSON object per line: an
`info` line, then one per batch size {batch, latency_ms, prefill_ms, decode_tok_s} (median of --reps
after a warm-up run).

    python3 bench/torch_llama_e2e.py [--layers 32] [--batches 1,8,16,32,64] [--prompt-tokens 128] [--out-tokens 128] [--reps 3]
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--layers", type=int, default=32)
p.add_argument("--batches", default="1,8,16,32,64")
p.add_argument("--prompt-tokens", type=int, default=128)
p.add_argument("--out-tokens", type=int, default=128)
p.add_argument("--reps", type=int, default=3)
args = p.parse_args()

dev, dt = "cuda", torch.float16
d, f, H, V = 4096, 11008, 32, 32000
D = d // H
L = args.layers
P, O = args.prompt_tokens, args.out_tokens
max_len = P + O
batches = [int(b) for b in args.batches.split(",")]
torch.manual_seed(0)


def rnd(*shape):
    return (torch.rand(*shape, device=dev, dtype=dt) - 0.5) * 0.1


layers = [dict(wqkv=rnd(3 * d, d), wo=rnd(d, d), wgu=rnd(2 * f, d), wd=rnd(d, f)) for _ in range(L)]
ones = torch.ones(d, device=dev, dtype=dt)
emb = rnd(V, d)
inv_freq = 1.0 / (10000 ** (torch.arange(0, D, 2, device=dev, dtype=torch.float32) / D))
angles = torch.outer(torch.arange(max_len, device=dev, dtype=torch.float32), inv_freq)
cos, sin = angles.cos().to(dt), angles.sin().to(dt)


def rms(x, w):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5)).to(dt) * w


def rope(x, pos):  # x [B, T, heads, D], half-split pairs (i, i + D/2)
    c, s = cos[pos][None, :, None, :], sin[pos][None, :, None, :]
    a, b = x[..., : D // 2], x[..., D // 2:]
    return torch.cat([a * c - b * s, b * c + a * s], dim=-1)


def forward(tokens, pos, caches):  # tokens [B, T], pos [T]: the greedy next token of each row's last position
    B, T = tokens.shape
    x = emb[tokens]
    mask = torch.arange(max_len, device=dev)[None, :] <= pos[:, None]  # [T, max_len]
    for layer, (kc, vc) in zip(layers, caches):
        q, k, v = (rms(x, ones) @ layer["wqkv"].T).split(d, dim=-1)
        q, k = rope(q.view(B, T, H, D), pos), rope(k.view(B, T, H, D), pos)
        kc.index_copy_(2, pos, k.transpose(1, 2))
        vc.index_copy_(2, pos, v.view(B, T, H, D).transpose(1, 2))
        a = F.scaled_dot_product_attention(q.transpose(1, 2), kc, vc, attn_mask=mask)
        x = x + a.transpose(1, 2).reshape(B, T, d) @ layer["wo"].T
        g, u = (rms(x, ones) @ layer["wgu"].T).split(f, dim=-1)
        x = x + (F.silu(g) * u) @ layer["wd"].T
    return (rms(x[:, -1], ones) @ emb.T).argmax(-1)


print(json.dumps({"info": f"torch {torch.__version__}, {torch.cuda.get_device_name()}, {L} layers, RANDOM fp16 weights, SDPA, static KV cache, decode steps as CUDA graphs"}), flush=True)
with torch.no_grad():
    for B in batches:
        caches = [(torch.zeros(B, H, max_len, D, device=dev, dtype=dt), torch.zeros(B, H, max_len, D, device=dev, dtype=dt)) for _ in range(L)]
        prompts = (torch.arange(P, device=dev)[None, :] * 7919 + torch.arange(B, device=dev)[:, None] * 104729 + 13) % V
        tok = torch.zeros(B, 1, device=dev, dtype=torch.long)
        pos = torch.zeros(1, device=dev, dtype=torch.long)
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(2):
                forward(tok, pos, caches)
        torch.cuda.current_stream().wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            nxt = forward(tok, pos, caches)

        def run():
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            first = forward(prompts, torch.arange(P, device=dev), caches)
            first.cpu()
            t1 = time.perf_counter()
            tok.copy_(first[:, None])
            for step in range(O - 1):
                pos.fill_(P + step)
                graph.replay()
                tok.copy_(nxt[:, None])
                nxt.cpu()
            t2 = time.perf_counter()
            return (t1 - t0) * 1000, (t2 - t1) * 1000

        run()
        runs = [run() for _ in range(args.reps)]
        prefill = statistics.median(r[0] for r in runs)
        decode = statistics.median(r[1] for r in runs)
        latency = statistics.median(r[0] + r[1] for r in runs)
        print(json.dumps({"batch": B, "latency_ms": round(latency, 1), "prefill_ms": round(prefill, 1), "decode_tok_s": round(B * (O - 1) / (decode / 1000))}), flush=True)
        del caches, graph
        torch.cuda.empty_cache()
