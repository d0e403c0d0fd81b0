"""Report plots: the PNG a user opens (valid file, size, panels, downtime band, one colour a
run), the 1/2/5 axis ticks, and the plain-ASCII terminal plot."""

import math
import struct
import zlib
from pathlib import Path

import pytest

from lpmlab.report import plot, termplot
from lpmlab.report.plot import nice_ticks, plot_layout, render_png
from lpmlab.report.png import GLYPHS, PNG_SIGNATURE, Canvas
from lpmlab.report.termplot import render_terminal

MIB = 1024 * 1024
WHITE = (255, 255, 255)


def make_run(total=10.0, mem_mib=512, n=101, downtime=(6.0, 9.0), rid="a1b2c3d4e5f6",
             partition="lpar1", result="success", iterations=(0.0, 1.0, 3.0, 5.0)):
    """Remaining bytes falling linearly from ``mem_mib`` to 0 over ``total`` seconds."""
    samples = []
    it = 0
    for i in range(n):
        t = round(total * i / (n - 1), 6)
        kind = "poll"
        if any(abs(t - x) < 1e-9 for x in iterations):
            it += 1
            kind = "iteration"
        rem = round(mem_mib * MIB * (1 - i / (n - 1)))
        samples.append({
            "t": t, "kind": kind, "iteration": it, "memory_remaining": rem,
            "data_remaining": rem, "data_processed": mem_mib * MIB - rem,
            "dirty_rate_bps": 64.0 * MIB, "bandwidth_bps": 300.0 * MIB,
            "expected_downtime_ms": 300, "throttle_pct": 0,
        })
    samples[-1]["kind"] = "completed"
    return {
        "id": rid, "partition": partition, "source_sys": "sys1", "dest_sys": "sys2",
        "result": result, "controls": {"concurrency": 4},
        "summary": {"total_time_s": total, "downtime_ms": 87, "iterations": it,
                    "bytes_sent": mem_mib * MIB},
        "downtime_window": list(downtime) if downtime else None,
        "samples": samples,
    }


class Png:
    """A PNG read back by hand: chunks checked, IDAT inflated, filter bytes checked."""

    def __init__(self, path):
        data = Path(path).read_bytes()
        assert data[:8] == PNG_SIGNATURE
        self.chunks = []
        pos = 8
        while pos < len(data):
            (n,) = struct.unpack(">I", data[pos:pos + 4])
            tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
            (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
            assert crc == zlib.crc32(tag + body) & 0xFFFFFFFF, tag
            self.chunks.append((tag, body))
            pos += 12 + n
        assert self.chunks[0][0] == b"IHDR" and self.chunks[-1][0] == b"IEND"
        (self.width, self.height, self.depth, self.color_type, _, _,
         self.interlace) = struct.unpack(">IIBBBBB", self.chunks[0][1])
        raw = zlib.decompress(b"".join(body for tag, body in self.chunks if tag == b"IDAT"))
        stride = self.width * 3 + 1
        assert len(raw) == self.height * stride
        assert all(raw[y * stride] == 0 for y in range(self.height))
        self.rows = [raw[y * stride + 1:(y + 1) * stride] for y in range(self.height)]

    def pixel(self, x, y):
        row = self.rows[y]
        return tuple(row[x * 3:x * 3 + 3])

    def colours_in(self, box):
        x0, y0, x1, y1 = box
        return [self.pixel(x, y) for y in range(y0, y1 + 1) for x in range(x0, x1 + 1)]


# -- the PNG file ---------------------------------------------------------------------------

def test_png_is_valid_with_the_requested_size(tmp_path):
    out = render_png([make_run()], tmp_path / "r.png", width=640, height=400)
    png = Png(out)
    assert (png.width, png.height) == (640, 400)
    assert (png.depth, png.color_type, png.interlace) == (8, 2, 0)


def test_default_size_and_parent_directories_made(tmp_path):
    out = render_png(make_run(), tmp_path / "a" / "b" / "r.png")
    assert out == tmp_path / "a" / "b" / "r.png"
    png = Png(out)
    assert (png.width, png.height) == (plot.WIDTH, plot.HEIGHT) == (900, 560)


def test_samples_draw_in_both_panels(tmp_path):
    run = make_run()
    png = Png(render_png([run], tmp_path / "r.png"))
    layout = plot_layout([run])
    top = png.colours_in(layout.top.inner())
    bottom = png.colours_in(layout.bottom.inner())
    assert top.count(plot.REMAINING) > 100
    assert bottom.count(plot.DIRTY) > 100
    assert bottom.count(plot.BANDWIDTH) > 100  # dashed, still plenty


def column_tint(png, box, x):
    """How many pixels of column x inside the box are not the plain background."""
    x0, y0, x1, y1 = box
    return sum(png.pixel(x, y) != WHITE for y in range(y0, y1 + 1))


def test_downtime_band_is_tinted_in_both_panels(tmp_path):
    run = make_run(total=10.0, downtime=(6.0, 9.0))
    png = Png(render_png([run], tmp_path / "r.png"))
    layout = plot_layout([run])
    for box in (layout.top, layout.bottom):
        inner = box.inner()
        height = inner[3] - inner[1] + 1
        # The time axis runs 0..10 s, so 7.5 s is inside the band and 2.5 s outside it.
        x_in = round(box.x0 + 0.75 * box.w)
        x_out = round(box.x0 + 0.25 * box.w)
        assert column_tint(png, inner, x_in) > 0.9 * height
        assert column_tint(png, inner, x_out) < 0.1 * height
        r, g, b = png.pixel(x_in, inner[1] + 5)
        assert (r, g, b) != WHITE and r > b  # orange wash, lighter than the legend colour
    no_band = Png(render_png([make_run(downtime=None)], tmp_path / "n.png"))
    x_in = round(layout.top.x0 + 0.75 * layout.top.w)
    assert column_tint(no_band, layout.top.inner(), x_in) < 0.1 * layout.top.h


def test_two_runs_get_two_palette_colours(tmp_path):
    runs = [make_run(), make_run(total=7.0, mem_mib=800, rid="ffeeddccbbaa", partition="lpar2",
                                 downtime=(5.0, 5.2))]
    png = Png(render_png(runs, tmp_path / "cmp.png"))
    top = set(png.colours_in(plot_layout(runs).top.inner()))
    assert plot.PALETTE[0] in top
    assert plot.PALETTE[1] in top
    assert plot.PALETTE[0] != plot.PALETTE[1]


def test_palette_has_six_distinct_colours():
    assert len(set(plot.PALETTE)) >= 6
    assert WHITE not in plot.PALETTE


def test_compare_title_and_one_legend_entry_a_run():
    runs = [make_run(rid=f"{i:012x}", partition=f"lpar{i}") for i in range(3)]
    runs[1]["label"] = "throttled"
    layout = plot_layout(runs)
    assert layout.title == "comparison of 3 migrations"
    labels = [entry.label for entry, _, _ in layout.legend]
    assert labels[0].startswith("000000000000 lpar0: success")
    assert labels[1].startswith("throttled: ")
    assert [entry.color for entry, _, _ in layout.legend[:3]] == list(plot.PALETTE[:3])


def test_single_run_title_and_legend():
    layout = plot_layout([make_run()])
    assert layout.title == ("lpar1: sys1 -> sys2  success, 10.0 s, downtime 87 ms, "
                            "4 iterations")
    labels = [entry.label for entry, _, _ in layout.legend]
    assert labels[:4] == ["remaining", "dirty rate", "bandwidth", "downtime"]


@pytest.mark.parametrize("runs", [
    [{"id": "a1", "partition": "lpar1", "result": "failed", "samples": []}],
    [{"id": "a1"}],
    [],
    [make_run(), {"id": "b2", "samples": [], "downtime_window": None}],
])
def test_empty_samples_still_give_a_valid_png(tmp_path, runs):
    png = Png(render_png(runs, tmp_path / "e.png"))
    assert (png.width, png.height) == (900, 560)
    # The title and the "no samples" text are ink on the background.
    assert any(c != WHITE for c in png.colours_in((0, 0, 899, 30)))


def test_null_values_are_skipped_not_fatal(tmp_path):
    run = make_run()
    for i, s in enumerate(run["samples"]):
        if i % 3 == 0:
            s.update(data_remaining=None, dirty_rate_bps=None, bandwidth_bps=None)
        if i % 5 == 0:
            s.update(memory_remaining=None, expected_downtime_ms=None, throttle_pct=None)
    run["samples"][4]["dirty_rate_bps"] = float("nan")
    series = plot.series_of(run)
    assert len(series.remaining) == 67  # data_remaining kept for two samples in three
    assert all(math.isfinite(v) for _, v in series.dirty)
    Png(render_png([run], tmp_path / "r.png"))


def test_memory_remaining_is_used_when_there_is_no_data_remaining():
    run = make_run(n=11)
    for s in run["samples"]:
        s["data_remaining"] = None
    series = plot.series_of(run)
    assert series.remaining[0] == (0.0, 512.0)
    assert len(series.remaining) == 11


def test_too_small_a_plot_is_refused(tmp_path):
    with pytest.raises(ValueError):
        render_png([make_run()], tmp_path / "r.png", width=100, height=50)


# -- nice_ticks -----------------------------------------------------------------------------

@pytest.mark.parametrize(("lo", "hi"), [
    (0, 5.3), (0, 1), (0, 1234), (0.013, 0.087), (-3, 7), (0, 16384), (1e9, 3.2e9),
    (0, 0.0004), (2.5, 2.5), (0, 0),
])
def test_nice_ticks_are_1_2_5_steps_covering_the_range(lo, hi):
    ticks = nice_ticks(lo, hi)
    assert ticks[0] <= lo and ticks[-1] >= hi
    assert 3 <= len(ticks) <= 12
    steps = {round(b - a, 12) for a, b in zip(ticks, ticks[1:], strict=False)}
    step = ticks[1] - ticks[0]
    assert all(math.isclose(s, step, rel_tol=1e-9) for s in steps)
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 5))


def test_nice_ticks_examples():
    assert nice_ticks(0, 5.3) == [0, 2, 4, 6]
    assert nice_ticks(0, 5.3, n=8) == [0, 1, 2, 3, 4, 5, 6]
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0, 1234) == [0, 500, 1000, 1500]
    assert nice_ticks(0, 10, n=10) == list(range(11))
    assert nice_ticks(7, 3) == nice_ticks(3, 7)


def test_nice_ticks_refuse_non_finite():
    with pytest.raises(ValueError):
        nice_ticks(0, float("inf"))


# -- terminal plot --------------------------------------------------------------------------

def plot_rows(text):
    """The value rows of the main block: from the header to the time axis."""
    lines = text.splitlines()
    start = lines.index("remaining (MiB)") + 1
    end = next(i for i in range(start, len(lines)) if lines[i].lstrip().startswith("+-"))
    return lines[start:end]


@pytest.mark.parametrize("height", [6, 14, 20])
def test_terminal_plot_has_the_requested_height(height):
    text = render_terminal([make_run()], width=72, height=height)
    assert len(plot_rows(text)) == height
    # Title, header, rows, axis, marker line, labels, legend; then the rate block.
    main = text.split("\n\n")[0].splitlines()
    assert height + 4 <= len(main) <= height + 6


def test_terminal_plot_content():
    text = render_terminal([make_run(mem_mib=512)], width=72, height=14)
    rows = plot_rows(text)
    assert rows[0].split("|")[0].strip() == "512"  # the max remaining value labels the top
    assert rows[-1].split("|")[0].strip() == "0"
    assert "*" in "".join(rows)
    marker_line = next(line for line in text.splitlines() if line.lstrip().startswith("iter"))
    assert "|" in marker_line[5:] and "=" in marker_line
    assert "d" in text and "b" in text and "dirty rate and bandwidth (MiB/s)" in text
    assert "\x1b" not in text
    assert text.isascii()
    assert all(len(line) <= 72 for line in text.splitlines())


def test_terminal_plot_downtime_is_where_the_window_is():
    text = render_terminal([make_run(total=10.0, downtime=(6.0, 9.0))], width=72, height=10)
    marker_line = next(line for line in text.splitlines() if line.lstrip().startswith("iter"))
    axis = next(line for line in text.splitlines() if line.lstrip().startswith("+-"))
    origin = axis.index("+")
    first, last = marker_line.index("="), marker_line.rindex("=")
    span = len(axis) - origin - 2  # columns 0..span
    assert math.isclose((first - origin - 1) / span, 0.6, abs_tol=0.03)
    assert math.isclose((last - origin - 1) / span, 0.9, abs_tol=0.03)


def test_terminal_plot_compares_runs_with_one_marker_each():
    runs = [make_run(), make_run(total=7.0, mem_mib=800, rid="ffeeddccbbaa", partition="lpar2")]
    text = render_terminal(runs, width=80, height=12)
    body = "".join(line.split("|", 1)[1] for line in plot_rows(text))
    assert "*" in body and "o" in body
    assert text.splitlines()[0] == "comparison of 2 migrations"
    assert any(line.startswith("o ffeeddccbbaa lpar2: success") for line in text.splitlines())
    assert "800" in plot_rows(text)[0]
    assert "\x1b" not in text and text.isascii()


def test_terminal_markers_cover_six_runs():
    assert len(set(termplot.MARKERS)) >= 6


@pytest.mark.parametrize("runs", [[{"id": "a1", "samples": []}], []])
def test_terminal_plot_without_samples(runs):
    text = render_terminal(runs)
    assert "no samples" in text
    assert text.isascii()


def test_terminal_plot_is_ascii_even_with_non_ascii_labels():
    run = make_run()
    run["label"] = "lpar\u00e9 \u2192 fast"
    text = render_terminal([run])
    assert text.isascii() and "\x1b" not in text


# -- the canvas -----------------------------------------------------------------------------

def test_font_covers_printable_ascii():
    assert set(GLYPHS) == {chr(c) for c in range(32, 127)}
    assert GLYPHS[" "] == ()
    assert all(GLYPHS[chr(c)] for c in range(33, 127))
    shapes = {GLYPHS[chr(c)] for c in range(33, 127)}
    assert len(shapes) == 94  # no two glyphs alike


def test_canvas_clips_instead_of_failing():
    cv = Canvas(20, 10)
    cv.line(-1e9, -1e9, 1e9, 1e9, (255, 0, 0), width=3)
    cv.line(float("nan"), 0, 5, 5, (255, 0, 0))
    cv.rect(-50, -50, 100, 2, (0, 0, 255))
    cv.blend_rect(15, -5, 40, 40, (0, 0, 0), 0.5)
    cv.text(18, 8, "clipped text", (0, 0, 0), scale=3, anchor="left")
    cv.text_vertical(-3, 5, "vertical", (0, 0, 0))
    assert cv.pixel(0, 0) == (0, 0, 255)
    assert cv.pixel(10, 9) != WHITE
    png = cv.to_png()
    assert png.startswith(PNG_SIGNATURE)


def test_canvas_text_anchor_and_blend():
    cv = Canvas(60, 12)
    cv.text(30, 2, "H", (0, 0, 0), anchor="center")
    inked = [x for x in range(60) if any(cv.pixel(x, y) != WHITE for y in range(12))]
    assert (min(inked) + max(inked)) / 2 == pytest.approx(30, abs=1)
    cv.blend_rect(0, 0, 9, 9, (0, 0, 0), 0.5)
    assert cv.pixel(5, 5) == (128, 128, 128)
    cv.set_clip((40, 0, 59, 11))
    cv.rect(0, 0, 59, 11, (255, 0, 0))
    assert cv.pixel(0, 11) == WHITE and cv.pixel(45, 11) == (255, 0, 0)
