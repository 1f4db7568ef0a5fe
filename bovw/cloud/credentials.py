"""AWS credentials, resolved by boto3 (`boto3.Session(profile_name=...)`).

Everything the AWS CLI understands works: static keys, assume-role profiles, SSO,
environment variables, instance roles. Every failure is a one-line CloudError naming the
cause and the fix. Secrets never reach logs: `ResolvedCredentials.__repr__` hides them
(bovw.cloud.s3a turns them into Spark properties, bovw.spark.session keeps those off the
JVM's command line, and bovw.config.redaction masks them wherever a setting is shown).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import boto3
import botocore.exceptions

from bovw.errors import CloudError

__all__ = ["ResolvedCredentials", "boto3_session", "credentials_from_session", "request_error",
           "resolve_credentials"]

log = logging.getLogger(__name__)

_HIDDEN = "***"


@dataclass(frozen=True)
class ResolvedCredentials:
    """A snapshot of AWS credentials; `method` is boto3's name for where they came from
    ("shared-credentials-file", "assume-role", "sso", "env", "iam-role", ...)."""

    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    region: str | None = None
    method: str = "explicit"
    profile: str | None = None

    @property
    def temporary(self) -> bool:
        """True for session credentials (they carry a token and expire)."""
        return self.token is not None

    def __repr__(self) -> str:
        return (
            f"ResolvedCredentials(method={self.method!r}, profile={self.profile!r}, "
            f"region={self.region!r}, access_key={_key_hint(self.access_key)!r}, "
            f"temporary={self.temporary})"
        )

    __str__ = __repr__


def _key_hint(access_key: str) -> str:
    return "..." + access_key[-4:] if len(access_key) > 8 else _HIDDEN


def boto3_session(profile: str | None, region: str | None = None) -> boto3.Session:
    """A boto3 Session for `profile` (None: boto3's default chain). Raises CloudError."""
    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except botocore.exceptions.ProfileNotFound as error:
        known = ", ".join(sorted(boto3.Session().available_profiles)) or "none"
        raise CloudError(
            f"AWS profile {profile!r} not found in the AWS config/credentials files "
            f"(known profiles: {known}); fix: run `aws configure --profile {profile}` "
            "or set s3.profile to a known profile"
        ) from error


def resolve_credentials(
    profile: str | None, *, region: str | None = None, verify: bool = False
) -> ResolvedCredentials:
    """Resolve credentials for `profile` (None: boto3's default chain).

    `region` overrides the profile's region. With `verify`, one STS GetCallerIdentity call
    proves the credentials are accepted (catches expired or revoked keys before Spark
    starts). Raises CloudError with the cause and the fix.
    """
    return credentials_from_session(boto3_session(profile, region), verify=verify)


def credentials_from_session(
    session: boto3.Session, *, verify: bool = False
) -> ResolvedCredentials:
    """Freeze the credentials a boto3 Session resolves to; see resolve_credentials."""
    # boto3 reports "default" even when no such profile exists; name only a real one.
    profile = session.profile_name if session.profile_name in session.available_profiles else None
    who = f"AWS profile {profile!r}" if profile else "the default AWS credential chain"
    try:
        credentials = session.get_credentials()
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
    except (
        botocore.exceptions.SSOTokenLoadError,
        botocore.exceptions.UnauthorizedSSOTokenError,
        botocore.exceptions.TokenRetrievalError,
        botocore.exceptions.SSOError,
    ) as error:
        raise CloudError(
            f"the SSO session for {who} is missing or expired; "
            f"fix: run `aws sso login{_profile_flag(profile)}`"
        ) from error
    except botocore.exceptions.PartialCredentialsError as error:
        raise CloudError(
            f"{who} has incomplete credentials ({error.kwargs.get('cred_var', 'a key')} is "
            "missing); fix: set both aws_access_key_id and aws_secret_access_key"
        ) from error
    except botocore.exceptions.InvalidConfigError as error:
        raise CloudError(f"{who} is misconfigured: {error}; fix: correct ~/.aws/config") from error
    except botocore.exceptions.ClientError as error:
        # Raised while assuming a role: the source identity may not assume it.
        raise CloudError(
            f"{who} could not assume its role: {_client_error_text(error)}; fix: check role_arn, "
            "source_profile and the role's trust policy"
        ) from error
    except botocore.exceptions.NoRegionError as error:
        raise CloudError(
            f"{who} needs an AWS region to fetch its credentials; fix: set s3.region, "
            "or `region = ...` in the profile"
        ) from error
    except botocore.exceptions.BotoCoreError as error:
        raise CloudError(f"{who} could not provide credentials: {error}") from error
    if frozen is None or not frozen.access_key or not frozen.secret_key:
        raise CloudError(
            f"no AWS credentials found in {who}; fix: set s3.profile to a configured "
            "profile (`aws configure --profile NAME`), or run on an instance with an IAM role"
        )
    resolved = ResolvedCredentials(
        access_key=frozen.access_key,
        secret_key=frozen.secret_key,
        token=frozen.token or None,
        region=session.region_name,
        method=getattr(credentials, "method", None) or "unknown",
        profile=profile,
    )
    if verify:
        _verify(session, resolved, who)
    log.info("AWS credentials resolved: %r", resolved)
    return resolved


def _profile_flag(profile: str | None) -> str:
    return f" --profile {profile}" if profile else ""


def _client_error_text(error: botocore.exceptions.ClientError) -> str:
    details = error.response.get("Error", {})
    return f"{details.get('Code', 'Error')}: {details.get('Message', '')}".rstrip(": ")


def request_error(error: botocore.exceptions.BotoCoreError, doing: str) -> CloudError:
    """The one-line CloudError for an AWS request (`doing`: "listing s3://b/p") that failed
    before AWS answered it: no network, no credentials, no region, a malformed request."""
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return CloudError(
            f"no AWS credentials for {doing}; fix: set s3.profile (--profile) to a configured "
            "profile (`aws configure --profile NAME`), or run where an IAM role provides them")
    if isinstance(error, botocore.exceptions.NoRegionError):
        return CloudError(f"{doing} needs an AWS region; fix: pass --region, or set "
                          "`region = ...` in the AWS profile")
    if isinstance(error, botocore.exceptions.ConnectionError
                  | botocore.exceptions.HTTPClientError):
        return CloudError(f"cannot reach AWS for {doing}: {error}; fix: check the network "
                          "connection (and s3.endpoint, if set)")
    return CloudError(f"{doing} failed: {error}")


def _verify(session: boto3.Session, credentials: ResolvedCredentials, who: str) -> None:
    try:
        identity = session.client("sts").get_caller_identity()
    except botocore.exceptions.ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
            fix = (
                f"run `aws sso login{_profile_flag(credentials.profile)}`"
                if credentials.method == "sso"
                else "refresh the session credentials (new session token / re-assume the role)"
            )
            raise CloudError(f"the credentials from {who} have expired; fix: {fix}") from error
        if code in ("InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException"):
            raise CloudError(
                f"AWS rejected the credentials from {who} ({code}); fix: the access key is "
                "deleted, inactive or mistyped: create a new one and update the profile"
            ) from error
        raise CloudError(
            f"checking the credentials from {who} failed: {_client_error_text(error)}"
        ) from error
    except botocore.exceptions.EndpointConnectionError as error:
        raise CloudError(
            f"cannot reach AWS STS to check the credentials ({error}); fix: check the network "
            "or run without credential verification"
        ) from error
    log.info("AWS identity verified: %s", identity.get("Arn", "unknown"))
