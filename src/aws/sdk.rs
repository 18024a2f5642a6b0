//! [`Aws`] on the AWS SDK for Rust. Endpoints and the assuming credentials come from the
//! standard configuration chain, so `AWS_ENDPOINT_URL` and profiles behave as the SDK documents.
//! Retries follow [`super::retry`].

use std::sync::Arc;
use std::time::SystemTime;

use aws_config::SdkConfig;
use aws_config::identity::IdentityCache;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_sdk_organizations::types::Account as SdkAccount;
use aws_sdk_sts::types::PolicyDescriptorType;

use super::calls::{self, CallLog};
use super::error::aws_error;
use super::portal::{Portal, PortalProfile};
use super::renew::Renewing;
use super::retry::{self, RetrySettings};
use super::{Account, AssumeRequest, Aws, AwsError, Caller, ErrorKind, Page, TempCredentials};
use crate::secret::Secret;

/// The real AWS: one regional STS client (the calling identity: GetCallerIdentity and every
/// AssumeRole into a target) and one Organizations client (the calling identity, or the
/// `--org-role`).
pub struct SdkAws {
    sts: aws_sdk_sts::Client,
    org: aws_sdk_organizations::Client,
    /// The calling configuration, for per-account clients built on assumed credentials.
    base: SdkConfig,
    /// The retry policy of the per-account Account clients, and the one budget they share.
    account_retry: aws_config::retry::RetryConfig,
    account_budget: aws_sdk_sts::config::retry::RetryPartition,
    /// The regions the clients call, for the call log.
    region: String,
    org_region: String,
    /// The IAM Identity Center portal, for `--sso-role`.
    portal: Option<Portal>,
}

impl SdkAws {
    /// STS from `config`, Organizations from `org_config`, both with cove's retry policy.
    pub fn new(config: &SdkConfig, org_config: &SdkConfig, retry: &RetrySettings) -> Self {
        let sts = aws_sdk_sts::config::Builder::from(config)
            .retry_config(retry.for_cove())
            .retry_partition(retry::budget("cove-sts"))
            .interceptor(CallLog)
            .build();
        let org = aws_sdk_organizations::config::Builder::from(org_config)
            .retry_config(retry.for_cove())
            .retry_partition(retry::budget("cove-organizations"))
            .interceptor(CallLog)
            .build();
        let region_of = |c: &SdkConfig| c.region().map_or("-".to_owned(), |r| r.to_string());
        SdkAws {
            sts: aws_sdk_sts::Client::from_conf(sts),
            org: aws_sdk_organizations::Client::from_conf(org),
            base: config.clone(),
            account_retry: retry.for_cove(),
            account_budget: retry::budget("cove-account"),
            region: region_of(config),
            org_region: region_of(org_config),
            portal: None,
        }
    }

    fn portal(&self) -> Result<&Portal, AwsError> {
        self.portal.as_ref().ok_or_else(|| {
            AwsError::new(
                ErrorKind::Other,
                None,
                "the IAM Identity Center portal is used only with --sso-role",
            )
        })
    }
}

fn account_from_sdk(a: &SdkAccount) -> Option<Account> {
    Some(Account {
        id: a.id()?.to_owned(),
        name: a.name().map(str::to_owned),
        email: a.email().map(str::to_owned),
        status: a
            .state()
            .map(|s| s.as_str().to_owned())
            .or_else(|| a.status().map(|s| s.as_str().to_owned())),
        parents: None,
    })
}

impl Aws for SdkAws {
    async fn caller(&self) -> Result<Caller, AwsError> {
        calls::logged("sts", "GetCallerIdentity", "caller", &self.region, async {
            let out = self
                .sts
                .get_caller_identity()
                .send()
                .await
                .map_err(aws_error)?;
            Ok(Caller {
                account: out.account().unwrap_or_default().to_owned(),
                arn: out.arn().unwrap_or_default().to_owned(),
            })
        })
        .await
    }

    async fn list_accounts_page(
        &self,
        next_token: Option<String>,
    ) -> Result<Page<Account>, AwsError> {
        calls::logged(
            "organizations",
            "ListAccounts",
            "-",
            &self.org_region,
            async {
                let page = self
                    .org
                    .list_accounts()
                    .set_next_token(next_token)
                    .send()
                    .await
                    .map_err(aws_error)?;
                Ok((
                    page.accounts()
                        .iter()
                        .filter_map(account_from_sdk)
                        .collect(),
                    page.next_token().map(str::to_owned),
                ))
            },
        )
        .await
    }

    async fn list_child_ous_page(
        &self,
        parent: &str,
        next_token: Option<String>,
    ) -> Result<Page<String>, AwsError> {
        calls::logged(
            "organizations",
            "ListOrganizationalUnitsForParent",
            parent,
            &self.org_region,
            async {
                let page = self
                    .org
                    .list_organizational_units_for_parent()
                    .parent_id(parent)
                    .set_next_token(next_token)
                    .send()
                    .await
                    .map_err(aws_error)?;
                let ous = page
                    .organizational_units()
                    .iter()
                    .filter_map(|ou| ou.id().map(str::to_owned))
                    .collect();
                Ok((ous, page.next_token().map(str::to_owned)))
            },
        )
        .await
    }

    async fn list_child_accounts_page(
        &self,
        parent: &str,
        next_token: Option<String>,
    ) -> Result<Page<Account>, AwsError> {
        calls::logged(
            "organizations",
            "ListAccountsForParent",
            parent,
            &self.org_region,
            async {
                let page = self
                    .org
                    .list_accounts_for_parent()
                    .parent_id(parent)
                    .set_next_token(next_token)
                    .send()
                    .await
                    .map_err(aws_error)?;
                let accounts = page
                    .accounts()
                    .iter()
                    .filter_map(account_from_sdk)
                    .collect();
                Ok((accounts, page.next_token().map(str::to_owned)))
            },
        )
        .await
    }

    async fn list_roots(&self) -> Result<Vec<String>, AwsError> {
        calls::logged("organizations", "ListRoots", "-", &self.org_region, async {
            let mut pages = self.org.list_roots().into_paginator().send();
            let mut roots = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(aws_error)?;
                roots.extend(
                    page.roots()
                        .iter()
                        .filter_map(|r| r.id().map(str::to_owned)),
                );
            }
            Ok(roots)
        })
        .await
    }

    async fn list_parent(&self, child: &str) -> Result<String, AwsError> {
        calls::logged(
            "organizations",
            "ListParents",
            child,
            &self.org_region,
            async {
                let out = self
                    .org
                    .list_parents()
                    .child_id(child)
                    .send()
                    .await
                    .map_err(aws_error)?;
                out.parents()
                    .first()
                    .and_then(|p| p.id().map(str::to_owned))
                    .ok_or_else(|| {
                        AwsError::new(
                            ErrorKind::Other,
                            None,
                            format!("ListParents answered no parent for {child}"),
                        )
                    })
            },
        )
        .await
    }

    async fn describe_account(&self, account_id: &str) -> Result<Account, AwsError> {
        calls::logged(
            "organizations",
            "DescribeAccount",
            account_id,
            &self.org_region,
            async {
                let out = self
                    .org
                    .describe_account()
                    .account_id(account_id)
                    .send()
                    .await
                    .map_err(aws_error)?;
                out.account().and_then(account_from_sdk).ok_or_else(|| {
                    AwsError::new(
                        ErrorKind::Other,
                        None,
                        "DescribeAccount answered without an account",
                    )
                })
            },
        )
        .await
    }

    async fn list_enabled_regions(&self, creds: &TempCredentials) -> Result<Vec<String>, AwsError> {
        calls::logged("account", "ListRegions", "-", &self.region, async {
            use aws_sdk_account::config::Credentials;
            use aws_sdk_account::types::RegionOptStatus;
            let credentials = Credentials::new(
                creds.access_key_id.clone(),
                creds.secret_access_key.expose().to_owned(),
                Some(creds.session_token.expose().to_owned()),
                Some(creds.expiration),
                "cove-assumed-role",
            );
            let config = aws_sdk_account::config::Builder::from(&self.base)
                .credentials_provider(credentials)
                .retry_config(self.account_retry.clone())
                .retry_partition(self.account_budget.clone())
                .interceptor(CallLog)
                .build();
            let client = aws_sdk_account::Client::from_conf(config);
            let mut pages = client
                .list_regions()
                .region_opt_status_contains(RegionOptStatus::Enabled)
                .region_opt_status_contains(RegionOptStatus::EnabledByDefault)
                .into_paginator()
                .send();
            let mut regions = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(aws_error)?;
                regions.extend(
                    page.regions()
                        .iter()
                        .filter_map(|r| r.region_name().map(str::to_owned)),
                );
            }
            regions.sort();
            Ok(regions)
        })
        .await
    }

    async fn list_account_tags(&self, account_id: &str) -> Result<Vec<(String, String)>, AwsError> {
        calls::logged(
            "organizations",
            "ListTagsForResource",
            account_id,
            &self.org_region,
            async {
                let mut pages = self
                    .org
                    .list_tags_for_resource()
                    .resource_id(account_id)
                    .into_paginator()
                    .send();
                let mut tags = Vec::new();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(aws_error)?;
                    tags.extend(
                        page.tags()
                            .iter()
                            .map(|t| (t.key().to_owned(), t.value().to_owned())),
                    );
                }
                Ok(tags)
            },
        )
        .await
    }

    fn portal_region(&self) -> Option<String> {
        self.portal.as_ref().map(|p| p.region().to_owned())
    }

    async fn portal_accounts_page(
        &self,
        next_token: Option<String>,
    ) -> Result<Page<Account>, AwsError> {
        self.portal()?.accounts_page(next_token).await
    }

    async fn portal_account_roles(&self, account_id: &str) -> Result<Vec<String>, AwsError> {
        self.portal()?.account_roles(account_id).await
    }

    async fn portal_role_credentials(
        &self,
        account_id: &str,
        permission_set: &str,
    ) -> Result<TempCredentials, AwsError> {
        self.portal()?
            .role_credentials(account_id, permission_set)
            .await
    }

    async fn assume_role(&self, request: &AssumeRequest) -> Result<TempCredentials, AwsError> {
        calls::logged(
            "sts",
            "AssumeRole",
            request.role_arn.split(':').nth(4).unwrap_or("-"),
            &self.region,
            async { assume(&self.sts, request).await },
        )
        .await
    }
}

/// `sts:AssumeRole` with `sts`'s credentials.
async fn assume(
    sts: &aws_sdk_sts::Client,
    request: &AssumeRequest,
) -> Result<TempCredentials, AwsError> {
    let policy_arns = (!request.policy_arns.is_empty()).then(|| {
        request
            .policy_arns
            .iter()
            .map(|arn| PolicyDescriptorType::builder().arn(arn).build())
            .collect()
    });
    let out = sts
        .assume_role()
        .role_arn(&request.role_arn)
        .role_session_name(&request.session_name)
        .set_policy(request.policy.as_ref().map(|p| p.expose().to_owned()))
        .set_policy_arns(policy_arns)
        .set_external_id(request.external_id.as_ref().map(|e| e.expose().to_owned()))
        .set_duration_seconds(request.duration_seconds)
        .send()
        .await
        .map_err(aws_error)?;
    let creds = out.credentials().ok_or_else(|| {
        AwsError::new(
            ErrorKind::Other,
            None,
            "AssumeRole answered without credentials",
        )
    })?;
    Ok(TempCredentials {
        access_key_id: creds.access_key_id().to_owned(),
        secret_access_key: Secret::new(creds.secret_access_key()),
        session_token: Secret::new(creds.session_token()),
        expiration: SystemTime::try_from(*creds.expiration()).unwrap_or_else(|_| SystemTime::now()),
    })
}

/// The session name of the roles cove acts as (`--via-role`, `--org-role`).
const SESSION_NAME: &str = "cove";

/// The SDK's view of a [`Renewing`] role: every request signs with its current credentials,
/// renewed before they expire.
struct RoleProvider(Arc<Renewing>);

impl std::fmt::Debug for RoleProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RoleProvider({})", self.0.label)
    }
}

impl ProvideCredentials for RoleProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let creds = self.0.get().await.map_err(|e| {
                CredentialsError::provider_error(format!("could not renew {}: {e}", self.0.label))
            })?;
            Ok(Credentials::new(
                creds.access_key_id,
                creds.secret_access_key.expose(),
                Some(creds.session_token.expose().to_owned()),
                Some(creds.expiration),
                "cove-role",
            ))
        })
    }
}

/// `from` acting as the role `arn`, assumed with `from`'s credentials. The role is assumed here,
/// once (a failure is an error that names it by `label`), and renews itself from then on.
async fn acting_as(
    from: &SdkConfig,
    arn: &str,
    label: String,
    retry: &RetrySettings,
) -> anyhow::Result<SdkConfig> {
    // The hop's renewals get cove's retry policy too: a renewal lost to throttling would fail
    // every target assumed through it.
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(from)
            .retry_config(retry.for_cove())
            .retry_partition(retry::budget("cove-sts-hops"))
            .interceptor(CallLog)
            .build(),
    );
    let request = AssumeRequest {
        role_arn: arn.to_owned(),
        session_name: SESSION_NAME.to_owned(),
        policy: None,
        policy_arns: vec![],
        external_id: None,
        duration_seconds: None,
    };
    let role = Arc::new(Renewing::new(
        label,
        Box::new(move || {
            let (sts, request) = (sts.clone(), request.clone());
            Box::pin(async move { assume(&sts, &request).await })
        }),
    ));
    if let Err(err) = role.get().await {
        anyhow::bail!("could not assume {}: {err}", role.label);
    }
    // The role renews itself; the SDK's own cache would keep credentials past that margin.
    Ok(from
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(RoleProvider(role)))
        .identity_cache(IdentityCache::no_cache())
        .build())
}

/// The region the credential chain resolves (environment, then profile), if any.
pub async fn chain_region(profile: Option<&str>) -> Option<String> {
    let mut chain = aws_config::default_provider::region::DefaultRegionChain::builder();
    if let Some(profile) = profile {
        chain = chain.profile_name(profile);
    }
    chain.build().region().await.map(|r| r.as_ref().to_owned())
}

/// The roles cove acts as, beyond the starting credentials.
#[derive(Debug, Clone, Copy, Default)]
pub struct ActingAs<'a> {
    /// `--via-role`: assumed in order, each with the previous one's credentials; the last is
    /// the calling identity for everything.
    pub via_roles: &'a [String],
    /// `--org-role`: assumed with the calling identity, for the Organizations calls only.
    pub org_role: Option<&'a str>,
    /// `--mfa-serial` and its code: the starting credentials are traded for a session first.
    pub mfa: Option<(&'a str, &'a Secret)>,
    /// `--sso-role`: the portal whose permission sets the targets run with. Its cached token
    /// is checked here: first on disk, then with the portal, before any other call.
    pub portal: Option<&'a PortalProfile>,
}

/// `sts:GetSessionToken` with the MFA device and code: the session it returns becomes the
/// starting identity. It cannot be renewed without a new code; it lasts as long as AWS gives
/// (12 hours for an IAM user by default).
async fn mfa_session(
    from: &SdkConfig,
    serial: &str,
    code: &Secret,
    retry: &RetrySettings,
) -> anyhow::Result<SdkConfig> {
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(from)
            .retry_config(retry.for_cove())
            .retry_partition(retry::budget("cove-sts-mfa"))
            .interceptor(CallLog)
            .build(),
    );
    let asked = sts
        .get_session_token()
        .serial_number(serial)
        .token_code(code.expose())
        .send()
        .await
        .map_err(aws_error);
    let out = match asked {
        Ok(out) => out,
        Err(mut e) => {
            e.message = code.redact_from(&e.message);
            if e.kind == ErrorKind::Denied {
                anyhow::bail!(
                    "the MFA code for `{serial}` was not accepted (sts:GetSessionToken: {e}); check the device and try again with its current code"
                );
            }
            anyhow::bail!(
                "could not start an MFA session with `{serial}` (sts:GetSessionToken): {e}"
            );
        }
    };
    let Some(creds) = out.credentials() else {
        anyhow::bail!("sts:GetSessionToken answered without credentials");
    };
    let session = aws_credential_types::Credentials::new(
        creds.access_key_id(),
        creds.secret_access_key(),
        Some(creds.session_token().to_owned()),
        SystemTime::try_from(*creds.expiration()).ok(),
        "cove-mfa-session",
    );
    Ok(from
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(session))
        .build())
}

/// The real AWS, from the standard configuration chain (environment, `profile`, endpoints),
/// with STS called in `sts_region` (a regional endpoint) and cove's retry settings. The
/// `--via-role` hops and the `--org-role` are assumed here, before anything else.
pub async fn connect(
    profile: Option<&str>,
    sts_region: &str,
    acting_as_roles: ActingAs<'_>,
) -> anyhow::Result<SdkAws> {
    let retry = RetrySettings::load(profile).await?;
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_types::region::Region::new(sts_region.to_owned()))
        .retry_config(retry.for_sdk());
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    let mut calling = loader.load().await;
    let portal = match acting_as_roles.portal {
        Some(profile) => {
            let portal = Portal::new(&calling, profile.clone(), &retry).await;
            portal.check_sign_in().await?;
            Some(portal)
        }
        None => None,
    };
    if let Some((serial, code)) = acting_as_roles.mfa {
        calling = mfa_session(&calling, serial, code, &retry).await?;
    }
    let hops = acting_as_roles.via_roles;
    for (i, arn) in hops.iter().enumerate() {
        let label = format!("--via-role `{arn}` (hop {} of {})", i + 1, hops.len());
        calling = acting_as(&calling, arn, label, &retry).await?;
    }
    let org = match acting_as_roles.org_role {
        Some(arn) => acting_as(&calling, arn, format!("--org-role `{arn}`"), &retry).await?,
        None => calling.clone(),
    };
    let mut aws = SdkAws::new(&calling, &org, &retry);
    aws.portal = portal;
    Ok(aws)
}
