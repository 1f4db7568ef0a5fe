"""What the Predictor answers for one photo: the top classes and why an answer is unsure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bovw.predict.fruits import FruitInfo

__all__ = ["ClassScore", "Prediction"]


@dataclass(frozen=True)
class ClassScore:
    """One candidate class, its probability and what the catalogue says about it."""

    label: str
    probability: float
    info: FruitInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        """The score as a JSON-friendly dict, with the catalogue's entry when there is one."""
        info = self.info.to_dict() if self.info else {}
        return {"label": self.label, "probability": self.probability, **info}


@dataclass(frozen=True)
class Prediction:
    """The answer for one photo.

    `top` holds the best classes, most probable first. It is empty when the bytes were
    rejected (`reject_reason` says why) or when the photo is too small or too flat to
    describe (`flagged` says why: see PredictSettings.min_side and min_textured_patches).
    `low_confidence` is set, and `notes` say why, when the photo gave few keypoints, no
    class is probable enough, or it got no answer. `fitted` says how a photo of another
    size was made the training size. width and height are the photo's own.
    """

    top: tuple[ClassScore, ...]
    n_keypoints: int
    low_confidence: bool
    notes: tuple[str, ...] = ()
    fitted: str | None = None
    width: int = 0
    height: int = 0
    reject_reason: str | None = None
    flagged: str | None = None

    @classmethod
    def unreadable(cls, reason: str, width: int = 0, height: int = 0) -> Prediction:
        """The answer for bytes that could not be read as a photo: no classes, `reason`."""
        return cls((), 0, True, (f"cannot read the photo: {reason}",), None, width, height,
                   reason)

    @property
    def label(self) -> str | None:
        """The most probable class, or None when the photo got no answer."""
        return self.top[0].label if self.top else None

    @property
    def probability(self) -> float | None:
        """The most probable class's probability, or None when the photo got no answer."""
        return self.top[0].probability if self.top else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict of the prediction."""
        return {
            "label": self.label,
            "probability": self.probability,
            "top": [score.to_dict() for score in self.top],
            "n_keypoints": self.n_keypoints,
            "low_confidence": self.low_confidence,
            "notes": list(self.notes),
            "fitted": self.fitted,
            "width": self.width,
            "height": self.height,
            "reject_reason": self.reject_reason,
            "flagged": self.flagged,
        }
