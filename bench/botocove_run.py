#!/usr/bin/env python3
"""The botocove side of the cove benchmark.

Does what `cove --workers N --region R1,R2 -- COMMAND` does, the way a botocove user would
write it: an @cove-decorated function that runs COMMAND with subprocess in every account x
region, with the assumed credentials (from session.get_credentials()) and the region in the
child's environment. Prints botocove's whole result ({"Results", "Exceptions",
"FailedAssumeRole"}) as one JSON document on stdout, as cove does.

With `--call SERVICE:METHOD` it runs no command: the decorated function makes that call
on the session botocove built (for bench W7, `sts:get_caller_identity`, what a botocove user
would write instead of running the AWS CLI), and returns its answer less ResponseMetadata.

usage: botocove_run.py [--workers N] [--regions a,b] [--role NAME] -- COMMAND [ARGS...]
       botocove_run.py [--workers N] [--regions a,b] [--role NAME] --call SERVICE:METHOD
"""

import argparse
import json
import os
import subprocess
import sys

from botocove import cove


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--regions", default=None, help="comma-separated")
    parser.add_argument("--role", default="OrganizationAccountAccessRole")
    parser.add_argument("--call", default=None, help="SERVICE:METHOD to call in-process instead of a command")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.call:
        if command or ":" not in args.call:
            parser.error("--call SERVICE:METHOD takes no command")
    elif not command:
        parser.error("a command to run is required after --")
    regions = args.regions.split(",") if args.regions else None
    base_env = dict(os.environ)

    @cove(thread_workers=args.workers, regions=regions, rolename=args.role)
    def call_in_target(session):
        service, method = args.call.split(":", 1)
        answer = getattr(session.client(service), method)()
        answer.pop("ResponseMetadata", None)
        return answer

    @cove(thread_workers=args.workers, regions=regions, rolename=args.role)
    def run_in_target(session):
        creds = session.get_credentials().get_frozen_credentials()
        env = dict(base_env)
        env["AWS_ACCESS_KEY_ID"] = creds.access_key
        env["AWS_SECRET_ACCESS_KEY"] = creds.secret_key
        env["AWS_SESSION_TOKEN"] = creds.token
        region = session.region_name
        if region:
            env["AWS_REGION"] = region
            env["AWS_DEFAULT_REGION"] = region
        proc = subprocess.run(
            command, env=env, stdin=subprocess.DEVNULL, capture_output=True
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"exit code {proc.returncode}: {proc.stderr[-2000:].decode(errors='replace')}"
            )
        return proc.stdout.decode(errors="replace")

    output = call_in_target() if args.call else run_in_target()
    json.dump(output, sys.stdout, default=str)
    sys.stdout.write("\n")
    failed = len(output.get("Exceptions", [])) + len(output.get("FailedAssumeRole", []))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
