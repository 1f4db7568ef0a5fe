"""The fruit catalogue: what the app tells a person about each class it can predict.

A TOML file (bovw/predict/fruits.toml, shipped with bovw) maps a class name, exactly as
the training folder is called, to a display name, a one-line description and optionally
the botanical family and the colour:

    [fruits."Apple Braeburn"]
    name = "Braeburn apple"
    family = "Rosaceae"
    colour = "red streaks over yellow-green"
    description = "A crisp, sweet-tart apple from New Zealand."

Free of Spark; `bovw.predict.predictor` embeds the entries of a model's classes in the model file.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bovw.config.redaction import mask_url_credentials
from bovw.errors import FruitCatalogueError

__all__ = ["MAX_TEXT", "OPTIONAL_KEYS", "REQUIRED_KEYS", "FruitInfo", "default_catalogue_path",
           "load_catalogue", "parse_catalogue"]

REQUIRED_KEYS = ("name", "description")
OPTIONAL_KEYS = ("family", "colour")
MAX_TEXT = 300



@dataclass(frozen=True)
class FruitInfo:
    """What the app shows for one class."""

    name: str
    description: str
    family: str | None = None
    colour: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """The entry as a JSON-friendly dict (absent keys as None)."""
        return dataclasses.asdict(self)


def default_catalogue_path() -> Path | None:
    """The catalogue bovw ships (bovw/predict/fruits.toml, in the wheel as package data:
    it lived in conf/, which a wheel does not hold), or None when it is missing."""
    candidate = Path(__file__).resolve().with_name("fruits.toml")
    return candidate if candidate.is_file() else None


def parse_catalogue(data: Mapping[str, Any], source: str = "catalogue"
                    ) -> dict[str, FruitInfo]:
    """Validate a parsed catalogue ({"fruits": {class: {key: text}}}) into FruitInfo entries.

    Raises FruitCatalogueError naming `source` and the entry for an unknown or missing
    key, an empty text, or a description longer than one line.
    """
    unknown = sorted(set(data) - {"fruits"})
    if unknown:
        raise FruitCatalogueError(
            f"{source}: unknown top-level key {unknown[0]!r}; entries go in [fruits.\"Class\"]")
    table = data.get("fruits", {})
    if not isinstance(table, Mapping):
        raise FruitCatalogueError(f"{source}: 'fruits' must be a table of classes")
    known = REQUIRED_KEYS + OPTIONAL_KEYS
    catalogue = {}
    for class_name, entry in table.items():
        where = f'{source}: [fruits."{class_name}"]'
        if not isinstance(entry, Mapping):
            raise FruitCatalogueError(f"{where} must be a table with keys {', '.join(known)}")
        extra = sorted(set(entry) - set(known))
        if extra:
            raise FruitCatalogueError(
                f"{where}: unknown key {extra[0]!r}; known keys: {', '.join(sorted(known))}")
        missing = [key for key in REQUIRED_KEYS if key not in entry]
        if missing:
            raise FruitCatalogueError(f"{where}: missing key {missing[0]!r}")
        for key, value in entry.items():
            if not isinstance(value, str) or not value.strip():
                raise FruitCatalogueError(f"{where}: {key} must be a non-empty string")
            if "\n" in value or len(value) > MAX_TEXT:
                raise FruitCatalogueError(
                    f"{where}: {key} must be one line of at most {MAX_TEXT} characters")
        catalogue[class_name] = FruitInfo(**{key: entry[key].strip() for key in entry})
    return catalogue


def load_catalogue(path: str | Path) -> dict[str, FruitInfo]:
    """Read and validate a catalogue TOML file (a local one); raises FruitCatalogueError."""
    # As given, the credentials of a URL masked: Path("s3://b/f") would read "s3:/b/f".
    shown = mask_url_credentials(str(path))
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", str(path)):
        raise FruitCatalogueError(f"fruit catalogue {shown} is a URL, and bovw reads the "
                                  "catalogue from a local file; fix: copy it to this machine "
                                  "(e.g. `aws s3 cp`) and give that file")
    path = Path(path)
    if not path.is_file():
        raise FruitCatalogueError(f"fruit catalogue not found: {shown}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise FruitCatalogueError(f"fruit catalogue {path} is not valid TOML: {error}") from None
    return parse_catalogue(data, str(path))

