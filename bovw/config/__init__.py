"""The run configuration: typed, frozen settings read from TOML and command-line overrides."""

from bovw.config.settings import (
    CNN_BACKBONES,
    CNN_RUNTIMES,
    DESCRIPTOR_SCHEME,
    EMR_FAILURE_ACTIONS,
    FIT_POLICIES,
    S3_COMMITTERS,
    ClassifierSettings,
    CnnSettings,
    ColourSettings,
    Config,
    ConfigError,
    EmrSettings,
    HistogramSettings,
    IngestSettings,
    OrbSettings,
    PcaSettings,
    PredictSettings,
    S3Settings,
    SparkSettings,
    VocabularySettings,
    apply_overrides,
    config_from_dict,
    current_orb_table,
    load_config,
    parse_assignment,
    redacted_settings,
)

__all__ = [
    "CNN_BACKBONES", "CNN_RUNTIMES", "DESCRIPTOR_SCHEME", "EMR_FAILURE_ACTIONS", "FIT_POLICIES",
    "S3_COMMITTERS", "ClassifierSettings", "CnnSettings", "ColourSettings", "Config",
    "ConfigError", "EmrSettings", "HistogramSettings", "IngestSettings", "OrbSettings",
    "PcaSettings", "PredictSettings", "S3Settings", "SparkSettings", "VocabularySettings",
    "apply_overrides", "config_from_dict", "current_orb_table", "load_config",
    "parse_assignment", "redacted_settings",
]
