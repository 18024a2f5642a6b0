//! An in-memory organization behind [`Aws`], for tests of faults the emulator cannot produce:
//! denied calls, missing organization access, inconsistent listings. It never touches a network.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use super::{Account, AssumeRequest, Aws, AwsError, Caller, ErrorKind, Page, TempCredentials};
use crate::secret::Secret;

#[derive(Default)]
pub struct FakeAws {
    pub caller: String,
    pub accounts: Vec<Account>,
    /// parent ID -> (child OU IDs, child account IDs)
    pub tree: BTreeMap<String, (Vec<String>, Vec<String>)>,
    pub deny_list_accounts: bool,
    /// `ListAccounts` fails from this page on (0-based), as a listing can mid-way.
    pub fail_from_page: Option<usize>,
    pub tags: BTreeMap<String, Vec<(String, String)>>,
    /// `ListTagsForResource` fails with this message.
    pub tags_error: Option<String>,
    /// Enabled regions by account; accounts not listed have none, `deny_regions` are refused.
    pub enabled_regions: BTreeMap<String, Vec<String>>,
    pub deny_regions: BTreeSet<String>,
    pub tag_calls: AtomicUsize,
    /// `ListParents` calls, by child.
    pub parent_calls: Mutex<Vec<String>>,
    pub deny_assume: BTreeSet<String>,
    /// AssumeRole of (role name, account ID) fails with an error of this kind.
    pub role_errors: BTreeMap<(String, String), ErrorKind>,
    /// How long issued credentials last (default one hour).
    pub lifetime: Option<Duration>,
    /// AssumeRole calls after this many are throttled (retries exhausted).
    pub throttle_assume_after: Option<usize>,
    pub assume_calls: AtomicUsize,
    pub assumed_arns: Mutex<Vec<String>>,
    /// The portal's region and accounts (`--sso-role`); its permission sets fail as
    /// `role_errors` say.
    pub portal: Option<String>,
    pub portal_accounts: Vec<Account>,
    /// The permission sets the portal lists in each account.
    pub portal_roles: BTreeMap<String, Vec<String>>,
    /// `sso:ListAccountRoles` fails for these accounts.
    pub portal_roles_fail: BTreeSet<String>,
    /// `(account ID, permission set)` of every portal credential request.
    pub portal_requests: Mutex<Vec<(String, String)>>,
}

impl FakeAws {
    pub fn account(id: &str, name: &str, state: &str) -> Account {
        Account {
            id: id.into(),
            name: Some(name.into()),
            email: Some(format!("{name}@example.com")),
            status: Some(state.into()),
            parents: None,
        }
    }

    fn children(&self, parent: &str) -> Result<&(Vec<String>, Vec<String>), AwsError> {
        self.tree.get(parent).ok_or_else(|| {
            AwsError::new(
                ErrorKind::NotFound,
                Some("ParentNotFoundException"),
                "no such parent",
            )
        })
    }

    /// The account as listed, or bare when the fake's list does not hold it.
    fn known(&self, id: &str) -> Account {
        self.accounts
            .iter()
            .find(|a| a.id == id)
            .cloned()
            .unwrap_or_else(|| Account::bare(id))
    }

    fn credentials_for(&self, account: &str) -> TempCredentials {
        TempCredentials {
            access_key_id: format!("ASIAFAKE{account}"),
            secret_access_key: Secret::new(format!("fake-secret-{account}")),
            session_token: Secret::new(format!("fake-token-{account}")),
            expiration: SystemTime::now() + self.lifetime.unwrap_or(Duration::from_secs(3600)),
        }
    }

    pub fn assume_calls(&self) -> usize {
        self.assume_calls.load(Ordering::SeqCst)
    }
}

/// Pages of two, so that paging is exercised.
fn page_of<T: Clone>(items: &[T], next_token: Option<String>) -> Page<T> {
    let start: usize = next_token.map_or(0, |t| t.parse().unwrap_or(0));
    let end = (start + 2).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    (items[start.min(end)..end].to_vec(), next)
}

impl Aws for FakeAws {
    async fn caller(&self) -> Result<Caller, AwsError> {
        Ok(Caller {
            account: self.caller.clone(),
            arn: format!("arn:aws:iam::{}:user/tester", self.caller),
        })
    }

    /// Pages of two accounts, so that paging is exercised.
    async fn list_accounts_page(
        &self,
        next_token: Option<String>,
    ) -> Result<Page<Account>, AwsError> {
        if self.deny_list_accounts {
            return Err(AwsError::new(
                ErrorKind::Denied,
                Some("AccessDeniedException"),
                "You don't have permissions to access this resource.",
            ));
        }
        let start: usize = next_token.map_or(0, |t| t.parse().unwrap_or(0));
        if self.fail_from_page.is_some_and(|page| start >= page * 2) {
            return Err(AwsError::new(
                ErrorKind::Other,
                Some("ServiceException"),
                "AWS Organizations can't complete your request because of an internal service error.",
            ));
        }
        let end = (start + 2).min(self.accounts.len());
        let next = (end < self.accounts.len()).then(|| end.to_string());
        Ok((self.accounts[start..end].to_vec(), next))
    }

    async fn list_child_ous_page(
        &self,
        parent: &str,
        next_token: Option<String>,
    ) -> Result<Page<String>, AwsError> {
        let (ous, _) = self.children(parent)?;
        Ok(page_of(ous, next_token))
    }

    async fn list_child_accounts_page(
        &self,
        parent: &str,
        next_token: Option<String>,
    ) -> Result<Page<Account>, AwsError> {
        let (_, ids) = self.children(parent)?;
        let (ids, next) = page_of(ids, next_token);
        let accounts = ids.iter().map(|id| self.known(id)).collect();
        Ok((accounts, next))
    }

    /// The keys of `tree` that are roots (`r-…`).
    async fn list_roots(&self) -> Result<Vec<String>, AwsError> {
        if self.deny_list_accounts {
            return Err(AwsError::new(
                ErrorKind::Denied,
                Some("AccessDeniedException"),
                "You don't have permissions to access this resource.",
            ));
        }
        Ok(self
            .tree
            .keys()
            .filter(|k| k.starts_with("r-"))
            .cloned()
            .collect())
    }

    async fn list_parent(&self, child: &str) -> Result<String, AwsError> {
        self.parent_calls.lock().unwrap().push(child.to_owned());
        if self.deny_list_accounts {
            return Err(AwsError::new(
                ErrorKind::Denied,
                Some("AccessDeniedException"),
                "You don't have permissions to access this resource.",
            ));
        }
        self.tree
            .iter()
            .find(|(_, (ous, accounts))| ous.iter().chain(accounts).any(|c| c == child))
            .map(|(parent, _)| parent.clone())
            .ok_or_else(|| {
                AwsError::new(
                    ErrorKind::NotFound,
                    Some("ChildNotFoundException"),
                    "no such child",
                )
            })
    }

    async fn describe_account(&self, account_id: &str) -> Result<Account, AwsError> {
        if self.deny_list_accounts {
            return Err(AwsError::new(
                ErrorKind::Denied,
                Some("AccessDeniedException"),
                "You don't have permissions to access this resource.",
            ));
        }
        self.accounts
            .iter()
            .find(|a| a.id == account_id)
            .cloned()
            .ok_or_else(|| {
                AwsError::new(
                    ErrorKind::NotFound,
                    Some("AccountNotFoundException"),
                    "no such account",
                )
            })
    }

    async fn list_enabled_regions(&self, creds: &TempCredentials) -> Result<Vec<String>, AwsError> {
        let account = creds.access_key_id.trim_start_matches("ASIAFAKE");
        if self.deny_regions.contains(account) {
            return Err(AwsError::new(
                ErrorKind::Denied,
                Some("AccessDeniedException"),
                "not authorized to perform account:ListRegions",
            ));
        }
        Ok(self
            .enabled_regions
            .get(account)
            .cloned()
            .unwrap_or_default())
    }

    async fn list_account_tags(&self, account_id: &str) -> Result<Vec<(String, String)>, AwsError> {
        self.tag_calls.fetch_add(1, Ordering::SeqCst);
        if let Some(message) = &self.tags_error {
            return Err(AwsError::new(
                ErrorKind::Other,
                Some("ServiceException"),
                message.clone(),
            ));
        }
        Ok(self.tags.get(account_id).cloned().unwrap_or_default())
    }

    async fn assume_role(&self, request: &AssumeRequest) -> Result<TempCredentials, AwsError> {
        let before = self.assume_calls.fetch_add(1, Ordering::SeqCst);
        if self.throttle_assume_after.is_some_and(|n| before >= n) {
            return Err(AwsError::new(
                ErrorKind::Throttled,
                Some("Throttling"),
                "Rate exceeded",
            ));
        }
        self.assumed_arns
            .lock()
            .unwrap()
            .push(request.role_arn.clone());
        let account = request.role_arn.split(':').nth(4).unwrap_or_default();
        if self.deny_assume.contains(account) {
            return Err(AwsError::new(
                ErrorKind::Denied,
                Some("AccessDenied"),
                format!(
                    "not authorized to perform sts:AssumeRole on {}",
                    request.role_arn
                ),
            ));
        }
        let role = request.role_arn.split_once(":role/").map_or("", |(_, r)| r);
        if let Some(kind) = self.role_errors.get(&(role.to_owned(), account.to_owned())) {
            let code = match kind {
                ErrorKind::Denied => "AccessDenied",
                ErrorKind::Throttled => "Throttling",
                _ => "ServiceUnavailable",
            };
            return Err(AwsError::new(
                *kind,
                Some(code),
                format!("AssumeRole of {} failed", request.role_arn),
            ));
        }
        Ok(self.credentials_for(account))
    }

    fn portal_region(&self) -> Option<String> {
        self.portal.clone()
    }

    async fn portal_accounts_page(
        &self,
        next_token: Option<String>,
    ) -> Result<Page<Account>, AwsError> {
        Ok(page_of(&self.portal_accounts, next_token))
    }

    async fn portal_account_roles(&self, account_id: &str) -> Result<Vec<String>, AwsError> {
        if self.portal_roles_fail.contains(account_id) {
            return Err(AwsError::new(
                ErrorKind::Throttled,
                Some("TooManyRequestsException"),
                "Rate exceeded",
            ));
        }
        Ok(self
            .portal_roles
            .get(account_id)
            .cloned()
            .unwrap_or_default())
    }

    async fn portal_role_credentials(
        &self,
        account_id: &str,
        permission_set: &str,
    ) -> Result<TempCredentials, AwsError> {
        self.portal_requests
            .lock()
            .unwrap()
            .push((account_id.to_owned(), permission_set.to_owned()));
        let key = (permission_set.to_owned(), account_id.to_owned());
        if let Some(kind) = self.role_errors.get(&key) {
            let code = match kind {
                ErrorKind::Denied => "ForbiddenException",
                ErrorKind::Throttled => "TooManyRequestsException",
                _ => "InvalidRequestException",
            };
            return Err(AwsError::new(*kind, Some(code), "No access"));
        }
        Ok(self.credentials_for(account_id))
    }
}
