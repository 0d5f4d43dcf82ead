"""Progressive hints: a button that reveals hint 1, then 2, then 3 (ipywidgets, imported only when shown)."""
from __future__ import annotations

import html

__all__ = ["HINTS", "hints"]

HINTS: dict[str, list[str]] = {
    "q_sample": [
        "Everything you need is in `schedule.alphas_cumprod` (ᾱ). Steps are 1-based: step i lives at index i − 1.",
        "`i` holds one step per row, so `schedule.alphas_cumprod[i - 1]` has shape (B,). Make it a column (B, 1) with "
        "`.unsqueeze(1)` so it can scale each row of the (B, d) actions.",
        "With `ab` that column: `ab.sqrt() * a0 + (1 - ab).sqrt() * noise`. Both square roots matter.",
    ],
    "reverse_step": [
        "Here `i` is one Python int (the whole batch is at the same step). Read β_i, α_i and ᾱ_i from "
        "`schedule.betas`, `schedule.alphas`, `schedule.alphas_cumprod`, each at index i − 1.",
        "The mean is (a^i − β_i / √(1 − ᾱ_i) · ε) / √α_i: cumulative ᾱ inside the noise coefficient (ε was added by "
        "Eq. 13 with √(1 − ᾱ_i)), the one-step α outside (one step is undone).",
        "Then add `beta.sqrt() * z`, but only when `i > 1`: the last step returns the mean.",
    ],
    "bc_loss": [
        "Noise the dataset action to its step first, exactly as in `q_sample` (Eq. 13).",
        "Call the network state first: `eps_model(state, a_i, i)`, with the 1-based steps `i` as given. It predicts "
        "the noise you added.",
        "The loss is the squared difference between `noise` and that prediction, averaged over everything: "
        "`(noise - eps_pred).pow(2).mean()`.",
    ],
    "action_approximation": [
        "Start as in the BC loss: a^i from the dataset action and `noise` (Eq. 13), then ε_θ(a^i, s, i) from the network.",
        "Invert Eq. 13 with the network's noise instead of the true one: a^0 ≈ (a^i − √(1 − ᾱ_i) ε_θ) / √ᾱ_i.",
        "Keep it differentiable (no `torch.no_grad()`, no `.detach()`), and don't clip: the caller decides that.",
    ],
    "td_target": [
        "Call the target critic on the next state and next action: `q1, q2 = target_critic(next_state, next_action)`.",
        "Clipped double Q takes the pessimistic `torch.min(q1, q2)`; a terminal transition has no future: "
        "multiply by `(1 - terminal)`.",
        "The target is a label, not something to train: wrap the computation in `with torch.no_grad():`. "
        "Everything stays a (B, 1) column.",
    ],
    "q_loss": [
        "`q1, q2 = critic(state, a0_hat)`; use `q = torch.min(q1, q2)`.",
        "The policy wants a high Q and the optimiser minimises, so the loss is −mean Q.",
        "Divide by `q.abs().mean().detach()`: the normaliser sets the scale only, no gradient may flow through it.",
    ],
    "cep_loss": [
        "Flatten the supports to (B·K, d) and give each its state's step: `steps = i.repeat_interleave(K)`; noise them "
        "with Eq. 13 (the noise reshaped the same way).",
        "Each state must sit beside its own K supports: `state.repeat_interleave(K, dim=0)`. Evaluate the energy, "
        "then reshape f to (B, K).",
        "Both distributions are over the K supports of a state (dim=1): "
        "`-(softmax(beta * q, dim=1) * log_softmax(f, dim=1)).sum(dim=1).mean()`.",
    ],
    "guided_eps": [
        "ε_θ comes from `eps_model(state, a_i, i)`. The guidance needs ∇_a f, the gradient of the energy with respect "
        "to the action.",
        "Make a leaf that tracks gradients, `a = a_i.detach().requires_grad_(True)`, then "
        "`torch.autograd.grad(energy(state, a, i).sum(), a)[0]` (the sum gives each row its own gradient).",
        "Scores and ε differ by a factor −√(1 − ᾱ_i): ε̃ = ε_θ − √(1 − ᾱ_i) · scale · ∇f (ᾱ as a (B, 1) column).",
    ],
    "select_action": [
        "Rank candidates by the pessimistic `q = torch.min(q1, q2)`, shape (B, K): row b holds the K candidates of state b.",
        "Temperature None: `q.argmax(dim=1)`. Otherwise `probs = torch.softmax(q / temperature, dim=1)` and "
        "`torch.multinomial(probs, 1, generator=generator).squeeze(1)`.",
        "Pick one candidate per state with the chosen index: `candidates[torch.arange(B), choice]`.",
    ],
}


def hints(name: str):
    """A button that reveals the hints of exercise ``name`` one at a time (an ipywidgets VBox)."""
    import ipywidgets as widgets

    if name not in HINTS:
        raise ValueError(f"no hints for {name!r}; exercises: {', '.join(HINTS)}.")
    texts = HINTS[name]
    shown = widgets.HTML()
    button = widgets.Button(description=f"Show hint 1 of {len(texts)}", icon="lightbulb-o",
                            tooltip="each click reveals the next hint")
    count = {"n": 0}

    def reveal(_button=None) -> None:
        count["n"] = min(count["n"] + 1, len(texts))
        shown.value = "".join(f"<p><b>Hint {k + 1}.</b> {_markdown_code(texts[k])}</p>" for k in range(count["n"]))
        if count["n"] == len(texts):
            button.description, button.disabled = "No more hints", True
        else:
            button.description = f"Show hint {count['n'] + 1} of {len(texts)}"

    button.on_click(reveal)
    box = widgets.VBox([button, shown])
    box.reveal = reveal  # for tests and for instructors demonstrating the hints
    return box


def _markdown_code(text: str) -> str:
    """`code` → <code>code</code>, the rest escaped."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if k % 2 else p for k, p in enumerate(parts))
