"""SampleRNN (Mehri et al., ICLR 2017), readable in one sitting.

Tiers, top to bottom:
  frame-level tiers  each steps once per frame of F_k samples: the previous frame of samples
                     (plus conditioning from the tier above) goes through an RNN whose output is
                     upsampled into one conditioning vector per frame of the tier below;
  sample level       an MLP predicts each sample from the last F_1 samples and the conditioning
                     vector for its position, as a softmax over `levels` classes.

The sample-level input layer of the paper (learned embedding -> F_1-tap convolution) is linear
in a one-hot input, so it is exactly a per-tap lookup table `taps[k, level] -> dim`
(`tap_tables_from_conv` converts): each position costs F_1 gathers and adds instead of a
levels x F_1 x dim product (59-72 % of the classic layout's FLOPs). Summed with an embedding-bag
kernel, never materialising the F_1 x dim gathered rows.

Labels (optional, `cfg.labels`): every frame-level tier has a learned table of one vector per
label plus row 0 for "no label" (zero at initialisation); a tier adds its row to its input
projection each time it steps, next to the conditioning from the tier above. A label is given
as row indices (integers) or as mixing weights over the rows (floats): weights mix the tables
linearly, so a morph between two labels is an interpolation of their embeddings, and the same
weights give the same conditioning in every tier. No labels given = row 0 ("no label").

`forward` runs teacher-forced over a window (training); `step` advances one sample with
explicit recurrent state (generation). They compute the same function (tested).
No I/O, no printing, no device choice in this file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from inspire.config import ModelConfig


def _linear(n_in: int, n_out: int, *, wn: bool, bias: bool = True) -> nn.Linear:
    layer = nn.Linear(n_in, n_out, bias=bias)
    return weight_norm(layer) if wn else layer


def samples_to_input(x: Tensor, levels: int) -> Tensor:
    """Integer classes -> floats in [-2, 2], the frame-level tiers' input scale."""
    return x.float() * (4.0 / (levels - 1)) - 2.0


class FrameTier(nn.Module):
    """One frame-level tier: frames of `frame` samples in, `ratio` conditioning vectors per frame out."""

    def __init__(self, cfg: ModelConfig, *, frame: int, ratio: int):
        super().__init__()
        self.frame, self.ratio, self.dim, self.kind = frame, ratio, cfg.dim, cfg.rnn
        self.input = _linear(frame, cfg.dim, wn=cfg.weight_norm)
        rnn_cls = nn.GRU if cfg.rnn == "gru" else nn.LSTM
        self.rnn = rnn_cls(cfg.dim, cfg.dim, num_layers=cfg.rnn_layers, batch_first=True)
        # Learned initial state: (layers, dim) for a GRU, (2, layers, dim) (h and c) for an LSTM.
        shape = (cfg.rnn_layers, cfg.dim) if cfg.rnn == "gru" else (2, cfg.rnn_layers, cfg.dim)
        self.h0 = nn.Parameter(torch.zeros(shape))
        self.upsample = _linear(cfg.dim, cfg.dim * ratio, wn=cfg.weight_norm)
        # (label_rows, dim): what each label (row 0: "no label") adds to this tier's input.
        self.label_table = nn.Parameter(torch.zeros(cfg.label_rows, cfg.dim)) if cfg.labels else None

    def label_bias(self, labels: Tensor) -> Tensor:
        """labels: rows (...) integers, or mixing weights (..., label_rows) floats -> (..., dim)."""
        if labels.dtype.is_floating_point:
            return labels.to(self.label_table.dtype) @ self.label_table
        return F.embedding(labels, self.label_table)

    def initial_state(self, batch: int) -> Tensor:
        """(layers, B, dim) for a GRU; (2, layers, B, dim) for an LSTM."""
        return self.h0.unsqueeze(-2).expand(*self.h0.shape[:-1], batch, self.dim).contiguous()

    def forward(self, frames: Tensor, cond: Tensor | None, state: Tensor,
                label: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """frames (B, N, frame) floats; cond (B, N, dim) or None; label (B, N or 1, dim) or None
        -> (B, N * ratio, dim), new state."""
        h = self.input(frames)  # (B, N, dim)
        if cond is not None:
            h = h + cond
        if label is not None:
            h = h + label
        if self.kind == "gru":
            h, state = self.rnn(h, state)
        else:
            h, (hh, cc) = self.rnn(h, (state[0], state[1]))
            state = torch.stack((hh, cc))
        b, n, _ = h.shape
        return self.upsample(h).view(b, n * self.ratio, self.dim), state


class SampleMLP(nn.Module):
    """Sample level: tap tables over the last `frame` samples + conditioning -> MLP -> logits."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.frame, self.levels, self.dim = cfg.frame_sizes[0], cfg.levels, cfg.dim
        # taps[k, q] is what the embedding->convolution layout adds for class q at tap k (oldest first).
        self.taps = nn.Parameter(torch.randn(self.frame, cfg.levels, cfg.dim) / math.sqrt(self.frame))
        self.hidden = _linear(cfg.dim, cfg.dim, wn=cfg.weight_norm)
        self.output = _linear(cfg.dim, cfg.levels, wn=cfg.weight_norm)
        self.register_buffer("tap_offsets", torch.arange(self.frame) * cfg.levels, persistent=False)

    def tap_sum(self, prev: Tensor) -> Tensor:
        """prev (..., frame) integer classes, oldest first -> (..., dim): sum_k taps[k, prev[k]]."""
        flat = (prev + self.tap_offsets).reshape(-1, self.frame)
        out = F.embedding_bag(flat, self.taps.view(-1, self.dim), mode="sum")
        return out.view(*prev.shape[:-1], self.dim)

    def forward(self, prev: Tensor, cond: Tensor) -> Tensor:
        """prev (..., frame) classes; cond (..., dim) -> logits (..., levels)."""
        h = F.relu(self.tap_sum(prev) + cond)
        h = F.relu(self.hidden(h))
        return self.output(h)


@dataclass
class StepState:
    """Everything `SampleRNN.step` carries from one sample to the next, owned by the caller."""

    t: int  # samples generated since the frames were aligned (all tiers fire when t % frame == 0)
    hidden: list[Tensor]  # per frame-level tier, bottom first: its RNN state
    conds: list[Tensor | None]  # per tier, bottom first: its latest upsampled output (B, ratio, dim)


class SampleRNN(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        frames = cfg.tier_frames  # bottom first, in samples
        ratios = (frames[0],) + tuple(cfg.frame_sizes[1:])  # outputs per frame of each tier
        self.tiers = nn.ModuleList(FrameTier(cfg, frame=f, ratio=r) for f, r in zip(frames, ratios, strict=True))
        self.mlp = SampleMLP(cfg)

    @property
    def lookback(self) -> int:
        return self.cfg.lookback

    def initial_state(self, batch: int) -> list[Tensor]:
        """The learned initial RNN states, one per frame-level tier (bottom first)."""
        return [tier.initial_state(batch) for tier in self.tiers]

    def _labels(self, labels: Tensor | None, b: int, t_len: int | None) -> Tensor | None:
        """Check `labels` and give them a time axis: rows (B, 1 or T) or weights (B, 1 or T, rows).

        t_len None: one step (labels (B,) rows or (B, rows) weights). None -> row 0 ("no label")
        for a labelled model; nothing for a model without labels."""
        rows = self.cfg.label_rows
        if not rows:
            if labels is not None:
                raise ValueError("this model was trained without labels")
            return None
        if labels is None:
            return torch.zeros((b, 1), dtype=torch.long, device=self.tiers[0].label_table.device)
        float_ = labels.dtype.is_floating_point
        shape = tuple(labels.shape)
        one = (b, rows) if float_ else (b,)
        per_sample = () if t_len is None else ((b, t_len, rows) if float_ else (b, t_len))
        if shape == one:
            return labels.unsqueeze(1)
        if shape == per_sample:
            return labels
        want = f"{one}" + (f" or {per_sample}" if per_sample else "")
        raise ValueError(f"labels have shape {shape}, expected {want} ({'weights' if float_ else 'rows'})")

    def forward(self, x: Tensor, state: list[Tensor] | None = None, *,
                labels: Tensor | None = None) -> tuple[Tensor, list[Tensor]]:
        """Teacher forcing. x (B, lookback + T) integer classes; predicts x[:, lookback:].

        labels (labelled models): rows (B,) or (B, T) integers, or mixing weights (B, rows) or
        (B, T, rows) floats, for each predicted sample; a tier frame takes the label of the first
        sample it conditions (as `step` does). Returns logits (B, T, levels) and the RNN states
        after the window (for the next window of the same chunk). T must be a multiple of the
        top tier's frame.
        """
        b, total = x.shape
        lb, t_len = self.lookback, total - self.lookback
        if t_len <= 0 or t_len % lb:
            raise ValueError(f"window of {t_len} samples is not a positive multiple of {lb}")
        if state is None:
            state = self.initial_state(b)
        lab = self._labels(labels, b, t_len)
        xf = samples_to_input(x, self.cfg.levels)
        new_state: list[Tensor] = [None] * len(self.tiers)  # type: ignore[list-item]
        cond = None
        for k in reversed(range(len(self.tiers))):
            tier = self.tiers[k]
            frames = xf[:, lb - tier.frame : lb - tier.frame + t_len].reshape(b, t_len // tier.frame, tier.frame)
            bias = None if lab is None else tier.label_bias(lab if lab.shape[1] == 1 else lab[:, :: tier.frame])
            cond, new_state[k] = tier(frames, cond, state[k], bias)  # (B, frames below, dim)
        fs = self.mlp.frame
        prev = x[:, lb - fs : total - 1].unfold(1, fs, 1)  # (B, T, fs): the fs samples before each target
        return self.mlp(prev, cond), new_state

    def start(self, batch: int) -> StepState:
        """A fresh generation state (learned initial RNN states, nothing generated yet)."""
        return StepState(0, self.initial_state(batch), [None] * len(self.tiers))

    def step(self, history: Tensor, state: StepState, labels: Tensor | None = None) -> tuple[Tensor, StepState]:
        """One sample. history (B, lookback) integer classes, newest last -> logits (B, levels).

        labels (labelled models): rows (B,) or mixing weights (B, label_rows) for this sample.
        A tier runs only when a new frame of it begins (t a multiple of its frame).
        """
        t, lb = state.t, self.lookback
        hidden, conds = list(state.hidden), list(state.conds)
        lab = self._labels(labels, history.shape[0], None)
        for k in reversed(range(len(self.tiers))):
            tier = self.tiers[k]
            if t % tier.frame:
                continue
            frame = samples_to_input(history[:, lb - tier.frame :], self.cfg.levels).unsqueeze(1)  # (B, 1, frame)
            cond = None
            if k + 1 < len(self.tiers):
                above = self.tiers[k + 1]
                cond = conds[k + 1][:, (t // tier.frame) % above.ratio].unsqueeze(1)  # (B, 1, dim)
            bias = None if lab is None else tier.label_bias(lab)  # (B, 1, dim)
            conds[k], hidden[k] = tier(frame, cond, hidden[k], bias)
        cond = conds[0][:, t % self.mlp.frame]  # (B, dim)
        logits = self.mlp(history[:, lb - self.mlp.frame :], cond)
        return logits, StepState(t + 1, hidden, conds)

    def fold_weight_norm(self) -> "SampleRNN":
        """Replace every weight-normalised weight by its plain value (for fast generation)."""
        for module in self.modules():
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        return self


def tap_tables_from_conv(embedding: Tensor, conv_weight: Tensor) -> Tensor:
    """The classic layout's embedding (levels, E) and convolution weight (dim, E, taps) as the
    equivalent tap tables (taps, levels, dim)."""
    return torch.einsum("le,dek->kld", embedding, conv_weight)
