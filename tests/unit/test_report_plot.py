"""Report plots: the matplotlib figures a user opens (PNG at 200 dpi and SVG, two panels,
the downtime band, the derived dirty rate beside QEMU's, small multiples for a comparison),
the 1/2/5 axis ticks, and the plain-ASCII terminal plot."""

import math
import xml.etree.ElementTree as ET

import pytest

from lpmlab.hmc.precopy import passes
from lpmlab.report import plot, termplot
from lpmlab.report.series import nice_ticks, series_of
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
            "normal_pages": (mem_mib * MIB - rem) // 4096, "zero_pages": 0, "page_size": 4096,
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


def with_passes(run):
    run["passes"] = passes(run["samples"])
    return run


def test_png_and_svg_are_written_hidpi(tmp_path):
    paths = plot.render(with_passes(make_run()), tmp_path / "sub" / "r1")
    png, svg = paths
    assert (png.name, svg.name) == ("r1.png", "r1.svg")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1800, 1120)  # 9 x 5.6 in at 200 dpi
    root = ET.fromstring(svg.read_text())
    assert root.tag.endswith("svg") and "lpar1" in svg.read_text()


def labels(fig):
    return [t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts()] \
        if any(ax.get_legend() for ax in fig.axes) else []


def test_one_run_has_two_panels_a_band_and_both_dirty_rates():
    fig = plot.figure(with_passes(make_run()))
    top, bottom = fig.axes
    assert top.get_ylabel() == "remaining (MiB)" and bottom.get_ylabel() == "rate (MiB/s)"
    legend = [t.get_text() for t in bottom.get_legend().get_texts()]
    assert legend == ["downtime", "remaining", "dirty rate (per pass)",
                      "QEMU's dirty-pages-rate", "bandwidth", "pre-copy pass (sync)"]
    bands = [p for ax in (top, bottom) for p in ax.patches]
    assert len(bands) == 2  # the downtime window in both panels
    assert "lpar1: sys1 -> sys2" in fig.get_suptitle()


def test_pass_numbers_never_crowd():
    run = with_passes(make_run(iterations=tuple(i * 0.09 for i in range(100)), n=200))
    fig = plot.figure(run)
    numbers = [t for t in fig.axes[0].texts]
    assert 0 < len(numbers) <= plot.MAX_PASS_LABELS


def test_a_comparison_is_small_multiples_with_shared_columns():
    runs = [with_passes(make_run(rid=f"{i:012x}", partition=f"lpar{i}")) for i in range(4)]
    fig = plot.figure(runs)
    assert len(fig.axes) == 8  # a row per run, remaining | rates
    tops = fig.axes[0::2]
    assert len({ax.get_ylim() for ax in tops}) == 1  # the same scale down a column
    assert "comparison of 4 migrations" in fig.get_suptitle()
    assert fig.legends and "downtime" in [t.get_text() for t in fig.legends[0].get_texts()]


@pytest.mark.parametrize("runs", [[], [{"samples": []}]])
def test_no_samples_still_give_a_figure(tmp_path, runs):
    png, _svg = plot.render(runs, tmp_path / "empty")
    assert png.stat().st_size > 1000


def test_null_values_are_skipped_not_fatal(tmp_path):
    run = make_run()
    for s in run["samples"][::3]:
        s.update(data_remaining=None, memory_remaining=None, dirty_rate_bps=float("nan"),
                 bandwidth_bps=None)
    plot.render(with_passes(run), tmp_path / "nulls")


def test_memory_remaining_is_used_when_there_is_no_data_remaining():
    run = make_run()
    for s in run["samples"]:
        s.pop("data_remaining")
    assert series_of(run).remaining


def test_the_derived_dirty_rate_is_drawn_as_one_step_a_pass():
    run = with_passes(make_run())
    s = series_of(run)
    assert len(s.pass_dirty) == len(run["passes"]) - 1  # the last pass has no next sync


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

