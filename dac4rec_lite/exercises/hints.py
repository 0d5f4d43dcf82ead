"""Progressive hints: a button that reveals hint 1, then 2, then 3 (ipywidgets, imported only when shown).

The last hint is a nudge towards the step people miss, never the answer itself."""
from __future__ import annotations

import html

__all__ = ["HINTS", "hints"]

HINTS: dict[str, list[str]] = {
    # Hints go from where to look, to the shape of the answer, to a last nudge on the step people miss. None of
    # them is the answer: tests/test_exercises.py checks that no hint contains a solution's key expression.
    "vp_betas": [
        "Build the steps as a tensor, `i = torch.arange(1, n_steps + 1)`: the schedule's steps are 1-based, and every "
        "β_i comes from the same formula, so one vectorised expression gives all N at once.",
        "Write α_i = exp(x_i) first, then β_i = 1 − α_i. In x_i, the β_min term is the same for every step and the "
        "(β_max − β_min) term grows with (2i − 1), divided by N².",
        "Mind the sign of the β_min term: the paper prints a plus (errata #1). Try N = 100 with the printed sign and "
        "look at β_1. Return float32.",
    ],
    "q_sample": [
        "Everything you need is in `schedule.alphas_cumprod` (ᾱ). Steps are 1-based: step i lives at index i − 1.",
        "`i` holds one step per row, so `schedule.alphas_cumprod[i - 1]` has shape (B,). Make it a column (B, 1) with "
        "`.unsqueeze(1)` so it can scale each row of the (B, d) actions.",
        "Two terms, each with a square root: one scales the clean action, one the noise. Check that their squares "
        "add up to 1 (that is what 'variance preserving' means).",
    ],
    "reverse_step": [
        "Here `i` is one Python int (the whole batch is at the same step). Read β_i, α_i and ᾱ_i from "
        "`schedule.betas`, `schedule.alphas`, `schedule.alphas_cumprod`, each at index i − 1.",
        "The mean is (a^i − β_i / √(1 − ᾱ_i) · ε) / √α_i: cumulative ᾱ inside the noise coefficient (ε was added by "
        "Eq. 13 with √(1 − ᾱ_i)), the one-step α outside (one step is undone).",
        "The noise term is a standard deviation times z, and the last step is special: what should a^0 be, the mean "
        "or a random point around it?",
    ],
    "bc_loss": [
        "Noise the dataset action to its step first, exactly as in `q_sample` (Eq. 13).",
        "Call the network state first: `eps_model(state, a_i, i)`, with the 1-based steps `i` as given. It predicts "
        "the noise you added.",
        "The loss compares two tensors of shape (B, d): which two? Square the difference and reduce it to one number "
        "the way the kit does (the exercise text says whether to sum or average over action dimensions).",
    ],
    "elbo_weights": [
        "All the tables are there: `schedule.betas`, `schedule.alphas` and `schedule.alphas_cumprod_prev` (ᾱ_{i−1}, with "
        "ᾱ_0 = 1 at index 0). The formula is elementwise, so compute every step at once.",
        "Evaluate the printed formula at i = 1 by hand: what is 1 − ᾱ_0? That step needs its own value; the exercise "
        "text says which (the decoder's variance, β_1).",
        "Replace that one entry after computing the others, then rescale all N weights so that their mean is 1.",
    ],
    "action_approximation": [
        "Start as in the BC loss: a^i from the dataset action and `noise` (Eq. 13), then ε_θ(a^i, s, i) from the network.",
        "Invert Eq. 13 for a^0, using the network's noise instead of the true one (Eq. 14).",
        "Keep it differentiable (no `torch.no_grad()`, no `.detach()`), and don't clip: the caller decides that.",
    ],
    "td_target": [
        "Call the target critic on the next state and next action: `q1, q2 = target_critic(next_state, next_action)`.",
        "Clipped double Q takes the pessimistic of the two twins; a terminal transition has no future value.",
        "The target is a label, not something to train: no gradient may flow from it. Everything stays a (B, 1) column.",
    ],
    "q_loss": [
        "`q1, q2 = critic(state, a0_hat)`; rank by the pessimistic twin, elementwise.",
        "The policy wants a high Q and the optimiser minimises, so the loss is minus the mean Q.",
        "Divide by the batch's mean |Q|, a number that only sets the scale: which call keeps gradients from flowing "
        "through it?",
    ],
    "awr_weight": [
        "The advantage of a dataset action is how much better it is than the baseline: A = min(Q₁, Q₂) − V, "
        "a (B, 1) column.",
        "The temperature is in units of the batch's typical |A|, so the weights do not depend on the reward scale: "
        "divide A by T times that typical size, then exponentiate.",
        "Two more steps, in this order: keep every weight at most `max_weight`, then rescale so that the weights "
        "average 1 over the batch.",
    ],
    "soft_update": [
        "Walk over the two networks' weights side by side: `zip(target.parameters(), source.parameters())`.",
        "Each target weight becomes a mix of itself and the online weight; τ is the share of the *online* one, and it "
        "is small (0.005), so the target moves slowly.",
        "Assigning to the loop variable changes nothing: write into the tensor itself (an in-place method), and do "
        "it where autograd does not record (`with torch.no_grad():`).",
    ],
    "algorithm1_update": [
        "Two halves, in the order of Algorithm 1: the critic (lines 3–4), then the policy (lines 5–7). The agent "
        "gives you `td_target`, `critic`, `policy_loss`, the two optimisers and `config.tau`.",
        "Critic: the TD target from the target networks (`agent.td_target(next_state, reward, terminal)`), the twins' "
        "Q of the dataset action, one loss for both twins, then an optimiser step and the target critic's soft update.",
        "Policy: `agent.policy_loss(state, action)` returns (L_d + λ L_q, metrics), λ = `q_weight`. Each optimiser step needs its "
        "gradients cleared first, and each target moves right after its network's step. Return the two losses.",
    ],
    "cep_loss": [
        "Flatten the supports to (B·K, d) and give each its state's step: `steps = i.repeat_interleave(K)`; noise them "
        "with Eq. 13 (the noise reshaped the same way).",
        "Each state must sit beside its own K supports: `state.repeat_interleave(K, dim=0)`. Evaluate the energy, "
        "then reshape f to (B, K).",
        "A cross-entropy between two distributions over the K supports of each state: the target from κ·Q, κ = `beta` "
        "(no gradient), the model's log-probabilities from f. Which dimension holds the K supports?",
    ],
    "guided_eps": [
        "ε_θ comes from `eps_model(state, a_i, i)`. The guidance needs ∇_a f, the gradient of the energy with respect "
        "to the action.",
        "Make a leaf that tracks gradients, `a = a_i.detach().requires_grad_(True)`, and use `torch.autograd.grad` on "
        "a scalar whose gradient gives each row its own ∇f.",
        "Scores and ε differ by a factor −√(1 − ᾱ_i) (ᾱ as a (B, 1) column): work out the sign of the guidance term "
        "ω ∇f (ω = `scale`) in ε form before you write it.",
    ],
    "select_action": [
        "Rank candidates by the pessimistic Q of the twins, shape (B, K): row b holds the K candidates of state b.",
        "Temperature None: the best of the K. Otherwise draw one index per row from softmax(Q / temperature) over the K, with "
        "`torch.multinomial(..., generator=generator)`.",
        "You have one index per state; return the actions, (B, d). Indexing with `[:, choice]` picks every choice "
        "for every state: pair each row with its own index.",
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
