"""
Makes intscale's test fixtures and its embedded default model, on a machine with PyTorch,
transformers and tokenizers (the GPU machine). Run from the repository root:

    python3 scripts/gpu/make_fixtures.py --data DIR_WITH_WIKITEXT --out OUT_DIR

Writes under OUT_DIR:
  tokenizer/                 a byte-level BPE tokenizer (vocab 2048) trained on WikiText-2 valid
  fixtures/{llama,mistral,qwen2}/
                             tiny random-weight checkpoints in Hugging Face format, each with
                             reference.safetensors: input_ids [T] (I32), logits [T, V] (F32) from
                             transformers (eager attention, float32, CPU), greedy [G] (I32) tokens
                             that transformers' greedy generate() produced after input_ids.
                             llama: bf16, sharded (index.json), Llama-3 rope scaling, GQA.
                             mistral: f16, sliding window 8 (shorter than T).
                             qwen2: f32, q/k/v biases, tied embeddings, a chat template.
  fixtures/{llama-attention-bias,llama-mlp-bias}/
                             llama with attention_bias (q/k/v/o biases; bf16, tied embeddings) and
                             with mlp_bias (gate/up/down biases; f16, head_dim 24 != hidden/heads),
                             every bias random. Only these: --bias-fixtures (reuses the tokenizer and
                             input_ids of an existing fixture, --from DIR).
  fixtures/{mixtral,mixtral-window}/
                             tiny random Mixtral (MoE) checkpoints in the Hub's layout
                             (block_sparse_moe.gate, block_sparse_moe.experts.E.w1/w2/w3), checked to
                             load back into transformers with the same logits. mixtral: top-2 of 4
                             experts, GQA, bf16, sharded; mixtral-window: top-2 of 8 experts, sliding
                             window 8, f16. Only these: --moe-fixtures (tokenizer and input_ids of --from).
  models/tiny-wikitext-moe/  with --train-moe: a small Mixtral (4 experts, top 2) trained like the
                             embedded model, for accuracy (tokenizer of --from-model).
  models/tiny-wikitext/      the embedded default model: a small LLaMA trained here on
                             WikiText-2 valid (95% train / 5% held out for early stopping), bf16,
                             with reference.safetensors as above and train_log.json.
"""
import argparse, json, math, os, random, shutil, time

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
import transformers
from transformers import (AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, MixtralConfig, MixtralForCausalLM, PreTrainedTokenizerFast,
                          Qwen2Config, Qwen2ForCausalLM)

VOCAB = 2048
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def train_tokenizer(text_path, out_dir):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<s>", "</s>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train([text_path], trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", 0)])
    os.makedirs(out_dir, exist_ok=True)
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
           "add_bos_token": True, "model_max_length": 512}
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    return tok


def copy_tokenizer(tok_dir, dst, chat=False):
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tok_dir, name), os.path.join(dst, name))
    if chat:
        p = os.path.join(dst, "tokenizer_config.json")
        cfg = json.load(open(p))
        cfg["chat_template"] = CHAT_TEMPLATE
        json.dump(cfg, open(p, "w"), indent=2)


def save_reference(model_dir, input_ids, gen_tokens=8):
    """Reference logits from transformers in float32 on the CPU, eager attention."""
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    ids = torch.tensor([input_ids], dtype=torch.long)
    with torch.no_grad():
        logits = model(ids).logits[0].float().contiguous()
        # an explicit mask: left to infer one, generate() masks every token equal to pad_token_id
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=gen_tokens,
                             do_sample=False, min_new_tokens=gen_tokens, pad_token_id=1)
    greedy = out[0, len(input_ids):].to(torch.int32).contiguous()
    save_file({"input_ids": torch.tensor(input_ids, dtype=torch.int32), "logits": logits, "greedy": greedy},
              os.path.join(model_dir, "reference.safetensors"))
    return logits


def round_weights(model, dtype):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).float())


def make_random_fixture(kind, tok_dir, out_root, input_ids):
    torch.manual_seed({"llama": 1, "mistral": 2, "qwen2": 3}[kind])
    common = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  rms_norm_eps=1e-5, bos_token_id=0, eos_token_id=1, initializer_range=0.1)
    if kind == "llama":
        cfg = LlamaConfig(**common, rope_theta=500000.0, tie_word_embeddings=False,
                          rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                        "high_freq_factor": 4.0, "original_max_position_embeddings": 64})
        model, dtype, shard = LlamaForCausalLM(cfg), torch.bfloat16, "300KB"
    elif kind == "mistral":
        cfg = MistralConfig(**common, rope_theta=10000.0, sliding_window=8, tie_word_embeddings=False)
        model, dtype, shard = MistralForCausalLM(cfg), torch.float16, None
    else:
        cfg = Qwen2Config(**common, rope_theta=1000000.0, tie_word_embeddings=True, use_sliding_window=False)
        model, dtype, shard = Qwen2ForCausalLM(cfg), torch.float32, None
        with torch.no_grad():  # transformers zero-initialises biases: make them random so they matter
            for layer in model.model.layers:
                for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                    proj.bias.normal_(0, 0.1)
    round_weights(model, dtype)
    d = os.path.join(out_root, kind)
    os.makedirs(d, exist_ok=True)
    kwargs = {"max_shard_size": shard} if shard else {}
    model.to(dtype).save_pretrained(d, **kwargs)
    copy_tokenizer(tok_dir, d, chat=(kind == "qwen2"))
    save_reference(d, input_ids)
    print(kind, "fixture:", sorted(os.listdir(d)), flush=True)


def make_bias_fixture(kind, tok_dir, out_root, input_ids):
    """llama with the biases transformers builds for attention_bias (q, k, v, o) or mlp_bias (gate, up, down)."""
    torch.manual_seed({"llama-attention-bias": 4, "llama-mlp-bias": 5}[kind])
    common = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  rms_norm_eps=1e-5, bos_token_id=0, eos_token_id=1, initializer_range=0.1,
                  rope_theta=10000.0, tie_word_embeddings=True)
    if kind == "llama-attention-bias":
        cfg, dtype = LlamaConfig(**common, attention_bias=True), torch.bfloat16
    else:
        cfg, dtype = LlamaConfig(**common, mlp_bias=True, head_dim=24), torch.float16
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # transformers zero-initialises biases: make them random so they matter
        biases = [p for n, p in model.named_parameters() if n.endswith(".bias")]
        assert len(biases) == (8 if kind == "llama-attention-bias" else 6), [n for n, _ in model.named_parameters()]
        for p in biases:
            p.normal_(0, 0.1)
    round_weights(model, dtype)
    d = os.path.join(out_root, kind)
    os.makedirs(d, exist_ok=True)
    model.to(dtype).save_pretrained(d)
    copy_tokenizer(tok_dir, d)
    save_reference(d, input_ids)
    print(kind, "fixture:", sorted(os.listdir(d)), "biases:", len(biases), flush=True)


def hub_mixtral_state(model, cfg):
    """The model's weights under the Hub's Mixtral names (block_sparse_moe.experts.E.w1/w2/w3, gate),
    whatever layout this transformers version keeps them in (per-expert modules or fused tensors)."""
    E, I, H = cfg.num_local_experts, cfg.intermediate_size, cfg.hidden_size
    out = {}
    for name, t in model.state_dict().items():
        t = t.detach().contiguous()
        name = name.replace(".mlp.", ".block_sparse_moe.")
        if name.endswith("experts.gate_up_proj") or name.endswith("experts.gate_up_proj.weight"):
            base = name[: name.index("experts.")]
            t = t if t.shape[1:] == (2 * I, H) else t.transpose(1, 2)
            for e in range(E):
                out[f"{base}experts.{e}.w1.weight"] = t[e, :I].contiguous()
                out[f"{base}experts.{e}.w3.weight"] = t[e, I:].contiguous()
        elif name.endswith("experts.down_proj") or name.endswith("experts.down_proj.weight"):
            base = name[: name.index("experts.")]
            t = t if t.shape[1:] == (H, I) else t.transpose(1, 2)
            for e in range(E):
                out[f"{base}experts.{e}.w2.weight"] = t[e].contiguous()
        else:
            out[name] = t
    if cfg.tie_word_embeddings:
        out.pop("lm_head.weight", None)
    return out


def save_hub_mixtral(model, cfg, d, dtype, shards=1):
    """Writes a Mixtral in the Hub's layout (sharded with an index when shards > 1), then loads it back
    with transformers and checks the logits equal the model's own: the names are the ones it reads."""
    state = {k: v.to(dtype) for k, v in hub_mixtral_state(model, cfg).items()}
    os.makedirs(d, exist_ok=True)
    cfg.architectures = ["MixtralForCausalLM"]
    cfg.save_pretrained(d)
    model.generation_config.save_pretrained(d)
    names = sorted(state)
    if shards == 1:
        save_file(state, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    else:
        per = math.ceil(len(names) / shards)
        weight_map = {}
        for i in range(shards):
            file = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
            part = {k: state[k] for k in names[i * per:(i + 1) * per]}
            save_file(part, os.path.join(d, file), metadata={"format": "pt"})
            weight_map.update({k: file for k in part})
        json.dump({"metadata": {}, "weight_map": weight_map}, open(os.path.join(d, "model.safetensors.index.json"), "w"), indent=2)
    back = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    ids = torch.arange(2, 14).unsqueeze(0)
    with torch.no_grad():
        a = model.to(dtype).float()(ids).logits
        b = back(ids).logits
    # a wrong name or layout changes logits by O(1); float32 reordering (the model's own attention and
    # expert kernels vs the reloaded eager ones) by ~1e-4 of their size
    err, rel = (a - b).abs().max().item(), ((a - b).abs().max() / a.abs().max()).item()
    assert rel < 1e-3 and torch.equal(a.argmax(-1), b.argmax(-1)), f"{d}: logits after reloading the Hub layout differ by {err} ({rel} relative)"
    print(d, "hub layout reloads: max |logit diff|", err, "relative", rel, "tensors", len(names), flush=True)


def make_moe_fixture(kind, tok_dir, out_root, input_ids):
    torch.manual_seed({"mixtral": 6, "mixtral-window": 7}[kind])
    common = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, max_position_embeddings=256, rms_norm_eps=1e-5,
                  bos_token_id=0, eos_token_id=1, initializer_range=0.1, rope_theta=1000000.0,
                  tie_word_embeddings=False, num_experts_per_tok=2, router_jitter_noise=0.0)
    if kind == "mixtral":
        cfg, dtype, shards = MixtralConfig(**common, num_key_value_heads=2, num_local_experts=4, sliding_window=None), torch.bfloat16, 3
    else:
        cfg, dtype, shards = MixtralConfig(**common, num_key_value_heads=4, num_local_experts=8, sliding_window=8), torch.float16, 1
    model = MixtralForCausalLM(cfg).eval()
    round_weights(model, dtype)
    d = os.path.join(out_root, kind)
    save_hub_mixtral(model, cfg, d, dtype, shards)
    copy_tokenizer(tok_dir, d)
    save_reference(d, input_ids)
    print(kind, "fixture:", sorted(os.listdir(d)), flush=True)


def train_tiny_model(tok, data_dir, tok_dir, out_dir, seconds, moe=False):
    text = open(os.path.join(data_dir, "valid.txt"), encoding="utf-8").read()
    ids = torch.tensor(tok.encode(text).ids, dtype=torch.long)
    split = int(len(ids) * 0.95)
    train, held = ids[:split], ids[split:]
    print(f"train tokens {len(train)}, held-out tokens {len(held)}", flush=True)
    torch.manual_seed(0)
    common = dict(vocab_size=VOCAB, hidden_size=256, num_hidden_layers=4,
                  num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=512,
                  rms_norm_eps=1e-5, rope_theta=10000.0, bos_token_id=0, eos_token_id=1,
                  tie_word_embeddings=False, initializer_range=0.02)
    if moe:  # 4 experts of 384, top 2: the dense model's 768 active ffn width per token
        cfg = MixtralConfig(**common, intermediate_size=384, num_local_experts=4, num_experts_per_tok=2,
                            sliding_window=None, router_jitter_noise=0.0, output_router_logits=True,
                            router_aux_loss_coef=0.01)
    else:
        cfg = LlamaConfig(**common, intermediate_size=768)
    dev = "cuda"
    model = (MixtralForCausalLM(cfg) if moe else LlamaForCausalLM(cfg)).to(dev)
    seq, batch, lr, wd = 512, 32, 2e-3, 0.1
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd, betas=(0.9, 0.95))
    train_d = train.to(dev)
    held_windows = held[: (len(held) // seq) * seq].view(-1, seq).to(dev)

    def held_loss():
        model.eval()
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(held_windows, labels=held_windows)
        model.train()
        return out.loss.item()

    total_steps, warm = 3000, 100
    best, best_state, log, step, t0 = 1e9, None, [], 0, time.time()
    gen = torch.Generator(device="cpu").manual_seed(0)
    while step < total_steps and time.time() - t0 < seconds:
        starts = torch.randint(0, len(train) - seq - 1, (batch,), generator=gen)
        x = torch.stack([train_d[s:s + seq] for s in starts.tolist()])
        cur_lr = lr * min(1.0, (step + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total_steps)))
        for g in opt.param_groups:
            g["lr"] = cur_lr
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 50 == 0:
            hl = held_loss()
            log.append({"step": step, "train_loss": loss.item(), "held_loss": hl, "seconds": time.time() - t0})
            print(log[-1], flush=True)
            if hl < best:
                best, best_state = hl, {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    model = model.float().cpu()
    round_weights(model, torch.bfloat16)
    os.makedirs(out_dir, exist_ok=True)
    if moe:
        model.config.output_router_logits = False
        save_hub_mixtral(model, model.config, out_dir, torch.bfloat16)
    else:
        model.to(torch.bfloat16).save_pretrained(out_dir)
    copy_tokenizer(tok_dir, out_dir)
    with open(os.path.join(out_dir, "train_log.json"), "w") as f:
        json.dump({"data": "WikiText-2 valid.txt: first 95% of tokens trained on, last 5% held out",
                   "train_tokens": len(train), "held_tokens": len(held), "steps": step,
                   "seq_len": seq, "batch": batch, "best_held_loss": best, "log": log,
                   "torch": torch.__version__, "transformers": transformers.__version__,
                   "gpu": torch.cuda.get_device_name(0)}, f, indent=1)
    return model


def reference_perplexity(model_dir, tok, data_dir, seq_len, max_windows):
    """WikiText-2 test perplexity of a saved model: non-overlapping windows of seq_len tokens,
    the whole file tokenized once (BOS at its start, as the tokenizer adds it), as GPTQ evaluates."""
    text = open(os.path.join(data_dir, "test.txt"), encoding="utf-8").read()
    ids = torch.tensor(tok.encode(text).ids, dtype=torch.long)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").cuda()
    model.eval()
    n = min(len(ids) // seq_len, max_windows)
    nll = 0.0
    with torch.no_grad():
        for i in range(n):
            w = ids[i * seq_len:(i + 1) * seq_len].unsqueeze(0).cuda()
            logits = model(w).logits.float()
            nll += torch.nn.functional.cross_entropy(logits[0, :-1], w[0, 1:], reduction="sum").item()
    count = n * (seq_len - 1)
    return {"seq_len": seq_len, "windows": n, "tokens_scored": count, "total_tokens": len(ids),
            "ppl": math.exp(nll / count)}


def save_model_references(model_dir, tok, data_dir):
    """A trained model's reference logits and greedy tokens, and its WikiText-2 test perplexities."""
    save_reference(model_dir, tok.encode(" = Robert Boulter = \n Robert Boulter is an English film").ids)
    ppl = {"full": reference_perplexity(model_dir, tok, data_dir, 512, 10 ** 9),
           "first8": reference_perplexity(model_dir, tok, data_dir, 512, 8),
           "seq128_first16": reference_perplexity(model_dir, tok, data_dir, 128, 16)}
    json.dump(ppl, open(os.path.join(model_dir, "reference_perplexity.json"), "w"), indent=1)
    print("reference perplexity", ppl, flush=True)


def fixtures_like(make, kinds, from_dir, out):
    """Fixtures made with the tokenizer and input_ids of an existing fixture (from_dir)."""
    input_ids = load_file(os.path.join(from_dir, "reference.safetensors"))["input_ids"].tolist()
    for kind in kinds:
        make(kind, from_dir, os.path.join(out, "fixtures"), input_ids)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data")
    ap.add_argument("--out", required=True)
    ap.add_argument("--train-seconds", type=float, default=150)
    ap.add_argument("--refresh-references", nargs="*", default=None,
                    help="only rewrite reference.safetensors in these existing model directories")
    ap.add_argument("--bias-fixtures", action="store_true",
                    help="only write the llama bias fixtures, with the tokenizer and input_ids of --from")
    ap.add_argument("--moe-fixtures", action="store_true",
                    help="only write the Mixtral fixtures, with the tokenizer and input_ids of --from")
    ap.add_argument("--train-moe", action="store_true",
                    help="only train models/tiny-wikitext-moe (needs --data), with the tokenizer of --from-model")
    ap.add_argument("--from", dest="from_dir", default="test/fixtures/llama")
    ap.add_argument("--from-model", default="models/tiny-wikitext")
    a = ap.parse_args()
    if a.moe_fixtures or a.train_moe or a.bias_fixtures:
        print("torch", torch.__version__, "transformers", transformers.__version__, flush=True)
    if a.moe_fixtures:
        fixtures_like(make_moe_fixture, ("mixtral", "mixtral-window"), a.from_dir, a.out)
        return
    if a.train_moe:
        if a.data is None:
            ap.error("--train-moe needs --data")
        tok = Tokenizer.from_file(os.path.join(a.from_model, "tokenizer.json"))
        model_dir = os.path.join(a.out, "models", "tiny-wikitext-moe")
        train_tiny_model(tok, a.data, a.from_model, model_dir, a.train_seconds, moe=True)
        save_model_references(model_dir, tok, a.data)
        return
    if a.bias_fixtures:
        fixtures_like(make_bias_fixture, ("llama-attention-bias", "llama-mlp-bias"), a.from_dir, a.out)
        return
    if a.refresh_references is not None:
        for d in a.refresh_references:
            ref = load_file(os.path.join(d, "reference.safetensors"))
            save_reference(d, ref["input_ids"].tolist())
            print("refreshed", d, flush=True)
        return
    if a.data is None:
        ap.error("--data is required (except with --bias-fixtures)")
    print("torch", torch.__version__, "transformers", transformers.__version__, flush=True)
    tok_dir = os.path.join(a.out, "tokenizer")
    tok = train_tokenizer(os.path.join(a.data, "valid.txt"), tok_dir)
    hf_tok = PreTrainedTokenizerFast.from_pretrained(tok_dir)
    sample = " = Valkyria Chronicles III = \n Senjō no Valkyria 3 : <unk> Chronicles"
    assert hf_tok(sample)["input_ids"] == tok.encode(sample).ids
    json.dump({"text": sample, "ids": tok.encode(sample).ids},
              open(os.path.join(tok_dir, "encode_reference.json"), "w"))
    input_ids = tok.encode(" The game began development in 2010 , carrying over a large").ids[:12]
    for kind in ("llama", "mistral", "qwen2"):
        make_random_fixture(kind, tok_dir, os.path.join(a.out, "fixtures"), input_ids)
    model_dir = os.path.join(a.out, "models", "tiny-wikitext")
    train_tiny_model(tok, a.data, tok_dir, model_dir, a.train_seconds)
    save_model_references(model_dir, tok, a.data)


if __name__ == "__main__":
    main()
