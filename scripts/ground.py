#!/usr/bin/env python3
"""cove's test ground: a moto server on a loopback port, with a sample organization built in it,
and a thin fault-injecting layer in front of it.

The fault layer answers chosen calls with correctly shaped AWS errors (moto's own IAM
enforcement produces error bodies the Rust SDK cannot parse), counts every call by operation,
and remembers the secrets moto issued so tests can prove they never leak.

Usage:
    ground.py [--scenario standard|empty|none] [--extra-root-accounts N]
              [--deny-assume ID,ID] [--deny-assume-names NAME,NAME] [--deny-list-accounts]
              [--throttle-assume FRACTION] [--throttle-list-accounts N]
              [--throttle-first OPERATION=N]... [--throttle-fraction OPERATION=FRACTION]...
              [--opt-in-names NAME,NAME] [--deny-list-regions-names NAME,NAME] [--hold-parent OU]
              [--assume-expiry-seconds N] [--first-assume-expiry-seconds N]
              [--opt-in-names NAME,NAME] [--deny-list-regions-names NAME,NAME]
              [--caller-partition aws|aws-cn|aws-us-gov] [--deny-assume-quoting-names NAME,NAME]
              [--sso-accounts NAME,NAME] [--sso-permission-sets NAME,NAME]
              [--sso-deny NAME:ACCOUNT,ACCOUNT]... [--sso-page-size N] [--sso-unreadable NAME]...
              [--rename ACCOUNT=NAME]... [--deny-list-accounts-after N]
              [--list-accounts-page-size N] [--hold-list-accounts-page N]
              [--info-file PATH] [--exit-on-stdin-eof]

Once ready it prints one JSON line (also written to --info-file):
    {"endpoint": "http://127.0.0.1:PORT", "caller": "...", "root": "r-...",
     "ous": {"Workloads": "ou-..."}, "accounts": {"prod-a": {"id": "...", "state": "ACTIVE"}},
     "sso_token": "ground-sso-..."}

Control endpoints (plain HTTP GET on the same port):
    /_ground/calls    {"sts:AssumeRole": 12, "organizations:ListAccounts": 2, ...}
    /_ground/secrets  {"secrets": [...]}   every SecretAccessKey and SessionToken moto issued
    /_ground/assume-params  {"calls": [{...}]}   the form parameters of every AssumeRole call
    /_ground/assume-times   {"times": [...]}   when each AssumeRole call arrived (monotonic seconds)
    /_ground/clear-faults   lifts every denial and throttle from now on
    /_ground/session-params {"calls": [{...}]}   the parameters of every GetSessionToken call
    /_ground/held     {"held": N}   ListAccountsForParent calls waiting (--hold-parent), and
                      ListAccounts calls waiting (--hold-list-accounts-page)
    /_ground/release  lets every held call through, and every later one
    /_ground/sso-params {"calls": [{"operation": "GetRoleCredentials", "account_id": "...",
                                    "role_name": "...", "token_ok": true}, ...]}
                      every portal call (ListAccounts, ListAccountRoles, GetRoleCredentials),
                      throttled ones included; never the token itself
    /_ground/sso-times  {"times": [...]}   when each GetRoleCredentials call arrived (monotonic
                      seconds), throttled ones included
    /_ground/issued     {"issued": [{"AccessKeyId": "...", "Expiration": "..."}, ...]}   the key
                      and the final expiry of every AssumeRole answer

    /_ground/expired  {"calls": {"sts:AssumeRole": n, ...}}   requests refused with ExpiredToken
    /_ground/keys     {"keys": {"<AccessKeyId>": {"identity": "<role ARN>", "expires": <epoch s>,
                                              "expired": bool, "uses": n}}}
                      every key the ground issued (never a secret), and how many requests it
                      signed before its Expiration

    /_ground/calls-by-identity  {"organizations:ListAccounts": {"<role ARN>" or "starting": n}, ...}
                            who signed each call: the role whose assumed keys signed it, or
                            "starting" for keys moto never issued (the test's own),
                            "sso:<permission set>" for portal keys, "portal" for the portal's
                            own calls (sso:...)

--throttle-first / --throttle-fraction throttle any counted operation (organizations:ListTagsForResource,
sts:GetCallerIdentity, account:ListRegions, ...) with its protocol's own throttling error: the first N
answers, then a fraction of the rest (each flag may be repeated, one operation each). They answer
before anything else, so an AssumeRole throttled this way is not in /_ground/assume-params.

Role topologies (cove's --role fallback, --via-role and --org-role):
    --deny-role-in NAME:ACCOUNT,ACCOUNT   AssumeRole of role NAME is AccessDenied in these accounts
                                          (names of the sample org, 12-digit IDs, or "management");
                                          repeatable
    --short-expiry NAME:SECONDS           AssumeRole answers for role NAME, and portal
                                          GetRoleCredentials answers for permission set NAME,
                                          expire after SECONDS (to test renewal); repeatable

account:ListRegions (POST /listRegions), which moto lacks, is answered here: every account has
us-east-1 and eu-west-1 (ENABLED_BY_DEFAULT), and ap-east-1 is ENABLED for --opt-in-names.

signin:CreateOAuth2Token (POST /v1/token, the refresh of an `aws login` session), which moto
lacks, is answered here too: fresh keys valid for an hour and a new refresh token, for any
request that carries a DPoP proof.

The IAM Identity Center portal (the "sso" service, restJson1, cove's --sso-role), which moto
lacks, is answered here too, at GET /assignment/accounts (ListAccounts), GET /assignment/roles
(ListAccountRoles) and GET /federation/credentials (GetRoleCredentials). The one access token it
accepts (header x-amz-sso_bearer_token) is "sso_token" in the info line, and among
/_ground/secrets; any other is UnauthorizedException (401).
    --sso-accounts NAME,NAME              the portal user's accounts (names of the sample org,
                                          12-digit IDs, or "management"); default every ACTIVE
                                          account of the sample org and the management account
    --sso-permission-sets NAME,NAME       assigned in every portal account (default
                                          AdministratorAccess,ReadOnlyAccess)
    --sso-deny NAME:ACCOUNT,ACCOUNT       permission set NAME is not assigned in these accounts:
                                          GetRoleCredentials is ForbiddenException (403), and
                                          ListAccountRoles leaves it out; repeatable; lifted by
                                          /_ground/clear-faults
    --sso-page-size N                     page size of ListAccounts and ListAccountRoles (default
                                          3; a smaller max_result wins); next_token is the offset
    --sso-unreadable NAME                 GetRoleCredentials of permission set NAME answers real
                                          keys with an `expiration` that is not a number (an answer
                                          the client cannot read); repeatable
GetRoleCredentials answers with keys moto really issued (an internal sts:AssumeRole of
role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_<set>_0123456789abcdef in that account, with
the management keys), so GetCallerIdentity and account:ListRegions see that account. Internal
calls go straight to moto: they are in no count, parameter list or time list, and see no fault.
Portal operations are counted as sso:ListAccounts, sso:ListAccountRoles, sso:GetRoleCredentials,
which --throttle-first / --throttle-fraction throttle with TooManyRequestsException (429).

Expired keys: every key the ground issues (AssumeRole, GetSessionToken, GetRoleCredentials,
CreateOAuth2Token) is refused after the Expiration it was issued with, as AWS does: ExpiredToken
(403, awsQuery) for STS, ExpiredTokenException for Organizations (400, awsJson 1.1) and
account:ListRegions (403, restJson1). Keys the ground never issued (the caller's) never expire.
The caller's starting keys (DUMMY_KEYS, also the ground's own for its setup) are distinctive; their
secret and session token are among /_ground/secrets.

The whole organization's ListAccounts (moto pages it at 100):
    --list-accounts-page-size N           pages of at most N accounts (MaxResults capped at N)
    --hold-list-accounts-page N           the call for page N (N >= 2: the one carrying the
                                          (N-1)th distinct NextToken) waits for /_ground/release
                                          (or 60 s), and counts in /_ground/held

--caller-partition rewrites the partition of the Arn in GetCallerIdentity answers to calls signed
with the starting dummy keys (the caller's own identity); children's assumed keys are left alone.
--deny-assume-quoting-names answers AssumeRole for those accounts with AccessDenied whose message
quotes the ExternalId and Policy it received, as some AWS errors quote request parameters.

Sign-in paths (MFA, the portal's token and its refresh, `aws login`):
    --mfa-serial-expected SERIAL          GetSessionToken with another SerialNumber is AccessDenied,
                                          whatever the code (as IAM answers)
    --sso-revoke-after N                  the portal sign-in is lost after N GetRoleCredentials
                                          answers: every later portal call is UnauthorizedException
    --sso-refresh                         sso-oidc:CreateToken (POST /token) refreshes the portal
                                          token, strictly: the registration's clientId and
                                          clientSecret, grantType refresh_token, a refresh token it
                                          issued (each works once); the registration and first
                                          refresh token are "sso_oidc" in the info line
    --login-refresh-token TOKEN           a refresh token signin:CreateOAuth2Token accepts (once; it
                                          answers a new one); none given: every refresh is refused;
                                          keys it issues sign as identity "login-refresh"
    --login-client-id ID                  the client ID the refresh must name (default the AWS CLI's,
                                          arn:aws:signin:::devtools/same-device)
    --portal-proxy                        an HTTPS proxy on loopback ("portal_proxy" in the info
                                          line: its URL and the PEM of its own CA) for the portal and
                                          SSO-OIDC hosts (portal.sso.<region>.amazonaws.com,
                                          oidc.<region>.amazonaws.com): it records each CONNECT, never
                                          dials out, ends the TLS itself and hands the request to the
                                          ground, so the "host" of /_ground/sso-params shows the
                                          region the client aimed at
    /_ground/assume-signers   {"calls": [{"RoleArn": ..., "AccessKeyId": ...}]}  which key signed
                              each AssumeRole
    /_ground/key-roles        {"keys": {AKID: identity}}  what each issued key stands for (a role
                              ARN, "mfa-session", "sso:<set>", "login-refresh")
    /_ground/sso-oidc-params  {"calls": [{"client_ok", "secret_ok", "grant_type", "refresh_ok",
                              "host"}]}  every CreateToken call, never the values
    /_ground/login-params     {"calls": [{"client_ok", "refresh_ok"}]}  every Sign-In refresh
    /_ground/proxy-connects   {"connects": ["host:port", ...]}  what --portal-proxy was asked for
"""

import argparse
import io
import json
import logging
import random
import re
import sys
import threading
import time
import uuid
from xml.sax.saxutils import escape as xml_escape
from collections import Counter
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlencode

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server
from werkzeug.test import EnvironBuilder

# The caller's starting keys (the test's own, as tests/e2e/support.rs STARTING_* sets them): the
# ground signs its setup with them too. The secret and the token are distinctive and carry `+`,
# `/` and `=`, so that a leak in any encoding is told apart; both are among /_ground/secrets.
DUMMY_KEYS = {"aws_access_key_id": "AKIACOVESTARTING0001",
              "aws_secret_access_key": "cove+Starting/Secret+Key/q7Vx2Lr9Tn4Pb8Wz3Mk",
              "aws_session_token": "IQoJcove+Starting/Session+Token/h5Gd1Sx6Ye0Ju3Ka8Fo=="}

# The portal's routes (GET only): path -> operation.
SSO_ROUTES = {"/assignment/accounts": "ListAccounts", "/assignment/roles": "ListAccountRoles",
              "/federation/credentials": "GetRoleCredentials"}
SSO_ROLE_PATH = "aws-reserved/sso.amazonaws.com/"
SSO_TOKEN_HEADER = "x-amz-sso_bearer_token"


class GroundRequestHandler(MotoRequestHandler):
    """moto's request handler, which also lets the portal's `x-amz-sso_bearer_token` through as
    HTTP_X_AMZ_SSO_BEARER_TOKEN: werkzeug drops every header with an underscore in its name."""

    def make_environ(self):
        environ = super().make_environ()
        # Only the underscored spelling carries the token, as with AWS: a dashed one is dropped.
        environ.pop("HTTP_X_AMZ_SSO_BEARER_TOKEN", None)
        for name, value in self.headers.items():
            if name.lower() == SSO_TOKEN_HEADER:
                environ["HTTP_X_AMZ_SSO_BEARER_TOKEN"] = value.replace("\r\n", "")
        return environ


class FaultLayer:
    """WSGI middleware: counts calls, injects denials, records issued secrets."""

    # --deny-list-accounts-after N: ListAccounts answers N pages, then AccessDeniedException.
    list_accounts_left = None

    def __init__(self, app, deny_assume=(), deny_list_accounts=False):
        self.app = app
        self.deny_assume = set(deny_assume)
        self.deny_list_accounts = deny_list_accounts
        self.no_organization = False
        self.throttle_assume = 0.0
        self.throttle_list_accounts = 0
        self.random = random.Random(7)
        self.throttles = {}  # operation -> [first N left, fraction]; see _throttled
        self.throttle_random = random.Random(11)
        # account:ListRegions, which moto does not implement: answered here.
        self.key_accounts = {}
        self.opt_in_accounts = set()
        self.deny_list_regions = set()
        self.calls = Counter()
        # sts:GetSessionToken: the parameters of each call, and the code it must carry.
        self.session_params = []
        self.mfa_code_expected = None
        # AssumeRole answers expire this many seconds from now (--assume-expiry-seconds).
        self.assume_expiry_seconds = None
        # ListAccountsForParent calls for this parent wait until /_ground/release (or 60 s).
        self.hold_parent = None
        self.released = threading.Event()
        self.held = 0
        self.secrets = []
        self.assume_params = []
        self.lock = threading.Lock()
        self._init_roles()
        self._init_pin_knobs()
        self._init_sso()
        self._init_sign_in_paths()
        self._init_expiry()
        self._init_list_pages()
        # The caller's own secrets: a leak of them is a leak too.
        self.secrets.extend([DUMMY_KEYS["aws_secret_access_key"], DUMMY_KEYS["aws_session_token"]])
        self._init_endpoint_knobs()

    def _init_pin_knobs(self):
        # The caller's partition in GetCallerIdentity answers (None: moto's own answer).
        self.caller_partition = None
        # Accounts whose AssumeRole is denied with a message quoting ExternalId and Policy.
        self.deny_assume_quoting = set()
        self.assume_times = []

    def _json(self, start_response, payload, status="200 OK"):
        body = json.dumps(payload).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/_ground/calls":
            with self.lock:
                return self._json(start_response, dict(self.calls))
        if path == "/_ground/clear-faults":
            with self.lock:
                self.deny_assume.clear()
                self.deny_list_accounts = False
                self.throttle_assume = 0.0
                self.throttle_list_accounts = 0
                self.throttles.clear()
                self.denied_roles.clear()
                self.sso_denied.clear()
                return self._json(start_response, {"cleared": True})
        if path == "/_ground/assume-params":
            with self.lock:
                return self._json(start_response, {"calls": list(self.assume_params)})
        if path == "/_ground/held":
            with self.lock:
                return self._json(start_response, {"held": self.held})
        if path == "/_ground/release":
            self.released.set()
            return self._json(start_response, {"released": True})
        if path == "/_ground/assume-times":
            with self.lock:
                return self._json(start_response, {"times": list(self.assume_times)})
        if path == "/_ground/session-params":
            with self.lock:
                return self._json(start_response, {"calls": list(self.session_params)})
        if path == "/_ground/secrets":
            with self.lock:
                return self._json(start_response, {"secrets": list(self.secrets)})
        if path == "/_ground/calls-by-identity":
            with self.lock:
                return self._json(start_response, {op: dict(by) for op, by in self.calls_by_identity.items()})
        if path == "/_ground/sso-params":
            with self.lock:
                return self._json(start_response, {"calls": list(self.sso_params)})
        if path == "/_ground/sso-times":
            with self.lock:
                return self._json(start_response, {"times": list(self.sso_times)})
        if path == "/_ground/expired":
            with self.lock:
                return self._json(start_response, {"calls": dict(self.expired_calls)})
        if path == "/_ground/keys":
            return self._issued_keys(start_response)
        if path == "/_ground/issued":
            with self.lock:
                return self._json(start_response, {"issued": list(self.issued)})

        answered = self._sign_in_paths(environ, start_response, path)
        if answered is not None:
            return answered
        if path == "/listRegions":
            return self._list_regions(environ, start_response)
        if path == "/v1/token":
            return self._sign_in_token(environ, start_response)
        if path in SSO_ROUTES and environ.get("REQUEST_METHOD") == "GET":
            return self._sso(environ, start_response, SSO_ROUTES[path])

        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))

        operation, params = None, {}
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("AWSOrganizationsV20161128."):
            operation = "organizations:" + target.split(".", 1)[1]
        elif body and b"Action=" in body:
            params = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
            operation = "sts:" + params.get("Action", "?")
        elif "Action=" in environ.get("QUERY_STRING", ""):
            params = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
            operation = "sts:" + params.get("Action", "?")
        if operation:
            with self.lock:
                self.calls[operation] += 1
            self._count_identity(environ, operation)
        if self._expired(environ, operation):
            return self._expired_error(operation, environ, start_response)
        if operation and self._throttled(operation):
            return self._throttle_error(operation, start_response)

        if operation == "sts:GetSessionToken":
            return self._session_token(environ, start_response, params)
        if operation == "sts:AssumeRole":
            with self.lock:
                self.assume_params.append(params)
                self.assume_times.append(time.monotonic())
                self.assume_signers.append({"RoleArn": params.get("RoleArn"),
                                            "AccessKeyId": self._signer(environ)})
            with self.lock:
                throttled = self.random.random() < self.throttle_assume
            if throttled:
                return self._sts_error(start_response, "Throttling", "Rate exceeded", status="400 Bad Request")
            account = params.get("RoleArn", "").split(":")[4:5]
            if account and account[0] in self.deny_assume_quoting:
                return self._deny_assume_quoting(start_response, params)
            if account and account[0] in self.deny_assume:
                return self._sts_error(start_response, "AccessDenied",
                                       "User: arn:aws:iam::123456789012:user/ground is not authorized to perform: "
                                       f"sts:AssumeRole on resource: {params.get('RoleArn')}")
            if self._role_denied(params):
                return self._sts_error(start_response, "AccessDenied",
                                       f"User: {self._identity(environ)} is not authorized to perform: "
                                       f"sts:AssumeRole on resource: {params.get('RoleArn')}")
            return self._assume_as_role(environ, start_response, params)
        if operation and operation.startswith("organizations:") and self.no_organization:
            # What AWS answers a standalone account (moto answers an empty list instead).
            return self._org_error(start_response, "AWSOrganizationsNotInUseException",
                                   "Your account is not a member of an organization.")
        if operation == "organizations:ListAccountsForParent" and self.hold_parent:
            self._hold(body)
        if operation == "organizations:ListAccounts" and self.list_accounts_left is not None:
            with self.lock:
                self.list_accounts_left -= 1
                denied = self.list_accounts_left < 0
            if denied:
                return self._org_error(start_response, "AccessDeniedException",
                                       "You don't have permissions to access this resource.")
        if operation == "organizations:ListAccounts":
            with self.lock:
                throttled = self.throttle_list_accounts > 0
                self.throttle_list_accounts -= throttled
            if throttled:
                return self._org_error(start_response, "TooManyRequestsException",
                                       "AWS Organizations can't complete your request because another "
                                       "request is already in progress. Try again later.")
        if operation and operation.startswith("organizations:") and self.deny_list_accounts:
            # A caller without Organizations access is denied every call, not only ListAccounts.
            return self._org_error(start_response, "AccessDeniedException",
                                   "You don't have permissions to access this resource.")
        if operation == "organizations:ListAccounts":
            self._page_list_accounts(environ, body)
        if operation == "sts:GetCallerIdentity" and self.caller_partition:
            return self._caller_in_partition(environ, start_response)
        return self.app(environ, start_response)

    def _session_token(self, environ, start_response, params):
        """sts:GetSessionToken: checks the MFA code against --mfa-code-expected, records the
        parameters, and remembers the issued keys (as identity "mfa-session") and secrets."""
        with self.lock:
            self.session_params.append(params)
        if self.mfa_serial_expected and params.get("SerialNumber") != self.mfa_serial_expected:
            # What IAM answers for a device that is not the user's, whatever the code.
            return self._sts_error(start_response, "AccessDenied",
                                   "MultiFactorAuthentication failed, unable to validate MFA code. "
                                   "Please verify your MFA serial number is valid and associated "
                                   "with this user.")
        if self.mfa_code_expected and params.get("TokenCode") != self.mfa_code_expected:
            return self._sts_error(start_response, "AccessDenied",
                                   "MultiFactorAuthentication failed with invalid MFA one time pass code.")
        answer = {}

        def capture(status, headers, exc_info=None):
            answer["status"], answer["headers"] = status, headers

        body = b"".join(self.app(environ, capture))
        text = body.decode("utf-8", "replace")
        key = re.search(r"<AccessKeyId>([^<]+)<", text)
        with self.lock:
            self.secrets.extend(re.findall(r"<(?:SecretAccessKey|SessionToken)>([^<]+)<", text))
            if key:
                self.key_roles[key.group(1)] = "mfa-session"
        self._remember_expiry(text)
        start_response(answer["status"], answer["headers"])
        return [body]

    def _hold(self, body):
        """Holds a ListAccountsForParent call for the held parent until released."""
        if json.loads(body or b"{}").get("ParentId") != self.hold_parent:
            return
        with self.lock:
            self.held += 1
        self.released.wait(timeout=60)
        with self.lock:
            self.held -= 1

    def _deny_assume_quoting(self, start_response, params):
        """AccessDenied quoting the request's ExternalId and Policy back, XML-escaped."""
        message = (f"User: arn:aws:iam::123456789012:user/ground is not authorized to perform: "
                   f"sts:AssumeRole on resource: {params.get('RoleArn')} with ExternalId "
                   f"{params.get('ExternalId')} and session policy {params.get('Policy')}")
        return self._sts_error(start_response, "AccessDenied", xml_escape(message))

    def _caller_in_partition(self, environ, start_response):
        """moto's GetCallerIdentity answer, its Arn moved to --caller-partition when the call was
        signed with the starting dummy keys (the caller's own identity)."""
        key = re.search(r"Credential=([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
        if not key or key.group(1) != DUMMY_KEYS["aws_access_key_id"]:
            return self.app(environ, start_response)
        answered = {}

        def remember(status, headers, exc_info=None):
            answered["status"], answered["headers"] = status, headers

        text = b"".join(self.app(environ, remember)).decode("utf-8")
        body = re.sub(r"<Arn>arn:[^:]*:", f"<Arn>arn:{self.caller_partition}:", text).encode()
        headers = [(k, v) for k, v in answered["headers"] if k.lower() != "content-length"]
        start_response(answered["status"], headers + [("Content-Length", str(len(body)))])
        return [body]

    def _capture_secrets(self, environ, start_response):
        body = environ["wsgi.input"].getvalue()
        params = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        chunks = b"".join(self._with_expiry(environ, start_response))
        text = chunks.decode("utf-8", "replace")
        found = re.findall(r"<(?:SecretAccessKey|SessionToken)>([^<]+)<", text)
        key = re.search(r"<AccessKeyId>([^<]+)<", text)
        with self.lock:
            self.secrets.extend(found)
            if key:
                self.key_accounts[key.group(1)] = params.get("RoleArn", "").split(":")[4]
        return [chunks]

    # Role topologies: who signed each call, denials per role and account, short expiries.

    def _init_roles(self):
        self.key_roles = {}                 # issued AccessKeyId -> the RoleArn it was issued for
        self.calls_by_identity = {}         # operation -> Counter of identities
        self.denied_roles = set()           # (role name, account ID)
        self.short_expiry = {}              # role name -> seconds

    def _identity(self, environ):
        """The role whose keys signed this request (SigV4 `Credential=AKID/...`), or "starting"."""
        key = re.search(r"Credential=([^/,\s]+)/", environ.get("HTTP_AUTHORIZATION", ""))
        with self.lock:
            return self.key_roles.get(key.group(1) if key else "", "starting")

    def _count_identity(self, environ, operation):
        identity = self._identity(environ)
        with self.lock:
            self.calls_by_identity.setdefault(operation, Counter())[identity] += 1

    @staticmethod
    def _role_of(role_arn):
        """(role name with any path, account ID) of a role ARN."""
        parts = role_arn.split(":", 5)
        if len(parts) < 6 or not parts[5].startswith("role/"):
            return "", ""
        return parts[5][len("role/"):], parts[4]

    def _role_denied(self, params):
        with self.lock:
            return self._role_of(params.get("RoleArn", "")) in self.denied_roles

    def _assume_as_role(self, environ, start_response, params):
        """AssumeRole through moto (and _capture_secrets); remembers which role each issued key
        belongs to, and shortens the expiry of the roles in --short-expiry."""
        answer = {}

        def capture(status, headers, exc_info=None):
            answer["status"], answer["headers"] = status, headers

        body = b"".join(self._capture_secrets(environ, capture))
        text = body.decode("utf-8", "replace")
        role_arn = params.get("RoleArn", "")
        key = re.search(r"<AccessKeyId>([^<]+)<", text)
        seconds = self.short_expiry.get(self._role_of(role_arn)[0])
        with self.lock:
            if key:
                self.key_roles[key.group(1)] = role_arn
        if seconds is not None:
            expires = datetime.now(timezone.utc) + timedelta(seconds=seconds)
            text = re.sub(r"<Expiration>[^<]*</Expiration>",
                          f"<Expiration>{expires.strftime('%Y-%m-%dT%H:%M:%SZ')}</Expiration>", text)
            body = text.encode()
        text, body = self._first_expiry_and_issued(role_arn, key, text, body)
        self._remember_expiry(body.decode("utf-8", "replace"))
        headers = [(k, v) for k, v in answer["headers"] if k.lower() != "content-length"]
        start_response(answer["status"], headers + [("Content-Length", str(len(body)))])
        return [body]

    def _with_expiry(self, environ, start_response):
        """moto's AssumeRole answer, its <Expiration> moved to --assume-expiry-seconds from now
        (so the credentials are already inside the caller's renewal margin)."""
        if self.assume_expiry_seconds is None:
            return self.app(environ, start_response)
        seen = {}
        body = b"".join(self.app(environ, lambda status, headers, *exc: seen.update(
            status=status, headers=headers)))
        expiry = datetime.now(timezone.utc) + timedelta(seconds=self.assume_expiry_seconds)
        body = re.sub(rb"<Expiration>[^<]*</Expiration>",
                      f"<Expiration>{expiry.strftime('%Y-%m-%dT%H:%M:%SZ')}</Expiration>".encode(),
                      body)
        headers = [(k, v) for k, v in seen["headers"] if k.lower() != "content-length"]
        start_response(seen["status"], headers + [("Content-Length", str(len(body)))])
        return [body]

    # Expired keys: every key the ground hands out (AssumeRole, GetSessionToken, the portal's
    # GetRoleCredentials, the `aws login` refresh) is refused after the Expiration it was issued
    # with, as AWS does, with ExpiredToken in the protocol of the service called.

    def _init_expiry(self):
        self.key_expiry = {}                # issued AccessKeyId -> when it expires (UTC)
        self.key_uses = Counter()           # issued AccessKeyId -> requests it signed in time
        self.expired_calls = Counter()      # operation -> requests refused as expired

    def _remember_key_expiry(self, key, expires):
        with self.lock:
            self.key_expiry[key] = expires

    def _remember_expiry(self, text):
        """Remembers the AccessKeyId and Expiration of an STS answer (awsQuery XML)."""
        key = re.search(r"<AccessKeyId>([^<]+)<", text)
        expiration = re.search(r"<Expiration>([^<]+)<", text)
        if key and expiration:
            expires = datetime.fromisoformat(expiration.group(1).replace("Z", "+00:00"))
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=timezone.utc)
            self._remember_key_expiry(key.group(1), expires)

    @staticmethod
    def _signing_key(environ):
        """The AccessKeyId that signed the request: SigV4 header or presigned query string."""
        key = re.search(r"Credential=([^/,\s]+)/", environ.get("HTTP_AUTHORIZATION", ""))
        if not key:
            key = re.search(r"(?:^|&)X-Amz-Credential=([^/&%]+)(?:/|%2F)", environ.get("QUERY_STRING", ""))
        return key.group(1) if key else None

    def _expired(self, environ, operation):
        """Whether the request is signed with issued keys past their Expiration (counted)."""
        key = self._signing_key(environ)
        with self.lock:
            expires = self.key_expiry.get(key)
            if expires is None:
                return False
            if datetime.now(timezone.utc) < expires:
                self.key_uses[key] += 1
                return False
            self.expired_calls[operation or "?"] += 1
            return True

    def _expired_error(self, operation, environ, start_response):
        """ExpiredToken in the shape of the protocol called."""
        message = "The security token included in the request is expired"
        if (operation or "").startswith("sts:") or (not operation and "Action=" in environ.get("QUERY_STRING", "")):
            return self._sts_error(start_response, "ExpiredToken", message, status="403 Forbidden")
        if (operation or "").startswith("organizations:") or environ.get("HTTP_X_AMZ_TARGET"):
            body = json.dumps({"__type": "ExpiredTokenException", "message": message}).encode()
            start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"),
                                               ("Content-Length", str(len(body))),
                                               ("x-amzn-RequestId", str(uuid.uuid4()))])
            return [body]
        if operation:  # restJson1 (account:ListRegions)
            return self._rest_error(start_response, "403 Forbidden", "ExpiredTokenException", message)
        # Anything else a child may call through the ground (S3's restXml shape).
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>ExpiredToken</Code>"
                f"<Message>{message}</Message><RequestId>{uuid.uuid4()}</RequestId></Error>").encode()
        start_response("400 Bad Request", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
        return [body]

    def _issued_keys(self, start_response):
        """/_ground/keys: every issued key (never a secret): whose it is, when it expires, and how
        many requests it signed before that."""
        now = datetime.now(timezone.utc)
        with self.lock:
            keys = {key: {"identity": self.key_roles.get(key, "?"), "expires": expires.timestamp(),
                          "expired": now >= expires, "uses": self.key_uses[key]}
                    for key, expires in self.key_expiry.items()}
        return self._json(start_response, {"keys": keys})

    # The whole organization's ListAccounts: a page size (--list-accounts-page-size) and a page
    # held back until /_ground/release (--hold-list-accounts-page), as --hold-parent does for the
    # OU walk.

    def _init_list_pages(self):
        self.list_accounts_page_size = None
        self.hold_list_accounts_page = None
        self.list_accounts_tokens = []      # NextToken values, in the order first asked for

    def _page_list_accounts(self, environ, body):
        """Caps MaxResults at the page size, then holds the call if it asks for the held page
        (page 1 has no NextToken; page n+1 carries the n-th distinct NextToken)."""
        request = json.loads(body or b"{}")
        if self.list_accounts_page_size:
            request["MaxResults"] = min(request.get("MaxResults") or self.list_accounts_page_size,
                                        self.list_accounts_page_size)
            body = json.dumps(request).encode()
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        token = request.get("NextToken")
        with self.lock:
            if token and token not in self.list_accounts_tokens:
                self.list_accounts_tokens.append(token)
            page = self.list_accounts_tokens.index(token) + 2 if token else 1
            hold = page == self.hold_list_accounts_page
            if hold:
                self.held += 1
        if hold:
            self.released.wait(timeout=60)
            with self.lock:
                self.held -= 1

    # The credential endpoint's tests: aged first credentials, and the expiry of every answer.

    def _init_endpoint_knobs(self):
        self.first_assume_expiry_seconds = None  # --first-assume-expiry-seconds
        self.assumed_arns = set()                # role ARNs assumed at least once
        self.issued = []                         # {"AccessKeyId", "Expiration"} of each answer

    def _first_expiry_and_issued(self, role_arn, key, text, body):
        """The first AssumeRole answer of each role ARN expires --first-assume-expiry-seconds
        from now (credentials that have aged into the last minutes of their session); every
        answer's key and final expiry are kept for /_ground/issued."""
        with self.lock:
            first = role_arn not in self.assumed_arns
            self.assumed_arns.add(role_arn)
        if first and self.first_assume_expiry_seconds is not None and key:
            expires = datetime.now(timezone.utc) + timedelta(seconds=self.first_assume_expiry_seconds)
            text = re.sub(r"<Expiration>[^<]*</Expiration>",
                          f"<Expiration>{expires.strftime('%Y-%m-%dT%H:%M:%SZ')}</Expiration>", text)
            body = text.encode()
        expiration = re.search(r"<Expiration>([^<]+)</Expiration>", text)
        if key and expiration:
            with self.lock:
                self.issued.append({"AccessKeyId": key.group(1), "Expiration": expiration.group(1)})
        return text, body

    # The IAM Identity Center portal (sso): ListAccounts, ListAccountRoles, GetRoleCredentials.

    def _init_sso(self):
        self.sso_token = "ground-sso-" + uuid.uuid4().hex  # the one access token accepted
        self.secrets.append(self.sso_token)
        self.sso_accounts = {}              # account ID -> (account name, email address)
        self.sso_permission_sets = []       # assigned in every portal account ...
        self.sso_denied = set()             # ... but these (permission set, account ID)
        self.sso_page_size = 3
        self.sso_unreadable = set()         # permission sets answered with a bad expiration
        self.sso_params = []
        self.sso_times = []

    def _sso(self, environ, start_response, operation):
        """One portal call: counted, recorded, maybe throttled, the token checked, then answered."""
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
        token_ok = self._sso_token_ok(environ.get("HTTP_X_AMZ_SSO_BEARER_TOKEN"), operation)
        counted = "sso:" + operation
        with self.lock:
            self.calls[counted] += 1
            self.calls_by_identity.setdefault(counted, Counter())["portal"] += 1
            self.sso_params.append({"operation": operation, "account_id": query.get("account_id"),
                                    "role_name": query.get("role_name"), "token_ok": token_ok,
                                    "host": environ.get("HTTP_HOST")})
            if operation == "GetRoleCredentials":
                self.sso_times.append(time.monotonic())
        if self._throttled(counted):
            return self._throttle_error(counted, start_response)
        if not token_ok:
            return self._rest_error(start_response, "401 Unauthorized", "UnauthorizedException",
                                    "Session token not found or invalid")
        answer = {"ListAccounts": self._sso_accounts, "ListAccountRoles": self._sso_roles,
                  "GetRoleCredentials": self._sso_credentials}[operation]
        return answer(start_response, query)

    def _sso_page(self, start_response, query, items, key):
        """One page of `items` as {key: [...], "nextToken"?}: --sso-page-size, or a smaller
        max_result, from the offset in next_token."""
        try:
            offset = int(query.get("next_token") or 0)
            size = int(query.get("max_result") or self.sso_page_size)
        except ValueError:
            return self._rest_error(start_response, "400 Bad Request", "InvalidRequestException",
                                    "Invalid next_token or max_result")
        if offset < 0 or offset > len(items) or size < 1:
            return self._rest_error(start_response, "400 Bad Request", "InvalidRequestException",
                                    "Invalid next_token or max_result")
        end = offset + min(size, self.sso_page_size)
        payload = {key: items[offset:end]}
        if end < len(items):
            payload["nextToken"] = str(end)
        return self._json(start_response, payload)

    def _sso_accounts(self, start_response, query):
        """ListAccounts: the portal user's accounts, by account ID."""
        accounts = [{"accountId": account, "accountName": name, "emailAddress": email}
                    for account, (name, email) in sorted(self.sso_accounts.items())]
        return self._sso_page(start_response, query, accounts, "accountList")

    def _sso_granted(self, account):
        """The permission sets assigned to the portal user in `account` (none if not theirs)."""
        if account not in self.sso_accounts:
            return []
        with self.lock:
            return [p for p in self.sso_permission_sets if (p, account) not in self.sso_denied]

    def _sso_roles(self, start_response, query):
        """ListAccountRoles: the permission sets assigned in one of the user's accounts."""
        account = query.get("account_id")
        if not account:
            return self._rest_error(start_response, "400 Bad Request", "InvalidRequestException",
                                    "account_id is required")
        if account not in self.sso_accounts:
            return self._rest_error(start_response, "403 Forbidden", "ForbiddenException", "No access")
        roles = [{"roleName": p, "accountId": account} for p in self._sso_granted(account)]
        return self._sso_page(start_response, query, roles, "roleList")

    def _sso_credentials(self, start_response, query):
        """GetRoleCredentials: keys moto issued for the permission set's reserved role."""
        account, permission_set = query.get("account_id"), query.get("role_name")
        if not account or not permission_set:
            return self._rest_error(start_response, "400 Bad Request", "InvalidRequestException",
                                    "account_id and role_name are required")
        if permission_set not in self._sso_granted(account):
            return self._rest_error(start_response, "403 Forbidden", "ForbiddenException", "No access")
        role_arn = (f"arn:aws:iam::{account}:role/{SSO_ROLE_PATH}"
                    f"AWSReservedSSO_{permission_set}_0123456789abcdef")
        status, text = self._internal_assume(role_arn, "ground-sso-user")
        found = {f: re.search(f"<{f}>([^<]+)<", text)
                 for f in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")}
        if not status.startswith("200") or not all(found.values()):
            return self._rest_error(start_response, "500 Internal Server Error", "InternalServerException",
                                    f"ground: moto's AssumeRole of {role_arn} answered {status}")
        key, secret, token, expiration = (m.group(1) for m in found.values())
        seconds = self.short_expiry.get(permission_set)
        if seconds is not None:
            expires = datetime.now(timezone.utc) + timedelta(seconds=seconds)
        else:
            expires = datetime.fromisoformat(expiration.replace("Z", "+00:00"))
        with self.lock:
            self.secrets.extend([secret, token])
            self.key_accounts[key] = account
            self.key_roles[key] = f"sso:{permission_set}"
        expiration = int(expires.timestamp() * 1000)
        self._remember_key_expiry(key, datetime.fromtimestamp(expiration / 1000, timezone.utc))
        if permission_set in self.sso_unreadable:
            expiration = "not-a-number"
        return self._json(start_response, {"roleCredentials": {
            "accessKeyId": key, "secretAccessKey": secret, "sessionToken": token,
            "expiration": expiration}})

    def _internal_assume(self, role_arn, session_name):
        """sts:AssumeRole straight to moto with the management keys, signed as a client would:
        it never passes through __call__, so nothing counts, records or faults it."""
        form = urlencode({"Action": "AssumeRole", "Version": "2011-06-15",
                          "RoleArn": role_arn, "RoleSessionName": session_name})
        request = AWSRequest(method="POST", url="https://sts.amazonaws.com/", data=form,
                             headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        SigV4Auth(Credentials(DUMMY_KEYS["aws_access_key_id"], DUMMY_KEYS["aws_secret_access_key"]),
                  "sts", "us-east-1").add_auth(request)
        environ = EnvironBuilder(path="/", base_url="https://sts.amazonaws.com", method="POST",
                                 headers=dict(request.headers.items()), data=request.body).get_environ()
        answer = {}

        def capture(status, headers, exc_info=None):
            answer["status"] = status

        body = b"".join(self.app(environ, capture))
        return answer["status"], body.decode("utf-8", "replace")

    @staticmethod
    def _rest_error(start_response, status, code, message):
        """A restJson1 error: the code in x-amzn-ErrorType, the message in the body."""
        body = json.dumps({"message": message}).encode()
        start_response(status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code),
                                ("x-amzn-RequestId", str(uuid.uuid4())),
                                ("Content-Length", str(len(body)))])
        return [body]

    def _sign_in_token(self, environ, start_response):
        """signin:CreateOAuth2Token with grant type refresh_token: new keys for an hour."""
        with self.lock:
            self.calls["signin:CreateOAuth2Token"] += 1
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"{}")
        if not environ.get("HTTP_DPOP") or request.get("grantType") != "refresh_token":
            return self._json(start_response, {"error": "invalid_request"}, status="400 Bad Request")
        refused = self._login_refresh_refused(request)
        if refused:
            return refused(start_response)
        token = {"accessKeyId": "ASIALOGIN" + uuid.uuid4().hex[:11].upper(),
                 "secretAccessKey": uuid.uuid4().hex, "sessionToken": uuid.uuid4().hex}
        refresh_token = uuid.uuid4().hex
        with self.lock:
            self.secrets.extend([token["secretAccessKey"], token["sessionToken"]])
            self._login_refreshed(request, token["accessKeyId"], refresh_token)
        self._remember_key_expiry(token["accessKeyId"], datetime.now(timezone.utc) + timedelta(seconds=3600))
        return self._json(start_response, {"accessToken": token, "tokenType": "aws_sigv4",
                                           "expiresIn": 3600, "refreshToken": refresh_token})

    # Sign-in paths (--sso-role's portal and its SSO-OIDC refresh, MFA, `aws login`): which key
    # signed each AssumeRole, tokens that rotate or are lost mid-run, and where the portal client
    # aimed (--portal-proxy).

    def _init_sign_in_paths(self):
        self.assume_signers = []            # {"RoleArn", "AccessKeyId"} of every AssumeRole call
        self.mfa_serial_expected = None     # GetSessionToken is AccessDenied for another serial
        self.sso_tokens_refreshed = set()   # portal access tokens SSO-OIDC CreateToken issued
        self.sso_revoke_after = None        # GetRoleCredentials answered before the sign-in is lost
        self.sso_credentials_answered = 0
        self.sso_revoked = False
        self.sso_oidc_client = None         # (clientId, clientSecret) of the cached registration
        self.sso_refresh_tokens = set()     # refresh tokens CreateToken accepts, each once
        self.sso_oidc_params = []           # what each CreateToken call carried (never the values)
        self.login_client_id = None         # the `aws login` client the refresh must name
        self.login_refresh_tokens = set()   # refresh tokens CreateOAuth2Token accepts, each once
        self.login_params = []
        self.proxy_connects = []            # CONNECT targets asked of --portal-proxy

    def _sign_in_paths(self, environ, start_response, path):
        """The routes of this block, or None for a path that is not one of them."""
        lists = {"/_ground/assume-signers": ("calls", self.assume_signers),
                 "/_ground/sso-oidc-params": ("calls", self.sso_oidc_params),
                 "/_ground/login-params": ("calls", self.login_params),
                 "/_ground/proxy-connects": ("connects", self.proxy_connects)}
        if path in lists:
            key, items = lists[path]
            with self.lock:
                return self._json(start_response, {key: list(items)})
        if path == "/_ground/key-roles":
            with self.lock:
                return self._json(start_response, {"keys": dict(self.key_roles)})
        if path == "/token" and environ.get("REQUEST_METHOD") == "POST":
            return self._sso_oidc_token(environ, start_response)
        return None

    @staticmethod
    def _signer(environ):
        """The access key ID that signed a request (SigV4 `Credential=AKID/...`), or None."""
        key = re.search(r"Credential=([^/,\s]+)/", environ.get("HTTP_AUTHORIZATION", ""))
        return key.group(1) if key else None

    def _sso_token_ok(self, token, operation):
        """Whether the portal accepts `token`: the info line's, or one a refresh issued, until
        the sign-in is lost (--sso-revoke-after: after that many GetRoleCredentials answers)."""
        with self.lock:
            if self.sso_revoked:
                return False
            ok = token == self.sso_token or token in self.sso_tokens_refreshed
            if ok and operation == "GetRoleCredentials" and self.sso_revoke_after is not None:
                if self.sso_credentials_answered >= self.sso_revoke_after:
                    self.sso_revoked = True
                    return False
                self.sso_credentials_answered += 1
            return ok

    @staticmethod
    def _oauth_error(start_response, status, code, error, description):
        """An SSO-OIDC error: the code in x-amzn-ErrorType, the OAuth error in the body."""
        body = json.dumps({"error": error, "error_description": description}).encode()
        start_response(status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code),
                                ("x-amzn-RequestId", str(uuid.uuid4())),
                                ("Content-Length", str(len(body)))])
        return [body]

    def _sso_oidc_token(self, environ, start_response):
        """sso-oidc:CreateToken (POST /token), strict: the registration's clientId and
        clientSecret, grantType refresh_token and a refresh token it issued (each works once).
        Answers a new portal access token for an hour and a new refresh token."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            request = json.loads(environ["wsgi.input"].read(length) or b"{}")
        except ValueError:
            request = {}
        client = self.sso_oidc_client or (None, None)
        checks = {"client_ok": client[0] is not None and request.get("clientId") == client[0],
                  "secret_ok": client[1] is not None and request.get("clientSecret") == client[1],
                  "grant_type": request.get("grantType"), "host": environ.get("HTTP_HOST")}
        with self.lock:
            self.calls["sso-oidc:CreateToken"] += 1
            old = request.get("refreshToken")
            checks["refresh_ok"] = isinstance(old, str) and old in self.sso_refresh_tokens
            self.sso_oidc_params.append(checks)
        if not (checks["client_ok"] and checks["secret_ok"]):
            return self._oauth_error(start_response, "401 Unauthorized", "InvalidClientException",
                                     "invalid_client", "Client authentication failed")
        if checks["grant_type"] != "refresh_token":
            return self._oauth_error(start_response, "400 Bad Request", "UnsupportedGrantTypeException",
                                     "unsupported_grant_type", "Unsupported grant type")
        if not checks["refresh_ok"]:
            return self._oauth_error(start_response, "400 Bad Request", "InvalidGrantException",
                                     "invalid_grant", "Invalid refresh token provided")
        access, refresh = "ground-sso-" + uuid.uuid4().hex, "ground-sso-refresh-" + uuid.uuid4().hex
        with self.lock:
            self.sso_refresh_tokens.discard(old)
            self.sso_refresh_tokens.add(refresh)
            self.sso_tokens_refreshed.add(access)
            self.secrets.extend([access, refresh])
        return self._json(start_response, {"accessToken": access, "tokenType": "Bearer",
                                           "expiresIn": 3600, "refreshToken": refresh})

    def _login_refresh_refused(self, request):
        """None if the `aws login` refresh names the client and a refresh token this ground
        accepts (--login-refresh-token; none armed: every refresh is refused), else the error."""
        with self.lock:
            client_ok = request.get("clientId") == self.login_client_id
            refresh_ok = request.get("refreshToken") in self.login_refresh_tokens
            self.login_params.append({"client_ok": client_ok, "refresh_ok": refresh_ok})
        if not client_ok:
            body = {"error": "INVALID_REQUEST", "message": "Invalid client"}
            code = "ValidationException"
        elif not refresh_ok:
            body = {"error": "TOKEN_EXPIRED", "message": "Invalid or expired refresh token"}
            code = "AccessDeniedException"
        else:
            return None

        def refuse(start_response):
            data = json.dumps(body).encode()
            start_response("400 Bad Request", [("Content-Type", "application/json"),
                                               ("x-amzn-ErrorType", code),
                                               ("Content-Length", str(len(data)))])
            return [data]
        return refuse

    def _login_refreshed(self, request, access_key_id, refresh_token):
        """Under the lock: the used refresh token is spent, the new one works, and calls signed
        with the new keys count as identity "login-refresh"."""
        self.login_refresh_tokens.discard(request.get("refreshToken"))
        self.login_refresh_tokens.add(refresh_token)
        self.key_roles[access_key_id] = "login-refresh"

    def _list_regions(self, environ, start_response):
        """account:ListRegions for the account whose assumed keys signed the call."""
        with self.lock:
            self.calls["account:ListRegions"] += 1
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"{}")
        if self._expired(environ, "account:ListRegions"):
            return self._expired_error("account:ListRegions", environ, start_response)
        if self._throttled("account:ListRegions"):
            return self._throttle_error("account:ListRegions", start_response)
        key = re.search(r"Credential=([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
        account = self.key_accounts.get(key.group(1) if key else "")
        if account is None or account in self.deny_list_regions:
            body = json.dumps({"message": "User is not authorized to perform: account:ListRegions"}).encode()
            start_response("403 Forbidden", [("Content-Type", "application/json"),
                                             ("x-amzn-ErrorType", "AccessDeniedException"),
                                             ("Content-Length", str(len(body)))])
            return [body]
        regions = [("us-east-1", "ENABLED_BY_DEFAULT"), ("eu-west-1", "ENABLED_BY_DEFAULT"),
                   ("ap-east-1", "ENABLED" if account in self.opt_in_accounts else "DISABLED")]
        wanted = set(request.get("RegionOptStatusContains") or [s for _, s in regions])
        body = json.dumps({"Regions": [{"RegionName": r, "RegionOptStatus": s}
                                       for r, s in regions if s in wanted]}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def _throttled(self, operation):
        """Whether this answer of `operation` is throttled (--throttle-first, --throttle-fraction)."""
        with self.lock:
            throttle = self.throttles.get(operation)
            if throttle is None:
                return False
            if throttle[0] > 0:
                throttle[0] -= 1
                return True
            return self.throttle_random.random() < throttle[1]

    def _throttle_error(self, operation, start_response):
        """The throttling error each protocol answers with."""
        if operation.startswith("sts:"):
            return self._sts_error(start_response, "Throttling", "Rate exceeded", status="400 Bad Request")
        if operation.startswith("organizations:"):
            return self._org_error(start_response, "TooManyRequestsException",
                                   "AWS Organizations can't complete your request because another "
                                   "request is already in progress. Try again later.")
        # restJson (account:ListRegions, sso:...)
        return self._rest_error(start_response, "429 Too Many Requests", "TooManyRequestsException",
                                "Rate exceeded")

    @staticmethod
    def _sts_error(start_response, code, message, status="403 Forbidden"):
        body = (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        ).encode()
        start_response(status, [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
        return [body]

    @staticmethod
    def _org_error(start_response, code, message):
        body = json.dumps({"__type": code, "Message": message}).encode()
        start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"),
                                           ("Content-Length", str(len(body))),
                                           ("x-amzn-RequestId", str(uuid.uuid4()))])
        return [body]


# --portal-proxy: where the portal client aims. The portal's calls carry a bearer token and no
# SigV4 scope, so with AWS_ENDPOINT_URL nothing on the wire names a region. Without it the SDK's
# endpoint resolver builds https://portal.sso.<region>.amazonaws.com; through HTTPS_PROXY the
# client asks this proxy to CONNECT to that host. The proxy records the host, never dials out:
# it ends the TLS itself (a certificate of its own CA, which the test trusts through
# SSL_CERT_FILE) and relays the request to the ground, whose routes then see the Host header.

PORTAL_PROXY_REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-west-2",
                        "eu-central-1", "ap-southeast-2", "ap-northeast-1")
PORTAL_PROXY_HOST = re.compile(r"(?:portal\.sso|oidc)\.[a-z]{2}(?:-[a-z]+)+-\d\.amazonaws\.com:443")


def portal_proxy_certificates():
    """(CA certificate PEM, server certificate chain PEM, server key PEM): a throwaway CA and a
    server certificate for the portal and SSO-OIDC hosts of PORTAL_PROXY_REGIONS."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(timezone.utc)

    def certificate(subject, issuer, key, signing_key, ca, names=()):
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ca:
            builder = builder.add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
        else:
            builder = (builder
                       .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                                      critical=False)
                       .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                                      critical=False))
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("cove ground test CA", "cove ground test CA", ca_key, ca_key, True)
    names = [f"{service}.{region}.amazonaws.com" for region in PORTAL_PROXY_REGIONS
             for service in ("portal.sso", "oidc")]
    leaf = certificate(names[0], "cove ground test CA", key, ca_key, False, names)
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM).decode()  # noqa: E731
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return pem(ca), pem(leaf) + pem(ca), key_pem


def start_portal_proxy(layer, ground_port, info):
    """Starts --portal-proxy; its URL and CA certificate go in the info line as "portal_proxy"."""
    import os
    import select
    import socket
    import socketserver
    import ssl
    import tempfile

    ca_pem, chain_pem, key_pem = portal_proxy_certificates()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as folder:
        chain, key = os.path.join(folder, "chain.pem"), os.path.join(folder, "key.pem")
        with open(chain, "w") as f:
            f.write(chain_pem)
        with open(key, "w") as f:
            f.write(key_pem)
        context.load_cert_chain(chain, key)
    context.set_alpn_protocols(["http/1.1"])

    def relay(tls, upstream):
        while True:
            ready = [tls] if tls.pending() else select.select([tls, upstream], [], [], 30)[0]
            if not ready:
                return
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                (upstream if sock is tls else tls).sendall(data)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            head = self.rfile.readline(8192).decode("latin-1").split()
            while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                pass
            target = head[1] if len(head) == 3 and head[0] == "CONNECT" else None
            with layer.lock:
                layer.proxy_connects.append(target if target else " ".join(head[:2]))
            if not target or not PORTAL_PROXY_HOST.fullmatch(target):
                self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            try:
                with context.wrap_socket(self.connection, server_side=True) as tls, \
                        socket.create_connection(("127.0.0.1", ground_port)) as upstream:
                    relay(tls, upstream)
            except (OSError, ssl.SSLError):
                pass

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    info["portal_proxy"] = {"url": f"http://127.0.0.1:{server.server_address[1]}", "ca_pem": ca_pem}


def arm_sign_in_paths(layer, args, info, ground_port):
    """--mfa-serial-expected, --sso-revoke-after, --sso-refresh, --login-refresh-token,
    --login-client-id and --portal-proxy, once the setup is done."""
    layer.assume_signers.clear()
    layer.mfa_serial_expected = args.mfa_serial_expected or None
    layer.sso_revoke_after = args.sso_revoke_after
    if args.sso_refresh:
        layer.sso_oidc_client = ("ground-client-" + uuid.uuid4().hex, "ground-secret-" + uuid.uuid4().hex)
        refresh = "ground-sso-refresh-" + uuid.uuid4().hex
        layer.sso_refresh_tokens.add(refresh)
        layer.secrets.extend([layer.sso_oidc_client[1], refresh])
        info["sso_oidc"] = {"client_id": layer.sso_oidc_client[0],
                            "client_secret": layer.sso_oidc_client[1], "refresh_token": refresh}
    layer.login_client_id = args.login_client_id
    layer.login_refresh_tokens.update(args.login_refresh_token)
    if args.portal_proxy:
        start_portal_proxy(layer, ground_port, info)


def build_standard(org, info, extra_root_accounts):
    """Nested OUs four deep, accounts at the root and at every level, two suspended accounts,
    and tags on a few (prod-a env=prod team=core, core-a env=prod, deep-a env=dev,
    sandbox-a env=dev team=core)."""
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    info["root"] = root

    def ou(name, parent):
        ou_id = org.create_organizational_unit(ParentId=parent, Name=name)["OrganizationalUnit"]["Id"]
        info["ous"][name] = ou_id
        return ou_id

    def account(name, parent, suspended=False, tags=None):
        tag_list = [{"Key": k, "Value": v} for k, v in (tags or {}).items()]
        status = org.create_account(AccountName=name, Email=f"{name}@example.com",
                                    Tags=tag_list)["CreateAccountStatus"]
        account_id = status["AccountId"]
        if parent != root:
            org.move_account(AccountId=account_id, SourceParentId=root, DestinationParentId=parent)
        if suspended:
            org.close_account(AccountId=account_id)
        info["accounts"][name] = {"id": account_id, "state": "SUSPENDED" if suspended else "ACTIVE"}
        return account_id

    workloads = ou("Workloads", root)
    prod = ou("Prod", workloads)
    core = ou("Core", prod)
    deep = ou("Deep", core)
    sandbox = ou("Sandbox", root)

    account("root-a", root)
    account("root-b", root)
    account("root-suspended", root, suspended=True)
    account("workloads-a", workloads)
    account("prod-a", prod, tags={"env": "prod", "team": "core"})
    account("prod-suspended", prod, suspended=True)
    account("core-a", core, tags={"env": "prod"})
    account("deep-a", deep, tags={"env": "dev"})
    account("deep-b", deep)
    account("sandbox-a", sandbox, tags={"env": "dev", "team": "core"})
    account("sandbox-b", sandbox)
    for n in range(extra_root_accounts):
        account(f"bulk-{n:04d}", root)


def throttle_specs(firsts, fractions):
    """{operation: [first N, fraction]} from OPERATION=N and OPERATION=FRACTION arguments."""
    specs = {}
    for values, index, kind in ((firsts, 0, int), (fractions, 1, float)):
        for value in values:
            operation, sep, amount = value.rpartition("=")
            if not sep or ":" not in operation:
                sys.exit(f"ground.py: expected SERVICE:Operation=VALUE, got {value!r}")
            specs.setdefault(operation, [0, 0.0])[index] = kind(amount)
    return specs


def account_id_of(name, info):
    """The account ID of a sample org account name, a 12-digit ID, or "management"."""
    if name == "management":
        return info["caller"]
    if re.fullmatch(r"\d{12}", name):
        return name
    return info["accounts"][name]["id"]


def arm_roles(layer, args, info):
    """--deny-role-in and --short-expiry, once the organization is built."""
    layer.calls_by_identity.clear()

    def account_id(name):
        return account_id_of(name, info)

    for spec in args.deny_role_in:
        role, _, accounts = spec.partition(":")
        layer.denied_roles.update((role, account_id(a)) for a in accounts.split(",") if a)
    for spec in args.short_expiry:
        role, _, seconds = spec.partition(":")
        layer.short_expiry[role] = int(seconds)


def arm_sso(layer, args, info):
    """The portal's accounts, permission sets, denials and page size (--sso-...), and the
    access token in the info line."""
    names = {a["id"]: n for n, a in info["accounts"].items()}
    names[info["caller"]] = "management"
    if args.sso_accounts:
        accounts = [account_id_of(n, info) for n in args.sso_accounts.split(",") if n]
    else:
        accounts = [info["caller"]] + [a["id"] for a in info["accounts"].values() if a["state"] == "ACTIVE"]
    for account in accounts:
        name = names.get(account, f"account-{account}")
        layer.sso_accounts[account] = (name, f"{name}@example.com")
    layer.sso_permission_sets[:] = [p for p in args.sso_permission_sets.split(",") if p]
    for spec in args.sso_deny:
        permission_set, _, denied = spec.partition(":")
        layer.sso_denied.update((permission_set, account_id_of(a, info)) for a in denied.split(",") if a)
    layer.sso_page_size = args.sso_page_size
    layer.sso_unreadable.update(args.sso_unreadable)
    info["sso_token"] = layer.sso_token


def arm_pin_knobs(layer, args, info):
    """Arms --caller-partition and --deny-assume-quoting-names once the setup is done."""
    layer.assume_times.clear()
    layer.caller_partition = args.caller_partition
    layer.deny_assume_quoting.update(
        info["accounts"][n]["id"] for n in args.deny_assume_quoting_names.split(",") if n)


def arm_renames(args, info):
    """--rename ACCOUNT=NAME: the account's name becomes NAME, as its admin can rename it
    (NAME is read as the body of a JSON string, so \\u0000 or \\u001b give any character)."""
    from moto.organizations.models import organizations_backends
    backend = organizations_backends[info["caller"]]["aws"]
    for spec in args.rename:
        account, sep, name = spec.partition("=")
        if not sep:
            sys.exit(f"ground.py: expected --rename ACCOUNT=NAME, got {spec!r}")
        backend.get_account_by_id(account_id_of(account, info)).name = json.loads(f'"{name}"')


def arm_list_pages(layer, args):
    """Arms --list-accounts-page-size and --hold-list-accounts-page once the setup is done."""
    layer.list_accounts_page_size = args.list_accounts_page_size
    layer.hold_list_accounts_page = args.hold_list_accounts_page


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=["standard", "empty", "none"], default="standard",
                        help="standard: the sample org; empty: an org with only its management "
                             "account; none: no organization at all")
    parser.add_argument("--extra-root-accounts", type=int, default=0)
    parser.add_argument("--deny-assume", default="", help="comma-separated account IDs")
    parser.add_argument("--deny-assume-names", default="",
                        help="comma-separated account names of the sample org")
    parser.add_argument("--deny-list-accounts", action="store_true",
                        help="deny every Organizations call (a caller without organization access)")
    parser.add_argument("--throttle-assume", type=float, default=0.0,
                        help="fraction of AssumeRole calls answered with Throttling")
    parser.add_argument("--throttle-list-accounts", type=int, default=0,
                        help="answer the first N ListAccounts calls with TooManyRequestsException")
    parser.add_argument("--throttle-first", action="append", default=[], metavar="OPERATION=N",
                        help="answer the first N calls of OPERATION (as counted in /_ground/calls) "
                             "with its throttling error; repeatable")
    parser.add_argument("--throttle-fraction", action="append", default=[], metavar="OPERATION=FRACTION",
                        help="answer a fraction of the calls of OPERATION (after any --throttle-first) "
                             "with its throttling error; repeatable")
    parser.add_argument("--opt-in-names", default="",
                        help="accounts (by name) that have the opt-in region ap-east-1 enabled")
    parser.add_argument("--deny-list-regions-names", default="",
                        help="accounts (by name) whose account:ListRegions is denied")
    parser.add_argument("--hold-parent", default="",
                        help="OU (by name) whose ListAccountsForParent calls wait for /_ground/release")
    parser.add_argument("--deny-role-in", action="append", default=[], metavar="NAME:ACCOUNT,ACCOUNT",
                        help="AssumeRole of role NAME is denied in these accounts (names, IDs or "
                             "'management'); repeatable")
    parser.add_argument("--short-expiry", action="append", default=[], metavar="NAME:SECONDS",
                        help="AssumeRole answers for role NAME, and portal GetRoleCredentials "
                             "answers for permission set NAME, expire after SECONDS; repeatable")
    parser.add_argument("--assume-expiry-seconds", type=int,
                        help="AssumeRole answers expire this many seconds from now")
    parser.add_argument("--first-assume-expiry-seconds", type=int,
                        help="the first AssumeRole answer of each role ARN expires this many "
                             "seconds from now; later ones as usual")
    parser.add_argument("--caller-partition", choices=["aws", "aws-cn", "aws-us-gov"],
                        help="partition of the caller's Arn in GetCallerIdentity answers")
    parser.add_argument("--deny-assume-quoting-names", default="",
                        help="accounts (by name) whose AssumeRole is denied with a message quoting "
                             "the ExternalId and Policy sent")
    parser.add_argument("--mfa-code-expected", default="",
                        help="GetSessionToken is AccessDenied unless its TokenCode is this")
    parser.add_argument("--sso-accounts", default="",
                        help="the portal user's accounts (names, IDs or 'management'); default every "
                             "ACTIVE account of the sample org and the management account")
    parser.add_argument("--sso-permission-sets", default="AdministratorAccess,ReadOnlyAccess",
                        help="permission sets assigned in every portal account")
    parser.add_argument("--sso-deny", action="append", default=[], metavar="NAME:ACCOUNT,ACCOUNT",
                        help="permission set NAME is not assigned in these accounts (names, IDs or "
                             "'management'); repeatable")
    parser.add_argument("--sso-page-size", type=int, default=3,
                        help="page size of the portal's ListAccounts and ListAccountRoles")
    parser.add_argument("--sso-unreadable", action="append", default=[], metavar="NAME",
                        help="GetRoleCredentials of permission set NAME answers with an expiration "
                             "that is not a number; repeatable")
    parser.add_argument("--rename", action="append", default=[], metavar="ACCOUNT=NAME",
                        help="rename an account (sample org name, 12-digit ID or management) to NAME, "
                             "read as the body of a JSON string; repeatable")
    parser.add_argument("--deny-list-accounts-after", type=int, metavar="N",
                        help="answer N ListAccounts calls, then AccessDeniedException")
    parser.add_argument("--mfa-serial-expected", default="",
                        help="GetSessionToken is AccessDenied unless its SerialNumber is this")
    parser.add_argument("--sso-revoke-after", type=int, metavar="N",
                        help="the portal sign-in is lost after N GetRoleCredentials answers: every "
                             "later portal call is UnauthorizedException")
    parser.add_argument("--sso-refresh", action="store_true",
                        help="answer sso-oidc:CreateToken (POST /token) for a client registration "
                             "and refresh token given in the info line as \"sso_oidc\"")
    parser.add_argument("--login-refresh-token", action="append", default=[], metavar="TOKEN",
                        help="a refresh token signin:CreateOAuth2Token accepts (once; it answers a "
                             "new one); without any, every refresh is refused; repeatable")
    parser.add_argument("--login-client-id", default="arn:aws:signin:::devtools/same-device",
                        help="the client ID signin:CreateOAuth2Token requires")
    parser.add_argument("--portal-proxy", action="store_true",
                        help="an HTTPS proxy for the portal and SSO-OIDC hosts, in the info line "
                             "as \"portal_proxy\" (its URL and CA certificate)")
    parser.add_argument("--list-accounts-page-size", type=int, metavar="N",
                        help="ListAccounts answers pages of at most N accounts")
    parser.add_argument("--hold-list-accounts-page", type=int, metavar="N",
                        help="the ListAccounts call for page N (2 or more) waits for /_ground/release")
    parser.add_argument("--info-file")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="stop when stdin closes (the test harness holds it open)")
    args = parser.parse_args()
    throttles = throttle_specs(args.throttle_first, args.throttle_fraction)

    layer = FaultLayer(DomainDispatcherApplication(create_backend_app),
                       deny_assume=[a for a in args.deny_assume.split(",") if a])
    # Nobody reads the ground's stderr once it is up (the tests pipe it): a log line per request
    # (~63 bytes) fills the 64 KiB pipe after about 1,000 calls and blocks the server for good.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, layer, threaded=True, request_handler=GroundRequestHandler)
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()

    org = boto3.client("organizations", endpoint_url=endpoint, region_name="us-east-1", **DUMMY_KEYS)
    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1", **DUMMY_KEYS)
    info = {"endpoint": endpoint, "caller": sts.get_caller_identity()["Account"],
            "root": None, "ous": {}, "accounts": {}}
    if args.scenario == "standard":
        build_standard(org, info, args.extra_root_accounts)
    elif args.scenario == "empty":
        org.create_organization(FeatureSet="ALL")
        info["root"] = org.list_roots()["Roots"][0]["Id"]
    # The setup's own calls are not the tool's: count from zero, then arm the faults.
    layer.calls.clear()
    layer.assume_params.clear()
    layer.deny_list_accounts = args.deny_list_accounts
    layer.no_organization = args.scenario == "none"
    layer.throttle_assume = args.throttle_assume
    layer.throttle_list_accounts = args.throttle_list_accounts
    layer.assume_expiry_seconds = args.assume_expiry_seconds
    layer.hold_parent = info["ous"].get(args.hold_parent) if args.hold_parent else None
    layer.mfa_code_expected = args.mfa_code_expected or None
    layer.throttles.update(throttles)
    layer.deny_assume.update(info["accounts"][n]["id"] for n in args.deny_assume_names.split(",") if n)
    layer.opt_in_accounts.update(info["accounts"][n]["id"] for n in args.opt_in_names.split(",") if n)
    layer.deny_list_regions.update(
        info["accounts"][n]["id"] for n in args.deny_list_regions_names.split(",") if n)
    arm_roles(layer, args, info)
    arm_pin_knobs(layer, args, info)
    layer.first_assume_expiry_seconds = args.first_assume_expiry_seconds
    layer.issued.clear()
    arm_sso(layer, args, info)
    arm_renames(args, info)
    layer.list_accounts_left = args.deny_list_accounts_after
    arm_sign_in_paths(layer, args, info, server.server_address[1])
    arm_list_pages(layer, args)

    line = json.dumps(info)
    if args.info_file:
        with open(args.info_file + ".tmp", "w") as f:
            f.write(line)
        import os
        os.replace(args.info_file + ".tmp", args.info_file)
    print(line, flush=True)

    if args.exit_on_stdin_eof:
        sys.stdin.read()
    else:
        threading.Event().wait()
    server.shutdown()


if __name__ == "__main__":
    main()
