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
    /_ground/held     {"held": N}   ListAccountsForParent calls waiting (--hold-parent)
    /_ground/release  lets every held call through, and every later one
    /_ground/sso-params {"calls": [{"operation": "GetRoleCredentials", "account_id": "...",
                                    "role_name": "...", "token_ok": true}, ...]}
                      every portal call (ListAccounts, ListAccountRoles, GetRoleCredentials),
                      throttled ones included; never the token itself
    /_ground/sso-times  {"times": [...]}   when each GetRoleCredentials call arrived (monotonic
                      seconds), throttled ones included
    /_ground/issued     {"issued": [{"AccessKeyId": "...", "Expiration": "..."}, ...]}   the key
                      and the final expiry of every AssumeRole answer

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

--caller-partition rewrites the partition of the Arn in GetCallerIdentity answers to calls signed
with the starting dummy keys (the caller's own identity); children's assumed keys are left alone.
--deny-assume-quoting-names answers AssumeRole for those accounts with AccessDenied whose message
quotes the ExternalId and Policy it received, as some AWS errors quote request parameters.
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

DUMMY_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

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
        if path == "/_ground/issued":
            with self.lock:
                return self._json(start_response, {"issued": list(self.issued)})

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
        if operation and self._throttled(operation):
            return self._throttle_error(operation, start_response)

        if operation == "sts:GetSessionToken":
            return self._session_token(environ, start_response, params)
        if operation == "sts:AssumeRole":
            with self.lock:
                self.assume_params.append(params)
                self.assume_times.append(time.monotonic())
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
        if operation == "sts:GetCallerIdentity" and self.caller_partition:
            return self._caller_in_partition(environ, start_response)
        return self.app(environ, start_response)

    def _session_token(self, environ, start_response, params):
        """sts:GetSessionToken: checks the MFA code against --mfa-code-expected, records the
        parameters, and remembers the issued keys (as identity "mfa-session") and secrets."""
        with self.lock:
            self.session_params.append(params)
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
        token_ok = environ.get("HTTP_X_AMZ_SSO_BEARER_TOKEN") == self.sso_token
        counted = "sso:" + operation
        with self.lock:
            self.calls[counted] += 1
            self.calls_by_identity.setdefault(counted, Counter())["portal"] += 1
            self.sso_params.append({"operation": operation, "account_id": query.get("account_id"),
                                    "role_name": query.get("role_name"), "token_ok": token_ok})
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
        token = {"accessKeyId": "ASIALOGIN" + uuid.uuid4().hex[:11].upper(),
                 "secretAccessKey": uuid.uuid4().hex, "sessionToken": uuid.uuid4().hex}
        with self.lock:
            self.secrets.extend([token["secretAccessKey"], token["sessionToken"]])
        return self._json(start_response, {"accessToken": token, "tokenType": "aws_sigv4",
                                           "expiresIn": 3600, "refreshToken": uuid.uuid4().hex})

    def _list_regions(self, environ, start_response):
        """account:ListRegions for the account whose assumed keys signed the call."""
        with self.lock:
            self.calls["account:ListRegions"] += 1
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"{}")
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
