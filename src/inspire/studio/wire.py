"""What the studio's handlers share on the wire: a request body read within a limit, and a
stretch of a prepared track as a WAV answer. (Each module keeps its own error type; these raise
`BodyTooLarge` or the data's own InspireError for it to map.)"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
from starlette.requests import Request

from inspire.audio.dataset import PreparedData
from inspire.audio.quantize import dequantize


class BodyTooLarge(Exception):
    """The request's body is over the limit (declared or streamed)."""


async def read_body(request: Request, limit: int) -> bytes:
    """The body, at most `limit` bytes (a larger Content-Length is refused before reading)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge(f"request body too large (at most {limit} bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"request body too large (at most {limit} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def track_wav(data: PreparedData, track, start: int, end: int) -> bytes:
    """Samples start..end of a prepared track, decoded, as 16-bit WAV bytes (InspireError when
    the track's audio cannot be read)."""
    classes = np.asarray(data.array(track)[start:end])
    audio = dequantize(classes, kind=data.settings.quantization, levels=data.settings.levels)
    buf = io.BytesIO()
    sf.write(buf, audio, data.settings.sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()
