"""spark-submit entry point for the whole pipeline.

    spark-submit jobs/pipeline.py --input DIR --output DIR [--config conf/local.toml] [--k 500]

Takes the same flags as `bovw run`; spark-submit's own flags (--master, --driver-memory,
--conf) win over the config file.
"""

import sys

from bovw.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
