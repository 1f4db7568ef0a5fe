"""spark-submit entry point for the visual words / colour / CNN features comparison.

    spark-submit jobs/compare.py --input DIR --output DIR [--cnn-features FILE.parquet]

Takes the same flags as `bovw compare`; spark-submit's own flags win over the config file.
"""

import sys

from bovw.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
