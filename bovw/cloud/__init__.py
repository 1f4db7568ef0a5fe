"""AWS: credentials, Spark's S3A connector, datasets in S3, and runs on Amazon EMR.

    credentials.py  AWS credentials resolved by boto3, every failure one line
    s3a.py          the Spark / Hadoop properties and jars for s3a:// (no boto3)
    s3.py           `bovw s3`: upload a folder, list a prefix (boto3)
    upload_progress.py  the text progress bar of `bovw s3 upload`
    emr.py          `bovw emr submit`: the EMR step and cluster requests

Imported by name: boto3 loads only with credentials, s3 or emr.
"""

__all__ = ["normalise_s3_url", "uses_s3"]


def __getattr__(name: str):
    if name in __all__:
        from bovw.cloud import s3a

        return getattr(s3a, name)
    raise AttributeError(f"module 'bovw.cloud' has no attribute {name!r}")
