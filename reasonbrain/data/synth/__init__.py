"""ReasonSynth: a procedural, exactly verifiable hypothetical-reasoning image-editing dataset.

Each sample is a rendered scene (a background and three objects), a hypothetical instruction
("What would happen if the red candle on the left burned for five hours?"), the rendered
outcome, and exact ground truth: the transformation family, the affected object, the
affected-region mask and (val/test) counterfactual outcomes. See DESIGN.md §5.

Modules: :mod:`.canvas` (drawing primitives), :mod:`.backgrounds`, :mod:`.objects` (the object
vocabulary), :mod:`.family` + :mod:`.families` (transformation families and their registry),
:mod:`.instructions`, :mod:`.scene`, :mod:`.generate` (planning, parallel rendering, writing).
"""

from __future__ import annotations

from reasonbrain.data.synth.families import FAMILIES
from reasonbrain.data.synth.generate import generate_dataset

__all__ = ["FAMILIES", "generate_dataset"]
