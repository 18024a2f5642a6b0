//! IAM Identity Center's access portal, for `--sso-role`: the profile's SSO settings, the access
//! token that `aws sso login` cached for them, and the portal calls made with that token
//! (`sso:ListAccounts` and `sso:GetRoleCredentials`). No role is assumed in this mode: each
//! target's credentials are the permission set's, straight from the portal.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use aws_config::SdkConfig;
use aws_config::sso::SsoTokenProvider;
use aws_credential_types::provider::token::ProvideToken;
use aws_runtime::env_config::file::EnvConfigFiles;
use aws_types::os_shim_internal::{Env, Fs};

use super::calls::{self, CallLog};
use super::error::{aws_error, innermost};
use super::retry::{self, RetrySettings};
use super::{Account, AwsError, ErrorKind, Page, TempCredentials};
use crate::secret::Secret;

/// Where the portal is, from the profile: an `sso_session` (its `[sso-session NAME]` section),
/// or the legacy `sso_start_url` and `sso_region` in the profile itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalProfile {
    /// The profile, for the `aws sso login --profile NAME` a person is told to run.
    pub profile: String,
    pub start_url: String,
    /// The region of the portal; its partition is the partition of every target.
    pub region: String,
    /// The `sso_session` name; `None` for a legacy profile.
    pub session: Option<String>,
}

impl PortalProfile {
    /// The key `aws sso login` caches the token under: the session name, or for a legacy
    /// profile the start URL.
    fn cache_key(&self) -> &str {
        self.session.as_deref().unwrap_or(&self.start_url)
    }

    fn login_hint(&self) -> String {
        format!("aws sso login --profile {}", self.profile)
    }
}

/// The SSO settings of `profile` (else `AWS_PROFILE`, else `default`), read from the shared
/// config files. A profile that is missing, or has no SSO settings, is an input error.
pub async fn load_profile(profile: Option<&str>) -> anyhow::Result<PortalProfile> {
    let chosen = profile.map(|p| Cow::Owned(p.to_owned()));
    let set = aws_config::profile::load(
        &Fs::real(),
        &Env::real(),
        &EnvConfigFiles::default(),
        chosen,
    )
    .await
    .context("--sso-role: could not read the AWS config files")?;
    let name = set.selected_profile().to_owned();
    let Some(found) = set.get_profile(&name) else {
        bail!(
            "--sso-role: profile `{name}` is not in the AWS config file; expected a profile with IAM Identity Center settings (sso_session, or sso_start_url and sso_region). Pass it with --profile or AWS_PROFILE"
        );
    };
    let no_sso = || {
        anyhow::anyhow!(
            "--sso-role needs a profile with IAM Identity Center settings (sso_session, or sso_start_url and sso_region), and profile `{name}` has none; run `aws configure sso --profile {name}`, or pass another with --profile"
        )
    };
    if let Some(session) = found.get("sso_session") {
        let Some(section) = set.sso_session(session) else {
            bail!(
                "--sso-role: profile `{name}` names sso_session `{session}`, but the config file has no [sso-session {session}] section"
            );
        };
        let setting = |key: &str| {
            section.get(key).map(str::to_owned).with_context(|| {
                format!("--sso-role: [sso-session {session}] has no `{key}`; expected the setting that `aws configure sso` writes")
            })
        };
        return Ok(PortalProfile {
            profile: name.clone(),
            start_url: setting("sso_start_url")?,
            region: setting("sso_region")?,
            session: Some(session.to_owned()),
        });
    }
    match (found.get("sso_start_url"), found.get("sso_region")) {
        (Some(url), Some(region)) => Ok(PortalProfile {
            profile: name.clone(),
            start_url: url.to_owned(),
            region: region.to_owned(),
            session: None,
        }),
        (Some(_), None) => {
            bail!("--sso-role: profile `{name}` has sso_start_url but no sso_region")
        }
        _ => Err(no_sso()),
    }
}

/// The portal client and the cached access token, renewed through the SDK's SSO token provider
/// when the session allows it (an `sso_session` login keeps a refresh token).
pub struct Portal {
    client: aws_sdk_sso::Client,
    token: SsoTokenProvider,
    profile: PortalProfile,
}

impl Portal {
    /// The portal of `profile`, its calls with cove's retry policy and their own budget.
    pub async fn new(base: &SdkConfig, profile: PortalProfile, retry: &RetrySettings) -> Self {
        let region = aws_types::region::Region::new(profile.region.clone());
        let token = SsoTokenProvider::builder()
            .configure(base)
            .region(region.clone())
            .session_name(profile.cache_key())
            .start_url(profile.start_url.clone())
            .build()
            .await;
        let config = aws_sdk_sso::config::Builder::from(base)
            .region(region)
            .retry_config(retry.for_cove())
            .retry_partition(retry::budget("cove-sso"))
            .interceptor(CallLog)
            .build();
        Portal {
            client: aws_sdk_sso::Client::from_conf(config),
            token,
            profile,
        }
    }

    pub fn region(&self) -> &str {
        &self.profile.region
    }

    /// The access token, or the run-level error that tells the user to sign in again.
    pub async fn access_token(&self) -> anyhow::Result<Secret> {
        match self.token.provide_token().await {
            Ok(token) => Ok(Secret::new(token.token())),
            Err(err) => bail!(
                "no valid IAM Identity Center sign-in for profile `{}` ({}): run `{}`, then run cove again",
                self.profile.profile,
                innermost(&err),
                self.profile.login_hint()
            ),
        }
    }

    /// Checks the sign-in with the portal itself (one `sso:ListAccounts` of one account): a
    /// token the portal refuses ends the run here, before any target, with the login to run.
    pub async fn check_sign_in(&self) -> anyhow::Result<()> {
        self.access_token().await?;
        match self.list_accounts(None, Some(1)).await {
            Ok(_) => Ok(()),
            // The error already names the login to run.
            Err(e) if e.code.as_deref() == Some("UnauthorizedException") => bail!(
                "the IAM Identity Center portal refused the sign-in of profile `{}`: {e}",
                self.profile.profile
            ),
            Err(e) => bail!(
                "could not check the IAM Identity Center sign-in with the portal (sso:ListAccounts in {}): {e}",
                self.profile.region
            ),
        }
    }

    /// The token as one call needs it; a failure is an [`AwsError`] naming the login to run.
    async fn token_for_call(&self) -> Result<Secret, AwsError> {
        self.access_token().await.map_err(|e| {
            AwsError::new(
                ErrorKind::CredentialsFailed,
                Some("UnauthorizedException"),
                e.to_string(),
            )
        })
    }

    /// One page of the accounts the user may sign in to (`sso:ListAccounts`).
    pub async fn accounts_page(
        &self,
        next_token: Option<String>,
    ) -> Result<Page<Account>, AwsError> {
        self.list_accounts(next_token, None).await
    }

    /// One page of `sso:ListAccounts`, of at most `page_size` accounts when given.
    async fn list_accounts(
        &self,
        next_token: Option<String>,
        page_size: Option<i32>,
    ) -> Result<Page<Account>, AwsError> {
        calls::logged("sso", "ListAccounts", "-", self.region(), async {
            let token = self.token_for_call().await?;
            let page = self
                .client
                .list_accounts()
                .access_token(token.expose())
                .set_next_token(next_token)
                .set_max_results(page_size)
                .send()
                .await
                .map_err(|e| self.unauthorized_hint(aws_error(e)))?;
            let accounts = page
                .account_list()
                .iter()
                .filter_map(|a| {
                    Some(Account {
                        id: a.account_id()?.to_owned(),
                        name: a.account_name().map(str::to_owned),
                        email: a.email_address().map(str::to_owned),
                        status: None,
                        parents: None,
                    })
                })
                .collect();
            Ok((accounts, page.next_token().map(str::to_owned)))
        })
        .await
    }

    /// The permission sets the user has in the account (`sso:ListAccountRoles`, every page).
    pub async fn account_roles(&self, account_id: &str) -> Result<Vec<String>, AwsError> {
        calls::logged(
            "sso",
            "ListAccountRoles",
            account_id,
            self.region(),
            async {
                let token = self.token_for_call().await?;
                let mut pages = self
                    .client
                    .list_account_roles()
                    .access_token(token.expose())
                    .account_id(account_id)
                    .into_paginator()
                    .send();
                let mut names = Vec::new();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(aws_error)?;
                    names.extend(
                        page.role_list()
                            .iter()
                            .filter_map(|r| r.role_name().map(str::to_owned)),
                    );
                }
                Ok(names)
            },
        )
        .await
    }

    /// The credentials of `permission_set` in the account (`sso:GetRoleCredentials`).
    pub async fn role_credentials(
        &self,
        account_id: &str,
        permission_set: &str,
    ) -> Result<TempCredentials, AwsError> {
        calls::logged(
            "sso",
            "GetRoleCredentials",
            account_id,
            self.region(),
            async {
                let token = self.token_for_call().await?;
                let out = self
                    .client
                    .get_role_credentials()
                    .access_token(token.expose())
                    .account_id(account_id)
                    .role_name(permission_set)
                    .send()
                    .await
                    .map_err(|e| self.unauthorized_hint(aws_error(e)))?;
                let creds = out.role_credentials();
                let parts = creds.and_then(|c| {
                    Some((
                        c.access_key_id()?,
                        c.secret_access_key()?,
                        c.session_token()?,
                    ))
                });
                let Some((key, secret, session)) = parts else {
                    return Err(AwsError::new(
                        ErrorKind::Other,
                        None,
                        "GetRoleCredentials answered without credentials",
                    ));
                };
                let expires_ms = creds.map_or(0, |c| c.expiration()).max(0) as u64;
                Ok(TempCredentials {
                    access_key_id: key.to_owned(),
                    secret_access_key: Secret::new(secret),
                    session_token: Secret::new(session),
                    expiration: SystemTime::UNIX_EPOCH + Duration::from_millis(expires_ms),
                })
            },
        )
        .await
    }

    /// The portal refused the token: say which login renews it.
    fn unauthorized_hint(&self, mut err: AwsError) -> AwsError {
        if err.code.as_deref() == Some("UnauthorizedException") {
            err.message = format!(
                "{} (the IAM Identity Center sign-in is no longer valid; run `{}`)",
                err.message,
                self.profile.login_hint()
            );
        }
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_cached_under_the_session_name_or_else_the_start_url() {
        let mut p = PortalProfile {
            profile: "my-sso".into(),
            start_url: "https://example.awsapps.com/start".into(),
            region: "eu-west-1".into(),
            session: Some("corp".into()),
        };
        assert_eq!(p.cache_key(), "corp");
        p.session = None;
        assert_eq!(p.cache_key(), "https://example.awsapps.com/start");
        assert_eq!(p.login_hint(), "aws sso login --profile my-sso");
    }
}
