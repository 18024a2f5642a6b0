//! The small seam between cove and AWS. Everything cove asks of STS and Organizations goes
//! through [`Aws`]; [`sdk::SdkAws`] is the real implementation, and the tests use an in-memory
//! fake for faults the emulator cannot produce.

pub mod calls;
pub mod error;
pub mod portal;
pub mod renew;
pub mod retry;
pub mod sdk;

#[cfg(test)]
pub mod fake;

use std::future::Future;
use std::time::SystemTime;

use crate::secret::Secret;

/// An account as Organizations describes it. Fields are `None` when unknown, for example when
/// the caller may not list the organization and named the account by ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// `State` where the API returns it, else the deprecated `Status`.
    pub status: Option<String>,
    /// The account's place in the organization: its parent OUs, nearest first, ending with
    /// the root. `None` when not known (a listing by `ListAccounts` does not say); the OU walk
    /// records it where per-OU settings need it (`vars::VarsConfig::needs_parents`).
    pub parents: Option<Vec<String>>,
}

impl Account {
    pub fn bare(id: &str) -> Self {
        Account {
            id: id.to_owned(),
            name: None,
            email: None,
            status: None,
            parents: None,
        }
    }

    pub fn is_active(&self) -> bool {
        self.status.as_deref() == Some("ACTIVE")
    }
}

/// Who cove is running as, from `sts:GetCallerIdentity`. With `--sso-role` there may be no
/// calling identity at all; it is then the empty default, which no account matches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Caller {
    pub account: String,
    pub arn: String,
}

impl Caller {
    /// The partition (`aws`, `aws-cn`, `aws-us-gov`, ...) from the caller's ARN.
    pub fn partition(&self) -> Option<&str> {
        let mut parts = self.arn.split(':');
        match (parts.next(), parts.next()) {
            (Some("arn"), Some(p)) if !p.is_empty() => Some(p),
            _ => None,
        }
    }
}

/// Everything passed to `sts:AssumeRole`. Optional fields are sent only when given.
#[derive(Clone)]
pub struct AssumeRequest {
    pub role_arn: String,
    pub session_name: String,
    pub policy: Option<Secret>,
    pub policy_arns: Vec<String>,
    pub external_id: Option<Secret>,
    pub duration_seconds: Option<i32>,
}

/// Temporary credentials for one account. The secret parts never print.
#[derive(Debug, Clone)]
pub struct TempCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Secret,
    pub expiration: SystemTime,
}

/// What kind of failure an AWS error is: the only thing cove branches on. The SDK layer
/// (`sdk.rs`) sets it from the AWS error code; nothing else matches code strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller may not do this (`AccessDenied`, `AccessDeniedException`, ...).
    Denied,
    /// The account is not in an organization (`AWSOrganizationsNotInUseException`).
    NoOrganization,
    /// The named parent, OU or account does not exist.
    NotFound,
    /// AWS asked to slow down; the SDK already retried it as far as the retry settings allow.
    Throttled,
    /// No credentials anywhere in the chain (environment, files, SSO, container, instance).
    NoCredentials,
    /// Credentials were found but could not be loaded (an expired SSO session, a failing
    /// credential process, a role the profile names that cannot be assumed, ...).
    CredentialsFailed,
    /// AWS could not be reached (DNS, connection, timeout).
    Unreachable,
    /// Anything else.
    Other,
}

/// An error from AWS, reduced to what cove branches on ([`ErrorKind`]) and reports.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{message}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct AwsError {
    pub kind: ErrorKind,
    /// The AWS error code (`AccessDenied`, `Throttling`, ...), when the service sent one.
    pub code: Option<String>,
    pub message: String,
    /// The full chain of causes, for `-v`; the message is the sentence a person reads.
    pub detail: Option<String>,
}

impl AwsError {
    pub fn new(kind: ErrorKind, code: Option<&str>, message: impl Into<String>) -> Self {
        AwsError {
            kind,
            code: code.map(str::to_owned),
            message: message.into(),
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: String) -> Self {
        self.detail = Some(detail);
        self
    }

    /// The caller may not use Organizations here: denied, or not in an organization at all.
    pub fn is_no_org_access(&self) -> bool {
        matches!(self.kind, ErrorKind::Denied | ErrorKind::NoOrganization)
    }

    /// The organization cannot be listed with these credentials: denied, not in an
    /// organization, or no calling credentials at all (possible with `--sso-role`).
    pub fn cannot_list_organization(&self) -> bool {
        self.is_no_org_access()
            || matches!(
                self.kind,
                ErrorKind::NoCredentials | ErrorKind::CredentialsFailed
            )
    }

    /// The named parent (OU or root) does not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }
}

/// One page of a listing, and the token of the next page, if any.
pub type Page<T> = (Vec<T>, Option<String>);

/// What cove needs from AWS. Listings come a page at a time, so callers can start on the
/// first page while the next is on its way.
pub trait Aws: Send + Sync + 'static {
    fn caller(&self) -> impl Future<Output = Result<Caller, AwsError>> + Send;
    /// One page of the organization's accounts (`organizations:ListAccounts`), and the token
    /// of the next page, if any.
    fn list_accounts_page(
        &self,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<Page<Account>, AwsError>> + Send;
    /// One page of the OUs directly under `parent` (an OU or the root,
    /// `organizations:ListOrganizationalUnitsForParent`), and the next page's token.
    fn list_child_ous_page(
        &self,
        parent: &str,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<Page<String>, AwsError>> + Send;
    /// One page of the accounts directly under `parent`, with their names, emails and states
    /// (`organizations:ListAccountsForParent`), and the next page's token.
    fn list_child_accounts_page(
        &self,
        parent: &str,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<Page<Account>, AwsError>> + Send;
    /// The organization's roots (`organizations:ListRoots`): one, in every organization AWS
    /// makes today. The OU walk of a whole-organization run starts from it.
    fn list_roots(&self) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;
    /// The parent (an OU or the root) of an account or OU (`organizations:ListParents`); an
    /// unknown child is [`ErrorKind::NotFound`].
    fn list_parent(&self, child: &str) -> impl Future<Output = Result<String, AwsError>> + Send;
    /// One account of the organization (`organizations:DescribeAccount`); a non-member is
    /// [`ErrorKind::NotFound`].
    fn describe_account(
        &self,
        account_id: &str,
    ) -> impl Future<Output = Result<Account, AwsError>> + Send;
    fn assume_role(
        &self,
        request: &AssumeRequest,
    ) -> impl Future<Output = Result<TempCredentials, AwsError>> + Send;
    /// The region of the IAM Identity Center portal, when the targets' credentials come from it
    /// (`--sso-role`).
    fn portal_region(&self) -> Option<String> {
        None
    }
    /// One page of the accounts the IAM Identity Center user may sign in to
    /// (`sso:ListAccounts`), and the next page's token: the targets of `--sso-role` when the
    /// organization cannot be listed.
    fn portal_accounts_page(
        &self,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<Page<Account>, AwsError>> + Send;
    /// The permission sets the IAM Identity Center user has in an account
    /// (`sso:ListAccountRoles`), to say which exist when the one asked for does not.
    fn portal_account_roles(
        &self,
        account_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;
    /// The credentials of the permission set `permission_set` in an account, from the
    /// IAM Identity Center portal (`sso:GetRoleCredentials`), for `--sso-role`.
    fn portal_role_credentials(
        &self,
        account_id: &str,
        permission_set: &str,
    ) -> impl Future<Output = Result<TempCredentials, AwsError>> + Send;
    /// The regions enabled in the account that `creds` belong to (`account:ListRegions` with
    /// ENABLED and ENABLED_BY_DEFAULT), asked of the account itself.
    fn list_enabled_regions(
        &self,
        creds: &TempCredentials,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;
    /// The account's tags in Organizations (`organizations:ListTagsForResource`).
    fn list_account_tags(
        &self,
        account_id: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, AwsError>> + Send;
}
