"""Per-image work, free of Spark (nothing here imports pyspark): bytes in, arrays out.

Shared by the Spark stages (inside their Arrow UDFs) and by the Predictor, so that both
compute the very same numbers.

    decode.py     image bytes -> Pillow image -> grey / RGB uint8 arrays; ImageRejected
    orb.py        ORB descriptors (n, 32) uint8 and keypoint positions (n, 2) of one image
    dense_orb.py  a dense grid's ORB descriptors, OpenCV's very bytes, a few array operations
    colour.py     the HSV colour block of an image's fruit pixels
    words.py      each descriptor to its nearest visual word; spatial-pyramid bins
    framing.py    a photo of another size made the training images' shape (Predictor)
    synthetic.py  the fruit-like demo and test images
"""

from bovw.image.colour import colour_histogram, image_colour
from bovw.image.decode import ImageRejected, decode_grey, open_image, to_grey, to_rgb
from bovw.image.framing import fit_to_training_size
from bovw.image.orb import DESCRIPTOR_BYTES, Extraction, describe_keypoints, extract_descriptors
from bovw.image.synthetic import generate_dataset, render_fruit
from bovw.image.words import histogram_length, nearest_words, word_counts

__all__ = [
    "DESCRIPTOR_BYTES", "Extraction", "ImageRejected", "colour_histogram", "decode_grey",
    "describe_keypoints", "extract_descriptors", "fit_to_training_size", "generate_dataset",
    "histogram_length", "image_colour", "nearest_words", "open_image", "render_fruit",
    "to_grey", "to_rgb", "word_counts",
]
