"""Settings asked of `bovw predict` that its model contradicts.

A model describes photos with the settings it was trained with; a prediction that asks
for others (`--set orb.dense_step=4`) is refused with one line rather than silently given
the model's.
"""

from __future__ import annotations

from collections.abc import Collection

from bovw.config import Config
from bovw.config.blocks import BLOCK_SECTIONS
from bovw.config.differences import Difference, show
from bovw.errors import ReuseError
from bovw.image.words import space_of
from bovw.predict.model_file import ExportedModel

__all__ = ["model_contradiction", "model_refusal"]

def model_contradiction(model: ExportedModel, config: Config, asked: Collection[str]
                        ) -> Difference | None:
    """The first setting given explicitly (`asked`: dotted keys) that the model contradicts.

    A model describes photos with its own ORB, tone, colour and histogram settings,
    vocabulary and PCA: orb.*, tone.*, colour.*, histograms.*, vocabulary.k,
    vocabulary.space, pca.components and seed asked with another value cannot be honoured.
    Settings of a tone or colour block the model lacks are not compared unless the block is
    asked for (they would not be used); other keys are not compared.
    """
    for key in sorted(asked):
        section, _dot, name = key.partition(".")
        if key == "vocabulary.k":
            made, wanted = int(model.centers.shape[0]), config.vocabulary.k
        elif key == "vocabulary.space":
            made, wanted = space_of(model.centers.shape[1]), config.vocabulary.space
        elif key == "pca.components":
            made, wanted = int(model.pc.shape[1]), config.pca.components
        elif key == "seed" and "seed" in model.source:
            made, wanted = model.source["seed"], config.seed
        elif section in ("orb", "histograms") and hasattr(getattr(model, section), name):
            made, wanted = getattr(getattr(model, section), name), getattr(
                getattr(config, section), name)
        elif section in BLOCK_SECTIONS and hasattr(getattr(config, section), name):
            block, asked_block = getattr(model, section), getattr(config, section)
            if name == "enabled" or block is None:
                key, made, wanted = f"{section}.enabled", block is not None, asked_block.enabled
            else:
                made, wanted = getattr(block, name), getattr(asked_block, name)
        else:
            continue
        if made != wanted:
            return Difference(key, made, wanted)
    return None


def model_refusal(source: str, difference: Difference) -> ReuseError:
    """The one-line error for a setting asked of `bovw predict` that the model contradicts."""
    return ReuseError(f"the model {source} was trained with {difference.key}="
                      f"{show(difference.made)}, this prediction asks for "
                      f"{show(difference.asked)}: a model describes photos with its own "
                      f"settings; drop the {difference.key} setting or train a model with it")
