//! Assuming the target role: the role ARN, one AssumeRole per account shared by all of that
//! account's regions, and the [`Secret`] type that keeps keys and tokens out of every printout.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::aws::{AssumeRequest, Aws, AwsError, TempCredentials};

/// A value that must never be printed: secret keys, session tokens, external IDs, policies.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The real value, for handing to AWS or to a child's environment only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How to assume the role in any account; built once from the validated configuration.
#[derive(Debug, Clone)]
pub struct RoleSpec {
    pub role_name: String,
    pub session_name: String,
    pub policy: Option<Secret>,
    pub policy_arns: Vec<String>,
    pub external_id: Option<Secret>,
    pub duration_seconds: Option<i32>,
}

impl RoleSpec {
    pub fn role_arn(&self, partition: &str, account_id: &str) -> String {
        format!("arn:{partition}:iam::{account_id}:role/{}", self.role_name)
    }

    fn request(&self, partition: &str, account_id: &str) -> AssumeRequest {
        AssumeRequest {
            role_arn: self.role_arn(partition, account_id),
            session_name: self.session_name.clone(),
            policy: self.policy.clone(),
            policy_arns: self.policy_arns.clone(),
            external_id: self.external_id.clone(),
            duration_seconds: self.duration_seconds,
        }
    }
}

type Assumed = Result<Arc<TempCredentials>, AwsError>;

/// Assumes the role at most once per account, however many regions ask for it, and however
/// many ask at the same time.
pub struct CredentialCache<A> {
    aws: Arc<A>,
    spec: RoleSpec,
    partition: String,
    cells: HashMap<String, OnceCell<Assumed>>,
}

impl<A: Aws> CredentialCache<A> {
    pub fn new<'a>(
        aws: Arc<A>,
        spec: RoleSpec,
        partition: &str,
        accounts: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        CredentialCache {
            aws,
            spec,
            partition: partition.to_owned(),
            cells: accounts
                .into_iter()
                .map(|id| (id.to_owned(), OnceCell::new()))
                .collect(),
        }
    }

    pub fn spec(&self) -> &RoleSpec {
        &self.spec
    }

    /// The account's credentials, assuming the role on first use.
    pub async fn get(&self, account_id: &str) -> Assumed {
        let Some(cell) = self.cells.get(account_id) else {
            return Err(AwsError::new(
                None,
                format!("account {account_id} was not planned as a target"),
            ));
        };
        cell.get_or_init(|| async {
            self.aws
                .assume_role(&self.spec.request(&self.partition, account_id))
                .await
                .map(Arc::new)
        })
        .await
        .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_format() {
        let s = Secret::new("wJalrXUtnFEMI");
        assert!(!format!("{s:?}").contains("wJalr"));
        assert!(!format!("{s}").contains("wJalr"));
    }

    #[test]
    fn role_arn_uses_the_partition() {
        let spec = RoleSpec {
            role_name: "Audit".into(),
            session_name: "Audit".into(),
            policy: None,
            policy_arns: vec![],
            external_id: None,
            duration_seconds: None,
        };
        assert_eq!(
            spec.role_arn("aws-cn", "111111111111"),
            "arn:aws-cn:iam::111111111111:role/Audit"
        );
    }
}
