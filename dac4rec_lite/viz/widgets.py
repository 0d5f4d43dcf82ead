"""The interactive-panel base: ipywidgets controls driving a plotly ``FigureWidget``.

Each panel is an ``Explorer``: an ``ipywidgets.VBox`` (display it by leaving it last in a cell) that also
exposes ``.figure`` (the ``go.FigureWidget``), ``.controls`` (a dict of its widgets by name) and
``.message`` (an HTML label for readouts and errors). On every control change a panel rebuilds the static
figure of its topic module for the new values and copies it into ``.figure`` (``make_explorer``), so a
panel always shows exactly what the matching ``*_figure`` function draws. The panels themselves live with
their figures, one module per notebook topic.
"""
from __future__ import annotations

import html
from typing import Callable

import ipywidgets as widgets
import plotly.graph_objects as go

__all__ = ["Explorer", "copy_into", "make_explorer", "play_button", "info_html", "error_html", "step_slider"]


class Explorer(widgets.VBox):
    """Controls above a FigureWidget, with a message line below. Attributes: ``figure``, ``controls``,
    ``message``."""

    def __init__(self, controls: dict[str, widgets.Widget], figure: go.FigureWidget, message: widgets.HTML) -> None:
        rows = [widgets.HBox([c for c in controls.values()])]
        super().__init__(rows + [figure, message])
        self.figure = figure
        self.controls = controls
        self.message = message


def copy_into(target: go.FigureWidget, source: go.Figure) -> None:
    """Make ``target`` show ``source``: same traces (updated in place, so the view does not flicker) and
    the same layout."""
    with target.batch_update():
        if len(target.data) != len(source.data):
            target.data = []
            target.add_traces(list(source.data))
        else:
            for old, new in zip(target.data, source.data):
                old.update(new.to_plotly_json(), overwrite=True)
        target.layout.update(source.layout.to_plotly_json(), overwrite=True)


def info_html(text: str) -> str:
    """A readout line for ``Explorer.message`` (``text`` is HTML)."""
    return f"<span style='color:#333'>{text}</span>"


def error_html(what: str, text: str) -> str:
    """An error line for ``Explorer.message``: ``what`` in bold red, then the escaped error text."""
    return f"<span style='color:#B00020'><b>{html.escape(what)}</b> {html.escape(text)}</span>"


def make_explorer(controls: dict[str, widgets.Widget], build: Callable[[], go.Figure],
                  watch: tuple[str, ...]) -> Explorer:
    """An Explorer whose figure is ``build()`` now and again whenever a watched control's value changes."""
    explorer = Explorer(controls, go.FigureWidget(build()), widgets.HTML())

    def refresh(_change: dict | None = None) -> None:
        copy_into(explorer.figure, build())

    for name in watch:
        controls[name].observe(refresh, names="value")
    return explorer


def step_slider(value: int, low: int, high: int) -> widgets.IntSlider:
    """The slider over the diffusion step i that every step-driven panel uses."""
    return widgets.IntSlider(value=value, min=low, max=high, description="step i", layout=widgets.Layout(width="420px"))


def play_button(slider: widgets.IntSlider, reverse: bool = False, interval_ms: int = 120) -> widgets.Play:
    """A ▶ button that walks ``slider`` from one end to the other (from max down to min when ``reverse``)."""
    span = slider.max - slider.min
    play = widgets.Play(value=0, min=0, max=span, step=1, interval=interval_ms, description="play",
                        show_repeat=False)

    def move(change: dict) -> None:
        slider.value = slider.max - change["new"] if reverse else slider.min + change["new"]

    play.observe(move, names="value")
    return play
