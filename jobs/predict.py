"""spark-submit entry point for predictions on a folder or s3a:// prefix.

    spark-submit jobs/predict.py --model s3a://bucket/runs/k500/model.npz \
        --output s3a://bucket/predictions/ s3a://bucket/photos/ [--labelled]

Takes the same flags as `bovw predict`; spark-submit's own flags win over the config file.
"""

import sys

from bovw.cli import main

if __name__ == "__main__":
    sys.exit(main(["predict", *sys.argv[1:]]))
