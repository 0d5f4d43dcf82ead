"""The interactive-panel base: ipywidgets controls driving a plotly figure.

Each panel is an ``Explorer``: an ``ipywidgets.VBox`` (display it by leaving it last in a cell) that also
exposes ``.figure`` (the ``go.Figure`` on screen), ``.controls`` (a dict of its widgets by name) and
``.message`` (an HTML label for readouts and errors). On every control change a panel rebuilds the static
figure of its topic module for the new values and copies it into ``.figure`` (``make_explorer``,
``copy_into``), which redraws it, so a panel always shows exactly what the matching ``*_figure`` function
draws. The panels themselves live with their figures, one module per notebook topic.

Why not a ``go.FigureWidget``: since plotly 6 a FigureWidget is an anywidget whose browser side must load
plotly's 5 MB JavaScript bundle (once per widget) within anywidget's 2-second start-up limit; past it the
widget's model silently drops every message from the kernel, for good. Plotly sends a FigureWidget's traces
in a message *after* the widget opens, so on a busy machine (Run All keeps the kernel and the browser busy)
the panel showed an empty plot that never updated (seen in notebook 02's score-field panel in the browser
test). A panel therefore shows its figure as ordinary plotly output inside an ``ipywidgets.Output`` (the same
renderer as every static figure, loaded once per page) and replaces that output on every change.
"""
from __future__ import annotations

import html
from typing import Callable

import ipywidgets as widgets
import plotly.graph_objects as go
import plotly.io as pio

__all__ = ["Explorer", "copy_into", "make_explorer", "play_button", "info_html", "error_html", "step_slider"]


class Explorer(widgets.VBox):
    """Controls above a plotly figure, with a message line below. Attributes: ``figure`` (a ``go.Figure``:
    change it with ``copy_into``, which redraws it), ``controls``, ``message``, ``view`` (the ``Output`` the
    figure is drawn in).

    ``figure`` may be given as a ``go.FigureWidget`` (older call sites): it is copied into a ``go.Figure`` and
    the widget closed, so that its browser side is never needed."""

    def __init__(self, controls: dict[str, widgets.Widget], figure: go.Figure, message: widgets.HTML) -> None:
        if not isinstance(figure, go.Figure):
            if not isinstance(figure, go.FigureWidget):
                raise TypeError(f"figure must be a plotly go.Figure, got {type(figure).__name__}.")
            widget, figure = figure, go.Figure(figure)
            widget.close()
        self.view = widgets.Output()
        rows = [widgets.HBox([c for c in controls.values()])]
        super().__init__(rows + [self.view, message])
        self.figure = figure
        self.controls = controls
        self.message = message
        figure._explorer_view = self.view  # copy_into redraws through it
        self.redraw()

    def redraw(self) -> None:
        """Show ``figure`` as it is now (replaces the previous drawing)."""
        _draw(self.view, self.figure)


def _draw(view: widgets.Output, figure: go.Figure) -> None:
    """Replace ``view``'s output by ``figure`` as plotly's JSON output (the mime type JupyterLab, Voilà and
    VS Code render with the plotly.js they already load for static figures)."""
    bundle = pio.renderers["plotly_mimetype"].to_mimebundle(figure.to_dict())
    title = figure.layout.title.text or ""
    bundle["text/plain"] = f"<plotly figure: {len(figure.data)} traces; {html.unescape(title)[:80]}>"
    view.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)


def copy_into(target: go.Figure, source: go.Figure) -> None:
    """Make ``target`` show ``source``: same traces (updated in place) and the same layout; when ``target`` is
    an ``Explorer``'s figure, it is redrawn on screen."""
    with target.batch_update():
        if len(target.data) != len(source.data):
            target.data = []
            target.add_traces(list(source.data))
        else:
            for old, new in zip(target.data, source.data):
                old.update(new.to_plotly_json(), overwrite=True)
        target.layout.update(source.layout.to_plotly_json(), overwrite=True)
    view = getattr(target, "_explorer_view", None)
    if view is not None:
        _draw(view, target)


def info_html(text: str) -> str:
    """A readout line for ``Explorer.message`` (``text`` is HTML)."""
    return f"<span style='color:#333'>{text}</span>"


def error_html(what: str, text: str) -> str:
    """An error line for ``Explorer.message``: ``what`` in bold red, then the escaped error text."""
    return f"<span style='color:#B00020'><b>{html.escape(what)}</b> {html.escape(text)}</span>"


def make_explorer(controls: dict[str, widgets.Widget], build: Callable[[], go.Figure],
                  watch: tuple[str, ...]) -> Explorer:
    """An Explorer whose figure is ``build()`` now and again whenever a watched control's value changes."""
    explorer = Explorer(controls, build(), widgets.HTML())

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
