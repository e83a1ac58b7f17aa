"""Sampling from a SampleRNN, sample by sample, for a batch of independent streams.

A few small pure functions plus one loop. Temperature is a tensor `(B,)` or `(B, T)` (one value
per stream and per sample), or a function giving the next block of it, never a global; so are
the two truncation controls, min-p and top-p (`sample_logits` gives the exact algorithm). Each
stream draws its random numbers from its own generator seeded by its own seed, so a batch of N
streams gives what N single runs with the same seeds give (up to float rounding, which can flip
a draw only when a uniform lands within ~1e-7 of a class boundary). No per-sample host
synchronisation: the loop only launches tensor ops.

`FastStepper` computes `SampleRNN.step`'s function with fewer, cheaper ops (weights snapshot
once, fused GRU/LSTM cells, bias-fused GEMMs on pre-transposed weights, an embedding-bag tap
sum); `stream` uses it by default. Opt-in `int8=True` stores the big matrices as int8 (per-row
scales, fbgemm dynamic quantization, CPU only): ~3-4x less memory traffic, next-sample
distributions within a small KL of fp32 (tested), not bit-identical. `prime_state` warms every
tier on real audio with the teacher-forced recurrences (whole sequences at once, no sample-level MLP).

Steering (labelled models): `labels` are mixing weights over the model's label rows (row 0 = "no
label"), constant per stream or a function giving them at the samples where the tiers step, so
a label can move during a clip like temperature. Guidance runs every stream twice, with its
labels and with "no label", and samples from log p_none + w (log p_label - log p_none): w = 1
is plain steering, w > 1 pushes further towards the label, w = 0 is unsteered; it costs a
second pass of every tier and of the sample-level MLP (about twice the compute per sample).
"""

from __future__ import annotations

from typing import Callable, Iterator, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from inspire.audio.quantize import silence_level
from inspire.samplernn.checks import MAX_GUIDANCE
from inspire.samplernn.model import SampleRNN, StepState, samples_to_input

NOISE_BLOCK = 4096  # uniforms drawn per stream at a time

# (B,) constant, (B, n_samples) per sample, or f(start, n) -> (B, n) for the next block.
Temperature = Union[Tensor, Callable[[int, int], Tensor]]
# (B,) label rows or (B, label_rows) weights, constant; or f(positions) -> (B, m, label_rows)
# weights at the given sample positions (int64 (m,), counted from the start of the stream).
Labels = Union[Tensor, Callable[[Tensor], Tensor]]


def sample_logits(logits: Tensor, temperature: Tensor, uniform: Tensor, *, min_p: Tensor | None = None,
                  top_p: Tensor | None = None) -> Tensor:
    """Draw one class per row. logits (B, levels); temperature (B,) > 0; uniform (B,) in [0, 1);
    min_p (B,) in [0, 1) and top_p (B,) in (0, 1], or None for off.

    The algorithm, exactly (the real-time engine's kernel mirrors it step for step):
      1. temperature: p = softmax(logits / T).
      2. min-p: keep class i when p_i >= min_p * max_j p_j (min_p = 0 keeps every class).
      3. top-p: sort the kept p descending, s_1 >= s_2 >= ...; keep positions k whose mass before
         them, s_1 + ... + s_(k-1) (a running sum), is < top_p * (the running sum's total); keep every
         class with p_i >= the last kept s_k (ties kept together, so the result does not depend
         on how a sort orders equal values). top_p >= 1 keeps every class.
      4. inverse CDF over the kept mass in class order: the first class whose running sum of
         kept p exceeds uniform * (total kept p). Deterministic given `uniform`, which is what
         makes streams reproducible one by one or in any batch and `--again` exact.
    With min_p = 0 and top_p = 1 the kept p are p itself, bit for bit, so the draw is plain
    temperature sampling's. As T -> 0 this is argmax.
    """
    probs = torch.softmax(logits.float() / temperature.unsqueeze(1), dim=-1)  # (B, levels)
    if min_p is not None or top_p is not None:
        probs = truncate(probs, min_p=min_p, top_p=top_p)
    cdf = probs.cumsum(dim=-1)
    target = (uniform * cdf[:, -1]).unsqueeze(1)
    idx = torch.searchsorted(cdf, target, right=True).squeeze(1)
    return idx.clamp_(max=logits.shape[-1] - 1)


def truncate(probs: Tensor, *, min_p: Tensor | None = None, top_p: Tensor | None = None) -> Tensor:
    """Steps 2 and 3 of `sample_logits`: probs (B, levels) with the dropped classes zeroed (not
    renormalised). min_p, top_p (B,) or None. No host synchronisation (branch-free per row)."""
    if min_p is not None:
        probs = probs * (probs >= min_p.unsqueeze(1) * probs.amax(dim=-1, keepdim=True))
    if top_p is not None:
        s = probs.sort(dim=-1, descending=True).values  # (B, levels)
        running = s.cumsum(dim=-1)
        before = F.pad(running[:, :-1], (1, 0))  # mass of the classes ranked above each one
        n_keep = (before < top_p.unsqueeze(1) * running[:, -1:]).sum(dim=-1, keepdim=True)
        last = s.gather(1, (n_keep - 1).clamp_(min=0))  # (B, 1) the least likely kept probability
        probs = probs * ((probs >= last) | (top_p.unsqueeze(1) >= 1.0))
    return probs


def guide(logits: Tensor, weight: float) -> Tensor:
    """logits (2B, levels): B streams with their labels, then the same B with "no label" ->
    (B, levels) log-probabilities log p_none + weight * (log p_label - log p_none)."""
    b = logits.shape[0] // 2
    cond = torch.log_softmax(logits[:b].float(), dim=-1)
    uncond = torch.log_softmax(logits[b:].float(), dim=-1)
    return torch.lerp(uncond, cond, weight)


def label_weights(model: SampleRNN, labels: Tensor | None, b: int) -> Tensor | None:
    """Constant labels as (B, label_rows) weights: rows (B,) one-hot, weights as they are, None ->
    "no label". None for a model without labels (which refuses labels)."""
    rows = model.cfg.label_rows
    if not rows:
        if labels is not None:
            raise ValueError("this model was trained without labels")
        return None
    device = next(model.parameters()).device
    if labels is None:
        labels = torch.zeros(b, dtype=torch.long, device=device)
    if not labels.dtype.is_floating_point:
        labels = F.one_hot(labels.long(), rows).float()
    if labels.shape != (b, rows):
        raise ValueError(f"labels have shape {tuple(labels.shape)}, expected {(b, rows)} or {(b,)}")
    return labels.float()


def _no_label(like: Tensor) -> Tensor:
    """Weights of "no label" shaped like `like` (..., label_rows)."""
    out = torch.zeros_like(like)
    out[..., 0] = 1.0
    return out


def _label_block(model: SampleRNN, labels: Labels | None, positions: Tensor, b: int, *, guided: bool) -> Tensor | None:
    """(B or 2B, m or 1, label_rows) weights at `positions` (m,); a constant comes back with one
    column. Guided: the B streams' weights, then B rows of "no label"."""
    if callable(labels):
        if not model.cfg.label_rows:
            raise ValueError("this model was trained without labels")
        block = labels(positions).float()
        want = (b, positions.numel(), model.cfg.label_rows)
        if tuple(block.shape) != want:
            raise ValueError(f"labels block has shape {tuple(block.shape)}, expected {want}")
    else:
        w = label_weights(model, labels, b)
        if w is None:
            return None
        block = w.unsqueeze(1)
    return torch.cat([block, _no_label(block)]) if guided else block


class StreamNoise:
    """Per-stream uniform random numbers: stream b's sequence depends only on seeds[b]."""

    def __init__(self, seeds: list[int], device: torch.device):
        self.gens = []
        for s in seeds:
            g = torch.Generator()
            g.manual_seed(int(s) & 0xFFFF_FFFF_FFFF_FFFF)
            self.gens.append(g)
        self.device = device
        self.block: Tensor | None = None
        self.pos = NOISE_BLOCK

    def next(self) -> Tensor:
        """(B,) uniforms for the next sample."""
        if self.pos == NOISE_BLOCK:
            cols = [torch.rand(NOISE_BLOCK, generator=g) for g in self.gens]
            self.block = torch.stack(cols, dim=1).to(self.device)  # (NOISE_BLOCK, B)
            self.pos = 0
        u = self.block[self.pos]
        self.pos += 1
        return u


class _Dense:
    """y = x @ W.T + b with the weight stored for the kernel: fp32 transposed for addmm, or int8
    per output row (dynamic quantization of x, VNNI kernels via fbgemm)."""

    def __init__(self, weight: Tensor, bias: Tensor, *, int8: bool = False):
        w, b = weight.detach().float(), bias.detach().float()
        self.int8 = int8
        if int8:
            import warnings

            scale = (w.abs().amax(dim=1).clamp_min(1e-12) / 127.0).double()
            with warnings.catch_warnings():  # quantized tensors warn of a future deprecation
                warnings.simplefilter("ignore")
                zero = torch.zeros_like(scale, dtype=torch.long).cpu()
                q = torch.quantize_per_channel(w.cpu(), scale.cpu(), zero, 0, torch.qint8)
                self.packed = torch.ops.quantized.linear_prepack(q, b.cpu())
        else:
            self.wt, self.b = w.t().contiguous(), b  # (in, out), (out,)

    def __call__(self, x: Tensor) -> Tensor:
        if self.int8:
            return torch.ops.quantized.linear_dynamic(x, self.packed, False)
        return torch.addmm(self.b, x, self.wt)


class FastStepper:
    """`SampleRNN.step` for inference, with far fewer Python-level ops per sample.

    Weights are read once (weight norm, if still on, is evaluated here) and laid out for the
    kernels that use them: GEMM weights transposed to (in, out) for `torch.addmm` with the bias
    fused, RNN weights as `torch.gru_cell`/`lstm_cell` take them. Same inputs, same state type
    (`StepState`), same outputs as `model.step` within float tolerance (tested), so the two can
    be swapped mid-stream. Rebuild it after the model's weights change.
    """

    @torch.no_grad()
    def __init__(self, model: SampleRNN, *, int8: bool = False):
        cfg = model.cfg
        self.cfg, self.lookback, self.levels = cfg, model.lookback, cfg.levels
        self.lstm, self.int8 = cfg.rnn == "lstm", int8
        if int8 and next(model.parameters()).device.type != "cpu":
            raise ValueError("int8 generation runs on the CPU only")

        def t(w: Tensor) -> Tensor:  # (out, in) -> (in, out), contiguous, detached
            return w.detach().t().contiguous()

        self.tiers = []
        for tier in model.tiers:
            rnn = tier.rnn
            cells = [
                tuple(getattr(rnn, f"{name}_l{i}").detach()
                      for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
                for i in range(rnn.num_layers)
            ]
            if int8:  # the RNN's two GEMMs as int8; gate math below
                cells = [(_Dense(w_ih, b_ih, int8=True), _Dense(w_hh, b_hh, int8=True))
                         for w_ih, w_hh, b_ih, b_hh in cells]
            self.tiers.append(
                {
                    "frame": tier.frame,
                    "ratio": tier.ratio,
                    "w_in": t(tier.input.weight),  # (frame, dim)
                    "b_in": tier.input.bias.detach(),
                    "cells": cells,
                    "up": _Dense(tier.upsample.weight, tier.upsample.bias, int8=int8),  # dim -> ratio * dim
                    "labels": None if tier.label_table is None else tier.label_table.detach(),  # (rows, dim)
                }
            )
        mlp = model.mlp
        self.frame0 = mlp.frame
        self.taps = mlp.taps.detach().reshape(-1, cfg.dim)  # (frame * levels, dim)
        self.tap_offsets = mlp.tap_offsets
        self.hidden = _Dense(mlp.hidden.weight, mlp.hidden.bias, int8=int8)
        self.output = _Dense(mlp.output.weight, mlp.output.bias, int8=int8)
        self.model = model

    def start(self, batch: int) -> StepState:
        return self.model.start(batch)

    def _tier(self, k: int, frame: Tensor, cond: Tensor | None, hidden: Tensor,
              labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One frame of tier k. frame (B, F) floats, cond (B, dim) or None, labels (B,) rows or
        (B, rows) weights or None ("no label") -> (B, ratio, dim), state."""
        p = self.tiers[k]
        x = torch.addmm(p["b_in"], frame, p["w_in"])  # (B, dim)
        if cond is not None:
            x += cond
        table = p["labels"]
        if table is not None:
            if labels is None:
                x += table[0]
            elif labels.dtype.is_floating_point:
                x.addmm_(labels, table)
            else:
                x += table[labels]
        layers = []
        for layer, cell in enumerate(p["cells"]):
            if self.int8:
                h = self._cell_int8(x, hidden[:, layer] if self.lstm else hidden[layer], *cell)
                layers.append(h)
                x = h[0] if self.lstm else h
                continue
            w_ih, w_hh, b_ih, b_hh = cell
            if self.lstm:
                h, c = torch.lstm_cell(x, (hidden[0, layer], hidden[1, layer]), w_ih, w_hh, b_ih, b_hh)
                layers.append(torch.stack((h, c)))
            else:
                h = torch.gru_cell(x, hidden[layer], w_ih, w_hh, b_ih, b_hh)
                layers.append(h)
            x = h
        new_hidden = torch.stack(layers, dim=-3)  # (layers, B, dim) or (2, layers, B, dim)
        up = p["up"](x).view(x.shape[0], p["ratio"], -1)  # (B, ratio, dim)
        return up, new_hidden

    def _cell_int8(self, x: Tensor, hidden: Tensor, ih: _Dense, hh: _Dense) -> Tensor:
        """One GRU/LSTM cell (PyTorch's gate order and equations) on int8 GEMMs."""
        if self.lstm:  # hidden (2, B, dim): h, c
            i, f, g, o = (ih(x) + hh(hidden[0])).chunk(4, dim=1)
            c = torch.sigmoid(f) * hidden[1] + torch.sigmoid(i) * torch.tanh(g)
            return torch.stack((torch.sigmoid(o) * torch.tanh(c), c))
        gi, gh = ih(x), hh(hidden)
        d = hidden.shape[-1]
        rz = torch.sigmoid(gi[:, : 2 * d] + gh[:, : 2 * d])
        n = torch.tanh(torch.addcmul(gi[:, 2 * d :], rz[:, :d], gh[:, 2 * d :]))
        return torch.lerp(n, hidden, rz[:, d:])  # n + z * (h - n)

    def step(self, history: Tensor, state: StepState, labels: Tensor | None = None) -> tuple[Tensor, StepState]:
        """One sample. history (B, lookback) integer classes, newest last -> logits (B, levels).
        labels: as `SampleRNN.step` takes them (read only when a tier steps).

        Call under torch.inference_mode() or no_grad(), as `stream` does (no per-call guard: it
        costs more than some whole steps of a small model)."""
        t, lb = state.t, self.lookback
        hidden, conds = state.hidden, state.conds
        fired = False
        for k in range(len(self.tiers) - 1, -1, -1):
            p = self.tiers[k]
            if t % p["frame"]:
                continue
            if not fired:
                hidden, conds, fired = list(hidden), list(conds), True
            frame = samples_to_input(history[:, lb - p["frame"] :], self.levels)  # (B, F)
            cond = None
            if k + 1 < len(self.tiers):
                cond = conds[k + 1][:, (t // p["frame"]) % self.tiers[k + 1]["ratio"]]  # (B, dim)
            conds[k], hidden[k] = self._tier(k, frame, cond, hidden[k], labels)
        prev = history[:, lb - self.frame0 :] + self.tap_offsets  # (B, F1) rows of the tap table
        a = F.embedding_bag(prev, self.taps, mode="sum")  # (B, dim)
        a += conds[0][:, t % self.frame0]
        h = self.hidden(a.relu_()).relu_()
        logits = self.output(h)  # (B, levels)
        return logits, StepState(t + 1, hidden, conds)


@torch.no_grad()
def prime_state(model: SampleRNN, prime: Tensor, labels: Tensor | None = None, *,
                guided: bool = False) -> tuple[Tensor, StepState]:
    """Run the model's tiers over prime audio (B, P) classes, warming every recurrent state.

    labels: the streams' labels over the prime (as `label_weights` takes them; None: "no label").
    guided: the state for `stream(guidance=...)`: B streams primed with their labels, then the
    same B primed with "no label" (the history returned is the B streams').

    Returns the last `lookback` samples (the history to continue from) and the state after them:
    exactly what stepping `model.step` through the prime (teacher-forced) would leave, so a
    continuation equals generating after those samples had been generated (tested). Tiers are
    aligned so the continuation starts on a top-tier frame boundary: up to lookback - 1 oldest
    samples are dropped; a prime shorter than the lookback is padded with silence in front.
    The frame-level recurrences run over whole sequences at once; the sample-level MLP, which
    carries no state, is skipped.
    """
    lb = model.lookback
    b, p = prime.shape
    if p < lb:
        pad = torch.full((b, lb - p), silence_level(levels=model.cfg.levels), dtype=prime.dtype, device=prime.device)
        prime, p = torch.cat([pad, prime], dim=1), lb
    usable = (p - lb) // lb * lb
    x = prime[:, p - usable - lb :].long()  # (B, lookback + usable)
    lab = label_weights(model, labels, b)
    if guided:
        lab = None if lab is None else torch.cat([lab, _no_label(lab)])
        history, x = x[:, -lb:], torch.cat([x, x])
        b *= 2
    state = model.start(b)
    if usable == 0:
        return x[:, -lb:] if not guided else history, state
    xf = samples_to_input(x, model.cfg.levels)
    hidden: list[Tensor] = list(state.hidden)
    cond = None
    for k in reversed(range(len(model.tiers))):
        tier = model.tiers[k]
        frames = xf[:, lb - tier.frame : lb - tier.frame + usable].reshape(b, usable // tier.frame, tier.frame)
        bias = None if lab is None else tier.label_bias(lab.unsqueeze(1))  # (B, 1, dim)
        if k > 0:
            cond, hidden[k] = tier(frames, cond, hidden[k], bias)  # cond: (B, frames of tier k-1, dim)
        else:  # the bottom tier's upsampled output only feeds the MLP: run its recurrence alone
            h = tier.input(frames) + cond if cond is not None else tier.input(frames)
            h = h if bias is None else h + bias
            if tier.kind == "gru":
                _, hidden[k] = tier.rnn(h, hidden[k])
            else:
                _, (hh, cc) = tier.rnn(h, (hidden[k][0], hidden[k][1]))
                hidden[k] = torch.stack((hh, cc))
    return (history if guided else x[:, -lb:]), StepState(0, hidden, [None] * len(model.tiers))


def _temperature_block(temperature: Temperature, start: int, n: int, b: int, *, name: str = "temperature") -> Tensor:
    """(n, B) values of a control curve (temperature, min-p or top-p: the same forms) for samples
    start..start+n (rows contiguous for the per-sample loop)."""
    if callable(temperature):
        block = temperature(start, n)
    elif temperature.dim() == 1:
        return temperature.unsqueeze(0).expand(n, b)
    else:
        block = temperature[:, start : start + n]
    if block.shape != (b, n):
        raise ValueError(f"{name} block has shape {tuple(block.shape)}, expected {(b, n)}")
    return block.t().contiguous()


def schedule_curve(schedules: list, *, n_samples: int, sample_rate: int, device) -> Callable:
    """A control function for `stream` (and `guard.stream`) from one `inspire.schedule.Schedule`
    per stream, for clips of `n_samples`: f(start, n) -> (B, n) float32 on `device`, where start
    is one position for every stream or a (B,) array of each stream's own position."""
    import numpy as np

    last_s = (n_samples - 1) / sample_rate

    def curve(start, n: int) -> Tensor:
        starts = np.broadcast_to(np.asarray(start, dtype=np.int64), (len(schedules),))
        t = (starts[:, None] + np.arange(n)) / sample_rate  # (B, n) seconds
        values = np.stack([s.at(row, last_s) for s, row in zip(schedules, t, strict=True)]).astype(np.float32)
        return torch.from_numpy(values).to(device)

    return curve


def control_blocks(start: int, n: int, b: int, temperature: Temperature, min_p: Temperature | None,
                   top_p: Temperature | None) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """(n, B) blocks of the three controls for samples start..start+n (None where a control is off)."""
    temps = _temperature_block(temperature, start, n, b)
    mp = None if min_p is None else _temperature_block(min_p, start, n, b, name="min-p")
    tp = None if top_p is None else _temperature_block(top_p, start, n, b, name="top-p")
    return temps, mp, tp


def start_streams(model: SampleRNN, b: int, *, history: Tensor | None, state: StepState | None,
                  guided: bool) -> tuple[Tensor, StepState]:
    """Where `b` streams start: the given history (B, lookback) and state, else silence and the
    learned initial state (2B rows of state when guided: steered and unsteered side by side)."""
    lb = model.lookback
    if history is None:
        silence = silence_level(levels=model.cfg.levels)  # the same class for both quantization kinds
        history = torch.full((b, lb), silence, dtype=torch.long, device=next(model.parameters()).device)
    if history.shape != (b, lb):
        raise ValueError(f"history has shape {tuple(history.shape)}, expected {(b, lb)}")
    if state is None:
        state = model.start(2 * b if guided else b)
    return history, state


@torch.inference_mode()
def stream(
    model: SampleRNN,
    *,
    n_samples: int,
    temperature: Temperature,
    seeds: list[int],
    min_p: Temperature | None = None,
    top_p: Temperature | None = None,
    history: Tensor | None = None,
    state: StepState | None = None,
    block: int = 16000,
    fast: bool = True,
    stepper: FastStepper | None = None,
    labels: Labels | None = None,
    guidance: float | None = None,
) -> Iterator[Tensor]:
    """Generate `n_samples` per stream, yielding (B, <=block) integer classes as they are made.

    temperature: (B,) constant, (B, n_samples), or a function (start, n) -> (B, n) tensor on the
    model's device, called once per block (so a long clip's curve is never held whole).
    min_p, top_p: truncation curves in the same forms, or None (off; see `sample_logits`).
    history/state: where to continue from (from `prime_state`); by default silence and the
    learned initial state. `fast`: use `FastStepper` (same function as `model.step`); `stepper`:
    a prebuilt one (e.g. int8, or reused across batches).
    labels (labelled models): see `Labels`; a function is called once per block with the
    positions where the bottom tier steps. guidance: None (off) or a weight in [0, MAX_GUIDANCE];
    then `state`, if given, holds 2B streams (`prime_state(..., guided=True)`).
    """
    device = next(model.parameters()).device
    b, lb = len(seeds), model.lookback
    guided = _check_guidance(model, guidance)
    history, state = start_streams(model, b, history=history, state=state, guided=guided)
    step = (stepper or FastStepper(model)).step if (fast or stepper) else model.step
    f1, t0 = model.cfg.frame_sizes[0], state.t
    moving = callable(labels)
    lab = None if moving else _label_block(model, labels, torch.zeros(1), b, guided=guided)  # (B or 2B, 1, rows)
    lab = None if lab is None else lab[:, 0]
    noise = StreamNoise(seeds, device)
    done = 0
    while done < n_samples:
        n = min(block, n_samples - done)
        temps, mp, tp = control_blocks(done, n, b, temperature, min_p, top_p)  # (n, B) each
        first = (-(t0 + done)) % f1  # the block's first sample where the bottom tier steps
        if moving:  # the labels where the bottom tier (and so every tier) can step: (B or 2B, m, rows)
            at = torch.arange(done + first, done + n, f1, device=device)
            labs = _label_block(model, labels, at, b, guided=guided)
        buf = torch.empty((b, lb + n), dtype=torch.long, device=device)
        buf[:, :lb] = history
        for t in range(n):
            if moving and t >= first and (t - first) % f1 == 0:
                lab = labs[:, (t - first) // f1]
            hist = buf[:, t : t + lb]
            logits, state = step(hist.repeat(2, 1) if guided else hist, state, lab)
            if guided:
                logits = guide(logits, guidance)
            buf[:, lb + t] = sample_logits(logits, temps[t], noise.next(), min_p=None if mp is None else mp[t],
                                           top_p=None if tp is None else tp[t])
        history = buf[:, -lb:]
        done += n
        yield buf[:, lb:]


def _check_guidance(model: SampleRNN, guidance: float | None) -> bool:
    """Whether to guide; ValueError for a weight out of range or a model without labels."""
    if guidance is None:
        return False
    if not model.cfg.label_rows:
        raise ValueError("guidance needs a model trained with labels")
    if not 0.0 <= guidance <= MAX_GUIDANCE:
        raise ValueError(f"guidance weight must be in [0, {MAX_GUIDANCE:g}], got {guidance}")
    return True


def generate(model: SampleRNN, *, n_samples: int, temperature: Temperature, seeds: list[int], **kw) -> Tensor:
    """All of `stream` at once: (B, n_samples) integer classes."""
    return torch.cat(list(stream(model, n_samples=n_samples, temperature=temperature, seeds=seeds, **kw)), dim=1)
