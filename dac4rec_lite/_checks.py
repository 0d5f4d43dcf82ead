"""Input validation shared by the core: every public entry point calls these so that bad input fails
early with a message that says what was wrong and how to fix it (nothing is silently broadcast)."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

__all__ = ["check_matrix", "check_steps", "check_finite", "check_generator", "check_device", "randn", "randint",
           "multinomial", "seeded_init"]


def check_matrix(x: object, name: str, width: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Return ``x`` if it is a float tensor of shape (B, width); raise a helpful error otherwise."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape (batch, {width}), got {type(x).__name__}; "
            f"convert it with torch.as_tensor({name}, dtype=torch.float32)."
        )
    if x.dim() != 2 or x.shape[1] != width:
        hint = f" Add a batch dimension with {name}.unsqueeze(0)." if x.dim() == 1 and x.shape[0] == width else ""
        raise ValueError(f"{name} must have shape (batch, {width}), got {tuple(x.shape)}.{hint}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}; use {name}.float().")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{name} has dtype {x.dtype} but the model uses {dtype}; use {name}.to({dtype}).")
    return x


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ``ValueError`` naming the first bad row if ``x`` holds NaN or inf."""
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        row = int((~finite).reshape(x.shape[0], -1).any(dim=1).nonzero()[0, 0])
        raise ValueError(f"{name} contains NaN or inf (first bad row: {row}); clean or drop those rows first.")
    return x


def check_steps(i: object, batch: int, n_steps: int, device: torch.device) -> torch.Tensor:
    """Return diffusion steps as a LongTensor (batch,) of values in 1..n_steps.

    A Python ``int`` means "the same step for every row" and is expanded explicitly here.
    """
    if isinstance(i, bool):
        raise TypeError("the diffusion step i must be an int or a LongTensor, not a bool.")
    if isinstance(i, int):
        if not 1 <= i <= n_steps:
            raise ValueError(f"diffusion step i={i} is outside 1..{n_steps} (steps are 1-based; i=N is pure noise).")
        return torch.full((batch,), i, dtype=torch.long, device=device)
    if not isinstance(i, torch.Tensor) or i.dtype != torch.long:
        got = i.dtype if isinstance(i, torch.Tensor) else type(i).__name__
        raise TypeError(f"the diffusion step i must be a LongTensor of shape ({batch},) or an int, got {got}.")
    if i.shape != (batch,):
        raise ValueError(f"the diffusion step i must have shape ({batch},) to match the batch, got {tuple(i.shape)}.")
    if batch:
        low, high = torch.stack(torch.aminmax(i)).tolist()  # one device-to-host transfer, not two
        if low < 1 or high > n_steps:
            raise ValueError(
                f"diffusion steps must lie in 1..{n_steps} (1-based, as in the paper); got values in "
                f"{low}..{high}. If you index alphas_cumprod directly, step i lives at index i-1."
            )
    return i


def check_generator(generator: object, name: str = "generator") -> torch.Generator | None:
    """Return ``generator`` if it is a ``torch.Generator`` or None; a numpy Generator (or anything else) is a
    ``TypeError`` saying how to make a torch one."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    raise TypeError(
        f"{name} must be a torch.Generator or None, got {type(generator).__module__}.{type(generator).__name__}; "
        f"use torch.Generator().manual_seed(seed) (numpy generators cannot drive torch sampling)."
    )


def check_device(device: object, name: str = "device") -> torch.device:
    """``device`` as a ``torch.device``; ``ValueError`` for an unknown name or a CUDA device on a machine
    without CUDA (the message says so, instead of failing deep inside torch)."""
    if isinstance(device, torch.device):
        target = device
    elif isinstance(device, str):
        try:
            target = torch.device(device)
        except RuntimeError as err:
            raise ValueError(f"{name}={device!r} is not a device; use 'cpu', 'cuda' or 'cuda:0'.") from err
    else:
        raise TypeError(f"{name} must be a string such as 'cpu' or 'cuda:0' or a torch.device, "
                        f"got {type(device).__name__}.")
    if target.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name}={str(device)!r} but CUDA is not available on this machine; use device='cpu'.")
        if target.index is not None and target.index >= torch.cuda.device_count():
            raise ValueError(f"{name}={str(device)!r} but this machine has {torch.cuda.device_count()} CUDA "
                             f"device(s); use an index below that.")
    if target.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{name}={str(device)!r} but MPS (Apple GPU) is not available on this machine; use device='cpu'.")
    return target


@contextlib.contextmanager
def seeded_init(seed: int, device: torch.device | str | None = None) -> Iterator[None]:
    """Inside the block the CPU default generator (and, for a CUDA ``device``, that device's default
    generator) is seeded with ``seed``; afterwards every global generator is as it was. Build networks on the
    CPU in here, then move them: their initial weights depend on ``seed`` only. Unlike ``torch.manual_seed``,
    no other CUDA generator is re-seeded (dropout on a CUDA model draws from that device's generator, so
    pass its ``device`` to seed and restore it too)."""
    target = None if device is None else torch.device(device)
    cuda = [] if target is None or target.type != "cuda" else [target.index or 0]
    with torch.random.fork_rng(devices=cuda):
        torch.random.default_generator.manual_seed(int(seed))
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(int(seed))  # this device only (manual_seed_all would touch every GPU)
        yield


def _draw_device(generator: torch.Generator | None, device: torch.device | str) -> torch.device:
    """Where to draw: on the generator's device (a CPU generator cannot draw CUDA numbers directly)."""
    return torch.device(device) if generator is None else generator.device


def randn(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | str,
          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """N(0, 1) numbers on ``device``, drawn from ``generator`` wherever that generator lives (so a seeded CPU
    generator gives the same numbers for a CPU and a CUDA model)."""
    return torch.randn(shape, generator=generator, device=_draw_device(generator, device), dtype=dtype).to(device)


def randint(low: int, high: int, shape: tuple[int, ...], generator: torch.Generator | None,
            device: torch.device | str) -> torch.Tensor:
    """Uniform integers in [low, high) on ``device``, drawn like ``randn``."""
    return torch.randint(low, high, shape, generator=generator, device=_draw_device(generator, device)).to(device)


def multinomial(probs: torch.Tensor, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """``torch.multinomial(probs, n)`` (rows of ``probs``, without replacement) drawn on the generator's device
    and returned on ``probs``' device, like ``randn``."""
    draw_on = _draw_device(generator, probs.device)
    return torch.multinomial(probs.to(draw_on), n, generator=generator).to(probs.device)
