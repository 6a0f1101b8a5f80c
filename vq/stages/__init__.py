"""Model stages: an artifact + a backend session + the pre/post-processing around it.

`base.Stage` is the shared part; each task's stage (`embed.Embedder`, `enhance.Enhancer`)
is registered with its task in `vq.tasks` (`STAGES`), so `open_stage(artifact)` picks it
from the card.
"""

from vq.stages.base import Stage, open_stage
from vq.tasks import STAGES

__all__ = ["STAGES", "Stage", "open_stage"]
