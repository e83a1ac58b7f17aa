"""Generation one top-tier frame at a time, captured as a CUDA graph on a GPU.

Every tier of a SampleRNN fires on a fixed pattern inside one frame of the top tier (its
`lookback`, P samples: all tiers at t = 0, the next one down every F_k samples...), so the P
sample steps of one such period are the same sequence of kernels every time. `PeriodStepper`
runs that sequence over static buffers (history, recurrent states, P temperatures, P uniforms and,
when truncation is on, P min-p and top-p values per stream) and, on CUDA, records it once as a
CUDA graph and replays it: one launch per P samples instead of a dozen per sample, which is what
makes a single stream (or a few) fast on a GPU and thousands of streams launch-free.

On the CPU (or with `graph=False`) the same period function runs eagerly: it is `stream`'s loop
with the same ops in the same order, so it gives the same samples (tested bit-identical), which
is how this path is tested where CI has no GPU.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor

from inspire.samplernn.model import SampleRNN, StepState
from inspire.samplernn.sample import (
    FastStepper,
    Labels,
    StreamNoise,
    Temperature,
    _check_guidance,
    _label_block,
    control_blocks,
    guide,
    sample_logits,
    start_streams,
)


class PeriodStepper:
    """P = model.lookback samples per call for B streams, over static buffers.

    `run(temps, uniforms, labels, min_p=, top_p=)` with temps, uniforms, min_p and top_p (P, B)
    (and, for a labelled model, label weights (B or 2B, P / F_1 or 1, label_rows) at the samples
    where the bottom tier steps) advances `history` (B, lookback) and the recurrent states in
    place and returns the P new samples (B, P). Which truncation controls exist is fixed at
    construction (`min_p`, `top_p`: whether to apply them; the captured graph holds their ops or
    not). States must start on a top-frame boundary (t % P == 0), as `model.start` and
    `prime_state` leave them. With `guidance`, states hold 2B streams (see `sample.stream`).
    """

    def __init__(self, model: SampleRNN, history: Tensor, state: StepState, *, graph: bool | None = None,
                 stepper: FastStepper | None = None, guidance: float | None = None, min_p: bool = False,
                 top_p: bool = False):
        self.model, self.period = model, model.lookback
        if state.t % self.period:
            raise ValueError(f"state at sample {state.t} is not on a top-frame boundary ({self.period} samples)")
        self.stepper = stepper or FastStepper(model)
        self.device = history.device
        b, lb = history.shape
        self.batch, self.guidance = b, guidance
        self.guided = _check_guidance(model, guidance)
        self.buf = torch.empty((b, lb + self.period), dtype=torch.long, device=self.device)  # history + period
        self.buf[:, :lb] = history
        self.hidden = [h.clone() for h in state.hidden]
        self.temps = torch.ones((self.period, b), device=self.device)
        self.uniforms = torch.zeros((self.period, b), device=self.device)
        self.min_p = torch.zeros((self.period, b), device=self.device) if min_p else None
        self.top_p = torch.ones((self.period, b), device=self.device) if top_p else None
        self.f1, rows = model.cfg.frame_sizes[0], model.cfg.label_rows
        self.labels = None  # (B or 2B, P / F_1, label_rows): the labels where the bottom tier steps
        if rows:
            self.labels = torch.zeros((2 * b if self.guided else b, self.period // self.f1, rows), device=self.device)
            self.labels[..., 0] = 1.0
        self.t0 = state.t  # absolute position of the next period (kept for `state()`)
        self.graph = None
        if graph is None:
            graph = self.device.type == "cuda"
        if graph:
            self._capture()

    @torch.inference_mode()
    def _period(self) -> None:
        """The P steps (the same ops as `sample.stream`'s loop), in place on the static buffers."""
        lb = self.model.lookback
        state = StepState(0, list(self.hidden), [None] * len(self.hidden))
        lab = None
        for t in range(self.period):
            if self.labels is not None and t % self.f1 == 0:
                lab = self.labels[:, t // self.f1]
            hist = self.buf[:, t : t + lb]
            logits, state = self.stepper.step(hist.repeat(2, 1) if self.guided else hist, state, lab)
            if self.guided:
                logits = guide(logits, self.guidance)
            self.buf[:, lb + t] = sample_logits(logits, self.temps[t], self.uniforms[t],
                                                min_p=None if self.min_p is None else self.min_p[t],
                                                top_p=None if self.top_p is None else self.top_p[t])
        for mine, new in zip(self.hidden, state.hidden, strict=False):
            mine.copy_(new)

    def _capture(self) -> None:
        saved = (self.buf.clone(), [h.clone() for h in self.hidden])
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):  # warm-up on a side stream, as graph capture requires
            self._period()
        torch.cuda.current_stream(self.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self._period()
        self.buf.copy_(saved[0])  # warm-up and capture ran the period: undo them
        for mine, old in zip(self.hidden, saved[1], strict=False):
            mine.copy_(old)

    @torch.inference_mode()
    def run(self, temps: Tensor, uniforms: Tensor, labels: Tensor | None = None, *, min_p: Tensor | None = None,
            top_p: Tensor | None = None) -> Tensor:
        """temps, uniforms (P, B); labels as the class says (None: keep the last); min_p, top_p (P, B)
        when built with them -> the next P samples (B, P) (a new tensor)."""
        self.temps.copy_(temps)
        self.uniforms.copy_(uniforms)
        if labels is not None:
            self.labels.copy_(labels)
        for name, mine, given in (("min_p", self.min_p, min_p), ("top_p", self.top_p, top_p)):
            if (mine is None) != (given is None):
                raise ValueError(f"{name} {'given to' if given is not None else 'missing from'} a stepper built "
                                 f"{'without' if mine is None else 'with'} it")
            if mine is not None:
                mine.copy_(given)
        if self.graph is not None:
            self.graph.replay()
        else:
            self._period()
        lb = self.model.lookback
        out = self.buf[:, lb:].clone()
        self.buf[:, :lb] = self.buf[:, -lb:].clone()
        self.t0 += self.period
        return out

    def state(self) -> tuple[Tensor, StepState]:
        """The history and state to continue from with `sample.stream` or `model.step`."""
        lb = self.model.lookback
        return self.buf[:, :lb].clone(), StepState(self.t0, [h.clone() for h in self.hidden], [None] * len(self.hidden))

    def snapshot(self) -> tuple[Tensor, list[Tensor]]:
        """A copy of every stream's history and recurrent state now (for `restore`)."""
        return self.buf[:, : self.model.lookback].clone(), [h.clone() for h in self.hidden]

    def restore(self, rows: Tensor, snap: tuple[Tensor, list[Tensor]]) -> None:
        """Put streams `rows` (indices) back to where they were at `snap`, in place (the static
        buffers keep their addresses, so a captured graph stays valid). Others are untouched."""
        history, hidden = snap
        self.buf[rows, : self.model.lookback] = history[rows]
        for mine, old in zip(self.hidden, hidden, strict=False):
            mine[..., rows, :] = old[..., rows, :]


def _uniforms(noise: StreamNoise, n: int) -> Tensor:
    """(n, B) uniforms: the next n draws of every stream, exactly as n calls of `noise.next()`."""
    return torch.stack([noise.next() for _ in range(n)])


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
    stepper: FastStepper | None = None,
    graph: bool | None = None,
    labels: Labels | None = None,
    guidance: float | None = None,
) -> Iterator[Tensor]:
    """`sample.stream` by whole periods: same arguments, same samples, same random draws.

    A last partial period is generated whole and cut (the extra samples are never shown; a label
    function may be asked for positions up to a period past `n_samples`).
    `graph`: capture a CUDA graph (default: on CUDA devices).
    """
    device = next(model.parameters()).device
    b, period = len(seeds), model.lookback
    guided = _check_guidance(model, guidance)
    history, state = start_streams(model, b, history=history, state=state, guided=guided)
    runner = PeriodStepper(model, history, state, graph=graph, stepper=stepper, guidance=guidance,
                           min_p=min_p is not None, top_p=top_p is not None)
    f1 = runner.f1
    moving = callable(labels)
    # Constant labels: (B or 2B, 1, rows) once; moving ones: per block below.
    labs = None if moving else _label_block(model, labels, torch.zeros(1), b, guided=guided)
    noise = StreamNoise(seeds, device)
    block = max(period, block // period * period)
    done = 0
    while done < n_samples:
        n = min(block, n_samples - done)
        whole = -(-n // period) * period
        controls = control_blocks(done, n, b, temperature, min_p, top_p)  # (n, B) each, or None
        if whole > n:  # the cut samples' controls: the last one's
            controls = tuple(None if c is None else torch.cat([c, c[-1:].expand(whole - n, b)]) for c in controls)
        if moving:
            labs = _label_block(model, labels, torch.arange(done, done + whole, f1, device=device), b, guided=guided)
        out = torch.empty((b, whole), dtype=torch.long, device=device)
        for p in range(0, whole, period):
            temps, mp, tp = (None if c is None else c[p : p + period] for c in controls)
            lab = None if labs is None else labs[:, p // f1 : (p + period) // f1] if moving else labs
            out[:, p : p + period] = runner.run(temps, _uniforms(noise, period), lab, min_p=mp, top_p=tp)
        done += n
        yield out[:, :n]
