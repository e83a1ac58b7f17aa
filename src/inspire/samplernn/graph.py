"""Generation one top-tier frame at a time, captured as a CUDA graph on a GPU.

Every tier of a SampleRNN fires on a fixed pattern inside one frame of the top tier (its
`lookback`, P samples: all tiers at t = 0, the next one down every F_k samples...), so the P
sample steps of one such period are the same sequence of kernels every time. `PeriodStepper`
runs that sequence over static buffers (history, recurrent states, P temperatures and P uniforms
per stream) and, on CUDA, records it once as a CUDA graph and replays it: one launch per P samples
instead of a dozen per sample, which is what makes a single stream (or a few) fast on a GPU and
thousands of streams launch-free.

On the CPU (or with `graph=False`) the same period function runs eagerly: it is `stream`'s loop
with the same ops in the same order, so it gives the same samples (tested bit-identical), which
is how this path is tested where CI has no GPU.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor

from inspire.samplernn.model import SampleRNN, StepState
from inspire.samplernn.sample import FastStepper, StreamNoise, Temperature, _temperature_block, sample_logits


class PeriodStepper:
    """P = model.lookback samples per call for B streams, over static buffers.

    `run(temps, uniforms)` with temps and uniforms (P, B) advances `history` (B, lookback) and
    the recurrent states in place and returns the P new samples (B, P). States must start on a
    top-frame boundary (t % P == 0), as `model.start` and `prime_state` leave them.
    """

    def __init__(self, model: SampleRNN, history: Tensor, state: StepState, *, graph: bool | None = None,
                 stepper: FastStepper | None = None):
        self.model, self.period = model, model.lookback
        if state.t % self.period:
            raise ValueError(f"state at sample {state.t} is not on a top-frame boundary ({self.period} samples)")
        self.stepper = stepper or FastStepper(model)
        self.device = history.device
        b, lb = history.shape
        self.batch = b
        self.buf = torch.empty((b, lb + self.period), dtype=torch.long, device=self.device)  # history + period
        self.buf[:, :lb] = history
        self.hidden = [h.clone() for h in state.hidden]
        self.temps = torch.ones((self.period, b), device=self.device)
        self.uniforms = torch.zeros((self.period, b), device=self.device)
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
        for t in range(self.period):
            logits, state = self.stepper.step(self.buf[:, t : t + lb], state)
            self.buf[:, lb + t] = sample_logits(logits, self.temps[t], self.uniforms[t])
        for mine, new in zip(self.hidden, state.hidden):
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
        for mine, old in zip(self.hidden, saved[1]):
            mine.copy_(old)

    @torch.inference_mode()
    def run(self, temps: Tensor, uniforms: Tensor) -> Tensor:
        """temps, uniforms (P, B) -> the next P samples (B, P) (a view, valid until the next run)."""
        self.temps.copy_(temps)
        self.uniforms.copy_(uniforms)
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
    history: Tensor | None = None,
    state: StepState | None = None,
    block: int = 16000,
    stepper: FastStepper | None = None,
    graph: bool | None = None,
) -> Iterator[Tensor]:
    """`sample.stream` by whole periods: same arguments, same samples, same random draws.

    A last partial period is generated whole and cut (the extra samples are never shown).
    `graph`: capture a CUDA graph (default: on CUDA devices).
    """
    device = next(model.parameters()).device
    b, lb, period = len(seeds), model.lookback, model.lookback
    if history is None:
        history = torch.full((b, lb), model.cfg.levels // 2, dtype=torch.long, device=device)
    if state is None:
        state = model.start(b)
    runner = PeriodStepper(model, history, state, graph=graph, stepper=stepper)
    noise = StreamNoise(seeds, device)
    block = max(period, block // period * period)
    done = 0
    while done < n_samples:
        n = min(block, n_samples - done)
        whole = -(-n // period) * period
        temps = _temperature_block(temperature, done, n, b)  # (n, B)
        if whole > n:  # the cut samples' temperature: the last one's
            temps = torch.cat([temps, temps[-1:].expand(whole - n, b)])
        out = torch.empty((b, whole), dtype=torch.long, device=device)
        for p in range(0, whole, period):
            out[:, p : p + period] = runner.run(temps[p : p + period], _uniforms(noise, period))
        done += n
        yield out[:, :n]
