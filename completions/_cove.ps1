
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'cove' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'cove'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'cove' {
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Account, OU or root ID to run in (repeatable, or comma-separated). An OU or the root means every account beneath it. @FILE reads IDs from a file, one per line (# comments), and @- from standard input. Default: every account in the organization')
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Account, OU or root ID to run in (repeatable, or comma-separated). An OU or the root means every account beneath it. @FILE reads IDs from a file, one per line (# comments), and @- from standard input. Default: every account in the organization')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Account, OU or root ID to leave out (repeatable, or comma-separated; @FILE as for --target). An ignore always wins over a target; an ignored OU ignores everything beneath it')
            [CompletionResult]::new('--ignore', '--ignore', [CompletionResultType]::ParameterName, 'Account, OU or root ID to leave out (repeatable, or comma-separated; @FILE as for --target). An ignore always wins over a target; an ignored OU ignores everything beneath it')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'Region to run in (repeatable, or comma-separated). `all` runs every region each account has enabled, asked of the account itself (account:ListRegions). Default: the region of the credential chain (AWS_REGION, the profile)')
            [CompletionResult]::new('--exclude-region', '--exclude-region', [CompletionResultType]::ParameterName, 'Leave this region out (repeatable, or comma-separated), for example with `--region all`')
            [CompletionResult]::new('--filter-name', '--filter-name', [CompletionResultType]::ParameterName, 'Keep only accounts whose name matches this regular expression')
            [CompletionResult]::new('--filter-email', '--filter-email', [CompletionResultType]::ParameterName, 'Keep only accounts whose email matches this regular expression')
            [CompletionResult]::new('--filter-tag', '--filter-tag', [CompletionResultType]::ParameterName, 'Keep only accounts with this Organizations tag (repeatable; all must match)')
            [CompletionResult]::new('--shard', '--shard', [CompletionResultType]::ParameterName, 'Run only shard K of N (1-based). Accounts are split deterministically, so every machine of a CI matrix computes the same split')
            [CompletionResult]::new('--shard-index-env', '--shard-index-env', [CompletionResultType]::ParameterName, 'Read this shard''s 0-based index from the named environment variable (for example JOB_COMPLETION_INDEX on Kubernetes Indexed Jobs). Needs --shard-count')
            [CompletionResult]::new('--shard-count', '--shard-count', [CompletionResultType]::ParameterName, 'The number of shards, with --shard-index-env')
            [CompletionResult]::new('--rerun', '--rerun', [CompletionResultType]::ParameterName, 'Run exactly the account × region pairs that were in Exceptions or FailedAssumeRole in a previous json or jsonl output')
            [CompletionResult]::new('--rerun-only', '--rerun-only', [CompletionResultType]::ParameterName, 'With --rerun, take only one of the two lists')
            [CompletionResult]::new('--plan', '--plan', [CompletionResultType]::ParameterName, 'Run exactly the account × region targets of a --dry-run document, without listing the organization (no Organizations call). @- (or -) reads it from standard input. --shard splits the plan as it would split a listing; --target, --ignore, --region and the filters cannot be combined with it')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Role to assume in each target account. Several (repeatable, or comma-separated) are tried in order, and each account uses the first it may assume; only AccessDenied moves on to the next')
            [CompletionResult]::new('--role', '--role', [CompletionResultType]::ParameterName, 'Role to assume in each target account. Several (repeatable, or comma-separated) are tried in order, and each account uses the first it may assume; only AccessDenied moves on to the next')
            [CompletionResult]::new('--sso-role', '--sso-role', [CompletionResultType]::ParameterName, 'Permission set of IAM Identity Center to run each target with, instead of assuming a role: its credentials come from the access portal with the token `aws sso login` cached for the profile. Several (comma-separated) are tried in order, like --role')
            [CompletionResult]::new('--role-session-name', '--role-session-name', [CompletionResultType]::ParameterName, 'Session name for the assumed role. Default: the name of the role used')
            [CompletionResult]::new('--policy', '--policy', [CompletionResultType]::ParameterName, 'Session policy JSON, or @FILE to read it from a file. Never printed')
            [CompletionResult]::new('--policy-arn', '--policy-arn', [CompletionResultType]::ParameterName, 'Managed policy ARN to scope the session with (repeatable)')
            [CompletionResult]::new('--external-id', '--external-id', [CompletionResultType]::ParameterName, 'External ID required by the role''s trust policy, or @FILE to read it from a file (so that it stays out of the process list, like COVE_EXTERNAL_ID). Never printed')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Session duration in seconds (900 to 43200). Default: the role''s own default')
            [CompletionResult]::new('--max-assume-rate', '--max-assume-rate', [CompletionResultType]::ParameterName, 'At most N AssumeRole calls per second, to stay under a known STS quota. Default: unlimited; with --sso-role, 10 GetRoleCredentials calls per second (the portal throttles at about 20)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'AWS profile that supplies the assuming credentials')
            [CompletionResult]::new('--via-role', '--via-role', [CompletionResultType]::ParameterName, 'Role ARN to assume before anything else and act as from then on (repeatable, or comma-separated: hops in the order given, each assumed with the previous one''s credentials). The last hop calls GetCallerIdentity, Organizations and every AssumeRole into a target. Role chains last at most one hour, so --duration is at most 3600')
            [CompletionResult]::new('--org-role', '--org-role', [CompletionResultType]::ParameterName, 'Role ARN to read the organization through (ListAccounts, the OU walk, tags), assumed with the calling identity (after any --via-role). AssumeRole into the targets still uses the calling identity')
            [CompletionResult]::new('--mfa-serial', '--mfa-serial', [CompletionResultType]::ParameterName, 'MFA device (a virtual device ARN or a hardware serial) for sts:GetSessionToken: cove trades the starting credentials and the device''s code for a session once, and that session is then the starting identity (before any --via-role)')
            [CompletionResult]::new('--mfa-code', '--mfa-code', [CompletionResultType]::ParameterName, 'The code the --mfa-serial device shows. Without it, cove asks on the terminal (nothing is echoed) when standard input is one, which keeps it out of the process list. Never printed')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'How many targets run at once: a count, or `auto` to follow the machine (grow while the CPU and memory have room and throughput rises, shrink when the CPU is saturated with no gain or memory runs short; see --max-workers and --max-memory)')
            [CompletionResult]::new('--workers', '--workers', [CompletionResultType]::ParameterName, 'How many targets run at once: a count, or `auto` to follow the machine (grow while the CPU and memory have room and throughput rises, shrink when the CPU is saturated with no gain or memory runs short; see --max-workers and --max-memory)')
            [CompletionResult]::new('--max-workers', '--max-workers', [CompletionResultType]::ParameterName, 'With --workers auto: the most targets that ever run at once')
            [CompletionResult]::new('--max-memory', '--max-memory', [CompletionResultType]::ParameterName, 'With --workers auto: the memory cove and its commands may use together (suffixes K, M, G are powers of 1024; at least 64M). Auto treats it as the machine''s memory, as it does a container''s limit it can see. Default: the machine''s (or the container''s) memory')
            [CompletionResult]::new('--max-failures', '--max-failures', [CompletionResultType]::ParameterName, 'Once more than N targets (or P% of the targets known) have failed, start nothing new: the commands running finish (nothing is killed, unlike --fail-fast) and every target that did not start is reported as cancelled ("max failures reached"). 0 halts at the first failure')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Run the first N targets first (a listed run: the first N in output order; a streamed one: the first N listed) and everything else only once they have all succeeded. If a canary fails, nothing else starts ("canary failed")')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Stop a command that runs longer than this (for example 30s, 5m, 1h30m). Its whole process group gets SIGTERM, then SIGKILL after a grace period. Default: no limit')
            [CompletionResult]::new('--max-output-bytes', '--max-output-bytes', [CompletionResultType]::ParameterName, 'Keep at most this much of each command''s stdout, and as much of its stderr (suffixes K, M, G are powers of 1024). The rest is read and dropped, and the record says so')
            [CompletionResult]::new('--child-credentials', '--child-credentials', [CompletionResultType]::ParameterName, 'How each command gets its credentials: `env`, the key variables (fixed for the command''s life); `endpoint`, a credential endpoint on 127.0.0.1 that renews them while the command runs, for commands that outlive their session')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format on stdout: `json`, one document at the end; `jsonl`, one record per line as each target finishes, then a summary line')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format on stdout: `json`, one document at the end; `jsonl`, one record per line as each target finishes, then a summary line')
            [CompletionResult]::new('--output-dir', '--output-dir', [CompletionResultType]::ParameterName, 'Also write each target''s stdout and stderr to DIR/<account-id>/<region>/stdout and stderr, and the final document to DIR/results.json')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Read settings from this TOML file only, instead of the user file ($XDG_CONFIG_HOME/cove/config.toml) and the project file (cove.toml in the current directory or the nearest parent). A flag or its variable always wins over a file')
            [CompletionResult]::new('-g', '-g', [CompletionResultType]::ParameterName, 'Apply the settings of `[groups.NAME]` in the config files: a saved selection (target, ignore, filters, regions) and any other setting. Flags and variables still win over it')
            [CompletionResult]::new('--group', '--group', [CompletionResultType]::ParameterName, 'Apply the settings of `[groups.NAME]` in the config files: a saved selection (target, ignore, filters, regions) and any other setting. Flags and variables still win over it')
            [CompletionResult]::new('--allow-unknown-region', '--allow-unknown-region', [CompletionResultType]::ParameterName, 'Accept a well-formed region name that cove''s built-in list does not know yet')
            [CompletionResult]::new('--include-caller', '--include-caller', [CompletionResultType]::ParameterName, 'Make the calling account a target like any other when it is selected. The command still runs with the assumed role''s credentials, never with the caller''s')
            [CompletionResult]::new('--plan-any-caller', '--plan-any-caller', [CompletionResultType]::ParameterName, 'With --plan, run a plan that another calling account made')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Resolve the targets and print the account × region matrix as JSON, then stop. No role is assumed and nothing runs, so the command may be left out')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'On the first failure (assume or command), start nothing new, stop running children, and report what finished')
            [CompletionResult]::new('--confirm', '--confirm', [CompletionResultType]::ParameterName, 'Before the first credential call, say on stderr what will run where and ask y/N on the terminal. Anything but y or yes stops with exit 2 and nothing run')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to --confirm (for scripts and CI: no terminal is needed)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to --confirm (for scripts and CI: no terminal is needed)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress bar, notes or summary on stderr; errors and warnings still show')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress bar, notes or summary on stderr; errors and warnings still show')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log what cove does to stderr: -v each AWS call (service, operation, account, region, attempt, latency, error code), retries, credential renewals and each child (pid, exit status, duration), and the full cause of an error; -vv more; -vvv everything, the AWS SDK''s own trace included. COVE_LOG (or RUST_LOG) takes a filter such as `cove=debug` instead. Secrets are never logged')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log what cove does to stderr: -v each AWS call (service, operation, account, region, attempt, latency, error code), retries, credential renewals and each child (pid, exit status, duration), and the full cause of an error; -vv more; -vvv everything, the AWS SDK''s own trace included. COVE_LOG (or RUST_LOG) takes a filter such as `cove=debug` instead. Secrets are never logged')
            [CompletionResult]::new('--no-ci-summary', '--no-ci-summary', [CompletionResultType]::ParameterName, 'In GitHub Actions (GITHUB_ACTIONS=true), cove appends a Markdown summary of the run to the file in GITHUB_STEP_SUMMARY and prints `::error` annotations for up to 10 failed targets on stderr. This turns both off (COVE_CI_SUMMARY=false does too)')
            [CompletionResult]::new('--no-config', '--no-config', [CompletionResultType]::ParameterName, 'Read no config file at all')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('merge', 'merge', [CompletionResultType]::ParameterValue, 'Merge json or jsonl outputs of sharded runs into one json document, sorted like a single run, and exit with the code that run would have given. Two files holding the same account × region are an error')
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'Compare two runs (json or jsonl outputs, merged outputs, --output-dir directories; `-` is standard input), pairing targets by Id and Region: what was added, removed and changed (outcome, exit code, result: each changed JSON path, or a unified diff of text). Exit 0 when they are the same, 1 when they differ, 2 on an error')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Print the effective settings as TOML, each value with a comment naming where it came from (the flag, the variable, FILE:LINE of a config file, a group, or the default). Takes the options of a run (for example `cove config -g prod`); `cove config --paths` lists the config files looked for and whether each was read. Makes no AWS call')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'cove;merge' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'cove;diff' {
            [CompletionResult]::new('--ignore-path', '--ignore-path', [CompletionResultType]::ParameterName, 'Leave a JSON path of the results out of the comparison (repeatable), for example `.ResponseMetadata`; `[]` matches any index (`.Reservations[].Instances`), and keys that are not identifiers are quoted (`."a b"`)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'json: one document (pretty on a terminal, one line otherwise); text: a summary for people, in color on a terminal')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'json: one document (pretty on a terminal, one line otherwise); text: a summary for people, in color on a terminal')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'cove;config' {
            [CompletionResult]::new('--paths', '--paths', [CompletionResultType]::ParameterName, 'List the config files looked for, and whether each was read, instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'cove;help' {
            [CompletionResult]::new('merge', 'merge', [CompletionResultType]::ParameterValue, 'Merge json or jsonl outputs of sharded runs into one json document, sorted like a single run, and exit with the code that run would have given. Two files holding the same account × region are an error')
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'Compare two runs (json or jsonl outputs, merged outputs, --output-dir directories; `-` is standard input), pairing targets by Id and Region: what was added, removed and changed (outcome, exit code, result: each changed JSON path, or a unified diff of text). Exit 0 when they are the same, 1 when they differ, 2 on an error')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Print the effective settings as TOML, each value with a comment naming where it came from (the flag, the variable, FILE:LINE of a config file, a group, or the default). Takes the options of a run (for example `cove config -g prod`); `cove config --paths` lists the config files looked for and whether each was read. Makes no AWS call')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'cove;help;merge' {
            break
        }
        'cove;help;diff' {
            break
        }
        'cove;help;config' {
            break
        }
        'cove;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
