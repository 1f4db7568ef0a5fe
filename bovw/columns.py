"""The names bovw's tables share: the columns of the DataFrames and Parquet outputs that
pass from stage to stage, the split names, and the schemas of the tables bovw writes.

Plain strings, no Spark, so that every layer may use them.
"""

__all__ = [
    "COLOUR", "CONTENT", "DESCRIPTORS", "DESCRIPTOR_SCHEMA", "FEATURES", "HEIGHT", "HISTOGRAM",
    "LABEL", "LABEL_INDEX", "LENGTH", "N_KEYPOINTS", "PATH", "PCA_FEATURES", "POSITIONS",
    "PREDICTION", "PREDICTION_SCHEMA", "PROBABILITY", "REJECT_REASON", "SAMPLE", "SPLIT",
    "SPLIT_FOLDER", "SPLIT_NAMES", "TEST", "TONE", "TRAIN", "WEIGHTED", "WIDTH",
]

# ---------------------------------------------------------------- the splits

TRAIN, TEST = "Training", "Test"
# Folder names (any letter case) that put the images of their class folders in a split.
SPLIT_NAMES = {"training": TRAIN, "train": TRAIN, "test": TEST}

# ---------------------------------------------------------------- one row per image

PATH = "path"              # the file, as Spark names it
CONTENT = "content"        # its bytes: binaryFile's column, or read by Python (local)
LENGTH = "length"          # its size in bytes, as listed
LABEL = "label"            # the class: the name of the folder holding the file
SPLIT = "split"            # TRAIN, TEST, or null outside the split folders
SPLIT_FOLDER = "split_folder"  # the split the folder names, before a seeded split

N_KEYPOINTS = "n_keypoints"
DESCRIPTORS = "descriptors"      # (n, 32) uint8, packed (bovw.image.orb.pack)
POSITIONS = "positions"          # (n, 2) uint8 relative keypoint positions, packed
REJECT_REASON = "reject_reason"  # why an image was not used; null when it was
WIDTH, HEIGHT = "width", "height"
COLOUR = "colour"                # the colour block (bovw.image.colour), or empty
TONE = "tone"                    # the grey-tone block (bovw.image.tone), or empty
SAMPLE = "sample"                # the descriptors set aside for the vocabulary sample

HISTOGRAM = "histogram"          # raw word counts, a sparse vector
WEIGHTED = "weighted"            # the PCAModel's input column: weighted histogram [+ blocks]
FEATURES = "features"            # a feature vector of any origin (CNN features, KMeans input)
PCA_FEATURES = "pca_features"    # the PCA projection the classifier reads
LABEL_INDEX = "label_index"      # the class's index in the classifier
PREDICTION = "prediction"        # the predicted class name
PROBABILITY = "probability"      # the classifier's probability vector

# ---------------------------------------------------------------- the tables bovw writes

# RUN/descriptors: one row per listed image, rejects included.
DESCRIPTOR_SCHEMA = (
    "path string, label string, split string, n_keypoints int, descriptors binary, "
    "reject_reason string, width int, height int, positions binary, colour array<float>, "
    "tone array<float>, sample binary"
)
# What `bovw predict` writes for a folder: one row per image.
PREDICTION_SCHEMA = (
    "path string, label string, prediction string, probability double, "
    "top_labels array<string>, top_probabilities array<double>, display_name string, "
    "n_keypoints int, low_confidence boolean, notes string, fitted string, width int, "
    "height int, reject_reason string"
)
