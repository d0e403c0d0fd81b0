"""A small RGB raster canvas and PNG encoder, standard library only (zlib, struct).

The pixels live in one ``bytearray`` (3 bytes a pixel, row-major) so drawing is slice
assignment rather than per-pixel objects. Coordinates may be floats (rounded) and may lie
anywhere: everything is clipped to the canvas, or to the box given to :meth:`Canvas.set_clip`.
Text uses an embedded 5x7 bitmap font covering printable ASCII (32..126); other characters are
drawn as ``?``.
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

Color = tuple[int, int, int]

GLYPH_W = 5
GLYPH_H = 7
ADVANCE = GLYPH_W + 1  # one blank column between characters
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Seven rows of five columns each, top row first; "#" is ink.
_FONT_ROWS: dict[str, str] = {
    " ": "..... ..... ..... ..... ..... ..... .....",
    "!": "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
    '"': ".#.#. .#.#. .#.#. ..... ..... ..... .....",
    "#": ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",
    "$": "..#.. .#### #.#.. .###. ..#.# ####. ..#..",
    "%": "##... ##..# ...#. ..#.. .#... #..## ...##",
    "&": ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#",
    "'": "..#.. ..#.. .#... ..... ..... ..... .....",
    "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
    ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
    "*": "..... ..#.. #.#.# .###. #.#.# ..#.. .....",
    "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
    ",": "..... ..... ..... ..... .##.. ..#.. .#...",
    "-": "..... ..... ..... ##### ..... ..... .....",
    ".": "..... ..... ..... ..... ..... .##.. .##..",
    "/": "..... ....# ...#. ..#.. .#... #.... .....",
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    ":": "..... .##.. .##.. ..... .##.. .##.. .....",
    ";": "..... .##.. .##.. ..... .##.. ..#.. .#...",
    "<": "...#. ..#.. .#... #.... .#... ..#.. ...#.",
    "=": "..... ..... ##### ..... ##### ..... .....",
    ">": ".#... ..#.. ...#. ....# ...#. ..#.. .#...",
    "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
    "@": ".###. #...# ....# .##.# #.#.# #.#.# .###.",
    "A": ".###. #...# #...# ##### #...# #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.",
    "D": "###.. #..#. #...# #...# #...# #..#. ###..",
    "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####",
    "H": "#...# #...# #...# ##### #...# #...# #...#",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "L": "#.... #.... #.... #.... #.... #.... #####",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# #...# .###.",
    "P": "####. #...# #...# ####. #.... #.... #....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "U": "#...# #...# #...# #...# #...# #...# .###.",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
    "Z": "##### ....# ...#. ..#.. .#... #.... #####",
    "[": ".###. .#... .#... .#... .#... .#... .###.",
    "\\": "..... #.... .#... ..#.. ...#. ....# .....",
    "]": ".###. ...#. ...#. ...#. ...#. ...#. .###.",
    "^": "..#.. .#.#. #...# ..... ..... ..... .....",
    "_": "..... ..... ..... ..... ..... ..... #####",
    "`": ".#... ..#.. ...#. ..... ..... ..... .....",
    "a": "..... ..... .###. ....# .#### #...# .####",
    "b": "#.... #.... #.##. ##..# #...# #...# ####.",
    "c": "..... ..... .###. #.... #.... #...# .###.",
    "d": "....# ....# .##.# #..## #...# #...# .####",
    "e": "..... ..... .###. #...# ##### #.... .###.",
    "f": "..##. .#..# .#... ###.. .#... .#... .#...",
    "g": "..... .#### #...# #...# .#### ....# .###.",
    "h": "#.... #.... #.##. ##..# #...# #...# #...#",
    "i": "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.",
    "j": "...#. ..... ..##. ...#. ...#. #..#. .##..",
    "k": "#.... #.... #..#. #.#.. ##... #.#.. #..#.",
    "l": ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "m": "..... ..... ##.#. #.#.# #.#.# #...# #...#",
    "n": "..... ..... #.##. ##..# #...# #...# #...#",
    "o": "..... ..... .###. #...# #...# #...# .###.",
    "p": "..... ..... ####. #...# ####. #.... #....",
    "q": "..... ..... .##.# #..## .#### ....# ....#",
    "r": "..... ..... #.##. ##..# #.... #.... #....",
    "s": "..... ..... .###. #.... .###. ....# ####.",
    "t": ".#... .#... ###.. .#... .#... .#..# ..##.",
    "u": "..... ..... #...# #...# #...# #..## .##.#",
    "v": "..... ..... #...# #...# #...# .#.#. ..#..",
    "w": "..... ..... #...# #...# #.#.# #.#.# .#.#.",
    "x": "..... ..... #...# .#.#. ..#.. .#.#. #...#",
    "y": "..... ..... #...# #...# .#### ....# .###.",
    "z": "..... ..... ##### ...#. ..#.. .#... #####",
    "{": "...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.",
    "|": "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "}": ".#... ..#.. ..#.. ...#. ..#.. ..#.. .#...",
    "~": "..... ..... .#... #.#.# ...#. ..... .....",
}


def _decode_font(rows: dict[str, str]) -> dict[str, tuple[tuple[int, int], ...]]:
    """Glyph -> the (column, row) offsets of its ink pixels."""
    glyphs: dict[str, tuple[tuple[int, int], ...]] = {}
    for ch, spec in rows.items():
        lines = spec.split()
        if len(lines) != GLYPH_H or any(len(line) != GLYPH_W for line in lines):
            raise ValueError(f"bad glyph for {ch!r}")
        glyphs[ch] = tuple((c, r) for r, line in enumerate(lines)
                           for c, cell in enumerate(line) if cell == "#")
    return glyphs


GLYPHS = _decode_font(_FONT_ROWS)


def text_width(s: str, scale: int = 1) -> int:
    """Width in pixels of ``s`` drawn at ``scale`` (no trailing spacing column)."""
    return max(0, len(s) * ADVANCE - 1) * scale


def _rgb(color: Sequence[int]) -> Color:
    r, g, b = (max(0, min(255, int(v))) for v in color[:3])
    return (r, g, b)


def _finite(*vals: float) -> bool:
    return all(math.isfinite(v) for v in vals)


def _chunk(tag: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + tag + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))


class Canvas:
    """An RGB image with clipped drawing primitives and a PNG encoder."""

    def __init__(self, width: int, height: int,
                 background: Sequence[int] = (255, 255, 255)) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"canvas size must be positive, got {width}x{height}")
        self.width = int(width)
        self.height = int(height)
        self.background = _rgb(background)
        self._buf = bytearray(bytes(self.background) * (self.width * self.height))
        self._clip = (0, 0, self.width - 1, self.height - 1)

    # -- state ----------------------------------------------------------------------------

    def set_clip(self, box: tuple[float, float, float, float] | None) -> None:
        """Restrict drawing to the inclusive box (x0, y0, x1, y1); ``None`` restores the canvas."""
        if box is None:
            self._clip = (0, 0, self.width - 1, self.height - 1)
            return
        x0, y0, x1, y1 = (round(v) for v in box)
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        # An empty intersection leaves x0 > x1 so every primitive draws nothing.
        self._clip = (max(0, x0), max(0, y0), min(self.width - 1, x1), min(self.height - 1, y1))

    def pixel(self, x: int, y: int) -> Color:
        """The colour at (x, y)."""
        if not (0 <= x < self.width and 0 <= y < self.height):
            raise IndexError(f"({x}, {y}) outside {self.width}x{self.height}")
        i = (y * self.width + x) * 3
        return (self._buf[i], self._buf[i + 1], self._buf[i + 2])

    @property
    def pixels(self) -> bytes:
        """The raw RGB bytes, row-major."""
        return bytes(self._buf)

    # -- filled shapes --------------------------------------------------------------------

    def _clipped_box(self, x0: float, y0: float, x1: float,
                     y1: float) -> tuple[int, int, int, int] | None:
        if not _finite(x0, y0, x1, y1):
            return None
        ax0, ax1 = sorted((round(x0), round(x1)))
        ay0, ay1 = sorted((round(y0), round(y1)))
        cx0, cy0, cx1, cy1 = self._clip
        ax0, ay0, ax1, ay1 = max(ax0, cx0), max(ay0, cy0), min(ax1, cx1), min(ay1, cy1)
        if ax0 > ax1 or ay0 > ay1:
            return None
        return ax0, ay0, ax1, ay1

    def rect(self, x0: float, y0: float, x1: float, y1: float, color: Sequence[int]) -> None:
        """Fill the rectangle with corners (x0, y0) and (x1, y1), both inclusive."""
        box = self._clipped_box(x0, y0, x1, y1)
        if box is None:
            return
        ax0, ay0, ax1, ay1 = box
        run = bytes(_rgb(color)) * (ax1 - ax0 + 1)
        w, buf = self.width, self._buf
        for y in range(ay0, ay1 + 1):
            i = (y * w + ax0) * 3
            buf[i:i + len(run)] = run

    def blend_rect(self, x0: float, y0: float, x1: float, y1: float, color: Sequence[int],
                   alpha: float) -> None:
        """Mix ``color`` over the rectangle at opacity ``alpha`` (0..1), corners inclusive."""
        box = self._clipped_box(x0, y0, x1, y1)
        a = max(0.0, min(1.0, float(alpha)))
        if box is None or a == 0.0:
            return
        ax0, ay0, ax1, ay1 = box
        # A per-channel lookup table turns the blend into bytes.translate over strided slices.
        tables = [bytes(round(v * (1.0 - a) + c * a) for v in range(256)) for c in _rgb(color)]
        w, buf = self.width, self._buf
        for y in range(ay0, ay1 + 1):
            start = (y * w + ax0) * 3
            end = (y * w + ax1 + 1) * 3
            for ch in range(3):
                buf[start + ch:end:3] = buf[start + ch:end:3].translate(tables[ch])

    # -- lines ----------------------------------------------------------------------------

    def _clip_segment(self, x0: float, y0: float, x1: float, y1: float,
                      margin: int) -> tuple[float, float, float, float] | None:
        """Liang-Barsky against the clip box grown by ``margin``, so off-canvas coordinates
        cost nothing however far out they are."""
        cx0, cy0, cx1, cy1 = self._clip
        xmin, ymin, xmax, ymax = cx0 - margin, cy0 - margin, cx1 + margin, cy1 + margin
        dx, dy = x1 - x0, y1 - y0
        t0, t1 = 0.0, 1.0
        for p, q in ((-dx, x0 - xmin), (dx, xmax - x0), (-dy, y0 - ymin), (dy, ymax - y0)):
            if p == 0:
                if q < 0:
                    return None
                continue
            r = q / p
            if p < 0:
                if r > t1:
                    return None
                t0 = max(t0, r)
            else:
                if r < t0:
                    return None
                t1 = min(t1, r)
        return x0 + t0 * dx, y0 + t0 * dy, x0 + t1 * dx, y0 + t1 * dy

    def _line(self, x0: float, y0: float, x1: float, y1: float, color: Color, width: int,
              dash: int | None, phase: int) -> int:
        """Bresenham with a square brush; returns the dash phase after the last pixel."""
        if not _finite(x0, y0, x1, y1):
            return phase
        width = max(1, int(width))
        seg = self._clip_segment(x0, y0, x1, y1, width)
        if seg is None:
            return phase
        ix0, iy0, ix1, iy1 = (round(v) for v in seg)
        cx0, cy0, cx1, cy1 = self._clip
        if cx0 > cx1 or cy0 > cy1:
            return phase
        w, buf = self.width, self._buf
        px = bytes(color)
        lo = -((width - 1) // 2)
        hi = width // 2
        brush = px * width
        dx, sx = abs(ix1 - ix0), (1 if ix0 < ix1 else -1)
        dy, sy = -abs(iy1 - iy0), (1 if iy0 < iy1 else -1)
        err = dx + dy
        x, y = ix0, iy0
        while True:
            on = dash is None or (phase // dash) % 2 == 0
            phase += 1
            if on:
                if width == 1:
                    if cx0 <= x <= cx1 and cy0 <= y <= cy1:
                        i = (y * w + x) * 3
                        buf[i:i + 3] = px
                else:
                    bx0, bx1 = max(x + lo, cx0), min(x + hi, cx1)
                    if bx0 <= bx1:
                        n = (bx1 - bx0 + 1) * 3
                        for by in range(max(y + lo, cy0), min(y + hi, cy1) + 1):
                            i = (by * w + bx0) * 3
                            buf[i:i + n] = brush[:n]
            if x == ix1 and y == iy1:
                return phase
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x += sx
            if e2 <= dx:
                err += dx
                y += sy

    def line(self, x0: float, y0: float, x1: float, y1: float, color: Sequence[int],
             width: int = 1, dash: int | None = None) -> None:
        """A straight line, ``width`` pixels thick, dashed every ``dash`` pixels if given."""
        self._line(x0, y0, x1, y1, _rgb(color), width, dash if dash and dash > 0 else None, 0)

    def polyline(self, points: Iterable[tuple[float, float]], color: Sequence[int],
                 width: int = 1, dash: int | None = None) -> None:
        """Connected segments through ``points``; a dash pattern runs on across the joints."""
        rgb = _rgb(color)
        dash = dash if dash and dash > 0 else None
        phase = 0
        segments = 0
        prev: tuple[float, float] | None = None
        for pt in points:
            x, y = float(pt[0]), float(pt[1])
            if prev is None:
                prev = (x, y)
                continue
            # Consecutive points on the same pixel add nothing but a re-drawn joint.
            if round(x) == round(prev[0]) and round(y) == round(prev[1]):
                continue
            # Each segment redraws its start pixel; step the phase back so dashes stay even.
            phase = max(0, self._line(prev[0], prev[1], x, y, rgb, width, dash, phase) - 1)
            segments += 1
            prev = (x, y)
        if prev is not None and segments == 0:  # a lone point still shows as a dot
            self._line(prev[0], prev[1], prev[0], prev[1], rgb, width, None, 0)

    def vline_dashed(self, x: float, y0: float, y1: float, color: Sequence[int],
                     dash: int = 4) -> None:
        """A one-pixel vertical dashed line (markers, gridlines)."""
        self._line(x, y0, x, y1, _rgb(color), 1, max(1, int(dash)), 0)

    # -- text -----------------------------------------------------------------------------

    def _glyph_pixels(self, ch: str) -> tuple[tuple[int, int], ...]:
        glyph = GLYPHS.get(ch)
        return GLYPHS["?"] if glyph is None else glyph  # space is an empty, valid glyph

    def text(self, x: float, y: float, s: str, color: Sequence[int], scale: int = 1,
             anchor: str = "left") -> None:
        """Draw ``s`` with its top edge at ``y``; ``anchor`` says whether ``x`` is the text's
        left end, centre or right end."""
        if not s or not _finite(x, y):
            return
        scale = max(1, int(scale))
        rgb = _rgb(color)
        x = round(x) - _anchor_offset(text_width(s, scale), anchor)
        y = round(y)
        for i, ch in enumerate(s):
            gx = x + i * ADVANCE * scale
            for c, r in self._glyph_pixels(ch):
                px, py = gx + c * scale, y + r * scale
                self.rect(px, py, px + scale - 1, py + scale - 1, rgb)

    def text_vertical(self, x: float, y: float, s: str, color: Sequence[int], scale: int = 1,
                      anchor: str = "center") -> None:
        """Draw ``s`` rotated to read bottom to top, its glyph tops at column ``x``; ``anchor``
        says whether ``y`` is where the text starts (bottom), its centre or its end (top)."""
        if not s or not _finite(x, y):
            return
        scale = max(1, int(scale))
        rgb = _rgb(color)
        x = round(x)
        y = round(y) + _anchor_offset(text_width(s, scale), anchor)
        for i, ch in enumerate(s):
            base = y - i * ADVANCE * scale
            for c, r in self._glyph_pixels(ch):
                px, py = x + r * scale, base - c * scale
                self.rect(px, py - scale + 1, px + scale - 1, py, rgb)

    # -- output ---------------------------------------------------------------------------

    def to_png(self) -> bytes:
        """The image as a PNG: 8-bit RGB, no interlace, filter 0 on every row, zlib level 6."""
        stride = self.width * 3
        view = memoryview(self._buf)
        raw = b"".join(b"\x00" + view[y * stride:(y + 1) * stride] for y in range(self.height))
        ihdr = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (PNG_SIGNATURE + _chunk(b"IHDR", ihdr)
                + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b""))

    def save(self, path: Path | str) -> Path:
        """Write the PNG to ``path`` (via a temporary file, so readers never see half an image)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(self.to_png())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path


def _anchor_offset(width: int, anchor: str) -> int:
    if anchor == "left":
        return 0
    if anchor == "center":
        return width // 2
    if anchor == "right":
        return width
    raise ValueError(f"anchor must be left, center or right, not {anchor!r}")
