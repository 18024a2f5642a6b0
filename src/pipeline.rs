//! One run, step by step: prepare what is local, connect to AWS, identify the caller, choose the
//! targets, run them, report. [`execute`] is everything after connecting, generic over [`Aws`]
//! and the output, so tests drive it with the in-memory fake.
//!
//! Targets are chosen in one of two ways. A listed run resolves every account first (targets,
//! OUs, reruns, shards, tags, the dry run and `--region all` need the full list). A streamed run
//! (the whole organization, nothing that needs the full list) runs each account while later
//! `ListAccounts` pages are still on their way. Both judge accounts by the same admission policy
//! and report through the same [`Reporter`].

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::aws::{self, Account, Aws};
use crate::child_env;
use crate::config::Config;
use crate::confirm;
use crate::credentials::{CredentialCache, Source};
use crate::dry_run;
use crate::endpoint;
use crate::exit_code::Exit;
use crate::identity::{self, Identified};
use crate::ids::OrgId;
use crate::listed;
use crate::output::{self, Sink};
use crate::plan;
use crate::process::{self, Limits, ProcessGroups};
use crate::progress;
use crate::regions::{self, ALL_ENABLED_LABEL};
use crate::report::Reporter;
use crate::resolver::{self, Rules};
use crate::rollout;
use crate::runner::{self, RunSpec, Shared};
use crate::signals;
use crate::stop::Stop;
use crate::stream;
use crate::target_vars::TargetVars;
use crate::template;

/// Runs a validated configuration against real AWS, writing to stdout.
pub fn run(config: Config) -> anyhow::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(async {
        let workers = prepare_local(&config)?;
        let control = Control::default();
        signals::install(control.stop.clone(), control.groups.clone());
        let (aws, regions) = connect(&config).await?;
        let stdout = std::io::stdout();
        let pretty = stdout.is_terminal();
        execute(
            &config,
            workers,
            &regions,
            Arc::new(aws),
            control,
            stdout,
            pretty,
        )
        .await
    })
}

/// The side effects that come before any AWS call: the output directory is created and
/// checked, and the open-file limit raised for `--workers`. Returns the workers that fit.
fn prepare_local(config: &Config) -> anyhow::Result<usize> {
    confirm::check_terminal(config)?;
    if let Some(dir) = &config.output.dir {
        crate::output_dir::prepare(dir)?;
    }
    let asked = config.run.workers;
    let workers = process::fit_workers(asked, config.run.child_credentials);
    if workers < asked {
        let flag = match config.run.auto {
            Some(_) => "--max-workers",
            None => "--workers",
        };
        eprintln!(
            "cove: warning: {flag} {asked} needs more open files than this system allows; running {workers} at a time"
        );
    }
    Ok(workers)
}

/// Loads the AWS configuration, assumes the `--via-role` hops and the `--org-role`, and
/// decides the fixed regions (named, or the chain's).
async fn connect(config: &Config) -> anyhow::Result<(aws::sdk::SdkAws, Vec<String>)> {
    let profile = config.aws.profile.as_deref();
    let chain = aws::sdk::chain_region(profile).await;
    if let Some(region) = &chain {
        regions::check(region, true).map_err(|e| {
            anyhow::anyhow!("the region of the credential chain (AWS_REGION or the profile): {e}")
        })?;
    }
    let plan = config.selection.plan.as_ref();
    let rerun = config.selection.rerun.is_some() || plan.is_some();
    let fixed = config
        .regions
        .fixed(chain.as_deref(), rerun)
        .map_err(anyhow::Error::msg)?;
    // STS is called in the caller's own region where it has one (regional endpoint).
    let sts_region = chain.or_else(|| fixed.first().cloned());
    let Some(sts_region) = sts_region.or_else(|| plan.and_then(|p| p.first_region())) else {
        bail!(
            "no region to call STS in: with --region all or --rerun, set AWS_REGION or a region in your AWS profile"
        );
    };
    let mfa = mfa_code(config)?;
    let portal = match config.role.source {
        Source::Portal => Some(aws::portal::load_profile(profile).await?),
        Source::AssumeRole => None,
    };
    let acting_as = aws::sdk::ActingAs {
        via_roles: &config.aws.via_roles,
        org_role: config.aws.org_role.as_deref(),
        mfa: mfa.as_ref().map(|(serial, code)| (serial.as_str(), code)),
        portal: portal.as_ref(),
    };
    let aws = aws::sdk::connect(profile, &sts_region, acting_as).await?;
    Ok((aws, fixed))
}

/// The MFA device and its code: from `--mfa-code`, else asked on the terminal with nothing
/// echoed. Without a terminal a missing code is an input error, before any AWS call.
fn mfa_code(config: &Config) -> anyhow::Result<Option<(String, crate::secret::Secret)>> {
    let Some(mfa) = &config.aws.mfa else {
        return Ok(None);
    };
    if let Some(code) = &mfa.code {
        return Ok(Some((mfa.serial.clone(), code.clone())));
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "--mfa-serial needs a code: pass --mfa-code (standard input is not a terminal to ask on)"
        );
    }
    let prompt = format!("MFA code for {}: ", mfa.serial);
    let code = rpassword::prompt_password(prompt).context("could not read the MFA code")?;
    let code = code.trim().to_owned();
    crate::config::check_mfa_code(&code)?;
    Ok(Some((mfa.serial.clone(), crate::secret::Secret::new(code))))
}

/// What stops a run, and the children to stop.
#[derive(Debug, Default, Clone)]
pub struct Control {
    pub stop: Arc<Stop>,
    pub groups: Arc<ProcessGroups>,
}

/// Everything after connecting: identify, choose, run, report. Returns the exit code.
pub async fn execute<A: Aws, W: Write + Send + 'static>(
    config: &Config,
    workers: usize,
    regions: &[String],
    aws: Arc<A>,
    control: Control,
    out: W,
    pretty: bool,
) -> anyhow::Result<Exit> {
    let run = Run {
        config,
        workers,
        regions,
        control,
        started: Instant::now(),
        vars: Arc::new(TargetVars::new(
            config.vars.clone(),
            template::uses(&config.run.command),
        )),
    };
    let s = &config.selection;
    // A plan's regions are checked against the caller's partition as a rerun's are.
    let rerun = s.rerun.as_ref().or(s.plan.as_ref().map(|p| &p.pairs));
    let portal = aws.portal_region();
    let walks_ous = s.targets.iter().chain(&s.ignores).any(OrgId::is_parent);
    let identified = tokio::select! {
        identified = identity::identify(aws.as_ref(), regions, rerun, portal.as_deref(), walks_ous) => identified?,
        _ = run.control.stop.cancelled() => return run.interrupted_before_targets(out, pretty),
    };
    identity::check_entry_regions(&config.vars, config.regions_typed, &identified.partition)?;
    if run.streams() {
        run.streamed(aws, identified, out, pretty).await
    } else {
        run.listed(aws, identified, out, pretty).await
    }
}

/// One run's settings and controls, shared by its steps.
struct Run<'a> {
    config: &'a Config,
    workers: usize,
    regions: &'a [String],
    control: Control,
    started: Instant,
    /// Each target's variables and the tags its command uses (read once per account).
    vars: Arc<TargetVars>,
}

impl Run<'_> {
    fn stop(&self) -> &Arc<Stop> {
        &self.control.stop
    }

    /// Whether targets are run while they are listed: the whole organization, or an OU walk,
    /// when nothing needs the full list first.
    fn streams(&self) -> bool {
        let s = &self.config.selection;
        (s.targets.is_empty() || s.targets.iter().any(OrgId::is_parent))
            && s.rerun.is_none()
            && s.plan.is_none()
            && s.shard.is_none()
            && s.filters.tags.is_empty()
            && !self.config.dry_run
            && !self.config.regions.is_all_enabled()
            && !self.config.run.confirm.on()
    }

    fn rules(&self) -> Rules<'_> {
        let s = &self.config.selection;
        Rules {
            ignores: &s.ignores,
            // With --sso-role no command runs with the caller's credentials: the calling
            // account is a target like any other.
            include_caller: s.include_caller || self.portal(),
            filters: &s.filters,
        }
    }

    /// `--sso-role`: targets run with permission sets from the portal.
    fn portal(&self) -> bool {
        self.config.role.source == Source::Portal
    }

    fn note(&self, message: &str) {
        progress::note(self.config.output.quiet, message);
    }

    fn spec(&self, partition: String) -> Arc<RunSpec> {
        let run = &self.config.run;
        Arc::new(RunSpec {
            command: run.command.clone(),
            workers: self.workers,
            fail_fast: run.fail_fast,
            partition,
            limits: Limits {
                max_output_bytes: run.max_output_bytes,
                timeout: run.timeout,
            },
            keep_raw_output: output::needs_raw_output(
                self.config.output.format,
                self.config.output.dir.as_deref(),
            ),
            remove_env: child_env::removed_from_environment(),
            // `auto` grows up to the workers that fit the open-file limit.
            auto: run.auto.map(|auto| crate::workers::AutoSettings {
                cap: self.workers,
                assume_rate: self.config.aws.max_assume_rate,
                targets_per_call: self.regions.len().max(1),
                ..auto
            }),
            vars: self.target_vars(),
        })
    }

    /// Each target's variables and the tags its command uses.
    fn target_vars(&self) -> Arc<TargetVars> {
        self.vars.clone()
    }

    fn shared<A: Aws>(
        &self,
        cache: CredentialCache<A>,
        partition: String,
    ) -> anyhow::Result<Shared<A>> {
        let creds = Arc::new(cache.with_rate_limit(self.config.aws.max_assume_rate));
        let endpoint = endpoint::serve(self.config.run.child_credentials, &creds)?;
        Ok(Shared {
            creds,
            spec: self.spec(partition),
            stop: self.stop().clone(),
            groups: self.control.groups.clone(),
            endpoint,
            rollout: Arc::new(rollout::Gate::new(self.config.run.rollout)),
        })
    }

    /// Stopped before any target was known: an empty document of the run's own shape (a dry
    /// run's matrix, or the results), so the output still parses.
    fn interrupted_before_targets<W: Write>(&self, out: W, pretty: bool) -> anyhow::Result<Exit> {
        if self.config.dry_run {
            let roles = &self.config.role.role_names;
            let none = (&Default::default(), &Default::default());
            dry_run::write(&[], none, roles, (false, None), true, out, pretty)?;
            return Ok(Exit::Interrupted);
        }
        let o = &self.config.output;
        let sink = Sink::new(out, o.format, pretty, o.dir.clone());
        let ended = sink.finish(0, self.elapsed_ms()).map(drop);
        output::written(ended, "the results")?;
        Ok(Exit::Interrupted)
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// A run over a fully resolved list of accounts.
    async fn listed<A: Aws, W: Write + Send + 'static>(
        &self,
        aws: Arc<A>,
        identified: Identified,
        out: W,
        pretty: bool,
    ) -> anyhow::Result<Exit> {
        let chosen = tokio::select! {
            chosen = listed::choose(
                aws.as_ref(),
                self.config,
                self.rules(),
                (self.portal(), &identified.caller),
                &self.vars,
            ) => chosen?,
            _ = self.stop().cancelled() => return self.interrupted_before_targets(out, pretty),
        };
        let all_enabled = self.config.regions.is_all_enabled();
        let all_label = [ALL_ENABLED_LABEL.to_owned()];
        let fixed = if all_enabled {
            &all_label[..]
        } else {
            self.regions
        };
        let s = &self.config.selection;
        let pairs = s.rerun.as_ref().or(s.plan.as_ref().map(|p| &p.pairs));
        let targets = plan::targets(chosen.accounts, &self.config.account_regions(fixed), pairs);
        if self.config.dry_run {
            let quiet = self.config.output.quiet;
            let roles = &self.config.role.role_names;
            let caller = Some(identified.caller.account.as_str()).filter(|c| !c.is_empty());
            let vars = self.target_vars();
            // The dry run shows only what is missing, never an error's message.
            let accounts = targets.iter().map(|(a, _)| &**a);
            let vars = vars.resolve_all(aws.as_ref(), accounts, |e| e);
            return dry_run::write(
                &targets,
                (&chosen.via, &vars.await),
                roles,
                (all_enabled, caller),
                quiet,
                out,
                pretty,
            );
        }
        if targets.is_empty() && s.shard.is_none() {
            bail!(
                "no eligible targets: the regions chosen (--region, --exclude-region, --rerun) leave nothing to run"
            );
        }
        if confirm::ask(self.config, &targets, self.stop()).await? == confirm::Answer::Interrupted {
            return self.interrupted_before_targets(out, pretty);
        }
        // With --region all the uses of each account are known only after discovery (an
        // account whose config entry names its regions is not asked).
        let planned = targets
            .iter()
            .filter(|(_, region)| region != ALL_ENABLED_LABEL)
            .map(|(a, _)| a.id.as_str());
        let role = self.config.role.clone();
        let cache = CredentialCache::new(aws, role, &identified.partition, planned);
        let shared = self.shared(cache, identified.partition)?;
        let (mut targets, early) = if all_enabled {
            listed::discover(&shared, targets, self.config, self.workers).await
        } else {
            (targets, Vec::new())
        };
        rollout::order(&mut targets, &self.config.run.rollout);
        let total = (targets.len() + early.len()) as u64;
        let mut reporter =
            Reporter::new(&self.config.output, self.stop().clone(), out, pretty, total);
        shared.rollout.set_total(total);
        runner::report_early(&shared, early, &mut reporter);
        runner::run_all(shared, runner::feed(targets), &mut reporter).await;
        reporter.finish(self.stop(), chosen.skipped, self.elapsed_ms(), &[])
    }

    /// A run of the whole organization or of OUs, while it is still being listed: the first
    /// roles are assumed while later pages are on their way, and no full account list is ever
    /// held.
    async fn streamed<A: Aws, W: Write + Send + 'static>(
        &self,
        aws: Arc<A>,
        identified: Identified,
        out: W,
        pretty: bool,
    ) -> anyhow::Result<Exit> {
        let Identified { caller, partition } = identified;
        let admission = tokio::select! {
            admission = resolver::admission(aws.as_ref(), self.rules(), &caller) => admission?,
            _ = self.stop().cancelled() => return self.interrupted_before_targets(out, pretty),
        };
        let role = self.config.role.clone();
        let shared = self.shared(
            CredentialCache::new(aws.clone(), role, &partition, []),
            partition,
        )?;
        let (account_tx, account_rx) = tokio::sync::mpsc::channel::<Account>(256);
        let known = shared.rollout.known();
        let listing = stream::spawn_listing(
            aws,
            self.config.selection.targets.clone(),
            admission,
            (self.portal(), self.config.vars.needs_parents()),
            self.stop().clone(),
            account_tx,
        );
        let each = self.config.account_regions(self.regions);
        let targets = stream::expand_regions(account_rx, each, &shared, known.clone());
        let mut reporter = Reporter::new(&self.config.output, self.stop().clone(), out, pretty, 0);
        reporter.known = Some(known.clone());
        runner::run_all(shared, targets, &mut reporter).await;

        let listed = listing
            .await
            .context("the task listing the organization failed")?;
        let filters = !self.config.selection.filters.is_empty();
        match listed {
            Ok(summary) if summary.sent == 0 && !self.stop().is_stopped() => {
                for note in summary.notes(filters) {
                    self.note(&note);
                }
                bail!(
                    "no eligible targets: after --ignore, filters, the calling account and accounts that are not ACTIVE, nothing is left to run in"
                )
            }
            Ok(summary) => reporter.finish(
                self.stop(),
                summary.tally.skipped(),
                self.elapsed_ms(),
                &summary.notes(filters),
            ),
            Err(err) if known.load(Ordering::SeqCst) == 0 => Err(err),
            Err(err) => {
                // An exit-2 run writes no GitHub step summary: a partial table would read as
                // the whole organization.
                reporter
                    .without_ci_summary()
                    .finish(self.stop(), 0, self.elapsed_ms(), &[])?;
                Err(err.context(
                    "the organization could not be listed to the end; the output holds only the accounts listed before the error",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::FakeAws;
    use crate::cli::Cli;
    use clap::Parser;
    use std::sync::Mutex;

    /// Output the test can read after the writer thread is done with it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn org(fail_from_page: Option<usize>) -> Arc<FakeAws> {
        let mut accounts = vec![FakeAws::account("000000000000", "mgmt", "ACTIVE")];
        for i in 1..=5 {
            accounts.push(FakeAws::account(
                &format!("{i:012}"),
                &format!("a{i}"),
                "ACTIVE",
            ));
        }
        Arc::new(FakeAws {
            caller: "000000000000".into(),
            accounts,
            fail_from_page,
            ..FakeAws::default()
        })
    }

    async fn whole_org(aws: Arc<FakeAws>) -> (anyhow::Result<Exit>, serde_json::Value) {
        let cli =
            Cli::try_parse_from(["cove", "-q", "--region", "eu-west-1", "--", "true"]).unwrap();
        let config = Config::from_cli(cli).unwrap();
        let out = Shared::default();
        let regions = ["eu-west-1".to_owned()];
        let control = Control::default();
        let code = execute(&config, 4, &regions, aws, control, out.clone(), false).await;
        let bytes = out.0.lock().unwrap().clone();
        let doc = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (code, doc)
    }

    #[tokio::test]
    async fn the_whole_organization_runs_while_it_is_listed() {
        let aws = org(None);
        let (code, doc) = whole_org(aws.clone()).await;
        assert_eq!(code.unwrap(), Exit::Success);
        assert_eq!(doc["Results"].as_array().unwrap().len(), 5);
        assert_eq!(aws.assume_calls(), 5);
    }

    async fn portal_run(aws: Arc<FakeAws>) -> serde_json::Value {
        let args = [
            "cove",
            "-q",
            "--sso-role",
            "Admin",
            "-r",
            "eu-west-1",
            "--",
            "true",
        ];
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "-r" { "--region" } else { a })
            .collect();
        let config = Config::from_cli(Cli::try_parse_from(args).unwrap()).unwrap();
        let out = Shared::default();
        let regions = ["eu-west-1".to_owned()];
        let code = execute(
            &config,
            4,
            &regions,
            aws,
            Control::default(),
            out.clone(),
            false,
        )
        .await;
        assert_eq!(code.unwrap(), Exit::Success);
        let bytes = out.0.lock().unwrap().clone();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn ids(doc: &serde_json::Value) -> Vec<&str> {
        doc["Results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["Id"].as_str().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn with_sso_role_the_calling_account_runs_and_no_role_is_assumed() {
        let mut aws = Arc::into_inner(org(None)).unwrap();
        aws.portal = Some("eu-west-1".into());
        let aws = Arc::new(aws);
        let doc = portal_run(aws.clone()).await;
        assert_eq!(ids(&doc).len(), 6, "the caller's account too: {doc}");
        assert_eq!(aws.assume_calls(), 0);
        assert_eq!(aws.portal_requests.lock().unwrap().len(), 6);
        let first = &doc["Results"][0];
        assert_eq!(first["RoleName"], "Admin");
        assert!(first["RoleSessionName"].is_null(), "{first}");
        assert_eq!(first["AssumeRoleSuccess"], true);
    }

    #[tokio::test]
    async fn with_sso_role_and_no_organization_access_the_portals_accounts_run() {
        let mut aws = Arc::into_inner(org(None)).unwrap();
        aws.portal = Some("eu-west-1".into());
        aws.deny_list_accounts = true;
        aws.portal_accounts = vec![
            FakeAws::account("000000000000", "mgmt", "ACTIVE"),
            FakeAws::account("000000000003", "a3", "ACTIVE"),
            FakeAws::account("000000000005", "a5", "ACTIVE"),
        ];
        for account in &mut aws.portal_accounts {
            account.status = None;
        }
        let doc = portal_run(Arc::new(aws)).await;
        assert_eq!(ids(&doc), ["000000000000", "000000000003", "000000000005"]);
        assert_eq!(doc["Results"][1]["Name"], "a3");
    }

    #[tokio::test]
    async fn a_listing_that_fails_midway_reports_what_ran_and_exits_2() {
        let (code, doc) = whole_org(org(Some(1))).await;
        let err = format!("{:#}", code.unwrap_err());
        assert!(err.contains("could not be listed to the end"), "{err}");
        assert!(err.contains("ServiceException"), "{err}");
        let ran = doc["Results"].as_array().unwrap();
        assert_eq!(
            ran.len(),
            1,
            "the first page held the caller and one account: {doc}"
        );
    }
}
