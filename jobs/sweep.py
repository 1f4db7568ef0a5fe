"""spark-submit entry point for a sweep.

    spark-submit jobs/sweep.py --input DIR --output DIR --k 50,100,200 [--param pca.components=20]

Takes the same flags as `bovw sweep`; spark-submit's own flags win over the config file.
"""

import sys

from bovw.cli import main

if __name__ == "__main__":
    sys.exit(main(["sweep", *sys.argv[1:]]))
