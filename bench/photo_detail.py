"""How many patches of each photo show detail (bovw.image.orb.textured_patches), on a real
image set, as the Predictor measures them; and the same photos shrunk to a few pixels and
enlarged back, which must not be answered. Backs the defaults of predict.min_side and
predict.min_textured_patches.

    python -m bench.photo_detail ../shared/data/fruits360-dev --split Test
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from bovw.config import OrbSettings, PredictSettings
from bovw.image.decode import open_image, to_grey
from bovw.image.orb import textured_patches


def _textured(grey: np.ndarray, orb: OrbSettings) -> int:
    return textured_patches(grey, orb)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="folder with Training/<Class>/ and Test/<Class>/")
    parser.add_argument("--split", default="Test")
    parser.add_argument("--shrunk", default="8,16,24,32,48",
                        help="sides (px) the photos are shrunk to before being enlarged back")
    args = parser.parse_args()
    orb, settings = OrbSettings(), PredictSettings()
    sides = [int(side) for side in args.shrunk.split(",")]
    print(f"predict.min_textured_patches = {settings.min_textured_patches}")
    print("| class | photos | fewest textured | median | below the threshold | "
          + " | ".join(f"shrunk to {side} px: most" for side in sides) + " |")
    print("|---" * (5 + len(sides)) + "|")
    lowest = None
    for folder in sorted(Path(args.dataset, args.split).iterdir()):
        counts, shrunk = [], {side: [] for side in sides}
        for path in sorted(folder.glob("*.jpg")):
            image, _size = open_image(path.read_bytes(), orb)
            grey = to_grey(image)
            counts.append(_textured(grey, orb))
            height, width = grey.shape
            for side in sides:
                small = cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA)
                enlarged = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
                shrunk[side].append(_textured(enlarged, orb))
        if not counts:
            continue
        below = sum(count < settings.min_textured_patches for count in counts)
        lowest = min(counts) if lowest is None else min(lowest, min(counts))
        print(f"| {folder.name} | {len(counts)} | {min(counts)} | {int(np.median(counts))} | "
              f"{below} | " + " | ".join(str(max(shrunk[side])) for side in sides) + " |")
    print(f"fewest textured patches of any photo: {lowest}")


if __name__ == "__main__":
    main()
