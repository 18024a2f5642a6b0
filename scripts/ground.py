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
              [--opt-in-names NAME,NAME] [--deny-list-regions-names NAME,NAME]
              [--caller-partition aws|aws-cn|aws-us-gov] [--deny-assume-quoting-names NAME,NAME]
              [--info-file PATH] [--exit-on-stdin-eof]

Once ready it prints one JSON line (also written to --info-file):
    {"endpoint": "http://127.0.0.1:PORT", "caller": "...", "root": "r-...",
     "ous": {"Workloads": "ou-..."}, "accounts": {"prod-a": {"id": "...", "state": "ACTIVE"}}}

Control endpoints (plain HTTP GET on the same port):
    /_ground/calls    {"sts:AssumeRole": 12, "organizations:ListAccounts": 2, ...}
    /_ground/secrets  {"secrets": [...]}   every SecretAccessKey and SessionToken moto issued
    /_ground/assume-params  {"calls": [{...}]}   the form parameters of every AssumeRole call
    /_ground/assume-times   {"times": [...]}   when each AssumeRole call arrived (monotonic seconds)
    /_ground/clear-faults   lifts every denial and throttle from now on

account:ListRegions (POST /listRegions), which moto lacks, is answered here: every account has
us-east-1 and eu-west-1 (ENABLED_BY_DEFAULT), and ap-east-1 is ENABLED for --opt-in-names.

--caller-partition rewrites the partition of the Arn in GetCallerIdentity answers to calls signed
with the starting dummy keys (the caller's own identity); children's assumed keys are left alone.
--deny-assume-quoting-names answers AssumeRole for those accounts with AccessDenied whose message
quotes the ExternalId and Policy it received, as some AWS errors quote request parameters.
"""

import argparse
import io
import json
import random
import re
import sys
import threading
import time
import uuid
from xml.sax.saxutils import escape as xml_escape
from collections import Counter
from urllib.parse import parse_qs

import boto3
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

DUMMY_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


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
        # account:ListRegions, which moto does not implement: answered here.
        self.key_accounts = {}
        self.opt_in_accounts = set()
        self.deny_list_regions = set()
        self.calls = Counter()
        self.secrets = []
        self.assume_params = []
        self.lock = threading.Lock()
        self._init_pin_knobs()

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
                return self._json(start_response, {"cleared": True})
        if path == "/_ground/assume-params":
            with self.lock:
                return self._json(start_response, {"calls": list(self.assume_params)})
        if path == "/_ground/assume-times":
            with self.lock:
                return self._json(start_response, {"times": list(self.assume_times)})
        if path == "/_ground/secrets":
            with self.lock:
                return self._json(start_response, {"secrets": list(self.secrets)})

        if path == "/listRegions":
            return self._list_regions(environ, start_response)

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
            return self._capture_secrets(environ, start_response)
        if operation and operation.startswith("organizations:") and self.no_organization:
            # What AWS answers a standalone account (moto answers an empty list instead).
            return self._org_error(start_response, "AWSOrganizationsNotInUseException",
                                   "Your account is not a member of an organization.")
        if operation == "organizations:ListAccounts":
            with self.lock:
                throttled = self.throttle_list_accounts > 0
                self.throttle_list_accounts -= throttled
            if throttled:
                return self._org_error(start_response, "TooManyRequestsException",
                                       "AWS Organizations can't complete your request because another "
                                       "request is already in progress. Try again later.")
        if operation == "organizations:ListAccounts" and self.deny_list_accounts:
            return self._org_error(start_response, "AccessDeniedException",
                                   "You don't have permissions to access this resource.")
        if operation == "sts:GetCallerIdentity" and self.caller_partition:
            return self._caller_in_partition(environ, start_response)
        return self.app(environ, start_response)

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
        chunks = b"".join(self.app(environ, start_response))
        text = chunks.decode("utf-8", "replace")
        found = re.findall(r"<(?:SecretAccessKey|SessionToken)>([^<]+)<", text)
        key = re.search(r"<AccessKeyId>([^<]+)<", text)
        with self.lock:
            self.secrets.extend(found)
            if key:
                self.key_accounts[key.group(1)] = params.get("RoleArn", "").split(":")[4]
        return [chunks]

    def _list_regions(self, environ, start_response):
        """account:ListRegions for the account whose assumed keys signed the call."""
        with self.lock:
            self.calls["account:ListRegions"] += 1
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"{}")
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
    parser.add_argument("--deny-list-accounts", action="store_true")
    parser.add_argument("--throttle-assume", type=float, default=0.0,
                        help="fraction of AssumeRole calls answered with Throttling")
    parser.add_argument("--throttle-list-accounts", type=int, default=0,
                        help="answer the first N ListAccounts calls with TooManyRequestsException")
    parser.add_argument("--opt-in-names", default="",
                        help="accounts (by name) that have the opt-in region ap-east-1 enabled")
    parser.add_argument("--deny-list-regions-names", default="",
                        help="accounts (by name) whose account:ListRegions is denied")
    parser.add_argument("--caller-partition", choices=["aws", "aws-cn", "aws-us-gov"],
                        help="partition of the caller's Arn in GetCallerIdentity answers")
    parser.add_argument("--deny-assume-quoting-names", default="",
                        help="accounts (by name) whose AssumeRole is denied with a message quoting "
                             "the ExternalId and Policy sent")
    parser.add_argument("--info-file")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="stop when stdin closes (the test harness holds it open)")
    args = parser.parse_args()

    layer = FaultLayer(DomainDispatcherApplication(create_backend_app),
                       deny_assume=[a for a in args.deny_assume.split(",") if a])
    server = make_server("127.0.0.1", 0, layer, threaded=True, request_handler=MotoRequestHandler)
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
    layer.deny_assume.update(info["accounts"][n]["id"] for n in args.deny_assume_names.split(",") if n)
    layer.opt_in_accounts.update(info["accounts"][n]["id"] for n in args.opt_in_names.split(",") if n)
    layer.deny_list_regions.update(
        info["accounts"][n]["id"] for n in args.deny_list_regions_names.split(",") if n)
    arm_pin_knobs(layer, args, info)

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
