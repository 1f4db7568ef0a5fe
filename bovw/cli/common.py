"""What the command modules share: settings each command uses, ..."""

from __future__ import annotations

__all__ = ["PREDICT_KEYS", "SESSION_KEYS"]

# What `bovw predict` uses of the configuration besides the model: the session, its own
# settings, the listing of a folder; and what it compares with the model (the rest of the
# model's settings cannot be changed at prediction time).
PREDICT_KEYS = ("spark.", "s3.", "predict.", "ingest.extensions", "ingest.max_file_bytes",
                "orb.", "colour.", "histograms.", "vocabulary.k", "pca.components", "seed")
SESSION_KEYS = ("spark.", "s3.")
