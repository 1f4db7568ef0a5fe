"""AWS credentials, resolved by boto3 (`boto3.Session(profile_name=...)`).

Everything the AWS CLI understands works: static keys, assume-role profiles, SSO,
environment variables, instance roles. Every failure is a one-line CloudError naming the
cause and the fix. Secrets never reach logs: `ResolvedCredentials.__repr__` hides them;
bovw.config.log_masking masks them, and AWS tokens, in every log record of the process
(botocore's and py4j's DEBUG lines included); bovw.cloud.s3a turns them into Spark
properties, bovw.spark.session keeps those off the JVM's command line, and
bovw.config.redaction masks them wherever a setting is shown.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import boto3
import botocore.exceptions
import botocore.session

from bovw.config.log_masking import install as install_log_masking
from bovw.config.log_masking import mask_in_logs
from bovw.config.redaction import mask_url_credentials
from bovw.errors import CloudError

__all__ = ["ResolvedCredentials", "boto3_session", "credential_errors",
           "credentials_from_session", "request_error", "resolve_credentials"]

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

    def __post_init__(self) -> None:
        # From here on, no log record of this process shows these values.
        mask_in_logs(self.access_key, self.secret_key, self.token)

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
    """A boto3 Session for `profile` (None: boto3's default chain, which AWS_PROFILE may
    name). Raises CloudError."""
    install_log_masking()
    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except botocore.exceptions.ProfileNotFound as error:
        where = ("set s3.profile to a known profile" if profile is not None else
                 "unset AWS_PROFILE (and AWS_DEFAULT_PROFILE) or name a known profile there")
        raise _profile_not_found(error, profile, where) from error


def _profile_not_found(error: botocore.exceptions.ProfileNotFound, profile: str | None,
                       where: str) -> CloudError:
    missing = error.kwargs.get("profile") or profile
    # Not boto3.Session(): it reads AWS_PROFILE again and raises again when that is unknown.
    try:
        known = ", ".join(sorted(botocore.session.Session(profile=None).available_profiles))
    except botocore.exceptions.BotoCoreError:
        known = ""
    return CloudError(
        f"AWS profile {missing!r} not found in the AWS config/credentials files "
        f"(known profiles: {known or 'none'}); fix: run `aws configure --profile {missing}` "
        f"or {where}"
    )


def _who(session: boto3.Session) -> tuple[str | None, str]:
    """The session's profile (None unless one by that name exists: boto3 reports "default"
    even when there is none) and how messages name where its credentials come from."""
    try:
        names = session.available_profiles
    except botocore.exceptions.BotoCoreError:
        names = []
    profile = session.profile_name if session.profile_name in names else None
    return profile, f"AWS profile {profile!r}" if profile else "the default AWS credential chain"


@contextmanager
def credential_errors(session: boto3.Session) -> Iterator[None]:
    """Turn what boto3 raises while resolving `session`'s credentials (boto3 does that in
    get_credentials and when it creates a client) into one-line CloudErrors naming the
    cause and the fix, never a key."""
    profile, who = _who(session)
    try:
        yield
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
        raise _partial(error, who) from error
    except botocore.exceptions.ProfileNotFound as error:  # a source_profile, say
        raise _profile_not_found(error, profile, f"correct the profiles {who} refers to "
                                 "(source_profile) in ~/.aws/config") from error
    except botocore.exceptions.InvalidConfigError as error:
        raise CloudError(f"{who} is misconfigured: {error}; fix: correct ~/.aws/config") from error
    except botocore.exceptions.CredentialRetrievalError as error:
        # Not its message: a credential_process's error output may hold anything.
        raise CloudError(
            f"{who} could not provide credentials: its {error.kwargs.get('provider', 'source')}"
            " failed; fix: run the profile's credential_process (or login) yourself to see why"
        ) from error
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


def _partial(error: botocore.exceptions.PartialCredentialsError, who: str) -> CloudError:
    missing = error.kwargs.get("cred_var", "a key")
    if error.kwargs.get("provider") == "env":
        return CloudError(
            f"the environment holds incomplete AWS credentials ({missing} is missing); fix: "
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY together, or unset both to use "
            "a profile")
    return CloudError(
        f"{who} has incomplete credentials ({missing} is missing); fix: set both "
        "aws_access_key_id and aws_secret_access_key"
    )


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
    profile, who = _who(session)
    try:
        with credential_errors(session):
            credentials = session.get_credentials()
            frozen = credentials.get_frozen_credentials() if credentials is not None else None
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
        return CloudError(mask_url_credentials(
            f"cannot reach AWS for {doing}: {error}; fix: check the network connection (and "
            "s3.endpoint, if set)"))
    # Masked: an endpoint (AWS_ENDPOINT_URL, s3.endpoint) may carry user:password@.
    return CloudError(mask_url_credentials(f"{doing} failed: {error}"))


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
