# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_cove_global_optspecs
    string join \n t/target= i/ignore= region= exclude-region= allow-unknown-region include-caller filter-name= filter-email= filter-tag= shard= shard-index-env= shard-count= rerun= rerun-only= plan= plan-any-caller dry-run r/role= sso-role= role-session-name= policy= policy-arn= external-id= duration= max-assume-rate= profile= via-role= org-role= mfa-serial= mfa-code= w/workers= max-workers= max-memory= fail-fast max-failures= canary= confirm y/yes timeout= max-output-bytes= child-credentials= o/output= output-dir= q/quiet v/verbose no-ci-summary config= no-config g/group= h/help V/version
end

function __fish_cove_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_cove_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_cove_using_subcommand
    set -l cmd (__fish_cove_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c cove -n "__fish_cove_needs_command" -s t -l target -d 'Account, OU or root ID to run in (repeatable, or comma-separated). An OU or the root means every account beneath it. @FILE reads IDs from a file, one per line (# comments), and @- from standard input. Default: every account in the organization' -r
complete -c cove -n "__fish_cove_needs_command" -s i -l ignore -d 'Account, OU or root ID to leave out (repeatable, or comma-separated; @FILE as for --target). An ignore always wins over a target; an ignored OU ignores everything beneath it' -r
complete -c cove -n "__fish_cove_needs_command" -l region -d 'Region to run in (repeatable, or comma-separated). `all` runs every region each account has enabled, asked of the account itself (account:ListRegions). Default: the region of the credential chain (AWS_REGION, the profile)' -r
complete -c cove -n "__fish_cove_needs_command" -l exclude-region -d 'Leave this region out (repeatable, or comma-separated), for example with `--region all`' -r
complete -c cove -n "__fish_cove_needs_command" -l filter-name -d 'Keep only accounts whose name matches this regular expression' -r
complete -c cove -n "__fish_cove_needs_command" -l filter-email -d 'Keep only accounts whose email matches this regular expression' -r
complete -c cove -n "__fish_cove_needs_command" -l filter-tag -d 'Keep only accounts with this Organizations tag (repeatable; all must match)' -r
complete -c cove -n "__fish_cove_needs_command" -l shard -d 'Run only shard K of N (1-based). Accounts are split deterministically, so every machine of a CI matrix computes the same split' -r
complete -c cove -n "__fish_cove_needs_command" -l shard-index-env -d 'Read this shard\'s 0-based index from the named environment variable (for example JOB_COMPLETION_INDEX on Kubernetes Indexed Jobs). Needs --shard-count' -r
complete -c cove -n "__fish_cove_needs_command" -l shard-count -d 'The number of shards, with --shard-index-env' -r
complete -c cove -n "__fish_cove_needs_command" -l rerun -d 'Run exactly the account × region pairs that were in Exceptions or FailedAssumeRole in a previous json or jsonl output' -r -F
complete -c cove -n "__fish_cove_needs_command" -l rerun-only -d 'With --rerun, take only one of the two lists' -r -f -a "failed-assume\t'Only targets whose role could not be assumed'
exceptions\t'Only targets whose command failed'"
complete -c cove -n "__fish_cove_needs_command" -l plan -d 'Run exactly the account × region targets of a --dry-run document, without listing the organization (no Organizations call). @- (or -) reads it from standard input. --shard splits the plan as it would split a listing; --target, --ignore, --region and the filters cannot be combined with it' -r
complete -c cove -n "__fish_cove_needs_command" -s r -l role -d 'Role to assume in each target account. Several (repeatable, or comma-separated) are tried in order, and each account uses the first it may assume; only AccessDenied moves on to the next' -r
complete -c cove -n "__fish_cove_needs_command" -l sso-role -d 'Permission set of IAM Identity Center to run each target with, instead of assuming a role: its credentials come from the access portal with the token `aws sso login` cached for the profile. Several (comma-separated) are tried in order, like --role' -r
complete -c cove -n "__fish_cove_needs_command" -l role-session-name -d 'Session name for the assumed role. Default: the name of the role used' -r
complete -c cove -n "__fish_cove_needs_command" -l policy -d 'Session policy JSON, or @FILE to read it from a file. Never printed' -r
complete -c cove -n "__fish_cove_needs_command" -l policy-arn -d 'Managed policy ARN to scope the session with (repeatable)' -r
complete -c cove -n "__fish_cove_needs_command" -l external-id -d 'External ID required by the role\'s trust policy, or @FILE to read it from a file (so that it stays out of the process list, like COVE_EXTERNAL_ID). Never printed' -r
complete -c cove -n "__fish_cove_needs_command" -l duration -d 'Session duration in seconds (900 to 43200). Default: the role\'s own default' -r
complete -c cove -n "__fish_cove_needs_command" -l max-assume-rate -d 'At most N AssumeRole calls per second, to stay under a known STS quota. Default: unlimited; with --sso-role, 10 GetRoleCredentials calls per second (the portal throttles at about 20)' -r
complete -c cove -n "__fish_cove_needs_command" -l profile -d 'AWS profile that supplies the assuming credentials' -r
complete -c cove -n "__fish_cove_needs_command" -l via-role -d 'Role ARN to assume before anything else and act as from then on (repeatable, or comma-separated: hops in the order given, each assumed with the previous one\'s credentials). The last hop calls GetCallerIdentity, Organizations and every AssumeRole into a target. Role chains last at most one hour, so --duration is at most 3600' -r
complete -c cove -n "__fish_cove_needs_command" -l org-role -d 'Role ARN to read the organization through (ListAccounts, the OU walk, tags), assumed with the calling identity (after any --via-role). AssumeRole into the targets still uses the calling identity' -r
complete -c cove -n "__fish_cove_needs_command" -l mfa-serial -d 'MFA device (a virtual device ARN or a hardware serial) for sts:GetSessionToken: cove trades the starting credentials and the device\'s code for a session once, and that session is then the starting identity (before any --via-role)' -r
complete -c cove -n "__fish_cove_needs_command" -l mfa-code -d 'The code the --mfa-serial device shows. Without it, cove asks on the terminal (nothing is echoed) when standard input is one, which keeps it out of the process list. Never printed' -r
complete -c cove -n "__fish_cove_needs_command" -s w -l workers -d 'How many targets run at once: a count, or `auto` to follow the machine (grow while the CPU and memory have room and throughput rises, shrink when the CPU is saturated with no gain or memory runs short; see --max-workers and --max-memory)' -r
complete -c cove -n "__fish_cove_needs_command" -l max-workers -d 'With --workers auto: the most targets that ever run at once' -r
complete -c cove -n "__fish_cove_needs_command" -l max-memory -d 'With --workers auto: the memory cove and its commands may use together (suffixes K, M, G are powers of 1024; at least 64M). Auto treats it as the machine\'s memory, as it does a container\'s limit it can see. Default: the machine\'s (or the container\'s) memory' -r
complete -c cove -n "__fish_cove_needs_command" -l max-failures -d 'Once more than N targets (or P% of the targets known) have failed, start nothing new: the commands running finish (nothing is killed, unlike --fail-fast) and every target that did not start is reported as cancelled ("max failures reached"). 0 halts at the first failure' -r
complete -c cove -n "__fish_cove_needs_command" -l canary -d 'Run the first N targets first (a listed run: the first N in output order; a streamed one: the first N listed) and everything else only once they have all succeeded. If a canary fails, nothing else starts ("canary failed")' -r
complete -c cove -n "__fish_cove_needs_command" -l timeout -d 'Stop a command that runs longer than this (for example 30s, 5m, 1h30m). Its whole process group gets SIGTERM, then SIGKILL after a grace period. Default: no limit' -r
complete -c cove -n "__fish_cove_needs_command" -l max-output-bytes -d 'Keep at most this much of each command\'s stdout, and as much of its stderr (suffixes K, M, G are powers of 1024). The rest is read and dropped, and the record says so' -r
complete -c cove -n "__fish_cove_needs_command" -l child-credentials -d 'How each command gets its credentials: `env`, the key variables (fixed for the command\'s life); `endpoint`, a credential endpoint on 127.0.0.1 that renews them while the command runs, for commands that outlive their session' -r -f -a "env\t'The key variables, fixed for the child\'s life'
endpoint\t'A credential endpoint on 127.0.0.1 that renews them while the child runs'"
complete -c cove -n "__fish_cove_needs_command" -s o -l output -d 'Output format on stdout: `json`, one document at the end; `jsonl`, one record per line as each target finishes, then a summary line' -r -f -a "json\t'One document when every target has finished'
jsonl\t'One record per line as each target finishes, then a summary line'
text\t'For people: as each target finishes, its stdout and stderr lines tagged with the account ID, name and region, and one line saying why if it failed'"
complete -c cove -n "__fish_cove_needs_command" -l output-dir -d 'Also write each target\'s stdout and stderr to DIR/<account-id>/<region>/stdout and stderr, and the final document to DIR/results.json' -r -F
complete -c cove -n "__fish_cove_needs_command" -l config -d 'Read settings from this TOML file only, instead of the user file ($XDG_CONFIG_HOME/cove/config.toml) and the project file (cove.toml in the current directory or the nearest parent). A flag or its variable always wins over a file' -r -F
complete -c cove -n "__fish_cove_needs_command" -s g -l group -d 'Apply the settings of `[groups.NAME]` in the config files: a saved selection (target, ignore, filters, regions) and any other setting. Flags and variables still win over it' -r
complete -c cove -n "__fish_cove_needs_command" -l allow-unknown-region -d 'Accept a well-formed region name that cove\'s built-in list does not know yet'
complete -c cove -n "__fish_cove_needs_command" -l include-caller -d 'Make the calling account a target like any other when it is selected. The command still runs with the assumed role\'s credentials, never with the caller\'s'
complete -c cove -n "__fish_cove_needs_command" -l plan-any-caller -d 'With --plan, run a plan that another calling account made'
complete -c cove -n "__fish_cove_needs_command" -l dry-run -d 'Resolve the targets and print the account × region matrix as JSON, then stop. No role is assumed and nothing runs, so the command may be left out'
complete -c cove -n "__fish_cove_needs_command" -l fail-fast -d 'On the first failure (assume or command), start nothing new, stop running children, and report what finished'
complete -c cove -n "__fish_cove_needs_command" -l confirm -d 'Before the first credential call, say on stderr what will run where and ask y/N on the terminal. Anything but y or yes stops with exit 2 and nothing run'
complete -c cove -n "__fish_cove_needs_command" -s y -l yes -d 'Answer yes to --confirm (for scripts and CI: no terminal is needed)'
complete -c cove -n "__fish_cove_needs_command" -s q -l quiet -d 'No progress bar, notes or summary on stderr; errors and warnings still show'
complete -c cove -n "__fish_cove_needs_command" -s v -l verbose -d 'Log what cove does to stderr: -v each AWS call (service, operation, account, region, attempt, latency, error code), retries, credential renewals and each child (pid, exit status, duration), and the full cause of an error; -vv more; -vvv everything, the AWS SDK\'s own trace included. COVE_LOG (or RUST_LOG) takes a filter such as `cove=debug` instead. Secrets are never logged'
complete -c cove -n "__fish_cove_needs_command" -l no-ci-summary -d 'In GitHub Actions (GITHUB_ACTIONS=true), cove appends a Markdown summary of the run to the file in GITHUB_STEP_SUMMARY and prints `::error` annotations for up to 10 failed targets on stderr. This turns both off (COVE_CI_SUMMARY=false does too)'
complete -c cove -n "__fish_cove_needs_command" -l no-config -d 'Read no config file at all'
complete -c cove -n "__fish_cove_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cove -n "__fish_cove_needs_command" -s V -l version -d 'Print version'
complete -c cove -n "__fish_cove_needs_command" -a "merge" -d 'Merge json or jsonl outputs of sharded runs into one json document, sorted like a single run, and exit with the code that run would have given. Two files holding the same account × region are an error'
complete -c cove -n "__fish_cove_needs_command" -a "diff" -d 'Compare two runs (json or jsonl outputs, merged outputs, --output-dir directories; `-` is standard input), pairing targets by Id and Region: what was added, removed and changed (outcome, exit code, result: each changed JSON path, or a unified diff of text). Exit 0 when they are the same, 1 when they differ, 2 on an error'
complete -c cove -n "__fish_cove_needs_command" -a "config" -d 'Print the effective settings as TOML, each value with a comment naming where it came from (the flag, the variable, FILE:LINE of a config file, a group, or the default). Takes the options of a run (for example `cove config -g prod`); `cove config --paths` lists the config files looked for and whether each was read. Makes no AWS call'
complete -c cove -n "__fish_cove_needs_command" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cove -n "__fish_cove_using_subcommand merge" -s h -l help -d 'Print help'
complete -c cove -n "__fish_cove_using_subcommand diff" -l ignore-path -d 'Leave a JSON path of the results out of the comparison (repeatable), for example `.ResponseMetadata`; `[]` matches any index (`.Reservations[].Instances`), and keys that are not identifiers are quoted (`."a b"`)' -r
complete -c cove -n "__fish_cove_using_subcommand diff" -s o -l output -d 'json: one document (pretty on a terminal, one line otherwise); text: a summary for people, in color on a terminal' -r -f -a "json\t''
text\t''"
complete -c cove -n "__fish_cove_using_subcommand diff" -s h -l help -d 'Print help'
complete -c cove -n "__fish_cove_using_subcommand config" -l paths -d 'List the config files looked for, and whether each was read, instead'
complete -c cove -n "__fish_cove_using_subcommand config" -s h -l help -d 'Print help'
complete -c cove -n "__fish_cove_using_subcommand help; and not __fish_seen_subcommand_from merge diff config help" -f -a "merge" -d 'Merge json or jsonl outputs of sharded runs into one json document, sorted like a single run, and exit with the code that run would have given. Two files holding the same account × region are an error'
complete -c cove -n "__fish_cove_using_subcommand help; and not __fish_seen_subcommand_from merge diff config help" -f -a "diff" -d 'Compare two runs (json or jsonl outputs, merged outputs, --output-dir directories; `-` is standard input), pairing targets by Id and Region: what was added, removed and changed (outcome, exit code, result: each changed JSON path, or a unified diff of text). Exit 0 when they are the same, 1 when they differ, 2 on an error'
complete -c cove -n "__fish_cove_using_subcommand help; and not __fish_seen_subcommand_from merge diff config help" -f -a "config" -d 'Print the effective settings as TOML, each value with a comment naming where it came from (the flag, the variable, FILE:LINE of a config file, a group, or the default). Takes the options of a run (for example `cove config -g prod`); `cove config --paths` lists the config files looked for and whether each was read. Makes no AWS call'
complete -c cove -n "__fish_cove_using_subcommand help; and not __fish_seen_subcommand_from merge diff config help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
