"""The incident report's error-rate chart, drawn as a PNG with Pillow.

A person reads a line crossing the P1 and P0 thresholds faster than a table of percentages.
matplotlib would draw it with less code but brings numpy and a font stack (~60 MB installed)
into a router; Pillow (a few MB, already the usual image library) draws lines, bands and text,
which is all this chart needs.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["error_rate_chart"]

_W, _H = 900, 340
_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 20, 40, 50
_BANDS = {1: (255, 244, 204), 2: (255, 224, 178), 3: (255, 205, 210)}  # P2, P1, P0 backgrounds
_UPSTREAM = (198, 40, 40)
_CLIENT = (21, 101, 192)
_GRID = (220, 220, 220)
_TEXT = (40, 40, 40)

Sample = tuple[float, float | None, float | None, int]


def error_rate_chart(samples: Sequence[Sample], thresholds: dict[str, float], title: str) -> bytes:
    """PNG bytes: upstream and client error rate over time, class as background bands.

    ``samples`` are ``(unix time, upstream rate, client 5xx rate, class value)``, oldest first;
    ``thresholds`` maps a label ("P0") to the error rate drawn as a dashed line.
    """
    # Imported here: a router that never writes a report never loads an image library.
    from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415

    image = Image.new("RGB", (_W, _H), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    x0, x1, y0, y1 = _LEFT, _W - _RIGHT, _TOP, _H - _BOTTOM
    draw.text((x0, 10), title, fill=_TEXT, font=font)
    if not samples:
        draw.text((x0, (y0 + y1) // 2), "no traffic samples in this window", fill=_TEXT, font=font)
        return _png(image)
    t_start, t_end = samples[0][0], samples[-1][0]
    span = max(t_end - t_start, 1.0)

    def x(t: float) -> float:
        return x0 + (t - t_start) / span * (x1 - x0)

    def y(rate: float) -> float:
        return y1 - max(0.0, min(rate, 1.0)) * (y1 - y0)

    for (t, _, _, cls), (t_next, *_) in zip(samples, [*samples[1:], samples[-1]], strict=True):
        if cls in _BANDS:
            draw.rectangle((x(t), y0, max(x(t_next), x(t) + 1), y1), fill=_BANDS[cls])
    for pct in range(0, 101, 25):
        yy = y(pct / 100)
        draw.line((x0, yy, x1, yy), fill=_GRID)
        draw.text((8, yy - 7), f"{pct}%", fill=_TEXT, font=font)
    for label, rate in thresholds.items():
        yy = y(rate)
        for start in range(x0, x1, 12):
            draw.line((start, yy, min(start + 6, x1), yy), fill=(120, 120, 120))
        draw.text((x1 - 30, yy - 14), label, fill=_TEXT, font=font)
    for index, color in ((1, _UPSTREAM), (2, _CLIENT)):
        points = [(x(s[0]), y(v)) for s in samples if (v := s[index]) is not None]
        if len(points) > 1:
            draw.line(points, fill=color, width=2)
        elif points:
            px, py = points[0]
            draw.ellipse((px - 2, py - 2, px + 2, py + 2), fill=color)
    draw.rectangle((x0, y0, x1, y1), outline=_TEXT)
    for t, anchor in ((t_start, x0), (t_end, x1 - 70)):
        draw.text(
            (anchor, y1 + 6), time.strftime("%H:%M:%SZ", time.gmtime(t)), fill=_TEXT, font=font
        )
    legend_y = y1 + 26
    draw.line((x0, legend_y + 7, x0 + 20, legend_y + 7), fill=_UPSTREAM, width=2)
    draw.text((x0 + 26, legend_y), "upstream error rate", fill=_TEXT, font=font)
    draw.line((x0 + 190, legend_y + 7, x0 + 210, legend_y + 7), fill=_CLIENT, width=2)
    draw.text((x0 + 216, legend_y), "client 5xx rate", fill=_TEXT, font=font)
    draw.text(
        (x0 + 360, legend_y),
        "background: class (P2 yellow, P1 orange, P0 red)",
        fill=_TEXT,
        font=font,
    )
    return _png(image)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
