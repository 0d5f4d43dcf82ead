"""The kit as a student meets it: JupyterLab in a real browser (marker: browser).

Starts JupyterLab on 127.0.0.1 (a free port, a random token, DAC4REC_PRESET=tiny in the server's environment so
every kernel inherits it) on a copy of ``notebooks/`` (so nothing is saved into the repository), opens each
notebook in Debian's chromium driven by playwright, runs all cells, and checks what a student would see: no error
output, no widget that failed to render, ipywidgets sliders and plotly figures present where the notebook has
them, and, for a few notebooks, that moving a slider changes its figure; in notebook 02, that the score-field panel
draws its arrows and redraws them when its step slider moves; in notebook 04, that the training film plays; and
that every markdown image (the Algorithm 1 pipeline in 00 and 09) loads. Screenshots go to ``build/browser/``.

Playwright's own browser download does not work on the course machines; the test launches Debian's
``/usr/bin/chromium`` (``.ci/run`` installs it with apt when missing) and skips, saying why, only when there is
no chromium at all.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
ARTIFACTS = ROOT / "build" / "browser"
CHROMIUM = os.environ.get("DAC4REC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
NOTEBOOKS = sorted(p.relative_to(NB_DIR).as_posix() for p in NB_DIR.glob("**/*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)
# Notebooks where a slider is moved and its figure must change (a representative subset: each slider move
# recomputes in the kernel). Every notebook is still run and checked for errors, sliders and figures.
SLIDER_CHECKS = {"01_forward_diffusion.ipynb", "02_reverse_diffusion_policy.ipynb", "05_energy_guidance.ipynb"}
RUN_TIMEOUT_S = 240
KERNEL_DIALOG_NOTEBOOK = "kernel_dialog_probe.ipynb"  # written into the server's copy only
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook on screen
NB = f"{PANEL} .jp-Notebook"

# JupyterLab settings for a quiet, deterministic page: no news/update toasts, every cell kept in the DOM
# (no windowing, so the test can see all outputs), no autosave.
LAB_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"checkForUpdates": False, "fetchNews": "false"},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        reason = (f"no chromium at {CHROMIUM}: install it with `apt-get install -y chromium` (.ci/run does) "
                  "or point DAC4REC_CHROMIUM at one")
        print(f"SKIP browser tests: {reason}")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server rooted, like ``make lab``, above a copy of notebooks/ and docs/ (so the notebooks' links
    and images in ../docs resolve); yields (base_url, token)."""
    work = tmp_path_factory.mktemp("lab")
    shutil.copytree(NB_DIR, work / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copytree(ROOT / "docs", work / "docs")  # notebooks link to ../docs/errata.md, show ../docs/*.svg
    probe = json.loads((NB_DIR / "00_welcome.ipynb").read_text())
    probe["metadata"]["kernelspec"] = {"name": "no-such-kernel", "display_name": "a kernel that is not installed",
                                       "language": "python"}
    (work / "notebooks" / KERNEL_DIALOG_NOTEBOOK).write_text(json.dumps(probe))
    settings = work / "settings"
    settings.mkdir()
    (settings / "overrides.json").write_text(json.dumps(LAB_OVERRIDES))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, DAC4REC_PRESET="tiny", OMP_NUM_THREADS="1", JUPYTERLAB_SETTINGS_DIR=str(work / "user-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(work / "workspaces"), JUPYTER_CONFIG_DIR=str(work / "config"))
    log = open(work / "lab.log", "w")
    jupyter = Path(sys.executable).parent / "jupyter"
    server = subprocess.Popen(
        [str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={work}", f"--LabApp.app_settings_dir={settings}",
         "--ServerApp.port_retries=0", "--allow-root"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180  # a busy 2-core machine needs more than a minute
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"JupyterLab did not start:\n{(work / 'lab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def _shut_down_kernels(base: str, token: str) -> None:
    """End every session (and its kernel), so that the next notebook has the CPU to itself."""
    with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=10) as response:
        sessions = json.load(response)
    for session in sessions:
        request = urllib.request.Request(f"{base}/api/sessions/{session['id']}?token={token}", method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()


# ----- driving JupyterLab ---------------------------------------------------------------------------------

def _dismiss_dialogs_and_toasts(page, seen: list[str] | None = None) -> None:
    """Accept a dialog (the kernel-selection dialog: keep the kernel JupyterLab proposes) and close notification
    toasts; append what was handled to ``seen``."""
    dialog = page.locator(".jp-Dialog")
    if dialog.count():
        text = dialog.first.inner_text()
        accept = dialog.first.locator(".jp-Dialog-button.jp-mod-accept")
        if accept.count():
            accept.first.click()
            if seen is not None:
                seen.append("dialog: " + " ".join(text.split())[:120])
    for close in page.locator(".jp-Notification-Toast-Close, .Toastify__close-button").all():
        try:
            close.click(timeout=1000)
            if seen is not None:
                seen.append("toast")
        except Exception:  # a toast that vanished on its own
            pass


def _wait_for_kernel(page, timeout_s: float = 60, seen: list[str] | None = None) -> None:
    """Until the status bar says the notebook's kernel is idle. Running cells earlier makes JupyterLab start a
    kernel per cell (each cell then runs alone, without the imports of the first)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        _dismiss_dialogs_and_toasts(page, seen)
        status = page.evaluate("() => (document.querySelector('#jp-main-statusbar') || document.body).innerText")
        if re.search(r"\|\s*Idle", status):
            return
        page.wait_for_timeout(300)
    raise AssertionError(f"the kernel did not become idle within {timeout_s:.0f} s (status bar: {status!r})")


def _run_all(page) -> None:
    page.locator('.lm-MenuBar-itemLabel:text-is("Run")').click()
    page.locator('li.lm-Menu-item[data-command="runmenu:run-all"]').click()


def _wait_until_done(page, timeout_s: float) -> None:
    """Until every code cell has an execution count and the kernel is idle."""
    deadline = time.time() + timeout_s
    page.wait_for_timeout(1000)
    quiet = 0
    while time.time() < deadline:
        _dismiss_dialogs_and_toasts(page)
        state = page.evaluate("""([NB, PANEL]) => {
            const prompts = [...document.querySelectorAll(NB + ' .jp-CodeCell .jp-InputArea-prompt')]
                .map(p => p.textContent.trim());
            const status = document.querySelector(PANEL + ' .jp-Notebook-ExecutionIndicator');
            return {prompts, idle: status ? status.getAttribute('data-status') === 'idle' : true};
        }""", [NB, PANEL])
        prompts = state["prompts"]
        if state["idle"] and prompts and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts):
            return
        # Run-all stops at a cell that raised: idle, nothing queued ("[*]"), some cells never run.
        quiet = quiet + 1 if state["idle"] and "[*]:" not in prompts and any(p != "[ ]:" for p in prompts) else 0
        if quiet >= 6:
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"cells still running after {timeout_s:.0f} s: prompts {prompts}")


def _page_problems(page) -> list[str]:
    """Error outputs (tracebacks) and widgets that failed to render."""
    return page.evaluate("""NB => {
        const out = [];
        for (const el of document.querySelectorAll(NB + ' .jp-OutputArea-output')) {
            const text = el.innerText || '';
            const mime = el.getAttribute('data-mime-type') || '';
            if (mime.includes('error') || /Traceback \\(most recent call last\\)/.test(text)
                || /^[A-Za-z]*Error\\b.*Traceback/s.test(text)) out.push('error output: ' + text.slice(0, 400));
            if (/Error displaying widget|Failed to load model class|Error rendering/.test(text))
                out.push('widget failed: ' + text.slice(0, 300));
            if (mime === 'application/vnd.jupyter.widget-view+json' && !el.querySelector('.jupyter-widgets'))
                out.push('widget not rendered: ' + text.slice(0, 300));
            if (mime === 'text/plain' && /^\\w*(Box|Slider|Dropdown|Button|Widget|Explorer|Checkbox)\\(/.test(text.trim()))
                out.push('widget shown as text (no widget renderer): ' + text.slice(0, 200));
        }
        return out;
    }""", NB)


def _figure_state(page, box) -> str:
    return box.evaluate("""el => {
        const gd = el.querySelector('.js-plotly-plot');
        if (!gd) return '';
        const data = gd.data ? JSON.stringify(gd.data.map(t => [t.x, t.y, t.z])) : '';
        return data + gd.querySelector('svg.main-svg').innerHTML.length;
    }""")


def _move_a_slider(page, name: str) -> None:
    """Find a slider that shares a widget box with a plotly figure, move it, and wait for the figure to change."""
    boxes = page.locator(f"{NB} .widget-vbox:has(.widget-slider):has(.js-plotly-plot)")
    assert boxes.count(), "no widget panel with both a slider and a plotly figure"
    box = boxes.first
    box.scroll_into_view_if_needed()
    before = _figure_state(page, box)
    box.screenshot(path=str(ARTIFACTS / f"{name}.slider-before.png"))
    handle = box.locator(".widget-slider .noUi-handle").first
    at_max = handle.evaluate("h => Number(h.getAttribute('aria-valuenow')) >= Number(h.getAttribute('aria-valuemax'))")
    handle.focus()
    for _ in range(3):
        page.keyboard.press("ArrowLeft" if at_max else "ArrowRight")
        page.wait_for_timeout(150)
    deadline = time.time() + 30
    while time.time() < deadline:
        page.wait_for_timeout(500)
        if _figure_state(page, box) != before:
            page.wait_for_timeout(1500)  # the last key presses may still be on their way
            box.screenshot(path=str(ARTIFACTS / f"{name}.slider-after.png"))
            return
    raise AssertionError("moving the slider did not change the figure within 30 s")


# Notebook 02's score-field panel (the box with its "one arrow scale" checkbox): the arrow trace drawn as SVG
# paths (one per arrow, coordinates in (start, tip, gap) triples), and the step in the title.
_SCORE_FIELD_STATE = """el => {
    const gd = el.querySelector('.js-plotly-plot');
    if (!gd || !gd.data || !gd.data.length) return {traces: 0, arrows: 0, paths: 0, d: '', title: ''};
    const first = gd.querySelector('.scatterlayer .trace');
    const paths = first ? [...first.querySelectorAll('path.js-line')] : [];
    const x = gd.data[0].x || [];
    return {traces: gd.data.length, name: gd.data[0].name || '', arrows: Math.floor(x.length / 3),
            paths: paths.length, d: paths.map(p => p.getAttribute('d')).join(''),
            title: (gd.querySelector('.gtitle') || {}).textContent || ''};
}"""


def _check_score_field_explorer(page, name: str) -> None:
    """Notebook 02: the score-field panel draws its arrows (an empty plot once slipped through: see
    dac4rec_lite/viz/widgets.py), and moving its step slider redraws them for the new step."""
    box = page.locator(f"{NB} .widget-vbox:has(.js-plotly-plot)").filter(
        has=page.locator(".widget-checkbox", has_text="one arrow scale"))
    assert box.count() == 1, f"expected one score-field panel, found {box.count()}"
    box = box.first
    box.scroll_into_view_if_needed()
    handle = box.locator(".widget-slider .noUi-handle").first
    step = round(float(handle.get_attribute("aria-valuenow")))
    drawn = f"""el => {{ const s = ({_SCORE_FIELD_STATE})(el);
        return s.arrows > 0 && s.paths >= 0.9 * s.arrows && s.title.includes('step i = ' + STEP + ' of') ? s : null; }}"""
    page.wait_for_function(f"el => ({drawn.replace('STEP', str(step))})(el)", arg=box.element_handle(), timeout=30_000)
    before = box.evaluate(_SCORE_FIELD_STATE)
    assert before["name"].startswith("score arrows") and before["traces"] >= 2, before
    box.screenshot(path=str(ARTIFACTS / f"{name}.score-field-before.png"))
    handle.focus()
    for _ in range(3):
        page.keyboard.press("ArrowLeft")  # towards i = 1 (the slider starts at i = N)
    page.wait_for_function("h => Number(h.getAttribute('aria-valuenow')) === " + str(step - 3),
                           arg=handle.element_handle(), timeout=15_000)
    page.wait_for_function(f"([el, d]) => {{ const s = ({drawn.replace('STEP', str(step - 3))})(el); return s && s.d !== d; }}",
                           arg=[box.element_handle(), before["d"]], timeout=30_000)
    after = box.evaluate(_SCORE_FIELD_STATE)
    assert after["arrows"] == before["arrows"] and after["traces"] == before["traces"], (before, after)
    box.screenshot(path=str(ARTIFACTS / f"{name}.score-field-after.png"))


_ANIMATION_STATE = """el => ({title: (el.querySelector('.gtitle') || {}).textContent || '',
    frames: ((el._transitionData || {})._frames || []).length,
    steps: (((el.layout || {}).sliders || [])[0] || {steps: []}).steps.length})"""


def _check_training_animation(page, name: str) -> None:
    """Notebook 04: the training film has its play button and one slider step per frame, and pressing play moves
    it on to another frame (its title names the update count)."""
    plot = page.locator(f"{NB} .js-plotly-plot").filter(has=page.locator(".updatemenu-button", has_text="play"))
    assert plot.count() == 1, f"expected one animated figure with a play button, found {plot.count()}"
    plot = plot.first
    plot.scroll_into_view_if_needed()
    before = plot.evaluate(_ANIMATION_STATE)
    assert before["frames"] >= 2 and before["steps"] == before["frames"], before
    plot.locator(".updatemenu-button", has_text="play").first.click()
    page.wait_for_function(f"([el, title]) => ({_ANIMATION_STATE})(el).title !== title",
                           arg=[plot.element_handle(), before["title"]], timeout=30_000)
    plot.screenshot(path=str(ARTIFACTS / f"{name}.animation-played.png"))


def _check_images(page) -> None:
    """Every markdown image is served and decoded (a path outside the server's root shows a broken image)."""
    images = page.locator(f"{NB} .jp-RenderedMarkdown img")
    page.wait_for_function("NB => [...document.querySelectorAll(NB + ' .jp-RenderedMarkdown img')]"
                           ".every(img => img.complete)", arg=NB, timeout=15_000)
    broken = images.evaluate_all("imgs => imgs.filter(img => !img.naturalWidth).map(img => img.getAttribute('src'))")
    assert not broken, f"images that did not load: {broken}"


def _open_and_run(page, base: str, token: str, notebook: str, name: str) -> list[str]:
    """Open ``notebook`` in a fresh workspace, wait for its kernel, run all cells, screenshot, check for errors.
    Returns the dialogs and toasts that had to be handled."""
    seen: list[str] = []
    # A fresh workspace per notebook: JupyterLab would otherwise reopen every notebook opened before.
    page.goto(f"{base}/lab/workspaces/{name}/tree/notebooks/{notebook}?reset&token={token}", wait_until="domcontentloaded")
    page.locator(f"{NB} .jp-Cell").first.wait_for(timeout=60_000)
    _wait_for_kernel(page, seen=seen)
    _run_all(page)
    _wait_until_done(page, RUN_TIMEOUT_S)
    page.wait_for_timeout(1000)  # let widget views finish rendering
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    problems = _page_problems(page)
    assert not problems, "\n".join(problems)
    return seen


@pytest.mark.timeout(RUN_TIMEOUT_S + 120)
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_in_a_real_browser(notebook, lab, browser):
    base, token = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = notebook.replace("/", "__").removesuffix(".ipynb")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        start = time.time()
        _open_and_run(page, base, token, notebook, name)
        source = (NB_DIR / notebook).read_text()
        counts = page.evaluate("""NB => ({
            sliders: document.querySelectorAll(NB + ' .widget-slider').length,
            controls: document.querySelectorAll(['.widget-slider', '.widget-dropdown', '.widget-checkbox']
                .map(c => NB + ' ' + c).join(', ')).length,
            plots: document.querySelectorAll(NB + ' .js-plotly-plot').length,
            buttons: document.querySelectorAll(NB + ' .jupyter-button').length})""", NB)
        if "viz." in source:
            assert counts["plots"] > 0, f"no plotly figure rendered: {counts}"
        if "explorer(" in source or "panel(" in source:
            assert counts["controls"] > 0, f"no ipywidgets control (slider, dropdown, checkbox) rendered: {counts}"
        if 'hints("' in source:
            page.locator(f"{NB} .jupyter-button:has-text('Show hint 1')").first.click()
            page.locator(f"{NB} .widget-html:has-text('Hint 1.')").first.wait_for(timeout=15_000)
        if Path(notebook).name in SLIDER_CHECKS:
            _move_a_slider(page, name)
        if "score_field_explorer(" in source:
            _check_score_field_explorer(page, name)
        if "training_animation_figure(" in source:
            _check_training_animation(page, name)
        if "![" in source:
            _check_images(page)
        print(f"{notebook}: {time.time() - start:.1f} s in the browser, {counts}")
    finally:
        page.close()
        _shut_down_kernels(base, token)


@pytest.mark.timeout(RUN_TIMEOUT_S)
def test_kernel_selection_dialog_is_answered(lab, browser):
    """A notebook whose kernel is not installed makes JupyterLab ask for one; the test accepts its proposal
    (the environment's default Python kernel) and the notebook still runs without errors."""
    base, token = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        seen = _open_and_run(page, base, token, KERNEL_DIALOG_NOTEBOOK, "kernel_dialog")
        assert any(s.startswith("dialog:") and "kernel" in s.lower() for s in seen), seen
    finally:
        page.close()
        _shut_down_kernels(base, token)
