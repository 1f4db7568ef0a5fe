"""Checks on an input location that need no Spark, run before a session starts."""

from __future__ import annotations

import os
import stat
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from bovw.columns import SPLIT_NAMES, TEST, TRAIN
from bovw.config import IngestSettings
from bovw.errors import InputError
from bovw.locations import is_local_path

__all__ = ["DATASET_LAYOUT", "SplitSurvey", "check_local_dataset", "check_local_input",
           "class_problem", "read_local_file", "split_of", "split_problem",
           "survey_splits"]


def _local_folder(path: str) -> Path:
    return Path(path.removeprefix("file://").removeprefix("file:"))


# Where a dataset's images sit, as the ingest stage reads them.
DATASET_LAYOUT = "Training/<Class>/*.jpg and Test/<Class>/*.jpg, or <Class>/*.jpg"


def check_local_input(path: str, settings: IngestSettings, layout: str = DATASET_LAYOUT
                      ) -> None:
    """Fail fast, before Spark starts, when a local input folder is missing or holds no image;
    the errors say the `layout` the command reads."""
    if not is_local_path(path):
        return
    folder = _local_folder(path)
    if folder.is_file():
        raise InputError(f"input {path} is a file: give the folder holding the images "
                         f"({layout})")
    if not folder.is_dir():
        raise InputError(f"input folder not found: {path}")
    suffixes = {"." + ext.lower().lstrip(".") for ext in settings.extensions}
    # Symbolic links are followed, as the ingest stage lists them (Training/ may be a link
    # to another disk); a folder already walked, a link loop among them, is not walked again.
    walked: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        walked.add(os.path.realpath(root))
        if any(Path(name).suffix.lower() in suffixes for name in files):
            return
        dirs[:] = [name for name in dirs
                   if os.path.realpath(os.path.join(root, name)) not in walked]
    raise InputError(
        f"input folder {path} holds no image files ({', '.join(settings.extensions)}); "
        f"expected {layout}"
    )


def check_local_dataset(path: str, settings: IngestSettings) -> bool:
    """check_local_input, and for a dataset to train and test on: when its images sit in
    Training/Test folders, both splits must hold some (see split_problem). Returns True
    for a local dataset split by its folders (ingest.test_fraction then has no effect)."""
    check_local_input(path, settings)
    if not is_local_path(path):
        return False
    folder = _local_folder(path)
    survey = survey_splits(folder, settings.extensions)
    if survey.images_on_top and not survey.images_below:
        raise InputError(_class_folder_problem(path, folder))
    if survey.split_folders:
        problem = split_problem(path, survey.training, survey.test, settings) or (
            # Before Spark starts (the run says it after the descriptors stage): the run
            # lists no more classes than the folders hold, which its rejects can only cut.
            class_problem(path, survey.training_classes, (), 0)
            if len(survey.training_classes) == 1 else None)
        if problem:
            raise InputError(problem)
    return survey.split_folders


@dataclass(frozen=True)
class SplitSurvey:
    """Whether any image sits in a split folder, whether each split holds one, and the
    Training class folders seen holding one (every one when there is one; the walk stops
    once it has seen two and both splits)."""

    split_folders: bool
    training: bool
    test: bool
    training_classes: frozenset[str] = frozenset()
    # Images directly in the folder, and in folders below it (as far as the walk went).
    images_on_top: bool = False
    images_below: bool = False


def split_of(path: str) -> str | None:
    """Training, Test or None: the split named by the grandparent folder of an image path,
    as the ingest stage decides it."""
    parts = path.replace(os.sep, "/").split("/")
    return SPLIT_NAMES.get(parts[-3].lower()) if len(parts) >= 3 else None


def survey_splits(folder: Path, extensions: tuple[str, ...]) -> SplitSurvey:
    """Walk `folder` the way the ingest stage lists it (symbolic links followed, except
    those to one of their own ancestors) until both splits and two Training classes are
    seen or the tree ends."""
    suffixes = tuple("." + ext.lower().lstrip(".") for ext in extensions)
    root = os.path.abspath(folder)
    seen: set[str] = set()
    classes: set[str] = set()
    on_top = below = False
    pending = [(root, frozenset({os.path.realpath(root)}))]
    while pending and not (seen == {TRAIN, TEST} and len(classes) > 1):
        current, ancestors = pending.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            try:
                is_folder = entry.is_dir(follow_symlinks=True)
            except OSError:
                continue
            if is_folder:
                real = os.path.realpath(entry.path)
                if real not in ancestors:
                    pending.append((entry.path, ancestors | {real}))
            elif entry.name.lower().endswith(suffixes):
                on_top, below = on_top or current == root, below or current != root
                if split := split_of(entry.path):
                    seen.add(split)
                    if split == TRAIN:
                        classes.add(os.path.basename(current))  # Training/<Class>/image
    return SplitSurvey(bool(seen), TRAIN in seen, TEST in seen, frozenset(classes),
                       on_top, below)


def _class_folder_problem(path: str, folder: Path) -> str:
    """What to give instead of `folder` (`path` as given), whose images all lie in it:
    each image's class is its folder's name, so they would make one class."""
    parent = folder.absolute().parent
    if parent.name.lower() in SPLIT_NAMES:
        return (f"input {path} is the class folder {folder.name!r} of {parent}: its images "
                f"would all be one class; give the dataset folder {parent.parent}, which "
                f"holds {parent.name}/<Class>/")
    return (f"input {path} holds its images directly, as a class folder does, so they "
            f"would all be one class ({folder.name!r}); give the folder that holds the "
            f"class folders ({DATASET_LAYOUT}), such as {parent} if this is one of them")


def split_problem(path: str, training: int, test: int, settings: IngestSettings,
                  split_folders: bool = True, rejects: str | None = None) -> str | None:
    """Why a dataset cannot be trained and tested on, as one line with the fix, or None.

    A run without Test images would report "accuracy 0.00% on 0 Test images"; one without
    Training images has nothing to learn from. `training` and `test` count its usable
    images; `split_folders` says whether they sit in Training/Test folders (else the
    split is bovw's own, ingest.test_fraction of each class); `rejects` names the rejects
    table when some images could not be read.
    """
    unread = f" (or none of them could be read: see {rejects})" if rejects else ""
    fraction = f"ingest.test_fraction={settings.test_fraction}"
    own_name = path.rstrip("/").rsplit("/", 1)[-1]
    if split_folders and own_name.lower() in SPLIT_NAMES and not (test and training):
        # `--input fruits/Test`, or a dataset kept in a folder named "test": the folder's
        # own name makes every image in it one split's.
        return (f"input {path} is itself named {own_name!r}, so all its images count as "
                f"{SPLIT_NAMES[own_name.lower()]} images; give the folder that holds both "
                "Training/ and Test/, or rename this one so that bovw splits its classes "
                f"itself ({fraction})")
    if not test and split_folders:
        return (f"input {path} has no Test images{unread}: put the Test images in "
                "Test/<Class>/ beside Training/, or move the class folders out of "
                f"Training/ so that bovw splits them itself ({fraction})")
    if not test:
        return (f"input {path} has no Test images{unread}: no class has enough images for "
                f"{fraction} to set one aside; add images or raise ingest.test_fraction")
    if not training and split_folders:
        return (f"input {path} has no Training images{unread}: put the Training images in "
                "Training/<Class>/ beside Test/")
    if not training:
        return (f"input {path} has no Training images{unread}: no class has enough images "
                f"to keep one for Training with {fraction}; add images or lower "
                "ingest.test_fraction")
    return None


def class_problem(path: str, training_classes: Collection[str], test_classes: Collection[str],
                  test_images: int) -> str | None:
    """Why the classes of a dataset cannot give a score, as one line with the fix, or None.

    A single Training class makes a model that answers it for every image (100% on its
    own Test images, learning nothing); Test images of classes without Training images
    cannot be predicted, so when all are such the run would score 0 images.
    """
    training, test = sorted(training_classes), sorted(test_classes)
    if len(training) == 1:
        return (f"input {path} has Training images of one class only ({training[0]}): a "
                "classifier needs two or more; add the images of at least one other class")
    if test and not set(test) & set(training):
        return (f"none of the {test_images} Test images of input {path} is of a class with "
                f"Training images (Test: {_some(test)}; Training: {_some(training)}), so "
                "none could be scored: Test/<Class>/ and Training/<Class>/ folders must use "
                "the same class names")
    return None


def _some(names: list[str], shown: int = 5) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def read_local_file(path: str) -> bytes | str:
    """The bytes of the local file at `path` (a Hadoop path such as "file:/a/b c.jpg", as
    the listing names it), or the reject reason when it cannot be read."""
    local = path.removeprefix("file:")
    try:
        # Not blocking: a named pipe listed with the images would otherwise wait for a
        # writer forever, and the run with it.
        descriptor = os.open(local, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError as error:
        if os.path.islink(local):
            return f"broken symbolic link: its target {os.readlink(local)} does not exist"
        return f"unreadable file: {error.strerror or error}"
    except OSError as error:
        return f"unreadable file: {error.strerror or error}"
    with os.fdopen(descriptor, "rb") as image:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return "unreadable file: not a regular file (a named pipe, socket or device)"
        try:
            return image.read()
        except OSError as error:
            return f"unreadable file: {error.strerror or error}"
