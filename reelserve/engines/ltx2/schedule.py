"""The scheduler each stage samples with: shifted for a step count, exact for listed sigmas.

The full model's scheduler (as diffusers' converter writes it) shifts its sigmas by the
token count (``use_dynamic_shifting``) and stretches them so the last one before 0 is
``shift_terminal`` (0.1). Two things go wrong with it in diffusers 0.42.1:

- **One step.** ``REELSERVE_LTX2_STEPS=1`` gives the single sigma 1.0, and the stretch
  divides by ``1 - sigma_last`` = 0: NaN sigmas, and the pipeline fails on its first
  step. One step from pure noise has nothing to stretch; ``StretchSafeScheduler`` leaves
  such a schedule as it is, ``[1.0, 0.0]``, so every step count >= 1 is valid.
- **Listed sigmas.** Lightricks' stage-2 sigmas ``[0.909375, 0.725, 0.421875]`` (and the
  distilled ones) are meant to be sampled as listed, but a shifting scheduler moves them
  (to about ``[0.89, 0.64, 0.1]`` at the tiny model's size) and the full model's guided
  refine stage then failed with an index error. A call with ``sigmas`` runs on a copy
  with no shifting, no stretch and ``shift`` 1: exactly the listed values, then 0.

Imported only inside the engine child (torch and diffusers).
"""

from __future__ import annotations

from typing import Any

from diffusers import FlowMatchEulerDiscreteScheduler

_Scheduler: Any = FlowMatchEulerDiscreteScheduler  # untyped in diffusers


class StretchSafeScheduler(_Scheduler):  # type: ignore[misc]
    """diffusers' flow-match Euler scheduler whose terminal stretch accepts one step."""

    def stretch_shift_to_terminal(self, t: Any) -> Any:
        if float(t[-1]) >= 1.0:  # a single step at sigma 1: nothing to stretch
            return t
        return super().stretch_shift_to_terminal(t)


class StageSchedulers:
    """The two schedulers built from a model's own scheduler config."""

    def __init__(self, scheduler: Any) -> None:
        config = dict(scheduler.config)
        self.shifting: Any = StretchSafeScheduler.from_config(config)
        self.listed: Any = StretchSafeScheduler.from_config(
            config, use_dynamic_shifting=False, shift=1.0, shift_terminal=None)

    def for_sampling(self, sampling: dict[str, Any]) -> Any:
        """The scheduler for a pipeline call with these keyword arguments."""
        return self.listed if sampling.get("sigmas") else self.shifting
