"""Fast screening loop for the demo recipe (issue 15, item 2): the same model code, speaker split,
crops, augmentation and optimiser as `python train.py experiment=demo`, in a plain torch loop with
the audio decoded once and cached (pickles under /tmp/h15b-cache).

Also: `--init FILE` starts from a saved state dict (a warm start; the head is kept only if the
file has it), `--save FILE` writes the best state, `--pretrain prosody` trains the backbone
label-free to regress frame-level prosody (log-F0, voicing, log-energy, spectral tilt computed
by simple DSP, :func:`prosody_targets`) on a corpus instead of the emotions.
Results are appended as JSON lines to $RESULTS.
"""
import argparse, json, os, pickle, resource, sys, time
from pathlib import Path

import numpy as np
import torch

p = argparse.ArgumentParser()
p.add_argument("--name", required=True)
p.add_argument("--data", default="/tmp/h15b-data/c0")
p.add_argument("--seed", type=int, default=42)
p.add_argument("--epochs", type=int, default=25)
p.add_argument("--lr", type=float, default=3e-3)
p.add_argument("--head-lr", type=float, default=1e-2)
p.add_argument("--wd", type=float, default=0.01)
p.add_argument("--warmup", type=float, default=0.1)
p.add_argument("--sched", default="linear")
p.add_argument("--crop", type=float, default=3.0)
p.add_argument("--bs", type=int, default=8)
p.add_argument("--wls", type=int, default=1)
p.add_argument("--ls", type=float, default=0.0)
p.add_argument("--augment", default="")  # "" | default | nospeed
p.add_argument("--norm", type=int, default=1)  # per-clip waveform normalisation
p.add_argument("--cfg", default="{}")  # json overrides of tiny_config
p.add_argument("--threads", type=int, default=1)
p.add_argument("--ftz", type=int, default=0)
p.add_argument("--pad-mult", type=int, default=1600)  # as EmotionClassifier.forward
p.add_argument("--init", default="")
p.add_argument("--save", default="")
p.add_argument("--pretrain", default="")  # "" | prosody
p.add_argument("--eval-every", type=int, default=1)
a = p.parse_args()
torch.set_num_threads(a.threads)
if a.ftz: torch.set_flush_denormal(True)
os.environ.setdefault("SER_CACHE", "/tmp/h15b-cache/ser")

import ser.backbones as B
from ser.data.batching import LengthGroupedBatchSampler, collate_clips
from ser.data.datamodule import IndonesianDataModule, RavdessDataModule
from ser.data.dataset import AudioClipDataset
from ser.audio import load_audio, TARGET_SR
from ser.preprocessing import normalize_waveforms
from ser.pretraining.prosody import prosody_targets
from ser.metrics import classification_summary
from transformers import get_scheduler
import lightning as L

over = json.loads(a.cfg)
if over:
    base = B.tiny_config
    def variant():
        c = base()
        for k, v in over.items():
            setattr(c, k, tuple(v) if isinstance(v, list) else v)
        return c
    B.tiny_config = variant

# ---- data (cached per split seed)
cache = Path(f"/tmp/h15b-cache/audio-{Path(a.data).name}-s{a.seed}.pkl")
if cache.exists():
    D = pickle.loads(cache.read_bytes())
else:
    dm = IndonesianDataModule(Path(a.data) / "indonesian", val_fraction=0.2, test_fraction=0.2, seed=a.seed)
    dm.setup("fit")
    rv = RavdessDataModule(Path(a.data) / "ravdess", actors="default"); rv.setup()
    D = {}
    for name, frame in (("train", dm.train_frame), ("val", dm.val_frame), ("test", dm.test_frame), ("ravdess", rv.frame)):
        ds = AudioClipDataset(frame)
        D[name] = ([load_audio(p) for p in ds.paths], ds.labels.copy())
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(D))

L.seed_everything(a.seed, workers=True)
model = B.load_backbone("tiny", use_weighted_layer_sum=bool(a.wls))
if a.init:
    state = torch.load(a.init, map_location="cpu")
    missing, unexpected = model.load_state_dict(state, strict=False)
    print(f"warm start from {a.init}: {len(state)} tensors; fresh: {missing}; unused: {unexpected}", flush=True)
model.train()
aug = None
if a.augment:
    from ser.augment import Augment
    aug = Augment() if a.augment == "default" else Augment(p_speed=0.0) if a.augment == "nospeed" else Augment(**json.loads(a.augment))

tw, tl = D["train"]
durs = np.array([len(w) / TARGET_SR for w in tw])
crop = a.crop
sampler = LengthGroupedBatchSampler(np.minimum(durs, crop) if crop else durs, a.bs, shuffle=True, seed=a.seed)

def train_item(i, epoch):
    w = tw[i]
    rng = np.random.default_rng([a.seed, epoch, i])
    if crop and durs[i] > crop:
        n = int(crop * TARGET_SR)
        off = int(rng.uniform(0.0, durs[i] - crop) * TARGET_SR)
        w = w[off:off + n]
    if aug is not None:
        w = aug(w, rng)
    return {"input_values": w, "label": int(tl[i]), "index": i, "error": None}

def fwd(batch):
    x, m = batch["input_values"], batch["attention_mask"]
    if a.norm:
        x = normalize_waveforms(x, m)
    return model(input_values=x, attention_mask=m).logits

head = [p_ for n, p_ in model.named_parameters() if n.startswith(("projector.", "classifier.", "layer_weights"))]
body = [p_ for n, p_ in model.named_parameters() if not n.startswith(("projector.", "classifier.", "layer_weights"))]
opt = torch.optim.AdamW([{"params": body}], lr=a.lr, weight_decay=a.wd)
opt.add_param_group({"params": head, "lr": a.head_lr})
steps = a.epochs * len(sampler)
sch = get_scheduler(a.sched, optimizer=opt, num_warmup_steps=int(round(a.warmup * steps)), num_training_steps=steps)

@torch.no_grad()
def evaluate(split):
    model.eval()
    w, l = D[split]
    order = np.argsort([-len(x) for x in w], kind="stable")
    preds = np.zeros(len(w), dtype=int)
    for s in range(0, len(order), 16):
        idx = order[s:s + 16]
        b = collate_clips([{"input_values": w[i], "label": int(l[i]), "index": int(i), "error": None} for i in idx])
        preds[idx] = fwd(b).argmax(-1).numpy()
    model.train()
    k = l >= 0
    return classification_summary(l[k].tolist(), preds[k].tolist())

if a.pretrain == "prosody":
    reg = torch.nn.Linear(model.config.hidden_size, 4)
    body_params = [p_ for n, p_ in model.named_parameters() if n.startswith("wav2vec2.")]
    opt = torch.optim.AdamW([{"params": body_params}, {"params": reg.parameters(), "lr": a.head_lr}], lr=a.lr, weight_decay=a.wd)
    sch = get_scheduler(a.sched, optimizer=opt, num_warmup_steps=int(round(a.warmup * steps)), num_training_steps=steps)
    for epoch in range(a.epochs):
        tot = [0.0, 0.0, 0.0, 0.0]; nb = 0
        for bidx in sampler.batches(epoch):
            items = [train_item(i, epoch) for i in bidx]
            b = collate_clips(items)
            T = b["input_values"].shape[1]; extra = -T % a.pad_mult
            x = torch.nn.functional.pad(b["input_values"], (0, extra)); m = torch.nn.functional.pad(b["attention_mask"], (0, extra))
            x = normalize_waveforms(x, m)
            h = model.wav2vec2(input_values=x, attention_mask=m).last_hidden_state
            F = h.shape[1]
            tgt = torch.full((len(items), F, 4), float("nan"))
            for r_, it in enumerate(items):
                nf = int(model.wav2vec2._get_feat_extract_output_lengths(torch.tensor(len(it["input_values"]))))
                nf = min(nf, F)
                tgt[r_, :nf] = torch.from_numpy(prosody_targets(it["input_values"], nf))
            pred = reg(h)
            valid = ~torch.isnan(tgt[..., 1])
            v_f0 = ~torch.isnan(tgt[..., 0])
            tgt = torch.nan_to_num(tgt)  # NaN targets would make NaN gradients even where masked out
            l_f0 = ((pred[..., 0] - tgt[..., 0]) ** 2)[v_f0].mean()
            l_v = torch.nn.functional.binary_cross_entropy_with_logits(pred[..., 1][valid], tgt[..., 1][valid])
            l_e = ((pred[..., 2] - tgt[..., 2]) ** 2)[valid].mean()
            l_t = ((pred[..., 3] - tgt[..., 3]) ** 2)[valid].mean()
            loss = l_f0 + l_v + l_e + l_t
            opt.zero_grad(set_to_none=True); loss.backward()
            torch.nn.utils.clip_grad_norm_(list(model.parameters()) + list(reg.parameters()), 1.0)
            opt.step(); sch.step()
            for j, l_ in enumerate((l_f0, l_v, l_e, l_t)): tot[j] += l_.item()
            nb += 1
        _r = resource.getrusage(resource.RUSAGE_SELF)
        print(f"{a.name} ep{epoch+1} f0 {tot[0]/nb:.3f} voicing {tot[1]/nb:.3f} energy {tot[2]/nb:.3f} tilt {tot[3]/nb:.3f} cpu {_r.ru_utime+_r.ru_stime:.1f}", flush=True)
    torch.save({k: v for k, v in model.state_dict().items() if k.startswith("wav2vec2.")}, a.save)
    _r = resource.getrusage(resource.RUSAGE_SELF)
    out = {"name": a.name, "args": vars(a), "pretrain_cpu_s": round(_r.ru_utime + _r.ru_stime, 1)}
    print(json.dumps(out))
    with open(os.environ.get("RESULTS", "/tmp/h15b/results.jsonl"), "a") as fh:
        fh.write(json.dumps(out) + "\n")
    sys.exit(0)

curve, best, best_state = [], -1.0, None
T_DATA = [0.0, 0.0]
t0 = time.time()
for epoch in range(a.epochs):
    for bidx in sampler.batches(epoch):
        _t = time.process_time()
        b = collate_clips([train_item(i, epoch) for i in bidx])
        if a.pad_mult:
            T = b["input_values"].shape[1]; extra = -T % a.pad_mult
            b["input_values"] = torch.nn.functional.pad(b["input_values"], (0, extra)); b["attention_mask"] = torch.nn.functional.pad(b["attention_mask"], (0, extra))
        T_DATA[0] += time.process_time() - _t; T_DATA[1] += b["input_values"].numel() / 16000
        loss = torch.nn.functional.cross_entropy(fwd(b).float(), b["labels"], label_smoothing=a.ls)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); sch.step()
    if (epoch + 1) % a.eval_every == 0 or epoch == a.epochs - 1:
        ua = evaluate("val")["ua"]
        curve.append(round(ua, 3))
        if ua > best:
            best, best_state = ua, {k: v.clone() for k, v in model.state_dict().items()}
        _r = resource.getrusage(resource.RUSAGE_SELF)
        print(f"{a.name} ep{epoch+1} val {ua:.3f} loss {loss.item():.3f} t {time.time()-t0:.0f}s cpu {_r.ru_utime+_r.ru_stime:.1f} data {T_DATA[0]:.2f} padded_s {T_DATA[1]:.0f}", flush=True)
_ru = resource.getrusage(resource.RUSAGE_SELF); train_cpu = round(_ru.ru_utime + _ru.ru_stime, 1)
last = {s: evaluate(s)["ua"] for s in ("test", "ravdess")}
model.load_state_dict(best_state)
rall = Path(a.data) / "ravdess"
ck = Path(f"/tmp/h15b-cache/ravall-{os.path.realpath(rall).replace('/', '_')}.pkl")
if ck.exists():
    D["ravall"] = pickle.loads(ck.read_bytes())
else:
    rv = RavdessDataModule(rall, actors="all"); rv.setup()
    ds = AudioClipDataset(rv.frame)
    D["ravall"] = ([load_audio(p) for p in ds.paths], ds.labels.copy())
    ck.write_bytes(pickle.dumps(D["ravall"]))
if a.save:
    torch.save(best_state, a.save)
res = {s: evaluate(s) for s in ("val", "test", "ravdess", "ravall")}
ru = resource.getrusage(resource.RUSAGE_SELF)
out = {"name": a.name, "args": vars(a), "val": res["val"]["ua"], "test": res["test"]["ua"],
       "ravdess": res["ravdess"]["ua"], "ravall": res["ravall"]["ua"], "last_test": last["test"], "last_ravdess": last["ravdess"],
       "curve": curve, "train_cpu_s": train_cpu, "cpu_s": round(ru.ru_utime + ru.ru_stime, 1),
       "recall_val": {k: round(v["recall"], 2) for k, v in res["val"]["per_class"].items()},
       "recall_rav": {k: round(v["recall"], 2) for k, v in res["ravdess"]["per_class"].items()}}
print(json.dumps(out))
with open(os.environ.get("RESULTS", "/tmp/h15b/results.jsonl"), "a") as fh:
    fh.write(json.dumps(out) + "\n")
