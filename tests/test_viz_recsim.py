"""Notebook 06's figures and the session step-through panel."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import dac4rec_lite as dl
from dac4rec_lite import viz
from dac4rec_lite.evaluation import trace_episode


@pytest.fixture(scope="module")
def env():
    return gym.make("dac4rec_lite/RecSim-v0")


POLICIES = {"myopic": dl.envs.MyopicPolicy(), "expert": dl.envs.LongTermExpert()}


def test_trace_follows_the_same_user_and_matches_the_simulator(env):
    a, b = trace_episode(env, POLICIES["myopic"], seed=4), trace_episode(env, POLICIES["myopic"], seed=4)
    assert a.drop(columns="items").equals(b.drop(columns="items"))
    assert a["left"].iloc[-1] or a["truncated"].iloc[-1]
    assert not a["left"].iloc[:-1].any()
    assert (a["ctr"] == a["clicks"] / 10).all()
    # the myopic policy pulls the interest onto what it shows: cos(h, p) moves away from its start
    assert a["interest_vs_preference"].iloc[-1] != pytest.approx(a["interest_vs_preference"].iloc[0])
    with pytest.raises(ValueError, match="RecSim"):
        trace_episode(gym.make("CartPole-v1"), POLICIES["myopic"])


def test_the_computations_live_in_evaluation_and_viz_re_exports_them():
    """``session_traces`` and ``metrics_table`` compute (evaluation.py); ``dl.viz`` keeps their old names."""
    assert viz.session_traces is dl.evaluation.session_traces
    assert viz.metrics_table is dl.evaluation.metrics_table


def test_session_figure_has_a_line_per_policy_and_panel(env):
    traces = viz.session_traces(env, POLICIES, seed=1)
    fig = viz.session_figure(traces, page=3)
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert len(lines) == 2 * 4
    np.testing.assert_array_equal(lines[0].y, traces["myopic"]["clicks"].to_numpy())
    assert len(fig.layout.shapes) == 4  # the page cursor in every panel


def test_session_explorer_moves_with_its_sliders(env):
    explorer = viz.session_explorer(env, POLICIES, seed=0)
    before = [np.asarray(t.y).copy() for t in explorer.figure.data]
    explorer.controls["page"].value = 3
    assert "page 3" in explorer.message.value
    assert explorer.figure.layout.shapes[0].x0 == 3
    explorer.controls["user"].value = 9
    after = [np.asarray(t.y) for t in explorer.figure.data]
    assert len(before) != len(after) or any(len(x) != len(y) or not np.allclose(x, y) for x, y in zip(before, after))
    assert explorer.controls["page"].max == max(len(t) for t in viz.session_traces(env, POLICIES, 9).values())


def _values(v):
    """A trace's coordinates as plotly's JSON output carries them: a list, or a typed array {dtype, bdata}."""
    import base64

    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).reshape(v.get("shape", -1))
    return np.asarray(v)


def test_session_explorer_draws_plain_plotly_output_not_a_figure_widget(env, monkeypatch):
    """Issue 17: the panel draws a go.Figure into an Output (a FigureWidget can render empty in the browser),
    and the drawing moves with the page slider."""
    import json

    import plotly.graph_objects as go
    import plotly.io as pio

    def refuse(*args, **kwargs):
        raise AssertionError("the session panel built a go.FigureWidget")

    def shown(explorer):
        (output,) = explorer.view.outputs
        return pio.from_json(json.dumps(output["data"]["application/vnd.plotly.v1+json"]))

    monkeypatch.setattr(go, "FigureWidget", refuse)
    explorer = viz.session_explorer(env, POLICIES, seed=0)
    assert type(explorer.figure) is go.Figure
    assert shown(explorer).layout.shapes[0].x0 == 1
    explorer.controls["page"].value = 2
    assert shown(explorer).layout.shapes[0].x0 == 2
    np.testing.assert_array_equal(_values(shown(explorer).data[0].y), np.asarray(explorer.figure.data[0].y))


def test_metrics_table_and_figures(env):
    results = {name: dl.evaluate(env, p, 60, seed=0, progress=False) for name, p in POLICIES.items()}
    table = viz.metrics_table(results)
    assert table.loc["expert", "R_cumu"] == pytest.approx(results["expert"]["R_cumu"])
    assert list(table.columns) == ["R_cumu", "R_avg", "Length", "CTR"]
    assert len(viz.metrics_figure(results).data) == 3
    assert len(viz.ctr_by_length_figure(results).data) == 2
    fig = viz.item_map_figure(env, n_users=30)
    assert len(fig.data[0].x) == env.unwrapped.config.n_items and len(fig.data[2].x) == 30
